"""What a fine-tuning run checks before it starts and reports when it is done: a GPU asked for
without one reserved, a task no node can hold, the few-shot sentences chosen, the languages a
joint run drew, and a CRF loss that keeps its floor on sentences cut into chunks."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")


@pytest.mark.parametrize("setting", ["finetune.device=cuda", "finetune.precision=fp16"])
def test_a_gpu_run_without_a_reserved_gpu_stops_before_ray(setting, data_root, tmp_path, monkeypatch):
    """``device: cuda`` with ``finetune.num_gpus: 0`` failed in every Ray task on a CPU node ("Torch
    not compiled with CUDA enabled", a long remote traceback naming no setting) and, on a GPU node,
    trained on a GPU Ray reserved for no task."""
    import torch

    from lrl.config import ConfigError
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train import finetune

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # fp16 passes the load-time check
    ner = ("data.ner=[{path: wikiann/ug/train, lang: ug, split: train}, "
           "{path: wikiann/ug/dev, lang: ug, split: dev}]")
    cfg = load_job(None, [f"data.root={data_root}", ner, f"output.root={tmp_path}", "finetune.model=preset:tiny",
                          setting])
    monkeypatch.setattr(finetune, "init_ray", lambda _: pytest.fail("Ray started"))
    with pytest.raises(ConfigError, match=rf"^{setting} but finetune\.num_gpus=0: .* set finetune\.num_gpus"):
        finetune.run_finetune(StageContext(cfg))
    finetune.check_gpu_request(cfg.finetune.model_copy(update={"num_gpus": 1.0}))  # reserved: fine


def test_run_reports_the_few_shot_sentences_and_the_languages_it_drew(data_root):
    """``few_shot: k`` said how many sentences a run trained on, never which (the seed's choice), and
    nothing told whether a short joint run drew every language: 2 steps of 8 over WikiANN ug, wo, am
    and yo at ``sampling_alpha: 1`` leave am out about half the time (3.6% of the rows)."""
    import tempfile

    import pyarrow as pa

    from lrl.data.readers import read_conll
    from lrl.train.finetune_config import FinetuneConfig
    from lrl.train.finetune_data import few_shot
    from lrl.train.finetune_scratch import build_scratch_encoder
    from lrl.train.tagger import train_tagger

    def read(lang, split):
        return read_conll(str(data_root / f"wikiann/{lang}/{split}"), lang, split).table

    langs = ["ug", "wo", "am"]
    train = pa.concat_tables([read(lang, "train") for lang in langs])
    dev = pa.concat_tables([read(lang, "dev").slice(0, 10) for lang in langs])
    with tempfile.TemporaryDirectory() as tmp:
        enc = build_scratch_encoder(tmp, train.column("tokens").to_pylist(), langs, vocab_size=400, hidden=32)
        cfg = FinetuneConfig(few_shot=4, max_steps=3, batch_size=5, eval_every=3, max_length=64)
        runs = [train_tagger(cfg, enc, train, dev, seed=s) for s in (1, 1, 2)]
        plain = train_tagger(cfg.model_copy(update={"few_shot": None, "max_steps": 1}), enc, train, dev, seed=1)
    ids = runs[0].info["few_shot_ids"]
    chosen = few_shot(train, 4, 1)
    assert ids == {lang: sorted(i for i, x in zip(chosen.column("id").to_pylist(), chosen.column("lang").to_pylist())
                                if x == lang) for lang in sorted(langs)}
    assert all(len(v) == 4 for v in ids.values())
    assert runs[1].info["few_shot_ids"] == ids and runs[2].info["few_shot_ids"] != ids  # per seed
    drawn = runs[0].info["drawn_chunks_per_lang"]
    assert set(drawn) == set(langs) and sum(drawn.values()) == 3 * 5
    assert "few_shot_ids" not in plain.info and sum(plain.info["drawn_chunks_per_lang"].values()) == 5


def test_crf_loss_keeps_its_floor_when_a_chunk_starts_inside_an_entity(data_root, tmp_path):
    """A long sentence cut into chunks inside an entity gives a chunk that starts with ``I-X``; the
    CRF never starts with ``I-`` (closed in its partition, open in the gold score), so the NLL of
    such chunks had no floor: WikiANN ug cut into 12-piece chunks trained to a loss of -22.9 in 30
    steps. Such rows now start open (``lrl.model.crf``): a negative log-likelihood is never below 0."""
    from lrl.data.readers import read_conll
    from lrl.train.finetune_config import FinetuneConfig
    from lrl.train.finetune_scratch import build_scratch_encoder
    from lrl.train.tagger import train_tagger

    train = read_conll(str(data_root / "wikiann/ug/train"), "ug", "train").table
    train = train.filter([len(t) > 12 for t in train.column("tokens").to_pylist()])  # 355 long sentences
    dev = read_conll(str(data_root / "wikiann/ug/dev"), "ug", "dev").table.slice(0, 10)
    enc = build_scratch_encoder(tmp_path, train.column("tokens").to_pylist(), ["ug"], vocab_size=400, hidden=32)
    # A large head rate makes the missing floor show within a few steps.
    cfg = FinetuneConfig(head="crf", max_length=12, max_steps=30, eval_every=10, batch_size=16, lr=1e-3,
                         head_lr=1.0, grad_clip=None, schedule={"type": "constant", "warmup_ratio": 0.0})
    res = train_tagger(cfg, enc, train, dev, seed=0)
    assert res.info["align"]["split_sentences"] > 0  # chunks that continue a sentence are trained on
    assert all(h["train_loss"] >= 0 for h in res.history), [h["train_loss"] for h in res.history]


@pytest.mark.parametrize("setting, message", [
    ("finetune.num_cpus=3", r"^finetune\.num_cpus=3: no fine-tuning task can ever be placed .* at most 2 CPUs"),
    ("finetune.num_gpus=1", r"num_gpus=1: no fine-tuning task can ever be placed .* 0 GPUs on one"),
])
def test_a_task_no_node_can_hold_stops_before_it_waits_for_ever(ray_session, data_root, tmp_path, monkeypatch,
                                                                setting, message):
    """``finetune.num_cpus: 4`` on the embedded Ray of 2 CPUs waited for ever, the autoscaler
    printing "No available node types can fulfill resource request {'CPU': 4.0}" and naming no
    setting (tune and pretrain already stopped on the same mistake)."""
    import torch

    from lrl.config import ConfigError
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train import finetune

    if setting.startswith("finetune.num_gpus") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    ner = ("data.ner=[{path: wikiann/wo/train, lang: wo, split: train}, "
           "{path: wikiann/wo/dev, lang: wo, split: dev}]")
    cfg = load_job(None, [f"data.root={data_root}", ner, f"output.root={tmp_path}", "finetune.model=preset:tiny",
                          setting])

    def no_tasks():  # the relay starts with the first task: a task here would wait for ever
        raise AssertionError("a fine-tuning task was started")

    monkeypatch.setattr("lrl.train.progress_relay.ProgressRelay", no_tasks)
    with pytest.raises(ConfigError, match=message):
        finetune.run_finetune(StageContext(cfg))
    assert not list(tmp_path.glob("finetune-*"))
    assert finetune.check_task_fits(cfg.finetune.model_copy(update={"num_cpus": 1.0, "num_gpus": 0.0})) is None


def test_placement_check_on_a_cluster_warns_or_fails_by_its_autoscaler(monkeypatch):
    """One check for a fine-tuning task and a Tune trial (``lrl.train.placement``): a joined
    cluster that may grow gets a warning naming the setting; one whose autoscaler publishes a
    maximum too small for the task fails like the embedded Ray."""
    from test_pretrain_loop import _Group, _nodes

    from lrl.config import ConfigError
    from lrl.train.finetune import check_task_fits
    from lrl.train.finetune_config import FinetuneConfig
    from lrl.tune.config import TuneConfig
    from lrl.tune.search import check_trial_resources

    ft, trial = FinetuneConfig(num_cpus=4), TuneConfig(cpus_per_trial=4)
    _nodes(monkeypatch, {"CPU": 2.0})
    assert check_task_fits(ft, embedded=False) == (
        "finetune: finetune.num_cpus=4 fits on no node of the Ray cluster now (2 CPUs and 0 GPUs on 1 node(s), at "
        "most 2 CPUs and 0 GPUs on one); the stage waits until an autoscaler adds one, for ever if this cluster "
        "has none")
    assert check_trial_resources(trial, embedded=False).startswith("tune: tune.cpus_per_trial=4 fits on no node")
    _nodes(monkeypatch, {"CPU": 2.0}, config=[_Group({"CPU": 2}, 2)])  # grows to 2 nodes of 2 CPUs
    with pytest.raises(ConfigError, match=r"task can ever be placed: no node the Ray cluster's autoscaler can add "
                                          r"holds one \(its node types have at most 2 CPUs and 0 GPUs each"):
        check_task_fits(FinetuneConfig(num_cpus=5), embedded=False)
    with pytest.raises(ConfigError, match="no trial can ever be placed"):  # 4 CPUs in all, but 2 per node
        check_trial_resources(trial, embedded=False)
    _nodes(monkeypatch, {"CPU": 2.0}, config=[_Group({"CPU": 2}, 2), _Group({"CPU": 4}, 1)])
    assert "waits until an autoscaler adds one" in check_trial_resources(trial, embedded=False)
    with pytest.raises(ConfigError, match="no trial can ever be placed on the embedded local Ray"):
        check_trial_resources(trial, embedded=True)
    _nodes(monkeypatch, {"CPU": 4.0})
    assert check_task_fits(ft, embedded=True) is None and check_trial_resources(trial, embedded=True) is None


def test_an_encoder_that_reads_the_language_as_unknown_words_is_warned():
    """Raw MiniLM read 46% of WikiANN ug training words as [UNK] alone (``align.unk_words`` 6179 of
    13519), and only results.json's alignment statistics said so."""
    from lrl.train.finetune import unk_warning

    said = unk_warning("ug", {"words": 13519, "unk_words": 6179})
    assert said.startswith("warning: finetune ug: the encoder's tokenizer reads 46% of the training words "
                           "(6179 of 13519)") and "tokenizer.mode=extend" in said
    assert unk_warning("ug", {"words": 13519, "unk_words": 12}) is None and unk_warning("ug", {}) is None
    assert unk_warning("ug", {"words": 10, "unk_words": 5}, "tune").startswith("warning: tune ug: ")


def test_a_task_that_sends_after_the_relay_closed_goes_on(ray_session):
    """A stop closes the progress relay while fine-tuning tasks still run: their next progress
    line raised ActorDiedError, each task failed, and Ray printed ~80 lines of "Unhandled error"
    after the stage's one-line stop message."""
    import ray

    from lrl.train.progress_relay import ProgressRelay

    relay = ProgressRelay()
    sender = relay.sender()

    @ray.remote(num_cpus=0)
    def task(sender) -> str:
        sender.send("step 1")
        return "done"

    assert ray.get(task.remote(sender)) == "done"
    relay.close()
    assert ray.get(task.remote(sender)) == "done"


def test_quarantined_sentences_are_said_and_every_split_but_held_out_ones_trains(tmp_path, capsys):
    """``data.labels=[PER, LOC]`` left out every ug sentence with an ORG (165 of 1603 train, and dev
    ones) without a word; a source of split ``extra`` was trained on under ``lrl run`` (through
    the generate stage) and silently unused by the stage alone."""
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.tune.splits import language_splits

    def conll(name: str, sentences: list[list[tuple[str, str]]]) -> str:
        (tmp_path / name).write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in s) for s in sentences) + "\n",
                                     encoding="utf-8")
        return f"{{path: {tmp_path / name}, lang: ug, split: {name.split('.')[0]}}}"

    per, org = [("Ali", "B-PER"), ("keldi", "O")], [("BDT", "B-ORG"), ("yighini", "O")]
    srcs = [conll("train.conll", [per, org]), conll("dev.conll", [org, per]), conll("extra.conll", [per]),
            conll("test.conll", [per])]
    cfg = load_job(None, [f"data.ner=[{', '.join(srcs)}]", "data.labels=[PER, LOC]", "data.bio_policy=quarantine"])
    train, dev = language_splits(StageContext(cfg), stage="finetune")["ug"]
    assert (train.num_rows, dev.num_rows) == (2, 1)  # train's PER sentence and extra's; test is held out
    err = capsys.readouterr().err
    assert "warning: finetune: sentences of data.ner quarantined when read are left out" in err
    assert "ug train 1 (" in err and "ug dev 1 (" in err, err
    said: list[str] = []  # the stages take the line, to print it only when they train
    language_splits(StageContext(cfg), stage="tune", said=said)
    assert capsys.readouterr().err == "" and said[0].startswith("warning: tune: sentences of data.ner quarantined")


