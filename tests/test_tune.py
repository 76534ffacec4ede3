"""Per-language Ray Tune search: config, search space, ASHA early stops, a real 3-trial search."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lrl.config import ConfigError
from lrl.job import load_job


def _slice(src: Path, dst: Path, sentences: int) -> None:
    """The first ``sentences`` sentences of a CoNLL file (keeps the test's dev evaluations cheap)."""
    blocks = src.read_text(encoding="utf-8").split("\n\n")[:sentences]
    dst.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def _job(tmp_path: Path, data_root: Path | None, *extra: str):
    over = [f"output.root={tmp_path / 'runs'}", "tune.languages=[ug]"]
    if data_root is not None:
        _slice(data_root / "wikiann/ug/train", tmp_path / "train.conll", 300)
        _slice(data_root / "wikiann/ug/dev", tmp_path / "dev.conll", 80)
        over += [f"data.root={tmp_path}",
                 "data.ner=[{path: train.conll, lang: ug, split: train}, {path: dev.conll, lang: ug, split: dev}]"]
    return load_job(None, over + list(extra))


def test_search_space_is_validated_at_load():
    with pytest.raises(ConfigError, match=r"tune\.space"):
        load_job(None, ["tune.space.lr_min=1e-2", "tune.space.lr_max=1e-4"])
    with pytest.raises(ConfigError, match=r"tune\.space\.batch_size"):
        load_job(None, ["tune.space.batch_size=[]"])
    with pytest.raises(ConfigError, match=r"tune\.scheduler"):
        load_job(None, ["tune.scheduler=hyperband"])


def test_grid_space_and_concurrency():
    from lrl.tune.search import concurrency, grid_size, lr_grid, param_space

    cfg = load_job(None, ["tune.search=grid", "tune.space.lr_grid_points=3", "tune.space.batch_size=[8,16]",
                          "tune.space.lr_min=1e-4", "tune.space.lr_max=1e-2", "tune.space.warmup_ratio=[0.0,0.1]",
                          "tune.space.dropout=[0.1]"]).tune
    assert grid_size(cfg) == 3 * 2 * 2  # lr x batch x warmup
    lrs = lr_grid(1e-4, 1e-2, 3)
    assert lrs[0] == pytest.approx(1e-4) and lrs[1] == pytest.approx(1e-3) and lrs[2] == pytest.approx(1e-2)
    space = param_space(cfg)
    assert space["lr"] == {"grid_search": lrs} and space["dropout"] == 0.1
    assert set(space) == {"lr", "batch_size", "warmup_ratio", "dropout"}  # unset lists are not searched
    # 2 CPUs, 1 CPU per trial -> 2 trials at once; max_concurrent lowers it; fractions raise it.
    assert concurrency(cfg, 2.0) == 2
    assert concurrency(cfg.model_copy(update={"max_concurrent": 1}), 2.0) == 1
    assert concurrency(cfg.model_copy(update={"cpus_per_trial": 0.5}), 2.0) == 4


def test_finetune_with_sets_searched_fields():
    from lrl.tune.search import finetune_with

    base = load_job(None).finetune
    ft = finetune_with(base, {"lr": 3e-4, "batch_size": 8, "epochs": 2.0, "warmup_ratio": 0.1,
                              "freeze_layers": 1, "dropout": 0.2, "schedule": "cosine"})
    assert (ft.lr, ft.batch_size, ft.epochs, ft.freeze_layers, ft.dropout) == (3e-4, 8, 2.0, 1, 0.2)
    assert ft.schedule.type == "cosine" and ft.schedule.warmup_ratio == 0.1
    # one_cycle has its own rise: warmup is dropped instead of failing validation in the trial.
    assert finetune_with(base, {"schedule": "one_cycle", "warmup_ratio": 0.1}).schedule.warmup_ratio == 0.0


def test_asha_stops_weak_trials_early(ray_session, tmp_path):
    """Sequential trials (max_concurrent=1) with scores fixed by the learning rate make ASHA's
    decisions deterministic: the first trial sets each rung, weaker later ones stop at the first."""
    from types import SimpleNamespace

    from lrl.tune.search import make_scheduler, search_language

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        quality = {1e-4: 0.9, 1e-3: 0.5, 1e-2: 0.2, 1e-1: 0.1}[round(cfg.lr, 6)]
        hist = []
        for i in range(1, 5):
            hist.append({"step": i, "epoch": i / 4, "train_loss": 1.0 / i, "dev_f1": quality * i / 4,
                         "lr": cfg.lr, "time_s": 0.0})
            if report:
                report(dict(hist[-1]))
        return SimpleNamespace(dev_f1=quality, per_type={}, per_lang={}, history=hist, model_dir=None)

    job = _job(tmp_path, None, "tune.search=grid", "tune.space.lr_min=1e-4", "tune.space.lr_max=1e-1",
               "tune.space.lr_grid_points=4", "tune.space.warmup_ratio=[0.0]", "tune.space.batch_size=[8]",
               "tune.max_concurrent=1", "tune.grace_period=1", "tune.reduction_factor=2")
    sched = make_scheduler(job.tune)
    assert type(sched).__name__ == "AsyncHyperBandScheduler"
    assert min(m for m, _ in sched._brackets[0]._rungs) == 1  # first rung = grace period
    import signal

    import pyarrow as pa

    empty = pa.table({"x": [1]})
    ctrl_c = signal.getsignal(signal.SIGINT)
    res = search_language("ug", empty, empty, job.tune, job.finetune, "unused", 0, train_fn=stand_in)
    # Tune's own Ctrl-C handler, left installed, swallowed a Ctrl-C during the retraining after it.
    assert signal.getsignal(signal.SIGINT) is ctrl_c
    by_lr = {round(t["lr"], 6): t for t in res.trials}
    assert len(by_lr) == 4
    assert by_lr[1e-4]["evaluations"] == 4 and by_lr[1e-4]["finished"] and not by_lr[1e-4]["stopped_early"]
    stopped = [t for t in res.trials if t["stopped_early"]]
    assert len(stopped) >= 1 and all(t["evaluations"] < 4 for t in stopped)
    assert res.best["lr"] == pytest.approx(1e-4) and res.best["dev_f1"] == pytest.approx(0.9)


def test_trials_ended_at_max_t_are_named_and_warned(ray_session, tmp_path):
    """A trial with more dev evaluations than tune.max_t is ended there by ASHA: it was shown as
    neither finished nor stopped early, and its dev F1 (of a shorter training than the retrained
    best model gets) was taken as the config's without a word."""
    from types import SimpleNamespace

    import pyarrow as pa

    from lrl.tune.search import cut_trials, search_language

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        hist = [{"step": i, "epoch": i / 4, "train_loss": 1.0 / i, "dev_f1": cfg.lr * i, "lr": cfg.lr, "time_s": 0.0}
                for i in range(1, 5)]
        for h in hist:
            if report:
                report(dict(h))
        return SimpleNamespace(dev_f1=hist[-1]["dev_f1"], per_type={}, per_lang={}, history=hist, model_dir=None)

    job = _job(tmp_path, None, "tune.search=grid", "tune.space.lr_min=1e-3", "tune.space.lr_max=1e-3",
               "tune.space.lr_grid_points=1", "tune.space.warmup_ratio=[0.0]", "tune.space.batch_size=[8]",
               "tune.max_concurrent=1", "tune.grace_period=1", "tune.max_t=2")
    empty = pa.table({"x": [1]})
    res = search_language("ug", empty, empty, job.tune, job.finetune, "unused", 0, train_fn=stand_in)
    cut = [t for t in res.trials if t["cut_at_max_t"]]
    assert cut and all(t["evaluations"] == 2 and not t["finished"] and not t["stopped_early"] for t in cut)
    warning = cut_trials(job.tune, "ug", res.trials, res.best)
    assert warning and f"{len(cut)} trial(s) were ended at tune.max_t=2" in warning
    assert cut_trials(job.tune, "ug", [{**t, "cut_at_max_t": False} for t in res.trials], res.best) is None
    # time_s is the trial's own training clock (0 here), wall_s Ray's (with the worker's start-up)
    assert all(t["time_s"] == 0.0 and t["wall_s"] > 0.0 for t in res.trials)


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory, data_root):
    from lrl.data.readers import read_conll
    from lrl.train.finetune_scratch import build_scratch_encoder

    sents = read_conll(str(data_root / "wikiann/ug/train"), "ug").table.column("tokens").to_pylist()[:400]
    out = tmp_path_factory.mktemp("enc")
    return build_scratch_encoder(out, sents, ["ug"], vocab_size=600, hidden=32, layers=1, heads=2, max_positions=64)


