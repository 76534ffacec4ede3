"""What ``lrl tune`` prints about where its results are: the stage's output folder, never the
temporary trial folder that Ray Tune's banner named (and that is gone when the search ends)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

from lrl.job import load_job


def _job(tmp_path: Path, data_root: Path, *extra: str):
    """ug train/dev slices of WikiANN (a few sentences: the stand-in trainer never reads them)."""
    for split, n in (("train", 20), ("dev", 10)):
        blocks = (data_root / "wikiann/ug" / split).read_text(encoding="utf-8").split("\n\n")[:n]
        (tmp_path / f"{split}.conll").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    enc = tmp_path / "enc"
    enc.mkdir(exist_ok=True)
    (enc / "config.json").write_text('{"num_hidden_layers": 2}')
    return load_job(None, [f"output.root={tmp_path / 'runs'}", "tune.languages=[ug]", f"data.root={tmp_path}",
                           "data.ner=[{path: train.conll, lang: ug, split: train}, "
                           "{path: dev.conll, lang: ug, split: dev}]", f"tune.model_path={enc}",
                           "tune.search=grid", "tune.space.lr_grid_points=1", "tune.save_best=false", *extra])


def test_the_search_names_the_output_folder_not_a_temporary_trial_folder(ray_session, tmp_path, data_root,
                                                                           capfd):
    """Ray Tune printed, whatever ``verbose``, "View detailed results here: /tmp/lrl-tune-.../..."
    (a folder removed after the search), a TensorBoard command and "Wrote the latest version of
    all result files ... to '/tmp/lrl-tune-...'": all a user of ``lrl tune`` saw of where the
    results were, besides the last line."""
    from lrl.pipeline.stage import StageContext
    from lrl.tune.stage import run_tune

    def _stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        # defined here: trial workers get it by value (a test module's function is not importable there)
        if report:
            report({"step": 1, "dev_f1": 0.5})
        return SimpleNamespace(dev_f1=0.5, per_type={}, per_lang={}, history=[], model_dir=None)

    before = {k: os.environ.get(k) for k in ("RAY_AIR_NEW_OUTPUT", "TUNE_DISABLE_SIGINT_HANDLER")}
    out = run_tune(StageContext(_job(tmp_path, data_root)), train_fn=_stand_in)
    printed = capfd.readouterr()
    text = printed.out + printed.err
    assert f"tune: ug: searching 1 configuration(s), 20 train / 10 dev sentences, scheduler asha; results in {out}\n" \
        in printed.out
    assert "lrl-tune-" not in text and "View detailed results" not in text and "tensorboard" not in text
    assert "Wrote the latest version" not in text
    assert {k: os.environ.get(k) for k in before} == before  # Ray's switches set for the search only
    # With tune.storage_path the trial folders stay, and the line says where they are.
    trials = tmp_path / "trials"
    out = run_tune(StageContext(_job(tmp_path, data_root, f"tune.storage_path={trials}", "finetune.lr=1e-4")),
                   train_fn=_stand_in)
    name = Path(out).name.removeprefix("tune-")
    assert f"results in {out}; trial folders {trials}/tune-{name}-ug\n" in capfd.readouterr().out
    assert (trials / f"tune-{name}-ug").is_dir()
