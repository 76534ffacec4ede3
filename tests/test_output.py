"""Stage output folders: leftovers of killed runs, absolute paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lrl.data.output import OWNER, StageOutput

# A stage run killed outright (kill -9, the OOM killer): no cleanup code can run.
_KILLED = """
import os, signal, sys
from pathlib import Path
from lrl.data.output import OWNER, StageOutput
out = StageOutput(sys.argv[1], "generate", {"x": int(sys.argv[2])})
(Path(out.tmp) / "part-0.parquet").write_bytes(b"rows" * 1000)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_run(root: Path, x: int) -> Path:
    proc = subprocess.run([sys.executable, "-c", _KILLED, str(root), str(x)], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    (left,) = [p for p in root.iterdir() if p.name.startswith(f".generate-{StageOutput(str(root), 'generate', {'x': x}).hash}")]
    return left


def test_the_next_run_removes_the_leftovers_of_killed_runs(tmp_path, capsys):
    """A SIGKILLed stage left its hidden ``.<stage>-<hash>.tmp-*`` folder behind, and every later
    run finished beside it: the leftovers (GBs for real stages) piled up forever."""
    same = _killed_run(tmp_path, 1)
    other = _killed_run(tmp_path, 2)  # any stage run clears what killed runs left, of any hash
    assert not same.exists()
    out = StageOutput(str(tmp_path), "generate", {"x": 1})
    (Path(out.tmp) / "part-0.parquet").write_bytes(b"rows")
    assert not other.exists(), "a dead run's temporary folder was kept"
    path = out.commit({"rows": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == [Path(path).name]
    assert sorted(p.name for p in Path(path).iterdir()) == ["manifest.json", "part-0.parquet"]
    assert capsys.readouterr().err == ""
    # a run killed while another one worked is cleared when that one commits
    late = StageOutput(str(tmp_path), "generate", {"x": 3})
    late.tmp  # noqa: B018 - the surviving run's folder
    killed = _killed_run(tmp_path, 4)
    late.commit({"rows": 0})
    assert not killed.exists()


def test_leftovers_of_live_or_unknown_runs_are_kept_and_named(tmp_path, capsys):
    """Never remove what may still be written: a run of this process, one on another host (a
    concurrent run of the same config) or a folder without an owner record; the last two are
    named in one line, so that they are not silently kept either."""
    live = StageOutput(str(tmp_path), "generate", {"x": 1})
    live_tmp = Path(live.tmp)
    foreign = tmp_path / f".generate-{live.hash}.tmp-0000aaaa"
    foreign.mkdir()
    (foreign / OWNER).write_text(json.dumps({"host": "elsewhere", "boot": None, "pidns": None, "pid": 1,
                                             "started": 0.0}))
    unowned = tmp_path / f".generate-{live.hash}.tmp-0000bbbb"
    unowned.mkdir()
    capsys.readouterr()
    again = StageOutput(str(tmp_path), "generate", {"x": 1})
    again.tmp  # noqa: B018
    assert live_tmp.is_dir() and foreign.is_dir() and unowned.is_dir()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and str(foreign) in err[0] and str(unowned) in err[0], err
    assert str(live_tmp) not in err[0], "a run of a live process is no leftover"
    # the first run still commits its own folder
    assert (Path(live.commit({"rows": 1})) / "manifest.json").is_file()


def test_a_relative_root_gives_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = StageOutput("runs", "generate", {"x": 1})
    assert out.path == f"{tmp_path}/runs/generate-{out.hash}"
    assert StageOutput("s3://bucket/runs/", "generate", {"x": 1}).path.startswith("s3://bucket/runs/generate-")
