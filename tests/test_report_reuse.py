"""When a finished report page is reused, and when it is drawn again: new code that draws it, a new
row in an input (a seed's results), a rewritten predictions file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lrl.job import load_job


def _results(folder: Path, f1s: list[float]) -> None:
    """A finetune ``results.json`` with one run per F1 (seeds 0, 1, ...) of language ug."""
    from lrl.evaluate.metrics import aggregate

    runs = [{"seed": i, "dev_f1": f, "scores": {"precision": f, "recall": f, "f1": f,
                                                 "per_type": {"PER": {"precision": f, "recall": f, "f1": f, "support": 5}}}}
            for i, f in enumerate(f1s)]
    folder.mkdir(exist_ok=True)
    (folder / "results.json").write_text(json.dumps({"mode": "per_language", "seeds": list(range(len(f1s))),
                                                     "groups": {"ug": {"summary": aggregate([r["scores"] for r in runs]),
                                                                       "runs": runs}}}))


def _predictions(folder: Path, pred: list[list[str]]) -> None:
    """An evaluate folder: ``metrics.json`` (kept when there) and a predictions file, two gold PER tokens."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (folder / "predictions" / "ug").mkdir(parents=True, exist_ok=True)
    if not (folder / "metrics.json").is_file():  # written once: a rewrite alone changes its time
        (folder / "metrics.json").write_text(json.dumps({"models": {"ug": {"dev": {
            "f1": 0.5, "precision": 0.5, "recall": 0.5, "sentences": 2, "per_type": {"PER": {"f1": 0.5}}}}}}))
    pq.write_table(pa.table({"tags": [["B-PER", "O"], ["B-PER"]], "pred": pred}),
                   folder / "predictions" / "ug" / "dev.parquet")


@pytest.fixture()
def report(tmp_path: Path):
    """Runs ``lrl report`` over the folders under ``tmp_path``; returns the report folder."""
    from lrl.evaluate.report import run_report
    from lrl.pipeline.stage import StageContext

    def run() -> Path:
        over = [f"output.root={tmp_path / 'runs'}", f"report.finetune={tmp_path / 'finetune'}",
                f"report.evaluate={tmp_path / 'evaluate'}"]
        return Path(run_report(StageContext(load_job(None, over))))

    _results(tmp_path / "finetune", [0.8, 0.82])
    _predictions(tmp_path / "evaluate", [["B-PER", "O"], ["O"]])
    return run


def test_a_report_of_older_code_is_drawn_again(tmp_path, report, monkeypatch):
    """The report's hash held its config and inputs only: a page that older code had drawn was
    reused after the code that draws it changed. The source of the modules that draw it is now
    part of the hash; the same code and inputs still reuse the page."""
    import lrl.evaluate.report as rep

    drawing = tmp_path / "code" / "report_drawing_part.py"  # stands for one of the report's modules
    drawing.parent.mkdir()
    drawing.write_text("STYLE = 1\n")
    monkeypatch.syspath_prepend(str(drawing.parent))
    monkeypatch.setattr(rep, "CODE", (*getattr(rep, "CODE", ()), "report_drawing_part"), raising=False)
    first = report()
    assert report() == first  # nothing changed: the finished page is reused
    drawing.write_text("STYLE = 2\n")  # the code that draws the page changed
    draw = rep.build_html
    monkeypatch.setattr(rep, "build_html", lambda *a, **k: draw(*a, **k).replace("</body>", "STYLE 2</body>"))
    second = report()
    assert second != first and "STYLE 2" in (second / "report.html").read_text(encoding="utf-8")
    assert "STYLE 2" not in (first / "report.html").read_text(encoding="utf-8")


def test_a_new_seed_or_new_predictions_draw_the_page_again(tmp_path, report):
    """A folder without a manifest (named by the user) is known by its files: a results.json with a
    new seed's run draws the page again (the new seed counted), and so does a rewritten predictions
    file beside an unchanged metrics.json (only the JSON files were looked at: the old confusions
    stayed)."""
    first = report()
    _results(tmp_path / "finetune", [0.8, 0.82, 0.84])
    second = report()
    assert second != first and "<td>ug</td><td>82.0</td><td>2.0</td><td>3</td>" in \
        (second / "report.html").read_text(encoding="utf-8")
    metrics = tmp_path / "evaluate" / "metrics.json"
    before = metrics.stat().st_mtime_ns
    _predictions(tmp_path / "evaluate", [["B-PER", "O"], ["B-PER"]])
    assert metrics.stat().st_mtime_ns == before  # only the predictions changed
    third = report()
    assert third != second
    # gold PER (row 3 of the table) predicted PER twice now, once before
    assert "<tr><td>PER</td><td>0</td><td>2</td></tr>" in (third / "report.html").read_text(encoding="utf-8")
