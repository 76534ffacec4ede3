"""Tune settings that can never work are errors before any trial; a stopped multi-language search
keeps the languages it finished; tiny dev sets and tied scores are said in the tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lrl.config import ConfigError
from lrl.job import load_job


def _job(tmp_path: Path, data_root: Path, *extra: str, langs: tuple[str, ...] = ("ug",)):
    """WikiANN train/dev slices per language (stand-in trainers never read the sentences)."""
    ner = []
    for lang in langs:
        for split, n in (("train", 30), ("dev", 20)):
            blocks = (data_root / "wikiann" / lang / split).read_text(encoding="utf-8").split("\n\n")[:n]
            (tmp_path / f"{lang}-{split}.conll").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
            ner.append(f"{{path: {lang}-{split}.conll, lang: {lang}, split: {split}}}")
    enc = tmp_path / "enc"
    enc.mkdir(exist_ok=True)
    (enc / "config.json").write_text("{}")
    return load_job(None, [f"output.root={tmp_path / 'runs'}", f"tune.languages=[{','.join(langs)}]",
                           f"data.root={tmp_path}", f"data.ner=[{', '.join(ner)}]", f"tune.model_path={enc}",
                           "tune.num_samples=1", "tune.save_best=false", *extra])


def test_grace_period_above_max_t_is_an_error_at_load():
    """Ray's ASHAScheduler asserted it when the search started (after pretraining had run):
    the stage failed with a bare AssertionError "grace_period must be <= max_t!"."""
    with pytest.raises(ConfigError, match=r"grace_period 5 is above max_t 2"):
        load_job(None, ["tune.grace_period=5", "tune.max_t=2"])
    assert load_job(None, ["tune.grace_period=5", "tune.max_t=2", "tune.scheduler=fifo"]).tune.max_t == 2


@pytest.mark.parametrize("setting, message", [
    ("tune.cpus_per_trial=3", r"tune\.cpus_per_trial=3: no trial can ever be placed .* at most 2 CPUs"),
    ("tune.gpus_per_trial=1", r"gpus_per_trial=1: no trial can ever be placed .* 0 GPUs on one"),
])
def test_trial_that_no_node_can_hold_fails_before_the_search(ray_session, tmp_path, data_root, monkeypatch,
                                                             setting, message):
    """On the embedded Ray of 2 CPUs, ``cpus_per_trial: 3`` (or a GPU per trial without a GPU)
    left Ray Tune waiting for ever ("No trial is running ... the cluster only has 2.0 CPUs")."""
    from lrl.pipeline.stage import StageContext
    from lrl.tune import stage

    def no_search(*args, **kwargs):
        raise AssertionError("the search started")

    monkeypatch.setattr(stage, "search_language", no_search)
    with pytest.raises(ConfigError, match=message):
        stage.run_tune(StageContext(_job(tmp_path, data_root, setting)))
    assert not list((tmp_path / "runs").glob("*tune-*"))


def test_a_rerun_keeps_the_languages_a_stopped_search_finished(ray_session, tmp_path, data_root, monkeypatch):
    """The stage wrote its output only once every language was searched: a run that failed (or
    was stopped) in its second language searched the first one again on the rerun."""
    from types import SimpleNamespace

    from lrl.pipeline.stage import StageContext
    from lrl.tune import search, stage

    # am's trial fails on every attempt: Tune's retry of it (tests/test_tune_stops.py,
    # tests/test_tune_space.py) only started a second trial process that failed the same way.
    monkeypatch.setattr(search, "TRIAL_RETRIES", 0)

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        lang = train.column("lang")[0].as_py()
        if lang == "am" and not (tmp_path / "am_works").exists():  # beside the encoder: its
            # content names it in the stage's hash (a file added inside would be another model)
            raise RuntimeError("am trial host lost")
        if report:
            report({"step": 1, "dev_f1": cfg.lr})
        if out_dir is not None:
            (Path(out_dir) / "weights.bin").write_text(f"{lang} seed {seed}")
        return SimpleNamespace(dev_f1=cfg.lr, per_type={}, per_lang={}, history=[], model_dir=None)

    job = _job(tmp_path, data_root, "tune.save_best=true", "evaluate.seeds=[0]", langs=("ug", "am"))
    with pytest.raises(RuntimeError, match="tune am: no trial reported dev_f1"):
        stage.run_tune(StageContext(job), train_fn=stand_in)
    assert not list((tmp_path / "runs").glob("tune-*"))  # no output: the stage did not finish
    searched = []
    real = stage.search_language
    monkeypatch.setattr(stage, "search_language", lambda lang, *a, **k: searched.append(lang) or real(lang, *a, **k))
    (tmp_path / "am_works").touch()
    out = Path(stage.run_tune(StageContext(job), train_fn=stand_in))
    assert searched == ["am"]  # ug was finished by the first run
    best = {r["lang"]: r for r in json.loads((out / "best.json").read_text())}
    assert set(best) == {"ug", "am"} and best["ug"]["trials"] == 1
    assert [t["lang"] for t in json.loads((out / "trials.json").read_text())] == ["ug", "am"]
    assert (out / "models" / "ug" / "weights.bin").read_text() == "ug seed 0"  # the first run's model
    assert (out / "models" / "am" / "weights.bin").read_text() == "am seed 0"
    assert set(json.loads((out / "results.json").read_text())["groups"]) == {"ug", "am"}
    assert json.loads((out / "manifest.json").read_text())["kept_from_earlier_run"] == ["ug"]
    assert not list((tmp_path / "runs").glob(".tune-*"))  # committed: nothing kept beside it


def test_adding_a_language_searches_only_that_language(ray_session, tmp_path, data_root, monkeypatch):
    """A language's search depends on its own data, the encoder and the settings: adding am to a
    finished ug search (a new stage folder) searched ug again. Now ug comes from the first output;
    a changed setting still searches every language."""
    from types import SimpleNamespace

    from lrl.pipeline.stage import StageContext
    from lrl.tune import stage

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        lang = train.column("lang")[0].as_py()
        if report:
            report({"step": 1, "dev_f1": cfg.lr})
        if out_dir is not None:
            (Path(out_dir) / "weights.bin").write_text(f"{lang} lr {cfg.lr}")
        return SimpleNamespace(dev_f1=cfg.lr, per_type={}, per_lang={}, history=[], model_dir=None)

    searched = []
    real = stage.search_language
    monkeypatch.setattr(stage, "search_language", lambda lang, *a, **k: searched.append(lang) or real(lang, *a, **k))
    opts = ("tune.save_best=true", "evaluate.seeds=[0]")
    first = Path(stage.run_tune(StageContext(_job(tmp_path, data_root, *opts, langs=("ug",))), train_fn=stand_in))
    assert searched == ["ug"]
    second = Path(stage.run_tune(StageContext(_job(tmp_path, data_root, *opts, langs=("ug", "am"))),
                                 train_fn=stand_in))
    assert second != first and searched == ["ug", "am"]  # am only
    rows = {r["lang"]: r for r in json.loads((second / "best.json").read_text())}
    assert rows["ug"] == json.loads((first / "best.json").read_text())[0]
    assert [t["lang"] for t in json.loads((second / "trials.json").read_text())] == ["ug", "am"]
    assert (second / "models/ug/weights.bin").read_text() == (first / "models/ug/weights.bin").read_text()
    assert set(json.loads((second / "results.json").read_text())["groups"]) == {"ug", "am"}
    manifest = json.loads((second / "manifest.json").read_text())
    assert manifest["kept_from_earlier_run"] == ["ug"]
    assert manifest["language_keys"]["ug"] == json.loads((first / "manifest.json").read_text())["language_keys"]["ug"]
    # A source whose model folder was removed since is no source: that language is searched again.
    import shutil

    shutil.rmtree(first / "models/ug")
    shutil.rmtree(second)
    stage.run_tune(StageContext(_job(tmp_path, data_root, *opts, langs=("am", "ug"))), train_fn=stand_in)
    assert searched == ["ug", "am", "am", "ug"]
    # Another learning-rate range is another search, for both languages.
    stage.run_tune(StageContext(_job(tmp_path, data_root, *opts, "tune.space.lr_max=2e-3", langs=("ug", "am"))),
                   train_fn=stand_in)
    assert searched == ["ug", "am", "am", "ug", "ug", "am"]
    assert not list((tmp_path / "runs").glob(".tune-*"))  # committed: nothing kept beside them


def test_best_row_says_how_far_a_tiny_dev_set_tells_trials_apart(ray_session, tmp_path, data_root, capsys):
    """WikiANN am's dev set has 100 sentences (110 entities, about 0.9 F1 points each): a 4-trial
    search picked lr 1.21e-4 at 6.45 F1 over lr 1.08e-4 at 6.25, and the table and ``lrl tune``
    printed it as the best configuration without a word on what the dev set can resolve."""
    from types import SimpleNamespace

    from lrl.data.readers import read_conll
    from lrl.pipeline.stage import StageContext
    from lrl.tune.command import _resolution
    from lrl.tune.stage import run_tune

    scores = {1e-4: 0.50, 1e-3: 0.49, 1e-2: 0.30}  # 1e-3 within one entity of the best, 1e-2 not

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        f1 = scores[round(cfg.lr, 6)]
        if report:
            report({"step": 1, "dev_f1": f1})
        return SimpleNamespace(dev_f1=f1, per_type={}, per_lang={}, history=[], model_dir=None)

    job = _job(tmp_path, data_root, "tune.search=grid", "tune.space.lr_min=1e-4", "tune.space.lr_max=1e-2",
               "tune.space.lr_grid_points=3")
    out = Path(run_tune(StageContext(job), train_fn=stand_in))
    (row,) = json.loads((out / "best.json").read_text())
    gold = read_conll(str(tmp_path / "ug-dev.conll"), "ug").table
    ents = sum(t.startswith("B-") for tags in gold.column("tags").to_pylist() for t in tags)
    assert 1 / ents > 0.01 and row["dev_sentences"] == 20 == gold.num_rows and row["dev_entities"] == ents
    assert row["lr"] == pytest.approx(1e-4) and row["close_trials"] == 1
    # one evaluation per trial and tune.grace_period=1: ASHA could stop nothing, which is said
    assert "tune ug: ASHA stopped nothing early: no trial evaluated on dev more than tune.grace_period=1" in \
        capsys.readouterr().err
    # no tune.storage_path: the trial folders were temporary, removed, and no row points to one
    assert all(t["trial_dir"] is None for t in json.loads((out / "trials.json").read_text()))
    assert _resolution(row) == (f"dev 20 sentences, {ents} entities: 1 other trial(s) within one entity "
                                f"({100 / ents:.1f} F1 points) of it; the dev set does not tell them apart")
    zero = {**row, "dev_f1": 0.0, "close_trials": 2}
    assert "no trial found a dev entity" in _resolution(zero)


def test_asha_that_could_stop_nothing_is_named():
    """``grace_period: 2`` with trials of 1-2 evaluations (once an epoch, ``epochs: [1, 2]``):
    every first rung was a trial's last evaluation and ASHA ran the search as FIFO, unsaid."""
    from lrl.tune.search import idle_scheduler

    asha = load_job(None, ["tune.grace_period=2"]).tune
    rows = [{"evaluations": 2}, {"evaluations": 1}]
    assert "ASHA stopped nothing early" in idle_scheduler(asha, "am", rows)
    assert idle_scheduler(asha, "am", rows + [{"evaluations": 3}]) is None  # one went past the rung
    assert idle_scheduler(asha.model_copy(update={"scheduler": "fifo"}), "am", rows) is None


