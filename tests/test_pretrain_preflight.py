"""What ``lrl pretrain`` says before and while it trains (lrl.train.pretrain_preflight,
lrl.train.pretrain_ds_file): ds_config keys DeepSpeed would ignore, the settings a ds_config's
optimizer replaces, DeepSpeed settings under engine torch, a tagging language without text, a
language without held-out rows and one whose few rows the stream repeats."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml
from pretrain_jobs import _job

from lrl.config import ConfigError
from lrl.train.pretrain_config import PretrainConfig
from lrl.train.pretrain_engine import deepspeed_config


def _ds(tmp_path: Path, body: dict) -> PretrainConfig:
    user = tmp_path / "ds.json"
    user.write_text(json.dumps(body))
    return PretrainConfig(deepspeed={"config_file": str(user)})


def test_a_ds_config_key_deepspeed_would_ignore_is_an_error_naming_the_nearest(tmp_path):
    """DeepSpeed reads its top-level keys with ``dict.get``: a typo exited 0 with no word, and the
    clipping stayed at pretrain's 1.0."""
    cfg = _ds(tmp_path, {"gradient_clippin": 0.5, "zero_optimisation": {"stage": 1}})
    with pytest.raises(ConfigError) as err:
        deepspeed_config(cfg, 1, False)
    said = str(err.value)
    assert "ds.json" in said and "'gradient_clippin' (did you mean 'gradient_clipping'?)" in said, said
    assert "'zero_optimisation' (did you mean 'zero_optimization'?)" in said and "which would ignore them" in said, said
    # keys DeepSpeed reads pass, also ones pretrain does not generate
    ok = _ds(tmp_path, {"gradient_clipping": 0.5, "communication_data_type": "fp32", "tensorboard": {"enabled": False},
                        "_comment": "keys starting with _ are notes"})
    assert deepspeed_config(ok, 1, False)["gradient_clipping"] == 0.5


def test_what_deepspeed_refuses_in_a_ds_config_section_stops_the_run_before_ray(tmp_path):
    """A typo inside ``zero_optimization`` (a pydantic model in DeepSpeed that forbids unknown keys)
    was a traceback from every Ray Train worker and retry, 78 s in; the driver's check now runs the
    file through DeepSpeed's config class first. A valid file for 2 workers passes (the driver is a
    world of one: the batch product is DeepSpeed's check in the workers)."""
    from lrl.train.pretrain_preflight import preflight

    bad = _ds(tmp_path, {"zero_optimization": {"stage": 2, "overlap_comn": False}})
    with pytest.raises(ConfigError, match=r"ds.json: DeepSpeed refuses it \(DeepSpeedZeroConfig\): overlap_comn: Extra"):
        preflight(bad, ["ug"], str(tmp_path))
    good = _ds(tmp_path, {"zero_optimization": {"stage": 2, "overlap_comm": False}})
    preflight(good.model_copy(update={"num_workers": 2}), ["ug"], str(tmp_path))


def test_an_optimizer_section_names_the_pretrain_settings_it_replaces_once(tmp_path, caplog):
    """With client_optimizer on (the default) the generated config has no optimizer, so a file's
    ``lr: 0.1`` replaced pretrain.lr (and torch's AdamW) without the documented warning. The
    warning comes from the driver's check before Ray only: the later calls in ``fit`` and in
    every worker (``DeepSpeedEngine``) repeated it, 3 lines for one run."""
    cfg = _ds(tmp_path, {"optimizer": {"type": "AdamW", "params": {"lr": 0.1}}})
    with caplog.at_level(logging.WARNING):
        deepspeed_config(cfg, 1, False)  # as fit and the workers call it
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        deepspeed_config(cfg, 1, False, warn=True)  # as preflight calls it
    assert len(caplog.records) == 1
    said = caplog.text
    assert "pretrain.lr=0.0005 by 0.1" in said and "pretrain.weight_decay=0.01 by \"DeepSpeed's default\"" in said, said
    assert "torch's AdamW by DeepSpeed's 'AdamW'" in said and "pretrain.schedule still shapes the rate" in said


