"""SIGTERM for the ``lrl`` command: stop like Ctrl-C, so that stages remove their temporary folders.
And one stop at a time: a second Ctrl-C (or a SIGTERM) while the first one winds down is ignored.

By default SIGTERM (``kill``, ``ray job stop``, Kubernetes) ends Python at once, and after
``ray.init`` Ray's own handler calls ``sys.exit(15)``; either way a stop could leave a hidden
``.<stage>-<hash>.tmp-*`` folder behind. The CLI installs ``handle_sigterm``; ``lrl.runtime.init_ray``
puts it back after ``ray.init``. A separate module so that the library does not import the CLI.
"""

from __future__ import annotations

import atexit
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
    begin_stop()
    raise Terminated(f"received signal {signum}")


_said_stopping = False
#: Set once a stop began under the lrl command's handlers (``begin_stop``).
_stop_began = False
#: ``id`` of the ``KeyboardInterrupt`` that ``_interrupt_once`` raised (to tell it when it is
#: swallowed); not the exception itself, which would keep every frame of the stop alive.
_interrupt: int | None = None


def _interrupt_once(signum: int, frame: object) -> None:
    """Ctrl-C: ``KeyboardInterrupt`` as Python's own handler raises it, the first time only."""
    global _interrupt
    begin_stop()
    exc = KeyboardInterrupt()
    _interrupt = id(exc)
    raise exc


def _already_stopping(signum: int, frame: object) -> None:
    """A Ctrl-C while a stop winds down. Raised, it cut the cleanup short: a second Ctrl-C 0.1 s
    after the first landed in Ray's exit-time ``shutdown``, which printed a 15-line traceback,
    left Ray's agents running and ended the command with a segmentation fault."""
    global _said_stopping
    if not _said_stopping:
        _said_stopping = True
        print(f"lrl: already stopping, finishing its cleanup (kill -9 {os.getpid()} ends it at once)",
              file=sys.stderr, flush=True)


def begin_stop() -> None:
    """A stop began to unwind: further Ctrl-C and SIGTERM wait for its cleanup instead of raising
    in the middle of it. Called by the handlers, and by ``lrl run`` when a stage stopped through
    another handler (Ray Train's, during pretraining). Only while the lrl command's handlers are
    in force (``lrl.cli.main`` puts the SIGTERM one back when it returns): a library caller, or a
    test that ran ``main`` before, keeps its own, and an ignored Ctrl-C stays ignored."""
    global _stop_began
    if threading.current_thread() is not threading.main_thread():
        return
    term = signal.getsignal(signal.SIGTERM)
    command = term in (_raise_terminated, _already_stopping) or (term == signal.SIG_IGN and _sigterm_received)
    if not command or signal.getsignal(signal.SIGINT) not in (_interrupt_once, _already_stopping):
        return
    _stop_began = True
    signal.signal(signal.SIGINT, _already_stopping)
    if signal.getsignal(signal.SIGTERM) is _raise_terminated:
        signal.signal(signal.SIGTERM, _already_stopping)


#: Delay before a swallowed ``Terminated`` is delivered again: long enough for the code that
#: swallowed it (a finaliser, a C extension's module init) to return first.
REDELIVER_S = 0.05


def _redeliver_swallowed(unraisable: object) -> None:
    """``sys.unraisablehook``: a ``Terminated`` raised where Python cannot propagate it (a
    ``__del__``, a weakref callback, a C extension importing itself) is only printed as
    "Exception ignored", and the job ran on to finish as if never stopped (CI saw exit 0 after
    SIGTERM). Send the signal again, from a timer thread so that it lands after that code
    returned; other unraisable exceptions go to the previous hook."""
    exc = getattr(unraisable, "exc_value", None)
    if isinstance(exc, Terminated):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _raise_terminated)
            _send_again(signal.SIGTERM)
        return
    if isinstance(exc, KeyboardInterrupt) and id(exc) == _interrupt and threading.current_thread() is threading.main_thread():
        _reset_stop()  # the Ctrl-C was swallowed: nothing winds down, so it must land again
        signal.signal(signal.SIGINT, _interrupt_once)
        _send_again(signal.SIGINT)
        return
    _previous_unraisablehook(unraisable)


def _still_stopping_at_exit() -> None:
    """At exit after a stop, before Ray's exit-time ``shutdown`` (registered after it, so run
    first): ``lrl.cli.main`` has put the SIGTERM handler it found back (the default: die at once),
    and a SIGTERM 0.3 s after a Ctrl-C then ended the command mid-shutdown (status -15) with
    Ray's dashboard and runtime-env agents left running."""
    if _stop_began and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) != signal.SIG_IGN:
                signal.signal(sig, _already_stopping)


def _send_again(sig: int) -> None:
    timer = threading.Timer(REDELIVER_S, os.kill, (os.getpid(), sig))
    timer.daemon = True
    timer.start()


_previous_unraisablehook = sys.unraisablehook


def handle_sigterm() -> None:
    """Make SIGTERM raise ``Terminated`` in the main thread (a no-op in any other thread, where
    Python cannot install handlers), and Ctrl-C raise ``KeyboardInterrupt`` once (``begin_stop``).
    ``lrl.runtime.init_ray`` puts it back after ``ray.init``, which replaces the SIGTERM handler
    with its own ``sys.exit(15)``."""
    global _previous_unraisablehook
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not ignored, nor another's
            signal.signal(signal.SIGINT, _interrupt_once)
        atexit.unregister(_still_stopping_at_exit)  # registered again: after Ray's, so it runs first
        atexit.register(_still_stopping_at_exit)
        if sys.unraisablehook is not _redeliver_swallowed:
            _previous_unraisablehook = sys.unraisablehook
            sys.unraisablehook = _redeliver_swallowed


def sigterm_is_handled() -> bool:
    """True when ``handle_sigterm`` is in force (the ``lrl`` command, not a library caller)."""
    return signal.getsignal(signal.SIGTERM) is _raise_terminated


def reset_sigterm() -> None:
    """Forget an earlier SIGTERM or stop (a caller that runs ``lrl.cli.main`` more than once in a
    process)."""
    global _sigterm_received
    _sigterm_received = False
    _reset_stop()


def _reset_stop() -> None:
    global _said_stopping, _interrupt, _stop_began
    _said_stopping = _stop_began = False
    _interrupt = None
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is _already_stopping:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
           "raise_if_terminated", "reset_sigterm", "terminated_by_ray", "begin_stop"]