def test_a_preset_longer_than_its_positions_is_a_finetune_config_error():
    """A ``preset:`` encoder is built with ``finetune.max_length`` positions, at most
    ``model.max_length``'s limit: past it the stage failed after reading its data, naming a
    ``model.max_length`` the user never set."""
    from lrl.config import ConfigError
    from lrl.job import load_job
    from lrl.model.config import MAX_POSITIONS

    with pytest.raises(ConfigError, match=f"finetune.*a preset: encoder has at most {MAX_POSITIONS} positions"):
        load_job(None, ["finetune.model=preset:micro", f"finetune.max_length={MAX_POSITIONS + 1}"])
    assert load_job(None, [f"finetune.max_length={MAX_POSITIONS + 1}"]).finetune.max_length == MAX_POSITIONS + 1
    with pytest.raises(ConfigError, match=f"tune.model_path=preset:micro builds a preset: encoder of at most {MAX_POSITIONS}"):
        load_job(None, ["tune.model_path=preset:micro", f"finetune.max_length={MAX_POSITIONS + 1}"])


@pytest.mark.parametrize(("command", "settings"), [("finetune", "finetune.model"),
                                                   ("tune", "tune.model_path (or finetune.model)")])
def test_a_standalone_stage_without_an_encoder_names_the_settings_that_give_it_one(command, settings, tmp_path,
                                                                                   capsys, monkeypatch):
    """Only ``lrl finetune`` / ``lrl tune`` reach this error (``lrl run`` stops earlier on it,
    ``lrl.pipeline.preflight.check_encoder``), yet it advised ``lrl run JOB --only finetune``, which
    stops on the missing pretrain output or needs no setting. It names the setting and its three
    kinds of value, and for a pipeline, pretrain in ``pipeline.stages``; Ray never starts."""
    from lrl.cli import main
    from lrl.train import finetune
    from lrl.tune import stage

    for module in (finetune, stage):
        monkeypatch.setattr(module, "init_ray", lambda *_: pytest.fail("Ray started"), raising=False)
    (tmp_path / "ug.conll").write_text("Qeshqer\tB-LOC\nshehiri\tO\n\nAhmet\tB-PER\n", encoding="utf-8")
    ner = "data.ner=[{path: ug.conll, lang: ug, split: train}, {path: ug.conll, lang: ug, split: dev}]"
    (tmp_path / "job.yaml").write_text("name: standalone\n", encoding="utf-8")
    assert main([command, str(tmp_path / "job.yaml"), f"data.root={tmp_path}", ner,
                 f"output.root={tmp_path / 'runs'}"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith(f"lrl {command}: error: {command} needs an encoder: lrl {command} runs the {command} "
                          "stage alone and reads no pretrain stage's output; "
                          f"set {settings} to a pretrain-<hash> output folder"), err
    assert "a Hugging Face model folder, or preset:micro to train one from scratch" in err
    assert f"with pretrain before {command} in pipeline.stages" in err and "--only" not in err



def test_a_config_error_in_a_fine_tuning_task_is_its_one_line(ray_session):
    """A truncated encoder model.safetensors is a ConfigError inside the task (``readable_weights``);
    ``ray.get`` raised it as Ray's ``RayTaskError(ConfigError)``, a ConfigError whose message is the
    task's whole traceback (``ray::_train_task() (pid=..)``, its frames), which ``lrl run`` printed as
    its one error line. The stage takes its tasks' results through ``task_result``."""
    from lrl.config import ConfigError
    from lrl.data.files import InputError
    from lrl.train.finetune import task_result

    @ray_session.remote(num_cpus=0)
    def task(error: Exception) -> None:
        raise error

    message = "encoder folder /m: cannot read its model.safetensors (truncated or corrupt file?): header too small"
    for error in (ConfigError(message), InputError("/d.conll:3: empty token")):
        with pytest.raises(type(error)) as got:
            task_result(task.remote(error))
        assert type(got.value) is type(error) and str(got.value) == str(error)
    with pytest.raises(ray_session.exceptions.RayTaskError, match="KeyError"):  # any other error: as Ray raised it
        task_result(task.remote(KeyError("x")))