def _stage_hash(tmp_path: Path, pretrain: dict) -> str:
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain import stage_output

    job = _job(tmp_path, pretrain)
    tok = tmp_path / "tok"
    tok.mkdir(exist_ok=True)
    (tok / "tokenizer.json").write_text("{}")
    out, _, _ = stage_output(StageContext(load_job(str(job)), upstream={"tokenizer": str(tok)}))
    return out.hash


def _old_hash(tmp_path: Path, pretrain: dict) -> str:
    """The hash as computed before the DeepSpeed section was left out under engine torch."""
    from lrl.data.output import StageOutput, input_print
    from lrl.job import load_job
    from lrl.train.pretrain import RUN_CONTROL
    from lrl.train.pretrain_data import load_text

    cfg = load_job(str(_job(tmp_path, pretrain)))
    _, text_print = load_text(cfg, None)
    inputs = {"tokenizer": input_print(str(tmp_path / "tok")), "text": text_print, "aux": [], "model_path": None}
    config = {"pretrain": cfg.pretrain.model_dump(mode="json", exclude=RUN_CONTROL),
              "model": cfg.model.model_dump(mode="json"), "seed": cfg.seed, "stream_version": 2, "heldout_version": 2}
    return StageOutput(cfg.output.root, "pretrain", config, inputs).hash


def test_deepspeed_settings_under_engine_torch_are_warned_and_not_hashed(tmp_path, caplog):
    """zero_stage 3 under engine torch trained the same weights into a second folder, silently. The
    hashes of the default engine (deepspeed) and of torch with default DeepSpeed settings stay."""
    from lrl.train.pretrain_preflight import preflight

    deepspeed = _stage_hash(tmp_path, {})
    assert deepspeed == _old_hash(tmp_path, {})  # existing default folders keep their names
    torch = _stage_hash(tmp_path, {"engine": "torch"})
    assert torch == _old_hash(tmp_path, {"engine": "torch"}) and torch != deepspeed
    assert _stage_hash(tmp_path, {"engine": "torch", "deepspeed": {"zero_stage": 3, "client_optimizer": False}}) == torch
    assert _stage_hash(tmp_path, {"deepspeed": {"zero_stage": 3}}) != deepspeed  # it matters under deepspeed
    with caplog.at_level(logging.WARNING):
        preflight(PretrainConfig(engine="torch", deepspeed={"zero_stage": 3}), ["ug"], str(tmp_path))
    assert "pretrain.deepspeed.zero_stage=3 do(es) nothing with pretrain.engine=torch" in caplog.text


def test_a_tokenizer_given_by_path_hashes_by_its_content(tmp_path):
    """The tokenizer folder a standalone run had trained, given as ``pretrain.tokenizer_path``, or a
    byte-identical copy of it, pretrained again into new folders: the path string was hashed
    beside the content's fingerprint (a user's audit)."""
    import shutil

    implicit = _stage_hash(tmp_path, {})  # the tokenizer as an upstream folder
    assert _stage_hash(tmp_path, {"tokenizer_path": str(tmp_path / "tok")}) == implicit
    shutil.copytree(tmp_path / "tok", tmp_path / "copy")
    assert _stage_hash(tmp_path, {"tokenizer_path": str(tmp_path / "copy")}) == implicit
    (tmp_path / "copy" / "tokenizer.json").write_text('{"changed": 1}')
    assert _stage_hash(tmp_path, {"tokenizer_path": str(tmp_path / "copy")}) != implicit  # content counts


