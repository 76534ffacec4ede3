"""The HTML report: self-contained, built from fixture stage outputs, missing parts 'not run'."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_folders import write_evaluate

from lrl.job import load_job


def _runs(f1s: list[float], types: dict[str, list[float]]) -> list[dict]:
    runs = []
    for i, f in enumerate(f1s):
        per_type = {t: {"precision": v[i], "recall": v[i], "f1": v[i], "support": 10} for t, v in types.items()}
        hist = [{"step": s, "epoch": s / 10, "train_loss": 2.0 / s, "dev_f1": f * s / 30, "lr": 1e-3, "time_s": s}
                for s in (10, 20, 30)]
        runs.append({"seed": i, "dev_f1": f, "per_type": per_type, "history": hist,
                     "scores": {"precision": f, "recall": f, "f1": f, "per_type": per_type}})
    return runs


@pytest.fixture()
def stage_folders(tmp_path: Path) -> dict[str, str]:
    """Folders shaped like the finetune, evaluate, tune and generate outputs (no pretrain)."""
    from lrl.evaluate.metrics import aggregate

    ft = tmp_path / "finetune"
    ft.mkdir()
    groups = {}
    for lang, f1s in {"ug": [0.80, 0.82, 0.84], "wo": [0.70, 0.72, 0.71]}.items():
        runs = _runs(f1s, {"PER": [0.9, 0.91, 0.92], "LOC": [0.6, 0.62, 0.64]})
        groups[lang] = {"summary": aggregate([r["scores"] for r in runs]), "runs": runs, "best_seed": 2}
    (ft / "results.json").write_text(json.dumps({"mode": "per_language", "groups": groups}))
    ev = tmp_path / "evaluate"
    write_evaluate(ev)
    tu = tmp_path / "tune"
    tu.mkdir()
    trials = [{"lang": "ug", "trial_id": f"t{i}", "lr": lr, "dev_f1": f, "time_s": 3.0 + i, "stopped_early": i == 2}
              for i, (lr, f) in enumerate([(1e-4, 0.5), (1e-3, 0.77), (1e-2, 0.3)])]
    (tu / "trials.json").write_text(json.dumps(trials))
    (tu / "best.json").write_text(json.dumps([{"lang": "ug", "lr": 1e-3, "batch_size": 16, "dev_f1": 0.77,
                                               "trials": 3, "stopped_early": 1}]))
    gen = tmp_path / "generate"
    gen.mkdir()
    (gen / "manifest.json").write_text(json.dumps({
        "input_rows": 100, "input_read": 102, "output_rows": 180, "rows_per_op": {"orig": 100, "swap": 80},
        "rows_per_lang": {"ug": 180}, "rejects_total": 3, "rejects_per_reason": {"lid": 3}, "steps": ["swap"],
        "augment_attempts": {"swap": {"ug": {"attempts": 100, "generated": 83, "written": 80, "rejected": 3,
                                             "not_applicable": 15, "unchanged": 2}}},
        "oversample": {"rows_before": {"ug": 100}, "rows_after": {"ug": 180}, "targets": {"ug": 200},
                       "rows_written": {"ug": 180}, "missed_targets": {"ug": {"target": 200, "reached": 180}},
                       "missed_rare_types": {"ug": {"PER": {"target": 50, "reached": 36}}}}}))
    return {"finetune": str(ft), "evaluate": str(ev), "tune": str(tu), "generate": str(gen)}


def test_confusion_counts_tokens_by_entity_type():
    from lrl.evaluate.report_data import confusion_from_pairs

    labels, m = confusion_from_pairs([["B-PER", "I-PER", "O"], ["B-LOC", "O"]],
                                     [["B-PER", "O", "O"], ["B-PER", "O"]])
    assert labels == ["O", "LOC", "PER"]
    # gold O: 2 tokens predicted O; gold PER: 1 PER, 1 O; gold LOC: 1 predicted PER.
    assert m == [[2, 0, 0], [0, 0, 1], [1, 0, 1]]


def test_report_is_self_contained_and_shows_scores(tmp_path, stage_folders):
    from lrl.evaluate.report import run_report
    from lrl.pipeline.stage import StageContext

    over = [f"output.root={tmp_path / 'runs'}", "report.title=ug report"]
    cfg = load_job(None, over + [f"report.{k}={v}" for k, v in stage_folders.items()])
    out = Path(run_report(StageContext(cfg)))
    text = (out / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", text, re.I), "external asset"
    assert "<link" not in text and "<script" not in text
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    # language bars, type bars, learning curves, 2 tune scatters, 1 confusion matrix
    assert len(images) >= 6 and all(len(b) > 1000 for b in images)
    # F1 table: ug 82.0 ± 2.0 over 3 seeds, wo 71.0 ± 1.0.
    assert re.search(r"<td>ug</td><td>82\.0</td><td>2\.0</td><td>3</td>", text)
    assert re.search(r"<td>wo</td><td>71\.0</td><td>1\.0</td><td>3</td>", text)
    assert "PER" in text and "LOC" in text and "swap" in text
    assert "pretrain: not run" in text
    # Sentences read, the reader's rejects among them (as "rejected" counts them): the totals add up
    assert "Input rows: 102; output rows: 180; rejected: 3;" in text
    # the augment attempts: totals first, then each no-row reason
    assert re.search(r"<th>attempts</th><th>generated</th><th>written</th><th>rejected</th>"
                     r"<th>not_applicable</th><th>unchanged</th>", text)
    assert re.search(r"<td>swap</td><td>ug</td><td>100</td><td>83</td><td>80</td><td>3</td><td>15</td><td>2</td>", text)
    # oversampling: the missed language target and the rare type max_factor held below its minimum
    assert re.search(r"<td>ug</td><td>100</td><td>200</td><td>180</td><td>missed</td>", text)
    assert re.search(r"<td>ug</td><td>PER</td><td>50</td><td>36</td>", text)
    assert json.loads((out / "manifest.json").read_text())["file"] == "report.html"


def test_report_with_nothing_run_still_renders(tmp_path):
    from lrl.evaluate.report import build_html

    cfg = load_job(None)
    text = build_html(cfg.report, {})
    assert text.count("not run") >= 5 and "<img" not in text


def test_report_survives_a_malformed_input(tmp_path, stage_folders):
    from lrl.evaluate.report import build_html

    (Path(stage_folders["tune"]) / "trials.json").write_text(json.dumps([{"lang": "ug", "dev_f1": "bad"}]))
    text = build_html(load_job(None).report, stage_folders)
    assert "could not be drawn" in text or "not run" in text
    assert re.search(r"<td>ug</td><td>82\.0</td>", text)  # other sections unaffected


def test_report_cli(tmp_path, stage_folders, capsys):
    from lrl.cli import main

    cfg = tmp_path / "job.yaml"
    cfg.write_text(f"output:\n  root: {tmp_path / 'runs'}\n")
    assert main(["report", str(cfg), "--tune", stage_folders["tune"]]) == 0
    printed = capsys.readouterr().out
    html_path = Path(printed.split("report: ")[1].strip())
    assert html_path.is_file() and "dev F1 vs learning rate" in html_path.read_text()


def test_report_refuses_a_stage_folder_that_does_not_exist(tmp_path, stage_folders, capsys):
    """A mistyped --finetune is an error naming the path, not a report that says "not run"."""
    from lrl.cli import main

    cfg = tmp_path / "job.yaml"
    cfg.write_text(f"output:\n  root: {tmp_path / 'runs'}\n")
    assert main(["report", str(cfg), "--tune", stage_folders["tune"], "--finetune", str(tmp_path / "typo")]) == 2
    assert "typo" in capsys.readouterr().err
    assert not list((tmp_path / "runs").glob("report-*"))


def test_a_renamed_job_gets_a_report_with_its_name(tmp_path, stage_folders):
    """The page prints the job's name: a renamed job reused the report that named the old one."""
    from lrl.evaluate.report import run_report
    from lrl.pipeline.stage import StageContext

    over = [f"output.root={tmp_path / 'runs'}"] + [f"report.{k}={v}" for k, v in stage_folders.items()]
    first = Path(run_report(StageContext(load_job(None, over + ["name=first-job"]))))
    second = Path(run_report(StageContext(load_job(None, over + ["name=second-job"]))))
    assert first != second
    assert "second-job" in (second / "report.html").read_text(encoding="utf-8")
    assert "second-job" not in (first / "report.html").read_text(encoding="utf-8")


