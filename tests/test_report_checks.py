"""The report's error paths: nothing to report, a named folder without its stage's output, seeds
missing from a mean, and per-language entity scores of a joint model (audit of 2026-12-01)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from lrl.job import load_job


def _job(tmp_path: Path) -> Path:
    cfg = tmp_path / "job.yaml"
    cfg.write_text(f"output:\n  root: {tmp_path / 'runs'}\n")
    return cfg


def _scores(f1: float, per_lang: dict[str, dict[str, float]] | None = None) -> dict:
    """A ``scores_by_lang``-shaped result: one type per language, F1 = P = R."""
    def span(v: float, types: dict[str, float]) -> dict:
        return {"precision": v, "recall": v, "f1": v, "support": 10,
                "per_type": {t: {"precision": x, "recall": x, "f1": x, "support": 5} for t, x in types.items()}}
    langs = per_lang or {}
    out = span(f1, {t: x for types in langs.values() for t, x in types.items()})
    out["per_lang"] = {lang: span(f1, types) for lang, types in langs.items()}
    return out


def test_a_report_with_no_stage_output_fails_naming_the_folder(tmp_path, capsys):
    """``lrl report JOB`` with no stage folder wrote a page of "not run" and exited 0."""
    from lrl.cli import main

    assert main(["report", str(_job(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert "nothing to report" in err and str(tmp_path / "runs") in err and "--finetune DIR" in err
    assert not list((tmp_path / "runs").glob("report-*"))


def test_a_named_folder_with_a_truncated_file_is_an_error_naming_it(tmp_path, capsys):
    """``--evaluate DIR`` whose metrics.json was cut short showed "evaluate: not run"."""
    from lrl.cli import main

    ev = tmp_path / "evaluate-x"
    ev.mkdir()
    (ev / "metrics.json").write_text('{"models": {"ug": {"dev": {"f1": 0.')
    assert main(["report", str(_job(tmp_path)), "--evaluate", str(ev)]) == 2
    err = capsys.readouterr().err
    assert f"report.evaluate={ev}" in err and "metrics.json cannot be read" in err and "JSONDecodeError" in err
    assert not list((tmp_path / "runs").glob("report-*"))


def test_a_named_folder_of_another_stage_is_an_error(tmp_path, capsys):
    """A finetune folder given as --evaluate (or a results.json without groups) is named, not 'not run'."""
    from lrl.cli import main

    ft = tmp_path / "finetune-x"
    ft.mkdir()
    (ft / "results.json").write_text(json.dumps({"mode": "per_language"}))  # partial: no groups
    assert main(["report", str(_job(tmp_path)), "--evaluate", str(ft)]) == 2
    assert "no metrics.json" in capsys.readouterr().err
    assert main(["report", str(_job(tmp_path)), "--finetune", str(ft)]) == 2
    assert "results.json has no 'groups'" in capsys.readouterr().err


def test_the_report_names_a_seed_with_no_run(tmp_path):
    """evaluate.seeds [0, 1, 2] with seed 2 lost: the mean over 2 showed "2" in the seeds column and
    nothing said which seed was missing, or that one was."""
    from lrl.evaluate.metrics import aggregate
    from lrl.evaluate.report import build_html

    ft = tmp_path / "finetune"
    ft.mkdir()
    runs = [{"seed": s, "dev_f1": f, "scores": _scores(f)} for s, f in ((0, 0.6), (1, 0.7))]
    full = [{"seed": s, "dev_f1": 0.5, "scores": _scores(0.5)} for s in (0, 1, 2)]
    (ft / "results.json").write_text(json.dumps({"seeds": [0, 1, 2], "groups": {
        "ug": {"summary": aggregate([r["scores"] for r in runs]), "runs": runs},
        "wo": {"summary": aggregate([r["scores"] for r in full]), "runs": full}}}))
    text = build_html(load_job(None).report, {"finetune": str(ft)})
    assert "Missing seeds:</b> ug: 2 of 3 seeds ran; no run for seed(s) 2." in text
    assert "wo:" not in text.split("Missing seeds:")[1].split("</p>")[0]


def test_a_joint_models_entity_scores_are_shown_per_language(tmp_path):
    """The joint model's per-type F1 was pooled over languages only (finetune summary and the
    evaluate table), so a type one language never got right was invisible."""
    from lrl.evaluate.metrics import aggregate
    from lrl.evaluate.report import build_html

    runs = [{"seed": s, "dev_f1": 0.6, "scores": _scores(0.6, {"ug": {"LOC": x}, "yo": {"PER": y}})}
            for s, (x, y) in enumerate([(0.8, 0.1), (0.6, 0.3)])]
    summary = aggregate([r["scores"] for r in runs])
    assert summary["per_lang"]["yo"]["per_type"]["PER"]["f1"]["mean"] == 0.2
    assert summary["per_lang"]["yo"]["per_type"]["PER"]["f1"]["n"] == 2
    ft, ev = tmp_path / "finetune", tmp_path / "evaluate"
    ft.mkdir()
    ev.mkdir()
    (ft / "results.json").write_text(json.dumps({"mode": "joint", "seeds": [0, 1], "groups": {
        "joint": {"summary": summary, "runs": runs}}}))
    dev = _scores(0.6, {"ug": {"LOC": 0.75}, "yo": {"PER": 0.25}})
    (ev / "metrics.json").write_text(json.dumps({"models": {"joint": {"dev": {**dev, "sentences": 4}}}}))
    text = build_html(load_job(None).report, {"finetune": str(ft), "evaluate": str(ev)})
    assert re.search(r"<td>joint yo</td><td>PER</td><td>20\.0</td><td>14\.1</td><td>2</td>", text)
    assert re.search(r"<td>joint</td><td>dev</td><td>yo</td>(<td>[^<]*</td>){4}<td>—</td><td>25\.0</td>", text)
    assert "Missing seeds" not in text
