"""What a pretraining run prints while it trains: one short line per report, from rank 0.

Why: Ray Train logs each ``ray.train.report`` as one line holding the whole metrics dict
("Reporting training result 17: TrainingReport(checkpoint=..., metrics={'step': 340, 'epoch':
0, 'lr': ..., 'tokens_per_s': 23659.238413009592, ...})"), some 700 characters, every
``pretrain.report_every`` steps (1,000 lines for jobs/wikiann_ug.yaml's 20,000 steps), and lrl
printed nothing of its own. Now each worker quiets that line (the metrics go to metrics.json and
Ray's result as before) and rank 0 prints the figures a user follows:

    pretrain: step 340/20000  loss 6.412  aux 1.077  ppl ug 812.4  |  23.7k tokens/s  MFU 27.3%

at most every ``every_s`` seconds, and always after an evaluation, at a checkpoint and at the end.

The rest of the stage's console is quieted too (``quiet_data_console``, ``quiet_worker_console``,
``no_transformers_bars``): Ray Data's four INFO lines per epoch of the training data ("Starting
execution of Dataset train_...", its plan, "execution finished") and transformers' progress bars
("Loading weights", "Writing model shards") buried these lines on a run of many epochs. Ray
Data's lines still go to its log files; its warnings and errors, and transformers', still print.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Iterator
from typing import Any

import ray

try:  # an internal module of Ray Data (2.60): if it moves, the lines print as before, nothing fails
    from ray.data._internal.execution.execution_callback import ExecutionCallback
except ImportError:  # pragma: no cover
    ExecutionCallback = None  # type: ignore[assignment,misc]


def quiet_report_log() -> None:
    """Raise Ray Train's per-report logger (it names itself by its file path) to WARNING in this
    worker; Ray's other lines (checkpoints, worker start) stay. Nothing happens where Ray moved it."""
    try:
        from ray.train.v2._internal.execution import context
    except ImportError:
        return
    logging.getLogger(context.__file__).setLevel(logging.WARNING)


def quiet_worker_console() -> None:
    """A Ray Train worker's console: ``quiet_report_log``, and no transformers progress bars (the
    model's load and each checkpoint's save drew one; its warnings still print)."""
    from transformers.utils import logging as hf_logging

    quiet_report_log()
    hf_logging.disable_progress_bar()


@contextlib.contextmanager
def no_transformers_bars() -> Iterator[None]:
    """No transformers progress bars inside the block (the driver's other stages keep theirs)."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def _quiet_ray_data_console() -> None:
    """Raise the console handlers of Ray Data's logger to WARNING in this actor process; its file
    handlers (``ray-data.log`` and one file per execution, in the session's logs/ray-data) keep
    every record. The driver is left alone: its console is shared with the other stages (generate
    shows Ray Data's progress on purpose)."""
    if ray.get_runtime_context().get_actor_id() is None:
        return
    for handler in logging.getLogger("ray.data").handlers:
        # the console is a StreamHandler (Ray's PlainRayHandler); so is a FileHandler
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(max(handler.level, logging.WARNING))


class QuietDataConsole(ExecutionCallback or object):  # type: ignore[misc]
    """Ray Data instantiates its execution callbacks when it plans an execution, in the process
    that runs it: for the training data that is the split coordinator actor Ray Train starts, once
    per epoch, before the executor logs "Starting execution". Carried by the dataset's DataContext
    (a class, imported there by name: lrl is on every node the workers run on)."""

    def __init__(self) -> None:
        _quiet_ray_data_console()


def quiet_data_console(ds) -> None:
    """Keep the per-epoch INFO lines of ``ds``'s executions off the console of the actor that runs
    them (see ``QuietDataConsole``); ``ds``'s DataContext only, a new list: no other context gets it."""
    ctx = ds.context
    if ExecutionCallback is None:
        return
    if QuietDataConsole not in ctx.custom_execution_callback_classes:
        ctx.custom_execution_callback_classes = [*ctx.custom_execution_callback_classes, QuietDataConsole]


def _num(x: Any, fmt: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


class ProgressLine:
    """Prints ``line(metrics)`` on rank 0 (see the module doc)."""

    def __init__(self, steps: int, rank: int, every_s: float = 30.0) -> None:
        self.steps, self.rank, self.every_s = steps, rank, every_s
        self._last: float | None = None

    def line(self, m: dict[str, Any]) -> str:
        """The figures of one report: step, losses, held-out perplexity per language, speed."""
        parts = [f"pretrain: step {m.get('step')}/{self.steps}", f"loss {_num(m.get('loss'), '.3f')}"]
        if m.get("aux_loss") is not None:
            parts.append(f"aux {_num(m['aux_loss'], '.3f')}")
        ppl = {k[len("ppl_"):]: v for k, v in m.items() if k.startswith("ppl_")}
        if ppl:
            parts.append("ppl " + " ".join(f"{lang} {_num(v, '.1f')}" for lang, v in sorted(ppl.items())))
        speed = f"{_num((m.get('tokens_per_s') or 0) / 1000, '.1f')}k tokens/s"
        if m.get("mfu") is not None:
            speed += f"  MFU {_num(100 * m['mfu'], '.1f')}%"
        return "  ".join(parts) + "  |  " + speed

    def show(self, m: dict[str, Any], force: bool = False) -> bool:
        """Print the line when ``force``d or ``every_s`` after the last; returns whether it did."""
        if self.rank != 0:
            return False
        now = time.monotonic()
        if not force and self._last is not None and now - self._last < self.every_s:
            return False
        self._last = now
        # Not print(): Ray Train replaces it in its workers with one that logs the message and,
        # when the worker's stdout is wrapped (as Ray wraps it), prints it too: every line twice.
        sys.stdout.write(self.line(m) + "\n")
        sys.stdout.flush()
        return True


__all__ = ["ProgressLine", "quiet_report_log", "quiet_worker_console", "no_transformers_bars",
           "quiet_data_console", "QuietDataConsole"]