def test_tune_section_counts_crashed_trials(tmp_path, stage_folders):
    """A search where trials crashed says so: its best row is the best of the rest."""
    from lrl.evaluate.report import build_html

    tu = Path(stage_folders["tune"])
    trials = json.loads((tu / "trials.json").read_text())
    trials.append({"lang": "ug", "trial_id": "t3", "lr": 5e-3, "dev_f1": None, "error": "RuntimeError('boom')"})
    trials.append({"lang": "ug", "trial_id": "t4", "lr": 2e-3, "dev_f1": 0.6, "error": None, "cut_at_max_t": True})
    (tu / "trials.json").write_text(json.dumps(trials))
    best = json.loads((tu / "best.json").read_text())
    best[0].update(trials=5, errored=1)
    (tu / "best.json").write_text(json.dumps(best))
    cfg = load_job(None)
    text = build_html(cfg.report, {"tune": str(tu)})
    assert ("5 trials, 1 stopped early by the scheduler, 1 ended at tune.max_t before their schedule's end, "
            "<b>1 FAILED</b>") in text
    assert "<th>errored</th>" in text


def test_tune_only_pipeline_reports_scores_over_seeds(tmp_path, stage_folders):
    """Without a finetune stage, the scores over seeds come from tune's retrained best (its
    results.json is shaped like finetune's)."""
    from lrl.evaluate.report import build_html

    tu = Path(stage_folders["tune"])
    runs = [{"seed": s, "dev_f1": f, "per_type": {}, "history": []} for s, f in ((0, 0.6), (1, 0.7))]
    (tu / "results.json").write_text(json.dumps({"groups": {"ug": {
        "summary": {"f1": {"mean": 0.65, "sd": 0.0707, "n": 2}}, "runs": runs, "best_seed": 1}}}))
    text = build_html(load_job(None).report, {"tune": str(tu)})
    assert re.search(r"<td>ug</td><td>65\.0</td><td>7\.1</td><td>2</td>", text)


