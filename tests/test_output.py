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


def _finished(root: Path, stage: str, config: dict) -> str:
    out = StageOutput(str(root), stage, config)
    (Path(out.tmp) / "model").mkdir()
    (Path(out.tmp) / "model" / "config.json").write_text("{}")
    return out.commit({})


def test_a_stage_output_is_named_in_downstream_hashes_by_its_folder_not_its_root(tmp_path):
    """A runs folder moved elsewhere re-ran every stage after generate: the absolute paths of
    upstream outputs were in the downstream hashes."""
    import shutil

    from lrl.data.output import input_print

    first = _finished(tmp_path / "a" / "runs", "pretrain", {"x": 1})
    shutil.move(str(tmp_path / "a"), str(tmp_path / "b"))
    moved = first.replace(str(tmp_path / "a"), str(tmp_path / "b"))
    name = first.rsplit("/", 1)[1]
    assert input_print(moved + "/model") == f"{name}/model"
    assert input_print(moved) == name
    other = _finished(tmp_path / "c", "pretrain", {"x": 2})  # another config: another name
    assert input_print(other + "/model") != input_print(moved + "/model")


def test_a_folder_that_is_not_a_finished_stage_output_is_named_by_its_content(tmp_path):
    """A user's model folder rewritten in place must not reuse what was made from the old one
    (it was named by its path alone); a stage-like folder without a manifest is not finished."""
    from lrl.data.output import input_print

    user = tmp_path / "my-model"
    user.mkdir()
    (user / "model.safetensors").write_bytes(b"old weights")
    before = input_print(str(user))
    (user / "model.safetensors").write_bytes(b"new weights")
    assert input_print(str(user)) != before
    unfinished = tmp_path / "pretrain-0123456789ab" / "model"
    unfinished.mkdir(parents=True)
    (unfinished / "config.json").write_text("{}")
    assert "pretrain-0123456789ab" not in input_print(str(unfinished))


def test_the_tokenizer_stage_reuses_its_output_after_the_runs_folder_moved(tmp_path):
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from lrl.job import load_job
    from lrl.model.command import stage_output
    from lrl.pipeline.stage import StageContext

    out = StageOutput(str(tmp_path / "a" / "runs"), "generate", {"x": 1})
    (Path(out.tmp) / "text" / "lang=ug").mkdir(parents=True)
    pq.write_table(pa.table({"text": ["bir ikki"]}), Path(out.tmp) / "text" / "lang=ug" / "part-0.parquet")
    gen = out.commit({})

    def tokenizer_folder(root: Path, generate: str) -> str:
        cfg = load_job(None, [f"output.root={root}"])
        return stage_output(StageContext(cfg, {"generate": generate})).path.rsplit("/", 1)[1]

    before = tokenizer_folder(tmp_path / "a" / "runs", gen)
    shutil.move(str(tmp_path / "a"), str(tmp_path / "b"))
    assert tokenizer_folder(tmp_path / "b" / "runs", gen.replace("/a/", "/b/")) == before


def test_a_commit_keeps_the_folder_a_concurrent_run_finished_first(tmp_path, monkeypatch):
    """Two ``lrl run`` of the same job on one root: when the other run committed between this
    run's finished check and its rename, the commit deleted that finished folder (which the
    other run's next stages were reading) and put its own in its place."""
    first = StageOutput(str(tmp_path), "generate", {"x": 1})
    second = StageOutput(str(tmp_path), "generate", {"x": 1})
    (Path(first.tmp) / "part-0.parquet").write_bytes(b"first")
    (Path(second.tmp) / "part-0.parquet").write_bytes(b"second")
    path = first.commit({"rows": 1})
    # The second run checked before the first committed: it found nothing finished then.
    checks = iter([False])
    monkeypatch.setattr(StageOutput, "done", property(lambda self: next(checks, True)))
    assert second.commit({"rows": 1}) == path
    assert Path(path, "part-0.parquet").read_bytes() == b"first", "the finished folder was replaced"
    assert sorted(p.name for p in tmp_path.iterdir()) == [Path(path).name], "the loser's tmp stays"


def test_an_output_root_that_cannot_be_locked_runs_unlocked_with_a_warning(tmp_path, monkeypatch, caplog):
    """Some NFS mounts refuse flock (ENOLCK): the run goes on, saying runs there are not kept apart."""
    import errno
    import fcntl

    from lrl.data.root_lock import root_lock

    def refuse(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refuse)
    ran = False
    with root_lock(str(tmp_path / "runs"), "job"):
        ran = True
    assert ran and "could not lock the output root" in caplog.text and "No locks available" in caplog.text
