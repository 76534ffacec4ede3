"""The pretraining loop's input: each worker's shard of the packed stream, epoch after epoch, in
micro batches, every sequence of the stream in every epoch.

Two things dropped sequences every epoch, silently. Ray Train splits the dataset between workers
with ``streaming_split(equal=True)``, which truncates the stream to a multiple of the worker count
(``pad_for_workers`` pads it instead), and the loop read each shard with ``drop_last=True``. On the
quickstart job (85 packed sequences, batch 16) that left out 5 sequences (6%) per epoch with one
worker and 21 (25%) with two; the local shuffle buffer (8 batches) mixes only nearby rows, so on
a larger stream the left-out rows came from the same tail of each shard every epoch. The last
batch of an epoch is now kept, partial if it must be. That is safe for the lock-step of the
workers: equal shards give every rank the same number of batches per epoch (ceil(rows / batch)),
so all ranks take the same steps and reach the split's epoch barrier together. A partial batch is
one micro batch like the others (its loss is the mean over its own masked tokens), the resume
logic counts batches the same way, auxiliary steps do not read the stream, and tokens/s counts
the tokens of the batches actually trained.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from lrl.train.pretrain_config import PretrainConfig


def pad_for_workers(ds, workers: int, rows: int | None = None):
    """``ds`` with its first rows added again up to a multiple of ``workers`` rows, and how many
    were added. Ray Train's ``streaming_split(equal=True)`` (equal shards, which keep the workers
    in lock-step) drops the rest of the rows instead, the same ones every epoch. A repeated row is
    trained twice per epoch, fewer than ``workers`` of them. ``rows``: ``ds.count()`` when the
    caller has it (on the Ray Data packing path each count runs the whole packing again)."""
    n = ds.count() if rows is None else rows
    missing = -n % workers if n else 0
    if not missing:
        return ds, 0
    parts, left = [], missing
    while left > 0:
        parts.append(ds.limit(min(left, n)))
        left -= min(left, n)
    padded = ds.union(*parts)
    # Ray 2.60's union emits the blocks of its inputs round-robin when asked to preserve order
    # (the added block lands after the first block, the same place in every run), else as they
    # arrive, which could change the shards, and so the weights, from one run to the next.
    padded.context.execution_options.preserve_order = True
    padded.context.enable_progress_bars = ds.context.enable_progress_bars
    return padded.materialize(), missing


def _epoch(shard, cfg: PretrainConfig, seed: int, epoch: int, rank: int):
    """One pass over this worker's shard in micro batches (locally shuffled, seeded per epoch),
    the last one partial when the shard is not a multiple of ``batch_size`` (see the module doc).

    On the CPU: the loop masks a batch there (with a CPU generator, so a GPU run and its resume
    draw the same masks) and then moves it to the engine's device. Ray Data's default device
    (``auto``) is the Ray Train worker's GPU, where masking mixed CUDA and CPU tensors: every GPU
    run would have failed at its first batch (never run on a GPU; simulated with a worker device
    of ``meta`` in tests/test_gpu_paths.py, where masking failed the same way)."""
    return shard.iter_torch_batches(batch_size=cfg.batch_size, drop_last=False, device="cpu",
                                    local_shuffle_buffer_size=cfg.batch_size * 8,
                                    local_shuffle_seed=seed + 7919 * epoch + rank)


class FirstBatch(threading.Thread):
    """Starts epoch 0 of a fresh attempt's shard and fetches its first batch while the model loads.

    The first batch starts the shard's Ray Data execution in other processes (the split
    coordinator's executor, Ray Data's stats actor). Fetched after model load, that took ~3 s of
    one core before the first step while the other core idled (docs/benchmarks.md, pretraining,
    session 9); in this thread it overlaps the worker's imports, model load and engine init."""

    def __init__(self, get_shard, cfg: PretrainConfig, seed: int, rank: int):
        super().__init__(name="lrl-first-batch", daemon=True)
        self.get_shard, self.cfg, self.seed, self.rank = get_shard, cfg, seed, rank
        self.batches = None
        self.first: list = []
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.batches = iter(_epoch(self.get_shard("train"), self.cfg, self.seed, 0, self.rank))
            self.first = [next(self.batches)]
        except StopIteration:
            pass  # an empty epoch: _batches raises its own error
        except BaseException as exc:  # re-raised in the training thread
            self.error = exc

    def epoch(self):
        """Epoch 0 as an iterator, starting with the fetched batch."""
        self.join()
        if self.error is not None:
            raise self.error
        return itertools.chain(self.first, self.batches or ())


def _batches(shard, cfg: PretrainConfig, state: dict[str, Any], seed: int, rank: int,
             started: FirstBatch | None = None, epoch_rows: list[int] | None = None):
    """Micro batches forever, epoch after epoch; skips the batches a resumed state consumed.
    ``started`` is epoch 0 already begun (a fresh attempt). The sequences of each finished epoch
    (skipped batches included) are appended to ``epoch_rows``: metrics.json reports them."""
    while True:
        skip = state["batch_in_epoch"]
        seen = rows = 0
        batches = started.epoch() if started is not None else _epoch(shard, cfg, seed, state["epoch"], rank)
        started = None
        for i, b in enumerate(batches):
            seen += 1
            rows += len(b["n_tokens"])
            if i < skip:
                continue
            state["batch_in_epoch"] = i + 1
            yield b
        if seen == 0:
            raise RuntimeError(f"worker {rank} got no training sequence: "
                               "use more text or fewer workers")
        if epoch_rows is not None:
            epoch_rows.append(rows)
        state["epoch"] += 1
        state["batch_in_epoch"] = 0


__all__ = ["pad_for_workers", "FirstBatch"]
