"""``lrl run``: which encoder finetune and tune train, checked against ``pipeline.stages`` before
the first stage (``lrl.pipeline.preflight.check_encoder``)."""

from __future__ import annotations

import pytest
from pipeline_fakes import FakeStages, _cfg

from lrl.pipeline.runner import PipelineError, plan, run_pipeline


def test_finetune_without_an_encoder_or_a_pretrain_stage_stops_before_the_first_stage(tmp_path):
    """The transfer job (tokenizer.mode=extend) run as [tokenizer,finetune,...]: the tokenizer stage
    ran, then finetune stopped on "needs an encoder", which told an ``lrl run`` user to run
    ``lrl run JOB --only finetune``; the dry run listed every stage as one that would run."""
    fake = FakeStages()
    cfg = _cfg(tmp_path, "pipeline.stages=[tokenizer,finetune,evaluate]")
    with pytest.raises(PipelineError, match=r"^finetune needs an encoder and pipeline.stages has no pretrain stage"):
        run_pipeline(cfg, registry=fake.registry(), log=lambda s: None)
    with pytest.raises(PipelineError, match="no pretrain stage to give it one: set finetune.model"):
        plan(cfg)
    assert fake.calls == {}, "a stage ran before the config error was found"
    cfg = _cfg(tmp_path, "pipeline.stages=[tokenizer,tune,evaluate]")
    with pytest.raises(PipelineError, match=r"^tune needs an encoder .*set tune.model_path or finetune.model"):
        run_pipeline(cfg, registry=fake.registry(), log=lambda s: None)
    assert fake.calls == {}


def test_a_stage_output_that_no_stage_reads_is_warned_about(tmp_path):
    """With ``finetune.model`` set, finetune fine-tunes that folder: a tokenizer stage without a
    pretrain stage extended a tokenizer nobody used (finetune read 46% of WikiANN ug words as [UNK]
    with MiniLM's own), and a pretrain stage trained an encoder nobody fine-tuned; neither said so."""
    enc = tmp_path / "enc"
    enc.mkdir()
    (tmp_path / "ug.txt").write_text("Qeshqer shehiri\n", encoding="utf-8")
    text = f"data.text=[{{path: {tmp_path}/ug.txt, lang: ug}}]"
    lines: list[str] = []
    run_pipeline(_cfg(tmp_path, text, "pipeline.stages=[tokenizer,finetune]", f"finetune.model={enc}"),
                 registry=FakeStages().registry(), log=lines.append)
    said = [x for x in lines if "tokenizer stage's output is read by no stage" in x]
    assert said and f"finetune uses the tokenizer of finetune.model={enc}" in said[0], lines
    out = plan(_cfg(tmp_path, text, "pipeline.stages=[tokenizer,pretrain,finetune]", f"finetune.model={enc}"))
    assert (f"warning: finetune trains finetune.model={enc}, not the pretrain stage's output, which no later stage "
            "trains from; leave finetune.model unset") in out, out
    # a report stage reads it (its Pretraining section): "which no stage reads" was false there
    out = plan(_cfg(tmp_path, text, "pipeline.stages=[tokenizer,pretrain,finetune,report]", f"finetune.model={enc}"))
    assert ("not the pretrain stage's output, which no later stage trains from (only the report reads it, for its "
            "Pretraining section); leave finetune.model unset") in out, out
    # nothing to say: the pretrain stage's output is fine-tuned, or no earlier stage is left unread
    for extra in (["pipeline.stages=[tokenizer,pretrain,finetune]"], ["pipeline.stages=[finetune]", f"finetune.model={enc}"]):
        out = plan(_cfg(tmp_path, text, *extra))
        assert "read by no stage" not in out and "not the pretrain stage's output" not in out, out
