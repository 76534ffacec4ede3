"""What a pretraining run prints while it trains: one short line per report, from rank 0.

Why: Ray Train logs each ``ray.train.report`` as one line holding the whole metrics dict
("Reporting training result 17: TrainingReport(checkpoint=..., metrics={'step': 340, 'epoch':
0, 'lr': ..., 'tokens_per_s': 23659.238413009592, ...})"), some 700 characters, every
``pretrain.report_every`` steps (1,000 lines for jobs/wikiann_ug.yaml's 20,000 steps), and lrl
printed nothing of its own. Now each worker quiets that line (the metrics go to metrics.json and
Ray's result as before) and rank 0 prints the figures a user follows:

    pretrain: step 340/20000  loss 6.412  aux 1.077  ppl ug 812.4  |  23.7k tokens/s  MFU 27.3%

at most every ``every_s`` seconds, and always after an evaluation, at a checkpoint and at the end.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any


def quiet_report_log() -> None:
    """Raise Ray Train's per-report logger (it names itself by its file path) to WARNING in this
    worker; Ray's other lines (checkpoints, worker start) stay. Nothing happens where Ray moved it."""
    try:
        from ray.train.v2._internal.execution import context
    except ImportError:
        return
    logging.getLogger(context.__file__).setLevel(logging.WARNING)


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


__all__ = ["ProgressLine", "quiet_report_log"]