def test_dev_entities_counts_spans_of_real_wikiann_dev_sets(data_root):
    from lrl.data.readers import read_conll
    from lrl.tune.search import dev_entities

    assert dev_entities(read_conll(str(data_root / "wikiann/am/dev"), "am").table) == 110
    assert dev_entities(read_conll(str(data_root / "wikiann/ug/dev"), "ug").table) == 222


def test_kept_trial_folders_are_per_search_and_named_in_trials(ray_session, tmp_path, data_root):
    """Under ``tune.storage_path`` every search of a language wrote into ``tune-<lang>``: two
    configs' trials (and experiment states) mixed in one folder, and trials.json did not say
    which folder was whose."""
    from types import SimpleNamespace

    from lrl.pipeline.stage import StageContext
    from lrl.tune.stage import run_tune

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        if report:
            report({"step": 1, "dev_f1": cfg.lr})
        return SimpleNamespace(dev_f1=cfg.lr, per_type={}, per_lang={}, history=[], model_dir=None)

    store = tmp_path / "store"
    outs = [Path(run_tune(StageContext(_job(tmp_path, data_root, f"tune.storage_path={store}", f"tune.num_samples={n}")),
                          train_fn=stand_in)) for n in (1, 2)]
    for out, n in zip(outs, (1, 2)):
        trials = json.loads((out / "trials.json").read_text())
        folder = store / f"{out.name}-ug"  # tune-<hash>-ug
        assert len(trials) == n and all(Path(t["trial_dir"]).parent == folder for t in trials)
        assert all((Path(t["trial_dir"]) / "result.json").is_file() for t in trials)
    assert sorted(p.name for p in store.iterdir()) == sorted(f"{o.name}-ug" for o in outs)


