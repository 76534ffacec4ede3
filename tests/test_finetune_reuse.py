"""The finetune stage takes a group (language) trained before with the same key from an earlier
output or a stopped run, and prints its tasks' progress in order, before its summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from finetune_jobs import job_cfg, write_job

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def job(data_root, tmp_path_factory):
    """40 train / 15 dev sentences of WikiANN ug and wo, tiny model, 2 steps, one seed."""
    return write_job(tmp_path_factory.mktemp("reuse"), data_root, 40, 15)


_cfg = job_cfg


def _run(cfg):
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune

    return Path(run_finetune(StageContext(cfg)))


def _trained(out: str) -> set[str]:
    """The groups whose runs printed an evaluation (only runs that trained print one)."""
    return {line.split()[1] for line in out.splitlines() if line.startswith("finetune ") and " seed " in line}


def test_adding_a_language_trains_only_that_language(job, ray_session, tmp_path, capsys):
    """Adding wo to a finished ug job (a new stage folder) trained ug again, once per seed.
    Now ug comes from the first output; a changed setting still trains every language, and a
    source whose model folder was removed is no source."""
    first = _run(_cfg(job, tmp_path, ("ug",)))
    assert _trained(capsys.readouterr().out) == {"ug"}
    second = _run(_cfg(job, tmp_path, ("ug", "wo")))
    out, err = capsys.readouterr()
    assert second != first and _trained(out) == {"wo"}
    assert f"finetune: ug: trained before with the same settings, data and encoder ({first.name}); kept" in err
    res1, res2 = (json.loads((p / "results.json").read_text()) for p in (first, second))
    assert res2["groups"]["ug"] == res1["groups"]["ug"] and list(res2["groups"]) == ["ug", "wo"]
    for name in ("model.safetensors", "README.md", "config.json"):
        assert (second / "models/ug" / name).read_bytes() == (first / "models/ug" / name).read_bytes(), name
    assert (second / "models/wo/model.safetensors").is_file()
    man1, man2 = (json.loads((p / "manifest.json").read_text()) for p in (first, second))
    assert man2["kept_from_earlier_run"] == ["ug"] and man1["kept_from_earlier_run"] == []
    assert man2["group_keys"]["ug"] == man1["group_keys"]["ug"]
    # Another learning rate: another key for both languages.
    _run(_cfg(job, tmp_path, ("ug", "wo"), "finetune.lr=0.001"))
    assert _trained(capsys.readouterr().out) == {"ug", "wo"}
    # The only source of ug without its model: ug is trained again.
    shutil.rmtree(second)
    shutil.rmtree(first / "models/ug")
    _run(_cfg(job, tmp_path, ("wo", "ug")))
    assert _trained(capsys.readouterr().out) == {"ug", "wo"}


def test_sampling_alpha_names_only_joint_outputs(job, ray_session, tmp_path, capsys):
    """``sampling_alpha`` weighs the languages of one joint model; per language it changed the
    output's name and every language was trained again for the same models."""
    first = _run(_cfg(job, tmp_path, ("ug",)))
    again = _run(_cfg(job, tmp_path, ("ug",), "finetune.sampling_alpha=0.3"))
    assert again == first and _trained(capsys.readouterr().out) == {"ug"}  # the first run's training only
    joint = [_run(_cfg(job, tmp_path, ("ug", "wo"), "finetune.mode=joint", *a)) for a in ((), ("finetune.sampling_alpha=0.3",))]
    assert joint[0] != joint[1]


