"""Quiet ends for trial processes that Ray Tune stops on purpose.

When Tune ends a trial actor (ASHA stopped it, or the search is over), it removes the actor's
placement group as soon as the trial's ``stop`` returns, and the raylet answers the removal with
SIGTERM to the worker process (then SIGKILL 200 ms later; Ray issues #13487 and #19937). Ray's
worker handler for SIGTERM raises ``SystemExit`` in the main thread, at whatever Python code runs
there: most often Ray's task loop, which ends the worker quietly. But the worker was often running
a weakref callback (a ``WeakSet`` entry removed by the garbage collector, or by the interpreter's
own shutdown when the actor's end had begun a millisecond earlier), where Python cannot raise: it
printed ``Exception ignored in: <function WeakSet.__init__.<locals>._remove ...>``, Ray's handler
and ``SystemExit: 1`` to the console, prefixed ``(trial_fn pid=...)``, as though a trial had
crashed. Nothing went wrong: the exception was dropped either way, and the raylet's SIGKILL ends
the process. Only that report is left out; every other unraisable exception (and every error of a
trial, which Tune reports on its own path) is printed as before.
"""

from __future__ import annotations

import sys
from typing import Any

#: Marks the hook this module installed (installing it twice in one process wraps nothing twice).
_MARK = "_lrl_quiet_ray_sigterm"


def _hook(previous: Any):
    """An ``unraisablehook`` that drops Ray's SIGTERM ``SystemExit`` and passes the rest to
    ``previous``. Everything it reads is bound here, not looked up in this module: the hook also
    runs during the interpreter's shutdown, after module globals were cleared."""

    def quiet_ray_sigterm(unraisable: Any, _previous: Any = previous, _exit: type = SystemExit) -> None:
        exc = unraisable.exc_value
        # Ray's handler raises it through raise_sys_exit_with_custom_error_message, which sets
        # ray_terminate_msg ("The process receives a SIGTERM.").
        if isinstance(exc, _exit) and "SIGTERM" in str(getattr(exc, "ray_terminate_msg", "")):
            return
        _previous(unraisable)

    setattr(quiet_ray_sigterm, _MARK, True)
    return quiet_ray_sigterm


def quiet_stopped_trial_exit() -> None:
    """Leave Ray's SIGTERM ``SystemExit`` that a weakref callback swallowed out of this process's
    output (``sys.unraisablehook``, process-wide: it may be called from a trial's thread).
    Called in each trial, in its Ray worker process; never in the driver."""
    if not getattr(sys.unraisablehook, _MARK, False):
        sys.unraisablehook = _hook(sys.unraisablehook)


__all__ = ["quiet_stopped_trial_exit"]