def test_lrl_tune_prints_every_searched_hyperparameter_and_the_dev_resolution(tmp_path, monkeypatch, capsys):
    """``lrl tune`` printed only lr and batch: a search over epochs, warmup and frozen layers (as
    jobs/wikiann_ug.yaml runs) hid most of its answer, and nothing said how small the dev set was."""
    from lrl.cli import main

    # output.root is the default "runs" of the working folder: this test's own, not the checkout's
    # (where the job's lock, .lrl-job.lock, would meet a concurrent `lrl` or test there: RootBusy)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "tune-x"
    out.mkdir()
    row = {"lang": "am", "lr": 1.2076e-4, "batch_size": 8, "epochs": 20.0, "warmup_ratio": 0.1, "freeze_layers": 1,
           "dropout": None, "schedule": "linear", "dev_f1": 0.0645, "trials": 4, "stopped_early": 1, "errored": 0,
           "dev_sentences": 100, "dev_entities": 110, "close_trials": 1}
    (out / "best.json").write_text(json.dumps([row]))
    monkeypatch.setattr("lrl.tune.stage.run_tune", lambda ctx: str(out))
    job = tmp_path / "job.yaml"
    job.write_text("data:\n  ner: [{path: am.conll, lang: am, split: train}, {path: am-dev.conll, lang: am, "
                   "split: dev}]\ntune:\n  space: {batch_size: [8, 16], epochs: [10.0, 20.0], "
                   "warmup_ratio: [0.0, 0.1], freeze_layers: [0, 1]}\n")
    assert main(["tune", str(job)]) == 0
    assert (tmp_path / "runs" / ".lrl-job.lock").is_file()
    printed = capsys.readouterr().out
    assert ("  am: dev F1 6.5 (lr 0.000121, batch_size 8, epochs 20.0, warmup_ratio 0.1, freeze_layers 1; "
            "4 trials, 1 stopped early)") in printed
    assert "    dev 100 sentences, 110 entities: 1 other trial(s) within one entity (0.9 F1 points)" in printed
    assert "(reused: finished" not in printed  # no manifest: the search was (as if) just run
    (out / "manifest.json").write_text("{}")  # finished before this command started: found, not run
    assert main(["tune", str(job)]) == 0
    assert "  (reused: finished " in capsys.readouterr().out