def test_three_trial_tune_picks_best_by_dev_f1(ray_session, tmp_path, data_root, tiny_encoder):
    """A real search: 3 trials of train_tagger on 2 CPUs, the best retrained and saved with a card."""
    from lrl.evaluate.model_card import read_front_matter
    from lrl.pipeline.stage import StageContext
    from lrl.tune.stage import run_tune

    job = _job(tmp_path, data_root, f"tune.model_path={tiny_encoder}", "tune.num_samples=3",
               "tune.space.lr_min=1e-3", "tune.space.lr_max=5e-2", "tune.space.batch_size=[16]",
               "tune.grace_period=2", "finetune.few_shot=150", "finetune.max_steps=30", "finetune.eval_every=10",
               "finetune.max_length=48", "tune.cpus_per_trial=1", "evaluate.seeds=[0, 1]")
    out = Path(run_tune(StageContext(job)))
    trials = json.loads((out / "trials.json").read_text())
    best = json.loads((out / "best.json").read_text())
    assert len(trials) == 3 and all(t["error"] is None for t in trials)
    assert all(1 <= t["evaluations"] <= 3 for t in trials)
    assert len({t["lr"] for t in trials}) == 3
    assert best[0]["lang"] == "ug"
    assert best[0]["dev_f1"] == max(t["dev_f1"] for t in trials)
    assert best[0]["dev_f1"] > 0  # the tiny model learned something, so the choice is not a tie at 0
    top = max(trials, key=lambda t: t["dev_f1"])
    assert best[0]["trial_id"] == top["trial_id"] and best[0]["lr"] == top["lr"]
    assert (out / "best.csv").read_text().startswith("lang,")
    model = out / "models" / "ug"
    assert (model / "config.json").is_file() and (model / "model.safetensors").is_file()
    assert not math.isnan(best[0]["retrain_dev_f1"])
    # The best configuration is retrained once per evaluation seed (scores over seeds, as finetune
    # reports them), and the best seed's model is the one saved.
    results = json.loads((out / "results.json").read_text())
    runs = results["groups"]["ug"]["runs"]
    assert [r["seed"] for r in runs] == [0, 1] and best[0]["retrain_seeds"] == 2
    assert results["groups"]["ug"]["best_seed"] == max(runs, key=lambda r: r["dev_f1"])["seed"] == best[0]["best_seed"]
    assert results["groups"]["ug"]["summary"]["f1"]["n"] == 2
    assert best[0]["retrain_dev_f1"] == pytest.approx(sum(r["dev_f1"] for r in runs) / 2)
    fm = read_front_matter((model / "README.md").read_text())
    assert fm["language"] == ["ug"] and "token-classification" in fm["tags"]
    # The card counts the sentences the saved model trained on (few_shot=150 of 300), not the file's.
    assert "| train (after few-shot / augmentation mix) | ug | train | 150 |" in (model / "README.md").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["trials"] == 3 and manifest["scheduler"] == "asha"
    # Same config and inputs: the finished folder is returned without a new search.
    assert run_tune(StageContext(job)) == str(out)


