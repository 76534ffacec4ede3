"""Model settings that take a local folder (or a hub id) and name no folder: one line naming the
folder as resolved, from ``lrl run`` before its first stage and its dry run
(``lrl.pipeline.preflight.check_model_folders``), and from each stage command and its dry run
before the stage reads its data; a finished pretrain output is still reused once the checkpoint
folder it started from is gone."""

from __future__ import annotations

import pytest
from pipeline_fakes import FakeStages, _cfg

from lrl.data.output import StageOutput
from lrl.pipeline.runner import PipelineError, plan, run_pipeline


def _no_folder(setting: str, value: str, cwd) -> str:
    return (rf"^{setting}={value}: no such folder \({cwd}/{value} not found; a relative {setting} is read from "
            rf"the working folder {cwd}")


@pytest.mark.parametrize("stages, setting", [
    ("[generate,tokenizer,pretrain]", "model.checkpoint"),
    ("[generate,tokenizer,pretrain]", "pretrain.model_path"),
    ("[generate,pretrain]", "pretrain.tokenizer_path"),
    ("[generate,finetune,evaluate]", "finetune.model"),
    ("[generate,tune]", "tune.model_path"),
    ("[generate,tune]", "finetune.model"),  # tune's encoder when tune.model_path is unset
    ("[generate,pretrain,finetune,evaluate]", "evaluate.model"),
])
def test_a_missing_model_folder_stops_lrl_run_before_the_first_stage(tmp_path, monkeypatch, stages, setting):
    """``models/x`` (no such folder) stopped its stage only once the stages before it had run:
    ``model.checkpoint`` with transformers' hub error in a traceback ("couldn't connect to
    'https://huggingface.co'" after a minute of retries), the encoder settings with "not a Hugging
    Face model folder (no config.json)" after hours of pretraining; the dry runs said nothing."""
    fake = FakeStages()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    cfg = _cfg(tmp_path, f"pipeline.stages={stages}", f"{setting}=models/x")
    with pytest.raises(PipelineError, match=_no_folder(setting, "models/x", tmp_path)):
        run_pipeline(cfg, registry=fake.registry(), log=lambda s: None)
    with pytest.raises(PipelineError, match=_no_folder(setting, "models/x", tmp_path)):
        plan(cfg)
    assert fake.calls == {}, "a stage ran before the config error was found"
    # read by no stage to run: nothing to say
    run_pipeline(_cfg(tmp_path, "pipeline.stages=[generate,tokenizer]", f"{setting}=models/x"),
                 registry=fake.registry(), log=lambda s: None)
    assert fake.work == {"generate": 1, "tokenizer": 1}


def test_a_hub_id_is_said_apart_from_a_missing_folder(tmp_path, monkeypatch):
    """``model.checkpoint`` takes a hub id, so ``org/name`` goes on to the stage (which loads it
    or says why not); the encoder settings take local folders only: a hub id is no folder there."""
    fake = FakeStages()
    monkeypatch.chdir(tmp_path)
    run_pipeline(_cfg(tmp_path, "pipeline.stages=[generate,tokenizer,pretrain]", "model.checkpoint=org/name"),
                 registry=fake.registry(), log=lambda s: None)
    assert fake.work == {"generate": 1, "tokenizer": 1, "pretrain": 1}
    with pytest.raises(PipelineError, match=_no_folder("finetune.model", "xlm-roberta-base", tmp_path)
                       + r"; finetune.model takes a local folder: hub ids are not downloaded\)$"):
        plan(_cfg(tmp_path, "pipeline.stages=[generate,finetune]", "finetune.model=xlm-roberta-base"))


