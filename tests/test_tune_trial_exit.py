"""What a trial process prints when Ray Tune ends it on purpose (ASHA's early stop, the search's end)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from lrl.job import load_job


def test_a_stopped_trial_prints_no_systemexit_traceback_and_real_errors_still_print(ray_session, tmp_path):
    """Tune removes a stopped trial's placement group, and the raylet sends its worker SIGTERM.
    Ray's handler raises SystemExit at whatever runs in the worker's main thread; inside a weakref
    callback (a WeakSet's ``_remove``, often during the worker's own exit) Python cannot raise it
    and printed "Exception ignored in: <function WeakSet...>" ... "SystemExit: 1", prefixed
    "(trial_fn pid=...)", on the console of ``lrl run`` / ``lrl tune`` as though a trial had
    crashed. The stand-in trial calls Ray's own SIGTERM handler of its worker from a weakref
    callback (the signal landing there, made deterministic) and records what the worker prints;
    an error of another kind in a callback must still print."""
    from lrl.tune.search import search_language

    record = tmp_path / "printed.json"

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        # defined here: trial workers get it by value (a test module's function is not importable there)
        import io
        import signal
        import sys
        import weakref

        ray_sigterm = signal.getsignal(signal.SIGTERM)  # installed by Ray in its worker's main thread

        def printed_by_callback(callback) -> str:
            class Item:
                pass

            item = Item()
            watch = weakref.WeakSet([item])  # noqa: F841 (kept alive: its callback must run)
            ref = weakref.ref(item, callback)  # noqa: F841
            saved, sys.stderr = sys.stderr, io.StringIO()
            try:
                del item  # runs the callbacks; what they raise goes to sys.unraisablehook
                return sys.stderr.getvalue()
            finally:
                sys.stderr = saved

        def real_error(_ref):
            raise RuntimeError("a real error in a callback")

        def plain_exit(_ref):
            sys.exit(3)

        record.write_text(json.dumps({
            "handler": getattr(ray_sigterm, "__qualname__", repr(ray_sigterm)),
            "sigterm": printed_by_callback(lambda _ref: ray_sigterm(signal.SIGTERM, None)),
            "error": printed_by_callback(real_error),
            "exit": printed_by_callback(plain_exit),
        }))
        if report:
            report({"step": 1, "dev_f1": 0.5})
        return SimpleNamespace(dev_f1=0.5, per_type={}, per_lang={}, history=[], model_dir=None)

    job = load_job(None, [f"output.root={tmp_path / 'runs'}", "tune.languages=[ug]", "tune.search=grid",
                          "tune.space.lr_grid_points=1", "tune.space.warmup_ratio=[0.0]",
                          "tune.space.batch_size=[8]"])
    import pyarrow as pa

    empty = pa.table({"x": [1]})
    res = search_language("ug", empty, empty, job.tune, job.finetune, "unused", 0, train_fn=stand_in)
    assert res.best["dev_f1"] == 0.5
    printed = json.loads(record.read_text())
    assert "sigterm_handler" in printed["handler"], printed  # the stand-in did call Ray's handler
    assert printed["sigterm"] == "", printed["sigterm"]
    assert "Exception ignored" in printed["error"] and "RuntimeError: a real error in a callback" in printed["error"]
    assert "SystemExit: 3" in printed["exit"]  # only Ray's SIGTERM exit is left out, not every SystemExit


def test_the_quiet_hook_is_installed_once_and_needs_no_module_globals(monkeypatch):
    """The hook also runs during a worker's interpreter shutdown, when module globals are cleared:
    it must work on what it bound (and installing it again must not wrap it twice)."""
    import sys

    import lrl.tune.trial_exit as trial_exit

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    trial_exit.quiet_stopped_trial_exit()
    hook = sys.unraisablehook
    trial_exit.quiet_stopped_trial_exit()
    assert sys.unraisablehook is hook
    ray_exit = SystemExit(1)
    ray_exit.ray_terminate_msg = "The process receives a SIGTERM."
    other = ValueError("other")
    monkeypatch.setattr(trial_exit, "_hook", None)
    monkeypatch.setattr(trial_exit, "_MARK", None)
    for exc in (ray_exit, other):
        hook(SimpleNamespace(exc_type=type(exc), exc_value=exc, exc_traceback=None, err_msg=None, object=None))
    assert [u.exc_value for u in seen] == [other]
