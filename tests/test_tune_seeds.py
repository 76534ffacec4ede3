"""The seeds of the tune stage: its trials train with the job's ``seed``; with ``tune.save_best``
the best configuration is retrained once per seed of ``evaluate.seeds`` and the best seed's model
is saved. Without it ``evaluate.seeds`` is read by nothing, and does not name the output."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_tune_checks import _job

#: Dev F1 of the retrained model per seed: seed 5 is the best, neither the first nor the last.
RETRAIN_F1 = {3: 0.2, 5: 0.9, 8: 0.4}


def _stand_in(calls: Path):
    """A trainer that leaves a file per call in ``calls`` (trials run in Ray tasks): a trial (it
    reports) or a retrain (it saves to ``out_dir``), with its seed."""

    def train(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        (calls / f"{'retrain' if out_dir else 'trial'}-{seed}-{uuid.uuid4().hex[:6]}").touch()
        if report:
            report({"step": 1, "dev_f1": 0.5})
        if out_dir is not None:
            (Path(out_dir) / "weights.bin").write_text(f"seed {seed}")
        return SimpleNamespace(dev_f1=RETRAIN_F1.get(seed, 0.5) if out_dir else 0.5, per_type={}, per_lang={},
                               history=[], model_dir=None)

    return train


def _calls(calls: Path) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {"trial": [], "retrain": []}
    for p in calls.iterdir():
        kind, seed, _ = p.name.split("-")
        seen[kind].append(int(seed))
    return {k: sorted(v) for k, v in seen.items()}


def _job_with_dev_in_train(tmp_path: Path, data_root: Path, *extra: str):
    """``_job`` with 10 training sentences added to dev, seed 7 and few_shot: each seed trains on
    its own part of the rows, so the dev-in-train count is per seed of the models trained."""
    job = _job(tmp_path, data_root, "seed=7", "finetune.few_shot=25", *extra)
    dev = (tmp_path / "ug-dev.conll").read_text(encoding="utf-8").strip().split("\n\n")
    train = (tmp_path / "ug-train.conll").read_text(encoding="utf-8").strip().split("\n\n")
    (tmp_path / "ug-dev.conll").write_text("\n\n".join(dev + train[:10]) + "\n", encoding="utf-8")
    return job


def test_save_best_retrains_once_per_evaluation_seed_and_keeps_the_best_seeds_model(ray_session, tmp_path,
                                                                                     data_root):
    from lrl.pipeline.stage import StageContext
    from lrl.tune import stage

    calls = tmp_path / "calls"
    calls.mkdir()
    job = _job_with_dev_in_train(tmp_path, data_root, "tune.save_best=true", "evaluate.seeds=[3,5,8]")
    out = Path(stage.run_tune(StageContext(job), train_fn=_stand_in(calls)))
    # the trial with the job's seed; the retrains with evaluate.seeds, each once (not the job's seed)
    assert _calls(calls) == {"trial": [7], "retrain": [3, 5, 8]}
    (best,) = json.loads((out / "best.json").read_text())
    assert best["best_seed"] == 5 and best["retrain_seeds"] == 3
    assert best["retrain_dev_f1"] == pytest.approx(sum(RETRAIN_F1.values()) / 3)
    assert (out / "models/ug/weights.bin").read_text() == "seed 5"  # the best seed's model is the saved one
    results = json.loads((out / "results.json").read_text())
    group = results["groups"]["ug"]
    assert results["seeds"] == [3, 5, 8] and group["best_seed"] == 5
    assert [(r["seed"], r["dev_f1"]) for r in group["runs"]] == sorted(RETRAIN_F1.items())
    # few_shot picks each seed's rows: the dev-in-train count is per seed of every model trained
    by_seed = json.loads((out / "manifest.json").read_text())["dev_sentences_in_train_by_seed"]["ug"]
    assert sorted(map(int, by_seed)) == [3, 5, 7, 8]


def test_without_save_best_evaluation_seeds_are_not_read(ray_session, tmp_path, data_root, monkeypatch):
    """Nothing is retrained, so ``evaluate.seeds`` does not name the output: a changed list searched
    every language again for the same trials. With save_best it names the output."""
    from lrl.pipeline.stage import StageContext
    from lrl.tune import stage

    calls = tmp_path / "calls"
    calls.mkdir()
    first = Path(stage.run_tune(StageContext(_job_with_dev_in_train(tmp_path, data_root, "evaluate.seeds=[3,5]")),
                                train_fn=_stand_in(calls)))
    assert _calls(calls) == {"trial": [7], "retrain": []}
    assert not (first / "results.json").exists() and not (first / "models").exists()
    manifest = json.loads((first / "manifest.json").read_text())
    assert list(manifest["dev_sentences_in_train_by_seed"]["ug"]) == ["7"]  # the trials' seed only
    again = stage.run_tune(StageContext(_job_with_dev_in_train(tmp_path, data_root, "evaluate.seeds=[1]")),
                           train_fn=lambda *a, **k: pytest.fail("searched again"))
    assert Path(again) == first
    named: list[dict] = []  # with save_best the seeds name it: the config of the output, not searched

    class Named(Exception):
        pass

    def spy(root, name, config, inputs=None):
        named.append(config)
        raise Named

    monkeypatch.setattr(stage, "StageOutput", spy)
    for seeds in ("evaluate.seeds=[3,5]", "evaluate.seeds=[1]"):
        with pytest.raises(Named):
            stage.run_tune(StageContext(_job_with_dev_in_train(tmp_path, data_root, "tune.save_best=true", seeds)))
    assert [c["seeds"] for c in named] == [[3, 5], [1]]
