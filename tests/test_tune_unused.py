"""Finetune settings a tune search never reads (``lrl.tune.stage.UNUSED_BY_SEARCH``) and the dropout
keys that name its folder (``lrl.train.finetune_dropout``); split from test_tune.py (400 lines)."""

from __future__ import annotations

import pytest
from test_tune import _job

from lrl.job import load_job


def test_finetune_settings_a_search_never_reads_do_not_search_again(ray_session, tmp_path, data_root, monkeypatch):
    """``finetune.select_by`` (one dev language), ``threads`` and ``num_cpus`` (trials use
    ``tune.cpus_per_trial``) change nothing a search makes: a finished search is found again, and
    its trials were given the defaults, so the folder records the same for any value. A dropout
    that reaches a key earlier code left alone (a T5-style ``dropout_rate``) names a new folder."""
    from types import SimpleNamespace

    from lrl.pipeline.stage import StageContext
    from lrl.tune import stage

    seen = []
    search = stage.search_language

    def spy(lang, train, dev, tune_cfg, ft, *args, **kwargs):  # the trials run in Ray's workers
        seen.append((ft.select_by, ft.threads, ft.num_cpus))
        return search(lang, train, dev, tune_cfg, ft, *args, **kwargs)

    monkeypatch.setattr(stage, "search_language", spy)

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        if report:
            report({"step": 1, "dev_f1": cfg.lr})
        return SimpleNamespace(dev_f1=cfg.lr, per_type={}, per_lang={}, history=[], model_dir=None)

    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "config.json").write_text('{"model_type": "bert"}')
    opts = [f"tune.model_path={enc}", "tune.num_samples=1", "tune.save_best=false"]
    changed = ["finetune.select_by=language_mean", "finetune.threads=1", "finetune.num_cpus=2"]
    first = stage.run_tune(StageContext(_job(tmp_path, data_root, *opts, *changed)), train_fn=stand_in)
    defaults = load_job(None, []).finetune
    assert seen and set(seen) == {(defaults.select_by, defaults.threads, defaults.num_cpus)}

    def no_search(*args, **kwargs):
        raise AssertionError("searched again")

    monkeypatch.setattr(stage, "search_language", no_search)
    assert stage.run_tune(StageContext(_job(tmp_path, data_root, *opts)), train_fn=stand_in) == first
    # BERT's keys were always set: a dropout on it names the folder as before (by the dropout only).
    with_dropout = _job(tmp_path, data_root, *opts, "finetune.dropout=0.2")
    (enc / "config.json").write_text('{"model_type": "t5"}')
    with pytest.raises(AssertionError, match="searched again"):  # dropout_rate now reached: a new folder
        stage.run_tune(StageContext(with_dropout), train_fn=stand_in)
