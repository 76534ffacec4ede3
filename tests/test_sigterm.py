"""SIGTERM (``kill``, ``ray job stop``, Kubernetes) stops ``lrl`` like Ctrl-C: the stage's cleanup
runs, no temporary folder is left behind, and the command exits with status 143.

Without the CLI's handler Python died at once before ``ray.init`` (leaving the hidden
``.generate-*.tmp-*`` folder), and after it Ray's own handler exited with status 15."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lrl.signals import SIGTERM_EXIT


def _slice(data_root: Path, tmp_path: Path, lang: str, n: int) -> str:
    blocks = (data_root / "wikiann" / lang / "train").read_text(encoding="utf-8").split("\n\n")[:n]
    out = tmp_path / "in" / f"{lang}.conll"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return str(out)


def _terminate_generate(data_root: Path, tmp_path: Path, ready: str) -> tuple[int, str, Path]:
    """Start ``lrl generate`` on a job that takes long, SIGTERM it once ``ready`` (a glob under the
    output root) matches; returns its exit status, its stderr and the output root."""
    ug = _slice(data_root, tmp_path, "ug", 200)
    runs = tmp_path / "runs"
    args = [f"data.ner=[{{path: {ug}, lang: ug}}]", "oversample.enabled=true", "oversample.target_per_lang=400000",
            "augment.ops=[swap]", "augment.neighbours.enabled=false", f"output.root={runs}", "ray.num_cpus=1"]
    env = {**os.environ, "RAY_ADDRESS": ""}  # its own embedded Ray, not a session's
    job = tmp_path / "job.yaml"
    job.write_text("name: terminated\n", encoding="utf-8")
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as ferr:
        proc = subprocess.Popen([sys.executable, "-m", "lrl.cli", "generate", str(job), *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=ferr, start_new_session=True)
        try:
            deadline = time.time() + 150
            while time.time() < deadline and not list(runs.glob(ready)):
                assert proc.poll() is None, "lrl generate ended before it could be stopped:\n" + err.read_text()
                time.sleep(0.02)
            assert list(runs.glob(ready)), f"{ready} did not appear in time"
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


def test_sigterm_before_ray_starts_removes_the_temporary_folder(data_root, tmp_path):
    """SIGTERM as soon as the stage made its temporary folder (it writes the reader's rejects
    there before Ray starts)."""
    code, err, runs = _terminate_generate(data_root, tmp_path, ".generate-*.tmp-*")
    assert code == SIGTERM_EXIT, err
    assert "stopped by SIGTERM" in err
    _assert_clean(runs)


def test_sigterm_while_ray_writes_removes_the_temporary_folder(data_root, tmp_path):
    """SIGTERM while Ray tasks write the output: Ray's own driver handler (``sys.exit(15)``) must
    not replace the CLI's."""
    code, err, runs = _terminate_generate(data_root, tmp_path, ".generate-*.tmp-*/data/*/*.parquet")
    assert code == SIGTERM_EXIT, err
    assert "stopped by SIGTERM" in err
    _assert_clean(runs)