def test_tune_card_counts_the_trained_rows_as_such(ray_session, tmp_path, data_root):
    """The tune card put the trained row count (generated rows included) under the first train
    file's name: "wikiann/ug/train | ug | train | 5420" for a file of 1603 sentences. It is worded
    as the finetune stage's cards now, with the original sentences beside it."""
    from types import SimpleNamespace

    from lrl.pipeline.stage import StageContext
    from lrl.tune import stage

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        if report:
            report({"step": 1, "dev_f1": cfg.lr})
        if out_dir is not None:
            (Path(out_dir) / "weights.bin").write_text("w")
        return SimpleNamespace(dev_f1=cfg.lr, per_type={}, per_lang={}, history=[], model_dir=None,
                               info={"train_rows_per_lang": {"ug": 90}, "train_orig_rows_per_lang": {"ug": 30}})

    out = Path(stage.run_tune(StageContext(_job(tmp_path, data_root, "tune.save_best=true", "evaluate.seeds=[0]")),
                              train_fn=stand_in))
    card = (out / "models/ug/README.md").read_text(encoding="utf-8")
    assert "| train (after few-shot / augmentation mix) | ug | train | 90 |" in card
    assert "| train, original sentences only | ug | train | 30 |" in card
    assert "| dev | ug | dev | 20 |" in card and "ug-train.conll" not in card


_HOLDS = """
import sys, time
from lrl.data.root_lock import root_lock
with root_lock(sys.argv[1], sys.argv[2], "lrl tune"):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_training_stage_commands_hold_the_output_root_as_lrl_run_does(tmp_path, monkeypatch, capsys):
    """``lrl pretrain|finetune|tune`` keep hidden folders on the root between runs; two of them (or
    one beside ``lrl run``) raced there. They take the root's lock, and free it as they return."""
    import subprocess
    import sys

    from lrl.cli import main

    root, out = tmp_path / "runs", tmp_path / "tune-x"
    out.mkdir()
    monkeypatch.setattr("lrl.tune.stage.run_tune", lambda ctx: str(out))
    job = tmp_path / "job.yaml"
    job.write_text(f"output: {{root: {root}}}\ndata:\n  ner: [{{path: am.conll, lang: am, split: train}}, "
                   "{path: am-dev.conll, lang: am, split: dev}]\n")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDS, str(root), "job"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["tune", str(job)]) == 2
        assert "lrl tune: error: job 'job' is already running on the output root" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert main(["tune", str(job)]) == 0
    assert main(["tune", str(job)]) == 0  # the first call let go of the root as it returned