def test_joint_evaluate_scores_per_language_and_names_missing_test_split(tmp_path):
    """WikiANN ug has no test split: a joint model's test F1 then covers am only, next to a dev F1
    over ug and am. The report showed the two overall numbers side by side and nothing more."""
    from lrl.evaluate.report import build_html

    def lang(f1: float, n: int) -> dict:
        return {"f1": f1, "precision": f1, "recall": f1, "support": n}

    ev = tmp_path / "evaluate"
    ev.mkdir()
    (ev / "metrics.json").write_text(json.dumps({"models": {"joint": {
        "dev": {"f1": 0.5, "precision": 0.5, "recall": 0.5, "sentences": 300, "per_type": {},
                "per_lang": {"am": lang(0.2, 110), "ug": lang(0.6, 222)}},
        "test": {"f1": 0.25, "precision": 0.25, "recall": 0.25, "sentences": 100, "per_type": {},
                 "per_lang": {"am": lang(0.25, 111)}}}}}))
    text = build_html(load_job(None).report, {"evaluate": str(ev)})
    assert re.search(r"<td>joint</td><td>dev</td><td>ug</td><td>60\.0</td><td>60\.0</td><td>60\.0</td><td>222</td>", text)
    assert re.search(r"<td>joint</td><td>test</td><td>am</td><td>25\.0</td>", text)
    assert "joint: no test rows for ug (its test score covers am only)" in text


def test_pretrain_section_draws_the_curve_pretraining_records(tmp_path):
    """Pretraining wrote no ``history``, so every report said "No per-step curve recorded". Its
    points (``history_entry``: loss, lr, tokens/s, held-out perplexity per language where it was
    evaluated) are drawn: the training curves, and the perplexity with a line per language."""
    from lrl.evaluate.report import build_html
    from lrl.evaluate.report_data import pretrain_metrics
    from lrl.train.pretrain_metrics import history_entry

    points = []
    for step in (20, 40, 50, 60):
        m = {"step": step, "loss": 9.0 - step / 10, "aux_loss": None, "lr": 5e-4, "tokens_per_s": 900.0 + step,
             "ppl_ug": 800.0 - step, "ppl_wo": float("nan") if step == 40 else 700.0 - step}
        points.append(history_entry(m, evaluated=step % 40 == 0 or step == 60, loss=step != 50))
    pt = tmp_path / "pretrain"
    pt.mkdir()
    (pt / "metrics.json").write_text(json.dumps({"step": 60, "loss": 3.0, "ppl_ug": 740.0, "history": points}))
    data = pretrain_metrics(str(pt))
    assert [h["step"] for h in data["history"]] == [20, 40, 50, 60] and data["history"][2]["loss"] is None
    assert data["perplexity"] == {"ug": [{"step": 40, "perplexity": 760.0}, {"step": 60, "perplexity": 740.0}],
                                  "wo": [{"step": 60, "perplexity": 640.0}]}  # the NaN is not drawn
    text = build_html(load_job(None).report, {"pretrain": str(pt)})
    assert "No per-step curve recorded" not in text
    for alt in ("pretraining curves", "held-out perplexity"):
        assert re.search(rf'<img src="data:image/png;base64,[A-Za-z0-9+/=]{{1000,}}"[^>]*alt="{alt}"', text), alt