def test_a_stopped_run_keeps_its_finished_groups(job, ray_session, tmp_path, capsys, monkeypatch):
    """A run stopped after its groups finished (here: at the commit) left nothing to reuse; the
    rerun trained every group again. Each group now waits in ``.finetune-<group>-<key>/``."""
    from lrl.data.output import StageOutput

    real_commit = StageOutput.commit

    def stop(self, manifest):
        raise KeyboardInterrupt

    monkeypatch.setattr(StageOutput, "commit", stop)
    with pytest.raises(KeyboardInterrupt):
        _run(_cfg(job, tmp_path, ("ug", "wo")))
    assert not list(tmp_path.glob("finetune-*"))  # nothing looks finished
    assert sorted(p.name.split("-")[1] for p in tmp_path.glob(".finetune-*")) == ["ug", "wo"]
    capsys.readouterr()
    monkeypatch.setattr(StageOutput, "commit", real_commit)
    path = _run(_cfg(job, tmp_path, ("ug", "wo")))
    out, err = capsys.readouterr()
    assert _trained(out) == set() and err.count("(a stopped run of this stage); kept") == 2
    assert json.loads((path / "manifest.json").read_text())["kept_from_earlier_run"] == ["ug", "wo"]
    assert (path / "models/wo/model.safetensors").is_file()
    assert not list(tmp_path.glob(".finetune-*"))  # committed: nothing kept beside it


def test_progress_lines_come_before_the_summary(job, ray_session, tmp_path, capfd):
    """The tasks printed their evaluations themselves, and Ray's log monitor delivered the last
    ones after the stage's summary (and after the next stage had started). The driver prints
    them now: every one before the summary, once, without Ray's ``(_train_task pid=...)``."""
    path = _run(_cfg(job, tmp_path, ("ug", "wo"), "evaluate.seeds=[0, 1]"))
    out = capfd.readouterr().out
    lines = out.splitlines()
    summary = lines.index(f"finetune: {path}")
    progress = [i for i, line in enumerate(lines) if line.startswith("finetune ") and " seed " in line]
    # 2 languages x 2 seeds x 2 evaluations (eval_every=1, max_steps=2)
    assert len(progress) == 8 and max(progress) < summary, out
    assert "_train_task pid=" not in out


def test_dev_sentences_that_are_training_sentences_are_counted(job, ray_session, tmp_path, capsys):
    """WikiANN repeats sentences across splits (ug: 51 of 200 dev sentences are training ones, wo 36
    of 120); nothing said so, and part of each dev F1 measured memory."""
    from lrl.job import load_job

    train = (job / "ug_train.conll").read_text(encoding="utf-8").strip().split("\n\n")
    dev = (job / "ug_dev.conll").read_text(encoding="utf-8").strip().split("\n\n")
    (tmp_path / "dev.conll").write_text("\n\n".join(dev + train[:2]) + "\n", encoding="utf-8")
    cfg = _cfg(job, tmp_path / "runs", ("ug",))
    ner = (f"data.ner=[{{path: {job}/ug_train.conll, lang: ug, split: train}}, "
           f"{{path: {tmp_path}/dev.conll, lang: ug, split: dev}}]")
    cfg = load_job(None, [ner, f"output.root={tmp_path / 'runs'}", f"finetune.model={cfg.finetune.model}",
                          "finetune.max_steps=1", "finetune.max_length=64", "evaluate.seeds=[0]"])
    path = _run(cfg)
    err = capsys.readouterr().err
    assert f"warning: finetune ug: 2 of {len(dev) + 2} dev sentences are also training sentences" in err, err
    assert json.loads((path / "manifest.json").read_text())["dev_sentences_in_train"] == {"ug": 2}


def test_the_pretrain_stage_output_as_encoder_gets_a_card(job, ray_session, tmp_path):
    """Under ``lrl run`` ``finetune.model`` is unset and the pretrain stage's output is the encoder:
    the card's preset check called ``None.startswith`` and the stage failed after training."""
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune

    cfg = _cfg(job, tmp_path, ("ug",), "finetune.model=null")
    assert cfg.finetune.model is None
    out = Path(run_finetune(StageContext(cfg, upstream={"pretrain": str(job / "enc")})))
    assert f"Started from: `{(job / 'enc').resolve()}`." in (out / "models/ug/README.md").read_text()
