"""Stopping a running ``lrl generate``: nothing that looks finished is ever left behind.

SIGTERM (``kill``, ``ray job stop``, Kubernetes) stops ``lrl`` like Ctrl-C: the stage's cleanup
runs, no temporary folder is left, and the command exits with status 143. Without the CLI's
handler Python died at once before ``ray.init`` (leaving the hidden ``.generate-*.tmp-*``
folder), and after it Ray's own handler exited with status 15. SIGKILL cannot be handled: only a
hidden temporary folder without a manifest may remain, the next run finishes beside it, and a
later stage run removes it (``tests/test_output.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lrl.signals import SIGTERM_EXIT


def _start_generate(wikiann_slice, tmp_path: Path, stderr) -> tuple[subprocess.Popen, list[str], Path]:
    """``lrl generate`` in its own process (and process group) on a job that takes a while: 200 ug
    sentences oversampled to 40k rows, on its own embedded Ray with one CPU, so its 4 blocks of 10k
    rows (``lrl.generate.stage.plan_blocks``) run one after another and the first block's files
    appear seconds before the job could end. (400k rows made blocks of 100k: ~30 s before the
    first file, of every test that waits for one.) Returns the process, the overrides and the
    output root."""
    ug = wikiann_slice("ug", 200)
    runs = tmp_path / "runs"
    args = [f"data.ner=[{{path: {ug}, lang: ug}}]", "oversample.enabled=true", "oversample.target_per_lang=40000",
            "augment.ops=[swap]", "augment.neighbours.enabled=false", f"output.root={runs}", "ray.num_cpus=1"]
    env = {**os.environ, "RAY_ADDRESS": ""}  # its own embedded Ray, not the test session's
    job = tmp_path / "job.yaml"
    job.write_text("name: stopped\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "lrl.cli", "generate", str(job), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    return proc, args, runs


def _wait_for(proc: subprocess.Popen, runs: Path, ready: str, err: Path | None = None) -> None:
    """Wait until ``ready`` (a glob under the output root) matches, while the process runs."""
    deadline = time.time() + 150
    while time.time() < deadline and not list(runs.glob(ready)):
        detail = err.read_text() if err is not None else ""
        assert proc.poll() is None, "lrl generate ended before it could be stopped:\n" + detail
        time.sleep(0.02)
    assert list(runs.glob(ready)), f"{ready} did not appear in time"


def _terminate_generate(wikiann_slice, tmp_path: Path, ready: str) -> tuple[int, str, Path]:
    """SIGTERM ``lrl generate`` once ``ready`` matches; returns its exit status, its stderr and
    the output root."""
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as ferr:
        proc, _, runs = _start_generate(wikiann_slice, tmp_path, ferr)
        try:
            _wait_for(proc, runs, ready, err)
            proc.send_signal(signal.SIGTERM)  # the lrl process only, as `kill PID` does
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            try:  # any Ray process it started and did not stop (it should have)
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return code, err.read_text(encoding="utf-8", errors="replace"), runs


def _assert_clean(runs: Path) -> None:
    assert sorted(p.name for p in runs.iterdir()) == [], "SIGTERM left output behind"


def test_sigterm_before_ray_starts_removes_the_temporary_folder(wikiann_slice, tmp_path):
    """SIGTERM as soon as the stage made its temporary folder (it writes the reader's rejects
    there before Ray starts)."""
    code, err, runs = _terminate_generate(wikiann_slice, tmp_path, ".generate-*.tmp-*")
    assert code == SIGTERM_EXIT, err
    assert "stopped by SIGTERM" in err
    _assert_clean(runs)


def test_sigterm_while_ray_writes_removes_the_temporary_folder(wikiann_slice, tmp_path):
    """SIGTERM while Ray tasks write the output: Ray's own driver handler (``sys.exit(15)``) must
    not replace the CLI's."""
    code, err, runs = _terminate_generate(wikiann_slice, tmp_path, ".generate-*.tmp-*/data/*/*.parquet")
    assert code == SIGTERM_EXIT, err
    assert "stopped by SIGTERM" in err
    _assert_clean(runs)