def test_one_seed_shows_no_sd_as_the_model_card_does(tmp_path, monkeypatch):
    """One seed has no spread: results.json stores sd 0, the card prints "—", the report printed
    "0.0" (a claim of stability over seeds never run) and drew a zero error bar (its caps)."""
    from lrl.evaluate import plots
    from lrl.evaluate.metrics import aggregate
    from lrl.evaluate.report import build_html

    bars = []
    real = plots.to_data_uri

    def keep(fig):
        bars.extend((ax.get_xlabel(), len(ax.get_lines()) + len(ax.collections)) for ax in fig.axes if ax.patches)
        return real(fig)

    monkeypatch.setattr(plots, "to_data_uri", keep)

    ft = tmp_path / "finetune"
    ft.mkdir()
    runs = _runs([0.8], {"PER": [0.9]})
    (ft / "results.json").write_text(json.dumps({"groups": {"ug": {
        "summary": aggregate([r["scores"] for r in runs]), "runs": runs, "best_seed": 0}}}))
    text = build_html(load_job(None).report, {"finetune": str(ft)})
    assert re.search(r"<td>ug</td><td>80\.0</td><td>—</td><td>1</td>", text)
    assert re.search(r"<td>ug</td><td>PER</td><td>90\.0</td><td>—</td><td>1</td>", text)
    assert len(bars) == 2 and all(drawn == 0 and "one seed" in label for label, drawn in bars), bars


def test_every_figure_names_its_axes_and_draws_f1_in_percent(tmp_path, stage_folders, monkeypatch):
    """The bars and curves drew F1 as 0.82 under "span F1" / "dev_f1" next to tables in percent."""
    from lrl.evaluate import plots
    from lrl.evaluate.report import build_html

    axes = []
    real = plots.to_data_uri

    def keep(fig):
        for ax in fig.axes:
            ys = [v for line in ax.get_lines() for v in line.get_ydata()]
            ys += [p.get_height() for p in ax.patches]
            ys += [float(y) for c in ax.collections for y in c.get_offsets()[:, 1]] if ax.collections else []
            axes.append((ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), max(ys, default=None)))
        return real(fig)

    monkeypatch.setattr(plots, "to_data_uri", keep)
    build_html(load_job(None).report, stage_folders)
    assert len(axes) >= 7
    for title, xlabel, ylabel, top in axes:
        assert title and xlabel and ylabel, (title, xlabel, ylabel)
        if "F1" in ylabel:
            assert "(%)" in ylabel and top is not None and top > 1.0, (title, ylabel, top)
    assert any(y == "training loss (cross-entropy)" for _, _, y, _ in axes)


def test_report_names_labels_model_and_data_do_not_share(tmp_path):
    from lrl.evaluate.report import build_html

    ev = tmp_path / "evaluate"
    ev.mkdir()
    (ev / "metrics.json").write_text(json.dumps({"models": {"ug": {"dev": {
        "f1": 0.5, "precision": 0.5, "recall": 0.5, "sentences": 3, "per_type": {},
        "label_gaps": {"unknown_to_model": {"DATE": 2}, "absent_from_data": ["MISC"]}}}}}))
    text = build_html(load_job(None).report, {"evaluate": str(ev)})
    assert "ug [dev]: DATE (2 gold spans) not among the model&#x27;s labels" in text and "MISC of the model" in text


def test_joint_report_names_the_selection_criterion_and_draws_its_curve(tmp_path, monkeypatch):
    """``finetune.select_by: language_mean`` keeps a joint model by the mean of the per-language F1s;
    the report said nothing of it and drew only the pooled curve."""
    from lrl.evaluate import plots
    from lrl.evaluate.metrics import aggregate
    from lrl.evaluate.report import build_html

    ft = tmp_path / "finetune"
    ft.mkdir()
    runs = _runs([0.8, 0.7], {"PER": [0.9, 0.8]})
    for r in runs:
        for h in r["history"]:
            h["dev_f1_lang_mean"] = h["dev_f1"] / 2
    (ft / "results.json").write_text(json.dumps({"mode": "joint", "select_by": "language_mean", "groups": {
        "joint": {"summary": aggregate([r["scores"] for r in runs]), "runs": runs, "best_seed": 0}}}))
    ylabels = []
    real = plots.to_data_uri
    monkeypatch.setattr(plots, "to_data_uri", lambda fig: (ylabels.extend(a.get_ylabel() for a in fig.axes), real(fig))[1])
    text = build_html(load_job(None).report, {"finetune": str(ft)})
    assert "with the best mean of the per-language dev span F1s (finetune.select_by)" in text
    assert "mean of per-language dev span F1 (%)" in ylabels


