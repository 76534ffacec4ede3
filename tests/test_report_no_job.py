"""``lrl report --evaluate DIR`` without a job file: an evaluate output holds what its sections
show, so the report is drawn from it alone, saying which stages it leaves out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_folders import write_evaluate


@pytest.fixture()
def evaluate_folder(tmp_path: Path) -> Path:
    """An evaluate output as the stage writes it: metrics.json, predictions and its manifest."""
    ev = tmp_path / "runs" / "evaluate-abc"
    write_evaluate(ev)
    (ev / "manifest.json").write_text(json.dumps({"stage": "evaluate", "hash": "abc", "finished_at": "x",
                                                  "source": "/runs/finetune-123"}))
    return ev


def test_report_of_an_evaluate_folder_needs_no_job_file(tmp_path, evaluate_folder, capsys, monkeypatch):
    from lrl.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["report", "--evaluate", str(evaluate_folder), "report.title=ug eval"]) == 0
    html_path = Path(capsys.readouterr().out.split("report: ")[1].strip())
    assert html_path.parent.parent == tmp_path / "runs"  # output.root's default, as with a job file
    text = html_path.read_text(encoding="utf-8")
    assert "<title>ug eval</title>" in text and "<td>ug</td><td>dev</td><td>83.0</td>" in text
    assert "F1 PER" in text and "<h3>ug [dev]</h3>" in text  # scores per type, and the confusions
    # The stages it was not given are left out and named, not claimed "not run".
    assert "not run" not in text and "Pretraining" not in text and "Hyperparameter search" not in text
    assert "No job file" in text and "Job <b>job</b>" not in text
    assert "the sections of finetune, tune, pretrain, generate are left out" in text
    assert "--finetune DIR" in text and "came from /runs/finetune-123" in text


def test_report_without_a_job_writes_where_out_says(tmp_path, evaluate_folder, capsys):
    from lrl.cli import main

    assert main(["report", "--evaluate", str(evaluate_folder), "--out", str(tmp_path / "reports")]) == 0
    assert list((tmp_path / "reports").glob("report-*/report.html"))


def test_report_with_neither_job_nor_folder_is_one_line(tmp_path, capsys, monkeypatch):
    from lrl.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["report"]) == 2
    err = capsys.readouterr().err
    assert "give a job file" in err and "--evaluate DIR" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_a_job_files_report_run_alone_leaves_out_the_stages_not_named(tmp_path, evaluate_folder, capsys):
    """With a job file the page names the job; run alone it searched no folder, so the stages it
    was not given are left out and said, not claimed "not run"."""
    from lrl.cli import main

    cfg = tmp_path / "job.yaml"
    cfg.write_text(f"name: myjob\noutput:\n  root: {tmp_path / 'out'}\n")
    assert main(["report", str(cfg), "--evaluate", str(evaluate_folder)]) == 0
    text = next((tmp_path / "out").glob("report-*/report.html")).read_text(encoding="utf-8")
    assert "Job <b>myjob</b>" in text and "not run" not in text and "Pretraining" not in text
    assert "Made of the named folders only: the sections of finetune, tune, pretrain, generate are left out" in text


def test_a_missing_job_file_with_an_equals_sign_is_said_missing(tmp_path, capsys, monkeypatch):
    """A job path holding ``=`` that names no file is still a job file: "config file not found",
    not an override's "unknown key"; a first ``key=value`` is still an override."""
    from lrl.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "ev").mkdir()
    for job in ("jobs/run=2.yaml", "run=2.yml"):
        assert main(["report", job, "--evaluate", "ev"]) != 0
        err = capsys.readouterr().err
        assert "config file not found" in err and "unknown key" not in err, err
    assert main(["report", "nokey=1", "--evaluate", "ev"]) != 0
    assert "unknown key" in capsys.readouterr().err
