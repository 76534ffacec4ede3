"""The pretraining loop's batch stream: epoch 0 begun in a background thread (``FirstBatch``)
gives exactly the batches of the plain stream, errors reach the training thread, and the run's
phases are computed from the driver's and the worker's clocks."""

import threading
import time

import pytest

pytest.importorskip("torch")

from lrl.train.pretrain import phases  # noqa: E402
from lrl.train.pretrain_config import PretrainConfig  # noqa: E402
from lrl.train.pretrain_loop import FirstBatch, _batches  # noqa: E402


class FakeShard:
    """``iter_torch_batches`` over ``n`` full batches, shuffled by the seed it is given; records
    which thread started each epoch and can be slow to start, like a Ray Data shard."""

    def __init__(self, n: int, delay: float = 0.0):
        self.n, self.delay, self.calls = n, delay, []

    def iter_torch_batches(self, *, batch_size, drop_last, local_shuffle_buffer_size, local_shuffle_seed):
        self.calls.append((local_shuffle_seed, threading.current_thread().name))
        time.sleep(self.delay)
        order = sorted(range(self.n), key=lambda i: (i * 7919 + local_shuffle_seed) % 101)
        yield from ({"seed": local_shuffle_seed, "i": i} for i in order)


def _take(stream, k: int) -> list:
    return [next(stream) for _ in range(k)]


def _state() -> dict:
    return {"epoch": 0, "batch_in_epoch": 0}


def test_first_batch_thread_gives_the_same_stream_across_epochs():
    cfg = PretrainConfig(batch_size=4)
    plain = _take(_batches(FakeShard(5), cfg, _state(), 3, 1), 12)
    shard, state = FakeShard(5, delay=0.2), _state()
    started = FirstBatch(lambda name: shard, cfg, 3, 1)
    started.join(timeout=30)  # the first batch arrives without the caller asking for it
    assert started.first == [plain[0]] and not started.is_alive()
    assert _take(_batches(shard, cfg, state, 3, 1, started), 12) == plain
    assert [t for _, t in shard.calls] == ["lrl-first-batch", "MainThread", "MainThread"]
    assert state == {"epoch": 2, "batch_in_epoch": 2}


def test_first_batch_errors_reach_the_training_thread():
    cfg = PretrainConfig(batch_size=4)

    def missing(name):
        raise KeyError(f"no dataset shard {name!r}")

    with pytest.raises(KeyError, match="no dataset shard 'train'"):
        next(_batches(None, cfg, _state(), 0, 0, FirstBatch(missing, cfg, 0, 0)))
    empty = FakeShard(0)
    with pytest.raises(RuntimeError, match="worker 0 got no full batch of 4"):
        next(_batches(empty, cfg, _state(), 0, 0, FirstBatch(lambda name: empty, cfg, 0, 0)))


def test_phases_split_the_time_outside_the_loop():
    marks = {"loop_entered": 15.0, "engine_ready": 21.0, "first_step_done": 21.5, "loop_done": 321.5}
    assert phases(0.0, 4.0, marks, 324.0) == {"prepare_s": 4.0, "workers_s": 11.0, "setup_s": 6.0,
                                              "first_step_s": 0.5, "finish_s": 2.5}
    # a run that did not train (its final checkpoint reused): no worker marks
    assert phases(0.0, 4.0, {}, 9.0) == {"prepare_s": 4.0, "fit_s": 5.0}