def test_reference_points_stand_beside_the_runs_dev_f1(tmp_path, stage_folders):
    """Published scores (report.references) are shown as given next to the run's dev F1, and a
    fraction given for a percentage is refused at load."""
    from lrl.config import ConfigError
    from lrl.evaluate.report import build_html

    cfg = load_job(None, ['report.references={ug: {"MicroBERT MLM+XPOS, test": 85.45}, am: {"x": 50}}'])
    text = build_html(cfg.report, stage_folders)
    assert re.search(r"<td>ug</td><td>82\.0 ± 2\.0</td><td>MicroBERT MLM\+XPOS, test</td><td>85\.5</td>", text)
    assert re.search(r"<td>am</td><td>—</td><td>x</td><td>50\.0</td>", text)  # no run of am: shown alone
    assert "Reference points" not in build_html(load_job(None).report, stage_folders)
    with pytest.raises(ConfigError, match=r"percent.*ug: m = 0.85"):
        load_job(None, ["report.references={ug: {m: 0.85}}"])


def test_learning_curves_name_a_crf_heads_loss(tmp_path, stage_folders, monkeypatch):
    """A CRF head trains on the sentence's negative log-likelihood (WikiANN ug: 8.8 falling to 4.7),
    which the curve labelled "training loss (cross-entropy)"; the saved models say their head."""
    from lrl.evaluate import plots
    from lrl.evaluate.report import build_html

    ylabels: list[str] = []
    real = plots.to_data_uri
    monkeypatch.setattr(plots, "to_data_uri", lambda fig: (ylabels.extend(a.get_ylabel() for a in fig.axes), real(fig))[1])
    for lang in ("ug", "wo"):
        (Path(stage_folders["finetune"]) / "models" / lang).mkdir(parents=True)
        (Path(stage_folders["finetune"]) / "models" / lang / "lrl_tagger.json").write_text(json.dumps({"head": "crf"}))
    build_html(load_job(None).report, {"finetune": stage_folders["finetune"]})
    assert plots.CRF_LOSS in ylabels and "training loss (cross-entropy)" not in ylabels
    (Path(stage_folders["finetune"]) / "models" / "wo" / "lrl_tagger.json").write_text(json.dumps({"head": "linear"}))
    ylabels.clear()
    build_html(load_job(None).report, {"finetune": stage_folders["finetune"]})
    assert plots.MIXED_LOSS in ylabels


def test_report_says_why_the_evaluated_model_beats_the_seed_mean(tmp_path, stage_folders):
    """Dev F1 51.5 ± 0.4 over seeds and, below it, the evaluate stage's 51.8 for the saved (best)
    seed: the page did not say they measure different things."""
    from lrl.evaluate.report import build_html

    assert "the seed kept as the best on dev" in build_html(load_job(None).report, stage_folders)
    res = Path(stage_folders["finetune"]) / "results.json"
    one = json.loads(res.read_text())
    for g in one["groups"].values():
        g["summary"]["f1"]["n"] = 1
    res.write_text(json.dumps(one))
    assert "the seed kept as the best on dev" not in build_html(load_job(None).report, stage_folders)


def test_generate_section_shows_text_rows_per_op_only_when_the_manifest_has_them(tmp_path):
    """The manifest splits unlabelled text rows per op (orig, backtranslate); the report showed
    only the labelled rows' split. A job without text keeps no empty table."""
    from lrl.evaluate.report_data import generate_summary
    from lrl.evaluate.report_generate import generate_section

    man = {"input_rows": 10, "output_rows": 12, "rows_per_op": {"orig": 10, "swap": 2}, "rows_per_lang": {"ug": 12},
           "rejects_total": 0, "rejects_per_reason": {}, "steps": ["augment"]}
    (tmp_path / "manifest.json").write_text(json.dumps({**man, "text_rows_per_op": {"backtranslate": 25, "orig": 30}}))
    text = generate_section(generate_summary(str(tmp_path)))
    assert "text rows per operation" in text
    assert re.search(r"<td>backtranslate</td><td>25</td>", text) and re.search(r"<td>orig</td><td>30</td>", text)
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    assert "text rows" not in generate_section(generate_summary(str(tmp_path)))
