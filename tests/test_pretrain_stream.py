"""The pretraining loop's batch stream: every sequence is trained every epoch (one worker or two),
epoch 0 begun in a background thread (``FirstBatch``) gives exactly the batches of the plain
stream, errors reach the training thread, and the run's phases are computed from the driver's and
the worker's clocks."""

import threading
import time

import pytest

pytest.importorskip("torch")

from lrl.train.pretrain import phases  # noqa: E402
from lrl.train.pretrain_config import PretrainConfig  # noqa: E402
from lrl.train.pretrain_stream import FirstBatch, _batches, pad_for_workers  # noqa: E402


class FakeShard:
    """``iter_torch_batches`` over ``n`` full batches, shuffled by the seed it is given; records
    which thread started each epoch and can be slow to start, like a Ray Data shard."""

    def __init__(self, n: int, delay: float = 0.0):
        self.n, self.delay, self.calls = n, delay, []

    def iter_torch_batches(self, *, batch_size, drop_last, local_shuffle_buffer_size, local_shuffle_seed,
                           device="auto"):
        assert device == "cpu"  # the loop masks on the CPU and moves the batch itself (test_gpu_paths)
        self.calls.append((local_shuffle_seed, threading.current_thread().name))
        time.sleep(self.delay)
        order = sorted(range(self.n), key=lambda i: (i * 7919 + local_shuffle_seed) % 101)
        yield from ({"seed": local_shuffle_seed, "i": i, "n_tokens": [8] * batch_size} for i in order)


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
    with pytest.raises(RuntimeError, match="worker 0 got no training sequence"):
        next(_batches(empty, cfg, _state(), 0, 0, FirstBatch(lambda name: empty, cfg, 0, 0)))


def _ids_per_epoch(shard, cfg, rank: int, epochs: int, epoch_rows: list) -> list[list[int]]:
    """The row ids of each of the first ``epochs`` epochs of ``_batches`` over ``shard``."""
    state = _state()
    seen: list[list[int]] = [[] for _ in range(epochs)]
    for b in _batches(shard, cfg, state, 5, rank, epoch_rows=epoch_rows):
        if state["epoch"] == epochs:
            break
        seen[state["epoch"]] += b["id"].tolist()
    return seen


def test_every_sequence_is_trained_every_epoch(ray_session):
    """10 sequences, batches of 4: the shard was read with drop_last=True, so 2 sequences of every
    epoch (on the quickstart job 5 of 85 per epoch) were never trained in that epoch, silently."""
    import ray.data

    ds = ray.data.from_items([{"id": i, "n_tokens": 8} for i in range(10)], override_num_blocks=3)
    rows: list[int] = []
    seen = _ids_per_epoch(ds.iterator(), PretrainConfig(batch_size=4), 0, 3, rows)
    assert [sorted(ids) for ids in seen] == [list(range(10))] * 3  # each once, every epoch
    assert rows == [10, 10, 10]  # finished epochs, as metrics.json reports them


def test_two_workers_train_every_sequence_every_epoch(ray_session):
    """9 sequences, 2 workers: Ray Train's split (``streaming_split(equal=True)``) truncates the
    stream to a multiple of the worker count; padded first, every sequence is in every epoch and
    both workers take the same number of batches (else one waits for the other in the all-reduce)."""
    import ray.data

    ds = ray.data.from_items([{"id": i, "n_tokens": 8} for i in range(9)], override_num_blocks=3)
    padded, added = pad_for_workers(ds, 2)
    ids = [r["id"] for r in padded.take_all()]
    assert added == 1 and sorted(ids) == [0, *range(9)]  # the first row once more
    assert [i for at, i in enumerate(ids) if i not in ids[:at]] == list(range(9))  # order kept
    assert [r["id"] for r in pad_for_workers(ds, 2)[0].take_all()] == ids  # the same every run
    assert pad_for_workers(padded, 2)[1] == 0 and pad_for_workers(ds.limit(1), 4)[1] == 3
    cfg = PretrainConfig(batch_size=4)
    out: dict[int, list] = {}
    rows: dict[int, list] = {0: [], 1: []}

    def consume(split, rank: int) -> None:
        out[rank] = _ids_per_epoch(split, cfg, rank, 2, rows[rank])

    threads = [threading.Thread(target=consume, args=(split, rank), daemon=True)
               for rank, split in enumerate(padded.streaming_split(2, equal=True))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and set(out) == {0, 1}
    for epoch in range(2):
        assert sorted(out[0][epoch] + out[1][epoch]) == [0, *range(9)]
    assert rows[0] == rows[1] == [5, 5]  # equal shards: the same batches per epoch on both ranks


def test_phases_split_the_time_outside_the_loop():
    marks = {"loop_entered": 15.0, "engine_ready": 21.0, "first_step_done": 21.5, "loop_done": 321.5}
    assert phases(0.0, 4.0, marks, 324.0) == {"prepare_s": 4.0, "workers_s": 11.0, "setup_s": 6.0,
                                              "first_step_s": 0.5, "finish_s": 2.5}
    # a run that did not train (its final checkpoint reused): no worker marks
    assert phases(0.0, 4.0, {}, 9.0) == {"prepare_s": 4.0, "fit_s": 5.0}
