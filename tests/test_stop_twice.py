"""A second Ctrl-C (or a SIGTERM) while a stopped ``lrl`` command winds down: it waits for the
first stop's cleanup instead of cutting it short.

A user's second Ctrl-C 0.1 s after the first landed in Ray's exit-time ``shutdown``: a 15-line
"Exception ignored in atexit callback" traceback, Ray's agents left running, and the command
ended by a segmentation fault (exit -11) instead of 130."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

# Ray's exit-time shutdown in miniature (an atexit function that takes a while), and a stop that
# reaches the command either through lrl's own Ctrl-C handler or, as in pretraining, through
# another handler (Ray Train's) whose stop ``lrl run`` reports.
_STOPPED = """
import atexit, signal, sys, time
from lrl.signals import handle_sigterm
handle_sigterm()  # lrl.cli.main

def shutdown():
    print("shutting down", flush=True)
    time.sleep(1.0)
    print("cleanup done", flush=True)

atexit.register(shutdown)  # Ray's, when it is imported
handle_sigterm()  # lrl.runtime.init_ray, after ray.init

def stage(ctx):
    if sys.argv[1] == "other-handler":  # Ray Train's: it takes the Ctrl-C, the stage then stops
        signal.signal(signal.SIGINT, lambda *a: None)
        print("ready", flush=True)
        time.sleep(2)
        raise KeyboardInterrupt
    print("ready", flush=True)
    time.sleep(30)

from lrl.job import load_job
from lrl.pipeline.runner import run_pipeline
cfg = load_job(None, [f"output.root={sys.argv[2]}", "pipeline.stages=[generate]"])
try:
    run_pipeline(cfg, registry={"generate": stage}, log=lambda line: None)
except KeyboardInterrupt:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # lrl.cli.main puts back the handler it found
    print("stopped", flush=True)
"""


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("via", ["lrl-handler", "other-handler"])
def test_a_second_ctrl_c_does_not_cut_the_first_stops_cleanup_short(tmp_path, via, second):
    """And a SIGTERM after the Ctrl-C (a supervisor's): by default it ended the command
    mid-shutdown (status -15), with Ray's agents left running."""
    proc = subprocess.Popen([sys.executable, "-c", _STOPPED, via, str(tmp_path / "runs")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline().strip() == "stopped"
        assert proc.stdout.readline().strip() == "shutting down"
        proc.send_signal(second)  # while the exit-time cleanup runs
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.strip() == "cleanup done", err
    assert "Traceback" not in err
    assert "already stopping" in err
