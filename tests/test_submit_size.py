"""``lrl submit`` sizes the working directory's upload before Ray packs it."""

from __future__ import annotations

import os

import pytest
from submit_fakes import FakeClient, _args

from lrl.config import ConfigError
from lrl.pipeline import submit


def _job(tmp_path, excludes: str = "[]"):
    wd = tmp_path / "wd"
    wd.mkdir()
    job = wd / "job.yaml"
    job.write_text(f"name: size\noutput:\n  root: /shared/runs\npipeline:\n  submit:\n"
                   f"    working_dir: {wd}\n    excludes: {excludes}\n")
    return wd, job


def _sparse(path, size: int) -> None:
    """A file of ``size`` bytes that takes no disk space."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)


def test_an_oversized_upload_fails_before_packing_and_names_the_culprit(tmp_path, monkeypatch, capsys):
    """Over Ray's cap before compression: warned of, naming the culprit (it may zip smaller: a
    sparse file of zeros does); far over it (a home directory): refused before connecting."""
    import ray.job_submission

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", FakeClient)
    FakeClient.last = None
    wd, job = _job(tmp_path)
    _sparse(wd / "checkpoints" / "model.bin", 300 * 1024**2)
    assert submit.run(_args(job, address="http://127.0.0.1:1")) == 0
    err = capsys.readouterr().err
    assert "warning: pipeline.submit.working_dir=" in err and "checkpoints (300.0 MiB)" in err
    FakeClient.last = None
    _sparse(wd / "home" / "videos.bin", 1100 * 1024**2)
    with pytest.raises(ConfigError) as exc:
        submit.run(_args(job, address="http://127.0.0.1:1"))
    msg = str(exc.value)
    assert "\n" not in msg and str(wd) in msg and "home (1100.0 MiB)" in msg and "pipeline.submit.excludes" in msg
    assert FakeClient.last is None  # refused before connecting, let alone uploading


def test_excluded_big_files_do_not_count(tmp_path, monkeypatch, capsys):
    import ray.job_submission

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", FakeClient)
    wd, job = _job(tmp_path, excludes='["checkpoints/"]')
    _sparse(wd / "checkpoints" / "model.bin", 300 * 1024**2)
    _sparse(wd / "cache" / "big.bin", 300 * 1024**2)
    (wd / ".gitignore").write_text("cache/\n")
    _sparse(wd / ".git" / "objects" / "pack.bin", 300 * 1024**2)  # Ray's default excludes
    # not entered: the walk must not wander out of the tree (a link to / in a home directory)
    os.symlink(tmp_path / "outside", wd / "link")
    _sparse(tmp_path / "outside" / "data.bin", 300 * 1024**2)
    _sparse(wd / "notes.bin", 25 * 1024**2)
    assert submit.run(_args(job, address="http://127.0.0.1:1")) == 0
    assert FakeClient.last.submitted["entrypoint"]
    out = capsys.readouterr().out
    assert f"uploading {wd} (25.0 MiB" in out


def test_dry_run_prints_the_upload_size(tmp_path, capsys):
    wd, job = _job(tmp_path)
    _sparse(wd / "data" / "x.bin", 3 * 1024**2)
    assert submit.run(_args(job, dry_run=True)) == 0
    assert "upload: 3.0 MiB (working_dir, uncompressed)" in capsys.readouterr().out
    _sparse(wd / "data" / "y.bin", 1200 * 1024**2)
    with pytest.raises(ConfigError, match=r"data \(120[03]\.0 MiB\)"):  # the walk may stop before x.bin
        submit.run(_args(job, dry_run=True))
