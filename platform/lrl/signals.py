"""SIGTERM for the ``lrl`` command: stop like Ctrl-C, so that stages remove their temporary folders.

By default SIGTERM (``kill``, ``ray job stop``, Kubernetes) ends Python at once, and after
``ray.init`` Ray's own handler calls ``sys.exit(15)``; either way a stop could leave a hidden
``.<stage>-<hash>.tmp-*`` folder behind. The CLI installs ``handle_sigterm``; ``lrl.runtime.init_ray``
puts it back after ``ray.init``. A separate module so that the library does not import the CLI.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

#: Exit status after SIGTERM: 128 + 15, what a shell reports for a process the signal killed.
SIGTERM_EXIT = 128 + signal.SIGTERM
#: What a shell shows for a command stopped by Ctrl-C.
SIGINT_EXIT = 128 + signal.SIGINT


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process gets SIGTERM (``kill``, ``ray job stop``,
    Kubernetes). By default SIGTERM ends Python at once, so the ``except BaseException:
    out.abort()`` paths never ran and every stop left a hidden ``.<stage>-<hash>.tmp-*`` folder
    behind; as a ``KeyboardInterrupt`` it unwinds exactly like Ctrl-C, whose cleanup is known."""


#: Set by the handler: Ray's ``ray.get`` re-raises the interrupt as a plain ``KeyboardInterrupt``.
_sigterm_received = False


def _raise_terminated(signum: int, frame: object) -> None:
    global _sigterm_received
    # One exception only: a second SIGTERM while the first unwinds must not cut the cleanup
    # short (whoever sent it escalates to SIGKILL if it takes too long, as Kubernetes does).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _sigterm_received = True
    raise Terminated(f"received signal {signum}")


#: Delay before a swallowed ``Terminated`` is delivered again: long enough for the code that
#: swallowed it (a finaliser, a C extension's module init) to return first.
REDELIVER_S = 0.05


def _redeliver_swallowed(unraisable: object) -> None:
    """``sys.unraisablehook``: a ``Terminated`` raised where Python cannot propagate it (a
    ``__del__``, a weakref callback, a C extension importing itself) is only printed as
    "Exception ignored", and the job ran on to finish as if never stopped (CI saw exit 0 after
    SIGTERM). Send the signal again, from a timer thread so that it lands after that code
    returned; other unraisable exceptions go to the previous hook."""
    if isinstance(getattr(unraisable, "exc_value", None), Terminated):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _raise_terminated)
            timer = threading.Timer(REDELIVER_S, os.kill, (os.getpid(), signal.SIGTERM))
            timer.daemon = True
            timer.start()
        return
    _previous_unraisablehook(unraisable)


_previous_unraisablehook = sys.unraisablehook


def handle_sigterm() -> None:
    """Make SIGTERM raise ``Terminated`` in the main thread (a no-op in any other thread, where
    Python cannot install handlers). ``lrl.runtime.init_ray`` puts it back after ``ray.init``,
    which replaces it with its own ``sys.exit(15)``."""
    global _previous_unraisablehook
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)
        if sys.unraisablehook is not _redeliver_swallowed:
            _previous_unraisablehook = sys.unraisablehook
            sys.unraisablehook = _redeliver_swallowed


def sigterm_is_handled() -> bool:
    """True when ``handle_sigterm`` is in force (the ``lrl`` command, not a library caller)."""
    return signal.getsignal(signal.SIGTERM) is _raise_terminated


def reset_sigterm() -> None:
    """Forget an earlier SIGTERM (a caller that runs ``lrl.cli.main`` more than once in a process)."""
    global _sigterm_received
    _sigterm_received = False


def sigterm_received() -> bool:
    """True once SIGTERM arrived (``ray.get`` re-raises it as a plain ``KeyboardInterrupt``)."""
    return _sigterm_received


def terminated_by_ray(exc: SystemExit) -> Terminated:
    """``ray.init`` installs Ray's SIGTERM handler (``sys.exit(15)``) before ``init_ray`` puts the
    lrl command's back: a SIGTERM in between arrives as ``SystemExit(15)``. Record it as a
    SIGTERM and return the ``Terminated`` to raise instead, so the stop ends like any other (exit
    143, the message, the cleanup)."""
    global _sigterm_received
    _sigterm_received = True
    return Terminated(f"received signal {exc.code} while Ray started")


def raise_if_terminated() -> None:
    """Raise ``Terminated`` when SIGTERM arrived but its exception was lost (caught by a library's
    bare ``except:``, or swallowed before its redelivery landed). Called before a stage commits,
    so that a stopped job never leaves output that looks finished."""
    if _sigterm_received:
        raise Terminated("received signal 15 earlier (its exception did not stop the job)")


__all__ = ["SIGTERM_EXIT", "SIGINT_EXIT", "Terminated", "handle_sigterm", "sigterm_is_handled", "sigterm_received",
           "raise_if_terminated", "reset_sigterm", "terminated_by_ray"]
