"""Progress of machine translation in the generate stage: rows translated so far of the total, rows
per second and an ETA, printed by the driver every ``EVERY_S`` seconds, and once when it is done.

Why a counter actor and not the driver's loop over the writer's results (``stage._generate``):
the driver sees a block only when translation, every later step and the writer are done with all
of it, and a block is a 1/(4 x CPUs) share of the input (``stage.BLOCKS_PER_CPU``): on 2 CPUs an
eighth of 200k sentences, hours of a real model, before the first count. Ray Data's own progress
bars count the same finished blocks. So each translating worker adds every batch it translated
(``batch_size x 4`` rows, ``ops.hop``) to a small actor that holds no CPU, and a driver thread reads
the counts on its own clock: the driver's loop blocks until the next block is written.

A task that Ray retries counts its rows again: the counts are progress, not the manifest's (those
are read from the written files), and a line never says more than the total or a negative ETA.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pyarrow as pa

#: Seconds between two progress lines: often enough to see a run of hours move, rare enough that
#: a log of the whole run stays readable (a line per batch would be thousands).
EVERY_S = 30.0


class _Counts:
    """The actor: rows translated per step, added by the workers, read by the driver."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}

    def add(self, key: str, rows: int) -> None:
        self.rows[key] = self.rows.get(key, 0) + rows

    def get(self) -> dict[str, int]:
        return dict(self.rows)


class Tally:
    """What a translating worker holds for one step: ``add(rows)`` after each translated batch.
    It waits for the actor's answer, so a task that has returned has handed in all its rows."""

    def __init__(self, actor: Any, key: str) -> None:
        self.actor, self.key = actor, key

    def add(self, rows: int) -> None:
        if rows <= 0:
            return
        import ray
        from ray.exceptions import RayActorError

        try:
            ray.get(self.actor.add.remote(self.key, rows))
        except RayActorError:
            pass  # the driver stopped (Ctrl-C, a failed step) and removed the counter while this batch ran


def duration(seconds: float) -> str:
    """``45s``, ``12m05s``, ``3h07m``."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def progress_line(what: str, totals: dict[str, int], done: dict[str, int], elapsed: float,
                  final: bool = False) -> str:
    """One line: per step its rows translated of its total (and the share while running), then the
    rate over the time since the stage started translating, and the ETA at that rate."""
    got = {k: min(done.get(k, 0), n) for k, n in totals.items()}
    all_done, total = sum(got.values()), sum(totals.values())
    steps = ", ".join(f"{k} {got[k]:,}/{n:,} rows" + ("" if final else f" ({100 * got[k] / max(n, 1):.0f}%)")
                      for k, n in totals.items())
    rate = all_done / elapsed if elapsed > 0 else 0.0
    if final:
        return f"generate: translated {what}: {steps} in {duration(elapsed)}, {rate:.1f} rows/s"
    if not all_done:
        return f"generate: translating {what}: {steps}, {duration(elapsed)} in, no batch done yet (models loading?)"
    return (f"generate: translating {what}: {steps}, {rate:.1f} rows/s, "
            f"ETA {duration((total - all_done) / rate)}")


class TranslationProgress(AbstractContextManager):
    """Create on the driver once Ray runs, hand ``tally(step)`` to the translating workers, then
    run the stage inside ``with``: a thread prints ``progress_line`` every ``EVERY_S`` seconds,
    the exit prints the final line (not after an error) and removes the actor."""

    def __init__(self, what: str, totals: dict[str, int]) -> None:
        import ray

        self.what, self.totals = what, totals
        self._actor = ray.remote(num_cpus=0)(_Counts).remote()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = time.monotonic()

    def tally(self, key: str) -> Tally:
        return Tally(self._actor, key)

    def line(self, final: bool = False) -> str:
        import ray

        return progress_line(self.what, self.totals, ray.get(self._actor.get.remote()),
                             time.monotonic() - self._start, final)

    def _run(self) -> None:
        from ray.exceptions import RayError

        while not self._stop.wait(EVERY_S):  # read at each wait: tests shorten it
            try:
                print(self.line(), flush=True)
            except RayError:  # Ray is going down with the stage: its own error says why
                return

    def __enter__(self) -> TranslationProgress:
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="lrl-translate-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        import ray

        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            if exc_type is None:
                print(self.line(final=True), flush=True)
        finally:
            ray.kill(self._actor)


def translation_progress(steps: Sequence[Any], table: pa.Table, what: str) -> AbstractContextManager:
    """The progress of the steps that translate (those with ``progress_total``) over the input
    ``table``, their ``tally`` set; a context that does nothing when none has a row to translate.
    Call before the steps' ``apply`` (the workers get the tally with their arguments)."""
    counted = [s for s in steps if callable(getattr(s, "progress_total", None))]
    totals = {s.name: s.progress_total(table) for s in counted}
    if not any(totals.values()):
        return nullcontext()
    progress = TranslationProgress(what, totals)
    for s in counted:
        s.tally = progress.tally(s.name)
    return progress


__all__ = ["EVERY_S", "Tally", "TranslationProgress", "duration", "progress_line", "translation_progress"]