def test_scratch_encoder_left_half_written_by_a_killed_run_is_rebuilt(tmp_path, monkeypatch):
    """A run killed while building the preset encoder must not leave a folder that looks finished."""
    from lrl.data.schema import ner_table
    from lrl.train import finetune_scratch
    from lrl.tune.splits import _scratch

    table = ner_table([{"id": f"ug:{i}", "lang": "ug", "tokens": ["a", "b"], "tags": ["O", "B-PER"]}
                       for i in range(4)])
    real = finetune_scratch.build_preset_encoder

    def killed(out, *args, **kwargs):  # config.json is written, the weights never are
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(finetune_scratch, "build_preset_encoder", killed)
    with pytest.raises(KeyboardInterrupt):
        _scratch(str(tmp_path), "preset:tiny", {"ug": (table, table)}, 0)
    monkeypatch.setattr(finetune_scratch, "build_preset_encoder", real)
    path = _scratch(str(tmp_path), "preset:tiny", {"ug": (table, table)}, 0)
    assert (Path(path) / "model.safetensors").is_file()


def test_grid_size_counts_the_learning_rates_the_grid_really_has():
    """Equal bounds (or points closer than the 3 significant digits kept) give fewer distinct
    learning rates than ``lr_grid_points``: the grid must not run duplicates nor the manifest
    promise trials that never run."""
    from lrl.tune.search import grid_size, lr_grid, param_space

    cfg = load_job(None, ["tune.search=grid", "tune.space.lr_min=1e-3", "tune.space.lr_max=1e-3",
                          "tune.space.lr_grid_points=3", "tune.space.warmup_ratio=[0.0]",
                          "tune.space.batch_size=[16]"]).tune
    assert grid_size(cfg) == len(param_space(cfg)["lr"]["grid_search"]) == 1
    lrs = lr_grid(1e-3, 1.0004e-3, 3)
    assert len(lrs) == len(set(lrs))