def test_an_aux_lang_without_text_is_an_error_before_ray(tmp_path, capsys, monkeypatch):
    """aux.lang ug (the default) with text only in wo failed after Ray had started (18 s), on the
    tokenizer's missing [ug] tag."""
    import lrl.runtime
    from lrl.cli import main

    def no_ray(*a, **k):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(lrl.runtime, "init_ray", no_ray)
    conllu = tmp_path / "aux.conllu"
    conllu.write_text("1\tBu\tbu\tPRON\tPRON\t_\t0\troot\t_\t_\n\n", encoding="utf-8")
    job = _job(tmp_path, {"engine": "torch"})
    code = main(["pretrain", str(job), "data.text=[{path: wo.txt, lang: wo}]", f"pretrain.aux.conllu=[{conllu}]"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "pretrain.aux.lang='ug' is not a language of the pretraining text (wo)" in err and "Traceback" not in err


def test_a_language_without_heldout_rows_and_one_repeated_far_are_said(tmp_path, ray_session, capsys, caplog):
    """A language of one document (2 rows) kept it for training: its perplexity read "nan" with no
    reason, and at alpha 0.3 the stream repeated its 2 rows ~24 times each (~40% of the stream)
    with nothing said."""
    from lrl.cli import main

    job = _job(tmp_path, {"engine": "torch", "steps": 2, "checkpoint_every": 2})
    (tmp_path / "wo.txt").write_text("# doc wo\nDakar mooy péeyu Senegaal\nXale yi dem nañu lekool\n",
                                     encoding="utf-8")
    cfg = yaml.safe_load(job.read_text(encoding="utf-8"))
    assert cfg["pretrain"]["alpha"] == 0.3
    with caplog.at_level(logging.WARNING, logger="lrl.train.pretrain_preflight"):
        assert main(["pretrain", str(job)]) == 0
    out = capsys.readouterr().out
    notes = [r.getMessage() for r in caplog.records if r.name == "lrl.train.pretrain_preflight"]
    assert any("no held-out rows for wo (too few rows to hold out a document" in n for n in notes), notes
    assert any("repeats the rows of wo (2 rows, each ~" in n for n in notes), notes
    assert not any("ug" in n for n in notes), notes
    line = next(x for x in out.splitlines() if x.strip().startswith("wo: held-out perplexity"))
    assert "held-out perplexity - (no held-out rows: too few rows to hold out a document" in line, out
    assert "nan" not in line


def test_a_value_deepspeeds_own_check_refuses_is_a_config_error_before_ray(tmp_path):
    """DeepSpeed's config class also refuses with ValueError or an assertion (``gradient_allreduce_op``
    "sum" under ZeRO 3): the driver's check let it out as a bare traceback."""
    from lrl.train.pretrain_preflight import preflight

    user = tmp_path / "ds.json"
    user.write_text(json.dumps({"gradient_allreduce_op": "sum"}))
    cfg = PretrainConfig(deepspeed={"config_file": str(user), "zero_stage": 3})
    with pytest.raises(ConfigError, match=r"ds.json: DeepSpeed refuses it: .*'sum' is not supported with ZeRO stage 3"):
        preflight(cfg, ["ug"], str(tmp_path))


def test_rows_repeated_by_a_long_sample_rows_stream_name_sample_rows():
    """One language at alpha 1 with ``pretrain.sample_rows`` far above its rows was told "temperature
    sampling repeats" its rows, to raise alpha (already 1) or leave the only language out."""
    import pyarrow as pa

    from lrl.data.sampling import resample
    from lrl.train.pretrain_preflight import stream_notes

    table = pa.table({"text": [f"line {i}" for i in range(60)], "lang": ["ug"] * 60})
    _, mixture = resample(table, 1.0, 1, 1000)
    (note,) = stream_notes(table, table, mixture, 0.1, sample_rows=1000, alpha=1.0)
    assert "pretrain.sample_rows=1000 rows repeats the rows of ug (60 rows, each ~17 times" in note, note
    assert "lower pretrain.sample_rows" in note and "alpha" not in note and "temperature" not in note, note
    _, natural = resample(table, 1.0, 1, None)
    assert stream_notes(table, table, natural, 0.1, sample_rows=None, alpha=1.0) == []