def test_a_finished_pretrain_output_is_reused_after_its_checkpoint_folder_is_gone(tmp_path, monkeypatch):
    """A finished pretrain folder is reused without loading its checkpoint: deleting the checkpoint
    folder afterwards must not stop ``lrl run``. A checkpoint no finished folder started from
    stops it, as does a changed one; a run that does not pretrain never asks."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "x").mkdir(parents=True)
    fake = FakeStages()

    def pretrain(ctx):  # records where it started as run_pretrain's manifest does (started_from)
        out = StageOutput(ctx.cfg.output.root, "pretrain", ctx.cfg.model.model_dump(mode="json"),
                          sorted(ctx.upstream.items()))
        if out.done:
            return out.path
        fake.work["pretrain"] = fake.work.get("pretrain", 0) + 1
        return out.commit({"started_from": {"checkpoint": ctx.cfg.model.checkpoint, "mlm_head": "checkpoint"}})

    registry = {**fake.registry(), "pretrain": pretrain}
    stages = "pipeline.stages=[generate,tokenizer,pretrain,finetune]"
    cfg = _cfg(tmp_path, stages, "model.checkpoint=models/x")
    run_pipeline(cfg, registry=registry, log=lambda s: None)
    (tmp_path / "models" / "x").rmdir()
    said = ("warning: model.checkpoint=models/x: no such folder (" + f"{tmp_path}/models/x not found; a relative "
            f"model.checkpoint is read from the working folder {tmp_path}); a finished pretrain output started "
            "from it is reused without it (1 under output.root), otherwise pretrain stops on it when it starts")
    assert f"# {said}\n" in plan(cfg)
    lines: list[str] = []
    run_pipeline(cfg, registry=registry, log=lines.append)
    assert f"[lrl run] {said}" in lines and fake.work["pretrain"] == 1, (lines, fake.work)
    other = _cfg(tmp_path, stages, "model.checkpoint=models/y")
    with pytest.raises(PipelineError, match=_no_folder("model.checkpoint", "models/y", tmp_path)):
        run_pipeline(other, registry=registry, log=lambda s: None)
    assert "no such folder" not in plan(other, only="finetune")  # the recorded pretrain output is read
    # pretrain.model_path in its place: the checkpoint is not loaded
    model = tmp_path / "enc"
    model.mkdir()
    run_pipeline(_cfg(tmp_path, stages, "model.checkpoint=models/y", f"pretrain.model_path={model}"),
                 registry=registry, log=lambda s: None)


@pytest.mark.parametrize("command, setting", [("finetune", "finetune.model"), ("tune", "tune.model_path"),
                                              ("evaluate", "evaluate.model"), ("pretrain", "model.checkpoint")])
def test_a_stage_command_names_a_missing_model_folder_before_it_reads_its_data(tmp_path, monkeypatch, capsys,
                                                                                command, setting):
    """``lrl finetune``/``tune``/``evaluate`` read their data first, then said "models/x: not a
    Hugging Face model folder (no config.json)" or "neither a model folder (config.json) nor a stage
    output with models/<name>/"; their dry runs said nothing. The data here is missing too: the
    folder is named first. (``lrl pretrain`` itself: ``test_pretrain_checks``.)"""
    from lrl.cli import main
    from lrl.train import finetune
    from lrl.tune import stage

    for module in (finetune, stage):
        monkeypatch.setattr(module, "init_ray", lambda *_: pytest.fail("Ray started"), raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "job.yaml").write_text("name: folders\n", encoding="utf-8")
    ner = "data.ner=[{path: ug.conll, lang: ug, split: train}, {path: ug.conll, lang: ug, split: dev}]"
    args = [command, "job.yaml", ner, f"data.root={tmp_path}", f"output.root={tmp_path / 'runs'}", f"{setting}=models/x"]
    said = (f"lrl {command}: error: {setting}=models/x: no such folder ({tmp_path}/models/x not found; a relative "
            f"{setting} is read from the working folder {tmp_path})\n")
    for dry in ([], ["--dry-run"]) if command != "pretrain" else (["--dry-run"],):
        assert main(args + dry) == 2
        assert capsys.readouterr().err == said


def test_evaluate_model_option_names_a_missing_folder_before_it_reads_the_data(tmp_path, monkeypatch, capsys):
    """``lrl evaluate --model models/x`` said "models/x: neither a model folder (config.json) nor a
    stage output with models/<name>/", where ``evaluate.model=models/x`` names the folder as
    resolved. The data is missing too: the folder is named first."""
    from lrl.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "file").write_text("{}", encoding="utf-8")
    assert main(["evaluate", "--model", "models/x", "--data", "missing.conll"]) == 2
    assert capsys.readouterr().err == (f"lrl evaluate: error: --model=models/x: no such folder ({tmp_path}/models/x "
                                       f"not found; a relative --model is read from the working folder {tmp_path})\n")
    assert main(["evaluate", "--model", str(tmp_path / "file"), "--data", "missing.conll"]) == 2
    assert capsys.readouterr().err == f"lrl evaluate: error: --model={tmp_path}/file: no such folder " \
                                      f"({tmp_path}/file is a file, not a folder)\n"
