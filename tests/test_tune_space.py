"""What a tune search varies and what it takes from ``finetune``; checks that run before any trial."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from lrl.config import ConfigError
from lrl.job import load_job


def _job(tmp_path: Path, data_root: Path, *extra: str):
    """ug train/dev slices of WikiANN (a few sentences: the stand-in trainers never read them)."""
    for split, n in (("train", 40), ("dev", 20)):
        blocks = (data_root / "wikiann/ug" / split).read_text(encoding="utf-8").split("\n\n")[:n]
        (tmp_path / f"{split}.conll").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return load_job(None, [f"output.root={tmp_path / 'runs'}", "tune.languages=[ug]", f"data.root={tmp_path}",
                           "data.ner=[{path: train.conll, lang: ug, split: train}, "
                           "{path: dev.conll, lang: ug, split: dev}]", *extra])


def _encoder(tmp_path: Path, layers: int) -> Path:
    enc = tmp_path / "enc"
    enc.mkdir(exist_ok=True)
    (enc / "config.json").write_text(json.dumps({"num_hidden_layers": layers}))
    return enc


@pytest.mark.parametrize("setting, message", [
    ("tune.space.freeze_layers=[0,5]", r"tune\.space\.freeze_layers=\[0, 5\]: \[5\] .* has 2 layers"),
    ("finetune.freeze_layers=3", r"finetune\.freeze_layers=3: \[3\] .* has 2 layers"),
])
def test_too_deep_freeze_layers_fails_before_any_trial(tmp_path, data_root, monkeypatch, setting, message):
    """Before: every trial that drew 5 errored inside Ray Tune (2 of 3 trials of a real search on
    the tiny preset) and the stage still committed a 'best' from the rest."""
    from lrl.pipeline.stage import StageContext
    from lrl.tune import stage

    def no_search(*args, **kwargs):
        raise AssertionError("a trial started")

    monkeypatch.setattr(stage, "search_language", no_search)
    job = _job(tmp_path, data_root, f"tune.model_path={_encoder(tmp_path, 2)}", setting)
    with pytest.raises(ConfigError, match=message):
        stage.run_tune(StageContext(job))
    # As deep as the encoder is allowed (train the head only).
    ok = _job(tmp_path, data_root, f"tune.model_path={_encoder(tmp_path, 2)}", "tune.space.freeze_layers=[0,2]")
    with pytest.raises(AssertionError, match="a trial started"):
        stage.run_tune(StageContext(ok))


@pytest.mark.parametrize("choices", ["tune.space.batch_size=[16,32,16]", "tune.space.epochs=[3,3.0]",
                                     "tune.space.schedule=[linear,linear]"])
def test_duplicate_choices_are_rejected_at_load(choices):
    name = choices.split("=")[0].replace(".", r"\.")
    with pytest.raises(ConfigError, match=f"{name}.*listed more than once"):
        load_job(None, [choices])


def test_unsearched_hyperparameters_follow_finetune(ray_session, tmp_path, data_root):
    """Only ``tune.space``'s lists (and the learning rate) vary; every trial and the retrained best
    take the rest from ``finetune``, and the tables show the values the trials trained with."""
    from lrl.pipeline.stage import StageContext
    from lrl.tune.search import param_space
    from lrl.tune.stage import run_tune

    seen = tmp_path / "seen"
    seen.mkdir()

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        got = {"lr": cfg.lr, "batch_size": cfg.batch_size, "epochs": cfg.epochs, "dropout": cfg.dropout,
               "freeze_layers": cfg.freeze_layers, "warmup_ratio": cfg.schedule.warmup_ratio,
               "schedule": cfg.schedule.type, "retrain": out_dir is not None}
        (seen / f"{len(list(seen.iterdir()))}-{cfg.lr}.json").write_text(json.dumps(got))
        if out_dir:
            Path(out_dir, "config.json").write_text("{}")
        if report:
            report({"step": 1, "dev_f1": cfg.lr})
        return SimpleNamespace(dev_f1=cfg.lr, per_type={}, per_lang={}, history=[], model_dir=None)

    job = _job(tmp_path, data_root, f"tune.model_path={_encoder(tmp_path, 2)}", "tune.num_samples=2",
               "tune.space.batch_size=[4]", "finetune.batch_size=8", "finetune.dropout=0.3", "finetune.epochs=5",
               "finetune.freeze_layers=1", "finetune.schedule.type=cosine", "finetune.schedule.warmup_ratio=0.2")
    out = Path(run_tune(StageContext(job), train_fn=stand_in))
    runs = [json.loads(p.read_text()) for p in seen.iterdir()]
    assert len(runs) == 3 and sum(r["retrain"] for r in runs) == 1  # 2 trials + the best, retrained
    finetune_values = {"batch_size": 4, "epochs": 5.0, "dropout": 0.3, "freeze_layers": 1, "warmup_ratio": 0.2,
                       "schedule": "cosine"}
    for r in runs:
        assert {k: r[k] for k in finetune_values} == finetune_values
    trials = json.loads((out / "trials.json").read_text())
    best = json.loads((out / "best.json").read_text())
    for row in [*trials, *best]:
        assert {k: row[k] for k in finetune_values} == finetune_values
    # The card lists what was searched, not finetune's values as if they had been.
    card = (out / "models/ug/README.md").read_text()
    assert "searched:\n  lr: " in card and "  batch_size: 4\nseeds:" in card
    assert set(param_space(job.tune, job.finetune)) == {"lr", "batch_size"}


def test_grid_does_not_repeat_trials_that_drop_warmup():
    """one_cycle and triangular train with warmup 0 whatever the choice: crossing schedule and
    warmup independently ran (one_cycle, 0.0) and (one_cycle, 0.1) as two identical trials."""
    from ray.tune.search.variant_generator import generate_variants

    from lrl.tune.search import effective_params, finetune_with, grid_size, param_space, trial_params

    job = load_job(None, ["tune.search=grid", "tune.space.lr_grid_points=1", "tune.space.warmup_ratio=[0.0,0.1]",
                          "tune.space.schedule=[linear,one_cycle]", "tune.space.batch_size=[8,16]"])
    variants = [spec for _, spec in generate_variants(param_space(job.tune, job.finetune))]
    trained = [effective_params(finetune_with(job.finetune, trial_params(v))) for v in variants]
    assert len({json.dumps(t, sort_keys=True) for t in trained}) == len(trained) == 2 * 3
    assert grid_size(job.tune, job.finetune) == len(trained)
    # Not searched, finetune's one_cycle drops every warmup choice: one trial per lr and batch size.
    job = load_job(None, ["tune.search=grid", "tune.space.lr_grid_points=1", "tune.space.warmup_ratio=[0.0,0.1]",
                          "finetune.schedule.type=one_cycle", "finetune.schedule.warmup_ratio=0.0"])
    assert len(list(generate_variants(param_space(job.tune, job.finetune)))) == grid_size(job.tune, job.finetune) == 1


def test_empty_languages_list_means_unset():
    """``tune.languages: []`` falls back like None (to finetune.languages, then every language
    with train and dev rows), so both spellings find the same output folder."""
    assert load_job(None, ["tune.languages=[]"]).tune.languages is None
    assert load_job(None, ["tune.languages=[ug]"]).tune.languages == ["ug"]


def test_failed_trials_are_counted_in_the_best_row_and_printed(ray_session, tmp_path, data_root, monkeypatch,
                                                               capsys):
    """A trial that crashes leaves the search running (the best of the rest still wins), but the
    best table, the manifest and the ``lrl tune`` line say so: before, a search where 2 of 3 trials
    crashed printed "3 trials, 0 stopped early" like a clean one."""
    import argparse

    from lrl.pipeline.stage import StageContext
    from lrl.tune import command, stage

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        if cfg.batch_size == 4:
            raise RuntimeError("out of memory (stand-in)")
        if report:
            report({"step": 1, "dev_f1": 0.5})
        return SimpleNamespace(dev_f1=0.5, per_type={}, per_lang={}, history=[], model_dir=None)

    job = _job(tmp_path, data_root, f"tune.model_path={_encoder(tmp_path, 2)}", "tune.search=grid",
               "tune.space.lr_grid_points=1", "tune.space.batch_size=[4,8]", "tune.save_best=false")
    out = Path(stage.run_tune(StageContext(job), train_fn=stand_in))
    best = json.loads((out / "best.json").read_text())
    assert best[0]["trials"] == 2 and best[0]["errored"] == 1 and best[0]["batch_size"] == 8
    assert json.loads((out / "manifest.json").read_text())["errored"] == 1
    monkeypatch.setattr(command, "load_job_args", lambda args: job)
    monkeypatch.setattr(stage, "run_tune", lambda ctx: str(out))
    assert command.run(argparse.Namespace()) == 0
    printed = capsys.readouterr().out
    assert "2 trials, 0 stopped early, 1 FAILED (see trials.json)" in printed
    # the stage's own progress lines (all `lrl run` showed of a search was Ray's temporary path)
    assert "tune: ug: searching 2 configuration(s)" in printed and "tune: ug: best dev F1 50.0 of 2 trial(s)" in printed