def test_storage_path_does_not_change_the_output(ray_session, tmp_path, data_root, monkeypatch):
    """Where Tune keeps its trial folders changes no result: a finished search is found again when
    only ``tune.storage_path`` differs, instead of searching again."""
    from types import SimpleNamespace

    from lrl.pipeline.stage import StageContext
    from lrl.tune import stage

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        if report:
            report({"step": 1, "dev_f1": cfg.lr})
        return SimpleNamespace(dev_f1=cfg.lr, per_type={}, per_lang={}, history=[], model_dir=None)

    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "config.json").write_text("{}")
    opts = [f"tune.model_path={enc}", "tune.num_samples=1", "tune.save_best=false"]
    first = stage.run_tune(StageContext(_job(tmp_path, data_root, *opts)), train_fn=stand_in)

    def no_search(*args, **kwargs):
        raise AssertionError("searched again")

    monkeypatch.setattr(stage, "search_language", no_search)
    job = _job(tmp_path, data_root, *opts, f"tune.storage_path={tmp_path / 'store'}")
    assert stage.run_tune(StageContext(job), train_fn=stand_in) == first


def test_ctrl_c_during_the_search_stops_the_stage(ray_session, tmp_path, data_root, monkeypatch):
    """Ctrl-C while Tune searches is a stop (``KeyboardInterrupt``: ``lrl run`` says STOPPED,
    exit 130), not a failure, and leaves no output behind. Tune's own handler ended the search and
    returned what it had, so the stage failed with "no trial reported dev_f1 (no trials)" (or, had
    a trial reported, committed a cut-short search as finished)."""
    import signal

    from ray import tune
    from ray.tune.tune import _setup_signal_catching

    from lrl.pipeline.stage import StageContext
    from lrl.signals import Terminated
    from lrl.tune import stage

    class CtrlCInFit:
        """``tune.Tuner`` with Ray's real Ctrl-C set-up (what ``tune.run`` does when ``fit``
        starts); the user then presses Ctrl-C (the handler in force is called: no real signal,
        which could hit pytest outside this test) before any trial reported."""

        def __init__(self, *args, **kwargs):
            pass

        def fit(self):
            _setup_signal_catching()
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
            return []  # Tune returns the trials it has, none scored

    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "config.json").write_text("{}")
    job = _job(tmp_path, data_root, f"tune.model_path={enc}", "tune.num_samples=2", "tune.save_best=false")
    monkeypatch.setattr(tune, "Tuner", CtrlCInFit)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's, as in `lrl`
    try:
        with pytest.raises(KeyboardInterrupt) as stopped:
            stage.run_tune(StageContext(job))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not isinstance(stopped.value, Terminated)  # a Ctrl-C, not a SIGTERM
    assert not list((tmp_path / "runs").glob("*tune-*"))  # no output, finished or temporary


@pytest.mark.parametrize("command,module,fn", [("tune", "lrl.tune.stage", "run_tune"),
                                               ("finetune", "lrl.train.finetune", "run_finetune")])