@pytest.mark.slow
def test_killed_job_leaves_nothing_that_looks_finished(ray_session, wikiann_slice, tmp_path):
    """SIGKILL ``lrl generate`` while it writes: only a hidden temporary folder remains, no
    manifest; the next run finishes normally beside it."""
    from lrl.generate.stage import run_generate
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    proc, args, runs = _start_generate(wikiann_slice, tmp_path, subprocess.DEVNULL)
    try:
        _wait_for(proc, runs, ".generate-*/data/*/*.parquet")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the job and the Ray processes it started
        proc.wait()
    assert [p.name for p in runs.iterdir() if not p.name.startswith(".")] == []
    assert not list(runs.rglob("manifest.json"))
    small = load_job(None, [a.replace("40000", "300") for a in args])
    path = run_generate(StageContext(small), quiet=True)
    assert (Path(path) / "manifest.json").is_file()
    assert [p.name for p in runs.iterdir() if not p.name.startswith(".")] == [Path(path).name]


_SWALLOWED = """
import os, signal, sys, time
from lrl.signals import Terminated, handle_sigterm
handle_sigterm()

class Finalised:
    def __del__(self):  # Python cannot raise out of a finaliser: the exception is "ignored"
        os.kill(os.getpid(), signal.{sig})
        for _ in range(100000):
            pass

obj = Finalised()
del obj
try:
    time.sleep(5)
except {exc}:
    print("stopped")
    sys.exit(0)
print("ran on")
"""


@pytest.mark.parametrize("sig, exc", [("SIGTERM", "Terminated"), ("SIGINT", "KeyboardInterrupt")])
def test_a_stop_swallowed_by_a_finaliser_is_delivered_again(sig, exc):
    """CI once saw ``lrl generate`` finish with exit 0 after SIGTERM: the handler's exception was
    raised inside code that cannot propagate it ("Exception ignored in ..."). The signal is sent
    again once that code returned. The same for a Ctrl-C: with later ones ignored while a stop
    winds down, the job would not even be stopped by pressing Ctrl-C again."""
    code = _SWALLOWED.format(sig=sig, exc=exc)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped", done.stdout + done.stderr


def test_a_stage_does_not_commit_after_a_lost_sigterm(tmp_path, monkeypatch):
    """Whatever swallowed the exception (a library's bare ``except:``), a stage that got SIGTERM
    removes its temporary folder instead of committing."""
    import lrl.signals as signals
    from lrl.data.output import StageOutput
    from lrl.signals import Terminated

    out = StageOutput(str(tmp_path), "generate", {"a": 1})
    (Path(out.tmp) / "part.parquet").write_bytes(b"x")
    monkeypatch.setattr(signals, "_sigterm_received", True)
    with pytest.raises(Terminated):
        try:
            out.commit({})
        except BaseException:
            out.abort()
            raise
    assert list(tmp_path.iterdir()) == []


def test_sigterm_taken_by_rays_handler_during_ray_init_counts_as_sigterm(monkeypatch):
    """``ray.init`` installs Ray's handler (``sys.exit(15)``) before ``init_ray`` puts lrl's back:
    a SIGTERM in that window must still end as a SIGTERM (exit 143 and its message), not as
    exit status 15."""
    import ray

    import lrl.signals as signals
    from lrl.runtime import RayConfig, init_ray

    def init_stopped(**_):
        sys.exit(signal.SIGTERM)  # what Ray's handler does when the signal lands in ray.init

    previous = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init_stopped)
    try:
        signals.reset_sigterm()
        signals.handle_sigterm()
        with pytest.raises(signals.Terminated):
            init_ray(RayConfig(address="local"))
        assert signals.sigterm_received()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a library caller: Ray's exit stays as it is
        signals.reset_sigterm()
        with pytest.raises(SystemExit):
            init_ray(RayConfig(address="local"))
        assert not signals.sigterm_received()
    finally:
        signals.reset_sigterm()
        signal.signal(signal.SIGTERM, previous)