def test_tune_counts_dev_sentences_that_are_training_sentences(ray_session, tmp_path, data_root, capsys):
    """As the finetune stage: a dev F1 partly of sentences the model trained on is said, and the
    manifest counts them per language."""
    from types import SimpleNamespace

    from lrl.pipeline.stage import StageContext
    from lrl.tune import stage

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        if report:
            report({"step": 1, "dev_f1": 0.5})
        return SimpleNamespace(dev_f1=0.5, per_type={}, per_lang={}, history=[], model_dir=None)

    job = _job(tmp_path, data_root)
    train = (tmp_path / "ug-train.conll").read_text(encoding="utf-8").strip().split("\n\n")
    dev = (tmp_path / "ug-dev.conll").read_text(encoding="utf-8").strip().split("\n\n")
    (tmp_path / "ug-dev.conll").write_text("\n\n".join(dev + train[:3]) + "\n", encoding="utf-8")
    path = Path(stage.run_tune(StageContext(job), train_fn=stand_in))
    assert f"warning: tune ug: 3 of {len(dev) + 3} dev sentences are also training sentences" in capsys.readouterr().err
    assert json.loads((path / "manifest.json").read_text())["dev_sentences_in_train"] == {"ug": 3}


def test_tune_warns_of_an_encoder_that_reads_the_language_as_unknown_words(ray_session, tmp_path, data_root,
                                                                          capsys):
    from types import SimpleNamespace

    from lrl.pipeline.stage import StageContext
    from lrl.tune import stage

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        if report:
            report({"step": 1, "dev_f1": 0.5})
        if out_dir is not None:
            (Path(out_dir) / "weights.bin").write_text(f"seed {seed}")
        return SimpleNamespace(dev_f1=0.5, per_type={}, per_lang={}, history=[], model_dir=None,
                               info={"align": {"words": 100, "unk_words": 46}})

    stage.run_tune(StageContext(_job(tmp_path, data_root, "tune.save_best=true", "evaluate.seeds=[0]")),
                   train_fn=stand_in)
    assert "warning: tune ug: the encoder's tokenizer reads 46% of the training words" in capsys.readouterr().err


def test_tune_with_cuda_and_no_gpu_per_trial_stops_before_any_trial(tmp_path, data_root, monkeypatch):
    """As the finetune stage: ``finetune.device=cuda`` with ``tune.gpus_per_trial: 0`` failed in every
    trial ("Torch not compiled with CUDA enabled"), or trained on a GPU Ray reserved for none."""
    from lrl.pipeline.stage import StageContext
    from lrl.tune import stage

    monkeypatch.setattr(stage, "init_ray", lambda cfg: pytest.fail("Ray started"))
    with pytest.raises(ConfigError, match=r"^finetune\.device=cuda but tune\.gpus_per_trial=0: .* set tune\.gpus_per_trial"):
        stage.run_tune(StageContext(_job(tmp_path, data_root, "finetune.device=cuda")))


def test_settings_a_search_never_reads_do_not_name_its_output(ray_session, tmp_path, data_root):
    """Tune trains one language at a time: ``finetune.mode`` and ``sampling_alpha`` changed its
    output's name and every language was searched again for the same trials."""
    from types import SimpleNamespace

    from lrl.pipeline.stage import StageContext
    from lrl.tune import stage

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        if report:
            report({"step": 1, "dev_f1": 0.5})
        return SimpleNamespace(dev_f1=0.5, per_type={}, per_lang={}, history=[], model_dir=None)

    first = stage.run_tune(StageContext(_job(tmp_path, data_root)), train_fn=stand_in)
    again = stage.run_tune(StageContext(_job(tmp_path, data_root, "finetune.sampling_alpha=0.3", "finetune.mode=joint")),
                           train_fn=lambda *a, **k: pytest.fail("searched again"))
    assert again == first
    other = stage.run_tune(StageContext(_job(tmp_path, data_root, "finetune.max_length=96")), train_fn=stand_in)
    assert other != first