def test_stage_command_warns_of_a_language_without_dev_data(tmp_path, monkeypatch, capsys, command, module, fn):
    """Run alone (not through ``lrl run``, which checks first), ``lrl tune`` and ``lrl finetune``
    left a language with training sentences but no dev ones out of training and the report
    without a word."""
    import importlib

    from lrl.cli import main

    job = tmp_path / "job.yaml"
    job.write_text("data:\n  ner: [{path: ug.conll, lang: ug, split: train}, {path: ug-dev.conll, lang: ug, "
                   "split: dev}, {path: wo.conll, lang: wo, split: train}]\n")
    ran = []
    monkeypatch.setattr(importlib.import_module(module), fn, lambda ctx: ran.append(ctx) or str(tmp_path))
    assert main([command, str(job)]) == 0 and ran
    err = capsys.readouterr().err
    assert "no split: dev source for ['wo']" in err and f"{command} trains, evaluates and reports only" in err


def test_a_preset_is_one_encoder_in_tune_and_in_finetune(tmp_path, data_root):
    """``preset:<name>`` meant two models: ``train_tagger`` built ``lrl.model.build``'s preset
    (4000 pieces, the languages in its config, positions for ``finetune.max_length``), the tune
    stage a plain BertConfig (2000 pieces, 256 positions), so tune searched on another model than
    the one the name trained. The same rows, seed and max_length now give the same encoder, and
    the same token type ids (language ids) are fed to it."""
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune_data import label_list
    from lrl.train.finetune_model import Tagger
    from lrl.train.tagger import _load_encoder
    from lrl.tune.splits import language_splits, resolve_model

    ner = "data.ner=[{path: wikiann/ug/train, lang: ug, split: train}, {path: wikiann/ug/dev, lang: ug, split: dev}]"
    job = load_job(None, [f"data.root={data_root}", ner, f"output.root={tmp_path}", "finetune.model=preset:tiny",
                          "finetune.max_length=96"])
    splits = language_splits(StageContext(job), stage="tune", said=[])
    train, dev = splits["ug"]
    labels = label_list([train, dev])
    tuned = Tagger.from_encoder(resolve_model(StageContext(job), splits), labels, max_length=96)
    trained = _load_encoder(job.finetune, "preset:tiny", labels, train, job.seed)  # train_tagger's
    keys = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "max_position_embeddings", "type_vocab_size", "hidden_dropout_prob",
            "attention_probs_dropout_prob", "pad_token_id", "lrl_lang_embedding", "lrl_langs")
    tuned_conf, trained_conf = ({k: getattr(t.model.config, k, None) for k in keys} for t in (tuned, trained))
    assert tuned_conf == trained_conf
    assert trained_conf["vocab_size"] > 2000 and trained_conf["max_position_embeddings"] == 96
    assert tuned.tokenizer.get_vocab() == trained.tokenizer.get_vocab()
    assert tuned.lang_types == trained.lang_types  # what collate turns into token_type_ids
    ours, theirs = tuned.model.state_dict(), trained.model.state_dict()
    assert all(ours[k].equal(theirs[k]) for k in ours if k.startswith("bert."))  # the same initial weights


def test_a_trial_stopped_at_its_last_evaluation_ran_in_full(ray_session, tmp_path):
    """ASHA ends a trial at tune.max_t evaluations; when that is the trial's last evaluation (its
    run's last step), the closing marker never arrives, and the trial was shown as stopped early or
    cut although it trained in full (found by a user's audit: the best trial of a search)."""
    from types import SimpleNamespace

    import pyarrow as pa

    from lrl.tune.search import search_language

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        hist = [{"step": i, "epoch": i / 4, "train_loss": 1.0 / i, "dev_f1": cfg.lr * i, "lr": cfg.lr, "time_s": 0.0}
                for i in range(1, 5)]
        for h in hist:
            if report:
                report({**h, "total_steps": 4})
        return SimpleNamespace(dev_f1=hist[-1]["dev_f1"], per_type={}, per_lang={}, history=hist, model_dir=None)

    job = _job(tmp_path, None, "tune.search=grid", "tune.space.lr_min=1e-3", "tune.space.lr_max=1e-3",
               "tune.space.lr_grid_points=1", "tune.space.warmup_ratio=[0.0]", "tune.space.batch_size=[8]",
               "tune.max_concurrent=1", "tune.grace_period=1", "tune.max_t=4")
    empty = pa.table({"x": [1]})
    res = search_language("ug", empty, empty, job.tune, job.finetune, "unused", 0, train_fn=stand_in)
    (trial,) = res.trials
    assert trial["evaluations"] == 4
    assert trial["finished"] and not trial["stopped_early"] and not trial["cut_at_max_t"]

