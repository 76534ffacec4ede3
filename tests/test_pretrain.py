"""Pretraining stage: a fast end-to-end pulse (plain engine, MLM + auxiliary XPOS), the DeepSpeed
config builder. (The 2-worker DeepSpeed ZeRO-2 bf16 run that survives an injected worker failure by
resuming from its last checkpoint is in test_pretrain_resume.)"""

import json
import shutil
from pathlib import Path

import pytest
from pretrain_jobs import WO, _check_output, _job


def test_pretrain_pulse_cli_with_aux_task(tmp_path, ray_session, data_root, capsys):
    """2 MLM steps per aux step; the saved folder is a plain HF MLM plus aux_head/."""
    import torch

    from lrl.cli import main

    src = (data_root / "ud" / "ug" / "dev.conllu").read_text(encoding="utf-8").split("\n\n")[:40]
    conllu = tmp_path / "aux.conllu"
    conllu.write_text("\n\n".join(src) + "\n\n", encoding="utf-8")
    job = _job(tmp_path, {"engine": "torch", "cpus_per_worker": 1}, str(conllu))
    keep = "pretrain.keep_checkpoints=true"  # the last run below shows the default's clean-up
    assert main(["pretrain", str(job), keep]) == 0
    out, err = capsys.readouterr()
    path = out.split("pretrain: ")[1].split("\n")[0].strip()
    assert "outside the loop: prepare " in out and " finish " in out
    # tokens/s and MFU count the aux steps too; the summary splits them (the MLM steps' own speed)
    assert "  of which MLM steps " in out and " tokens/s in " in out and "% of the loop time" in out
    (run_dir,) = (tmp_path / "runs").glob(".pretrain-*.ray")
    assert f"checkpoints kept in {run_dir}" in out
    m = _check_output(path)
    assert m["step"] == 6 and m["aux_loss"] is not None and m["attempt_start_steps"] == [0]
    tok = json.loads(next((tmp_path / "runs").glob("tokenizer-*/stats.json")).read_text())["langs"]  # not trained on
    assert {k: v["pretrain_heldout_lines"] for k, v in tok.items()} == m["heldout_rows"] and all(m["heldout_rows"].values())
    # where it trained and why, measured by the worker (test_pretrain_loop: the cluster's choice)
    why = "auto: no GPUs in the Ray cluster or its autoscaler's node types"
    assert m["device"] == "cpu" and m["device_reason"] == why and m["peak_flops"] > 1e8
    assert f"1 worker(s) on CPU ({why})" in err and f"  trained on cpu: {why}" in out  # the summary names it too
    head = json.loads((Path(path) / "aux_head" / "labels.json").read_text())
    assert head["column"] == "xpos" and "N" in head["labels"]
    from safetensors.torch import load_file

    w = load_file(str(Path(path) / "aux_head" / "head.safetensors"))["weight"]
    assert w.shape == (len(head["labels"]), 128) and torch.isfinite(w).all()
    manifest = json.loads((Path(path) / "manifest.json").read_text())
    assert manifest["device"] == "cpu" and manifest["device_reason"] == why
    assert manifest["checkpoints"] == str(run_dir)
    assert "(reused: finished" not in out
    # second run: same config and inputs -> the finished folder, nothing recomputed, and it says so
    assert main(["pretrain", str(job), keep]) == 0
    assert "  (reused: finished " in capsys.readouterr().out
    assert json.loads((Path(path) / "manifest.json").read_text()) == manifest
    # killed after training, before the stage folder was committed: the run folder's last
    # checkpoint is the final model, which the next run reports again instead of training
    weights = (Path(path) / "model.safetensors").read_bytes()
    shutil.rmtree(path)
    capsys.readouterr()
    assert main(["pretrain", str(job)]) == 0
    again = json.loads((Path(path) / "metrics.json").read_text())
    assert again["reused_final_checkpoint"] and again["step"] == 6 and again["attempt_start_steps"] == [0]
    assert (Path(path) / "model.safetensors").read_bytes() == weights
    # committed with keep_checkpoints off (the default): the run folder is removed, none left behind
    assert not run_dir.exists() and not list((tmp_path / "runs").glob(".pretrain-*"))
    manifest = json.loads((Path(path) / "manifest.json").read_text())
    assert manifest["checkpoints"] is None and manifest["model_init"] is None
    assert "checkpoints kept" not in capsys.readouterr().out


def test_deepspeed_config_merges_user_json(tmp_path):
    from lrl.config import ConfigError
    from lrl.train.pretrain_config import PretrainConfig
    from lrl.train.pretrain_engine import deepspeed_config

    cfg = PretrainConfig(batch_size=4, grad_accum=2, clip_norm=0.5, precision="bf16")
    ds = deepspeed_config(cfg, world_size=2, on_gpu=False)
    assert ds["train_batch_size"] == 16 and ds["gradient_clipping"] == 0.5
    assert ds["zero_optimization"]["stage"] == 2 and ds["bf16"]["enabled"] and "optimizer" not in ds
    user = tmp_path / "ds.json"
    user.write_text(json.dumps({"zero_optimization": {"stage": 1, "reduce_bucket_size": 1000}}))
    merged = deepspeed_config(PretrainConfig(deepspeed={"config_file": str(user), "zero_stage": 1}), 1, False)
    assert merged["zero_optimization"] == {"stage": 1, "reduce_bucket_size": 1000}
    user.write_text(json.dumps({"train_micro_batch_size_per_gpu": 99}))
    with pytest.raises(ConfigError, match="ds.json: train_micro_batch_size_per_gpu=99"):
        deepspeed_config(PretrainConfig(deepspeed={"config_file": str(user)}), 1, False)
    with pytest.raises(ConfigError, match="fp16"):
        deepspeed_config(PretrainConfig(precision="fp16"), 1, on_gpu=False)


def test_matmul_peak_is_cached_and_keeps_the_best(tmp_path, monkeypatch):
    from lrl.train.pretrain_metrics import measure_matmul_peak, mfu

    monkeypatch.setenv("LRL_CACHE_DIR", str(tmp_path))
    first = measure_matmul_peak("fp32", threads=1, n=256, seconds=0.2)
    assert first > 1e8  # any CPU does more than 0.1 GFLOP/s
    cache = tmp_path / "matmul_peak.json"
    known = json.loads(cache.read_text())
    (key,) = known
    known[key] = first * 1000  # a better value seen earlier wins over a busy re-measurement
    cache.write_text(json.dumps(known))
    assert measure_matmul_peak("fp32", threads=1, n=256, seconds=0.2) == first * 1000
    assert mfu(100.0, 1e6, 1e9) == pytest.approx(0.1)


def test_attention_choice_follows_device_and_precision_and_keeps_the_outputs():
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from lrl.train.attention import set_attention

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=64, max_position_embeddings=16)).eval()
    ids = torch.randint(5, 50, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0  # padding must be masked the same way by both kernels
    assert set_attention(model, "auto", "fp32", "cpu") == "sdpa" and model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask).logits
    # eager, as lrl_eager: the same computation with the CPU dropout of lrl.train.fast_dropout
    assert set_attention(model, "auto", "bf16", torch.device("cpu")) == "lrl_eager"
    assert model.config._attn_implementation == "lrl_eager"
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(ref[0], out[0], atol=1e-5) and torch.allclose(ref[1, :8], out[1, :8], atol=1e-5)
    assert set_attention(model, "auto", "bf16", "cuda") == "sdpa"  # GPUs keep the fused kernel
    assert set_attention(model, "eager", "fp32", "cpu") == "lrl_eager"
    assert set_attention(model, "eager", "bf16", "cuda") == "eager"


def test_torch_engine_trains_a_loaded_model_in_training_mode(tmp_path):
    """from_pretrained returns eval mode; the engine must switch dropout on from step 1."""
    from transformers import AutoModelForMaskedLM, BertConfig, BertForMaskedLM

    from lrl.train.pretrain_aux import build_module
    from lrl.train.pretrain_config import PretrainConfig
    from lrl.train.pretrain_engine import TorchEngine

    BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=16)).save_pretrained(tmp_path)
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert not loaded.training
    engine = TorchEngine(build_module(loaded, 0), PretrainConfig(engine="torch", precision="fp32"), 1, "cpu", 10)
    assert all(m.training for m in engine.module.modules())


def test_zero_optimizer_check_skips_deepspeeds_muon_import_for_adamw():
    """DeepSpeed's ZeRO check imported (and torch.compiled) its Muon optimizer on every
    ``initialize``; for AdamW the answer is known without it, other optimizers still get
    DeepSpeed's own check. A fresh interpreter, so that no other test has imported Muon."""
    import os
    import subprocess
    import sys

    code = """
import sys, torch, deepspeed
from lrl.train.pretrain_engine import _known_optimizers_first
import deepspeed.runtime.zero.utils as zero_utils
zero_utils.dist.get_rank = lambda: 0  # DeepSpeed's own check logs on rank 0 (no process group here)
_known_optimizers_first(); _known_optimizers_first()
from deepspeed.runtime import engine
muon = "deepspeed.runtime.zero.muon.muon_optimizer"
p = [torch.nn.Parameter(torch.zeros(2))]
assert engine.is_zero_supported_optimizer(torch.optim.AdamW(p)) and muon not in sys.modules
assert not engine.is_zero_supported_optimizer(torch.optim.SGD(p, lr=0.1)) and muon in sys.modules
assert not getattr(engine.is_zero_supported_optimizer.__wrapped__, "lrl_known_first", False)  # wrapped once
print("checked")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "DS_ACCELERATOR": "cpu"}, timeout=300)
    assert out.returncode == 0 and "checked" in out.stdout, out.stderr[-2000:]


def test_final_model_folder_loads_in_fp32_after_bf16_training(tmp_path, monkeypatch):
    """DeepSpeed's bf16 mode turns the module's parameters into bf16; ``save_pretrained`` records
    that dtype in config.json and transformers 5 loads a folder in its recorded dtype, so the fp32
    weights came back as bf16 (and fine-tuning started from bf16 weights)."""
    import types

    import ray.train
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM

    from lrl.model.config import TokenizerConfig
    from lrl.model.tokenizer import train_tokenizer
    from lrl.train.pretrain_config import PretrainConfig
    from lrl.train.pretrain_loop import _final_save

    tok = train_tokenizer({"wo": WO * 20}, TokenizerConfig(vocab_size=60, min_frequency=1))
    mlm = BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=16))
    mlm.to(torch.bfloat16)  # what deepspeed.initialize does with bf16 enabled
    engine = types.SimpleNamespace(module=torch.nn.ModuleDict({"mlm": mlm}))
    out = tmp_path / "final"
    monkeypatch.setattr(ray.train, "report", lambda metrics, checkpoint=None: shutil.copytree(checkpoint.path, out))
    monkeypatch.setattr(ray.train, "get_checkpoint", lambda: None)  # no Train run: nothing to mark complete
    _final_save(engine, None, tok, None, {"step": 1}, 0, PretrainConfig(precision="bf16"))
    model = AutoModelForMaskedLM.from_pretrained(out / "model")
    assert model.dtype == torch.float32
    assert AutoTokenizer.from_pretrained(out / "model").mask_token == "[MASK]"
    # names transformers 4 knows too (tests/test_model_folder.py)
    conf = json.loads((out / "model" / "tokenizer_config.json").read_text())
    assert conf["tokenizer_class"] == "PreTrainedTokenizerFast" and conf["additional_special_tokens"] == ["[wo]"]


def test_user_ds_config_is_resolved_fingerprinted_and_checked_before_training(tmp_path, capsys):
    """A relative ``deepspeed.config_file`` resolves against data.root like every other input
    (Ray Train workers do not run in the driver's folder: ``ds.json`` was not found there), its
    content is part of the stage's hash (an edited file is not a finished run), and a bad file
    stops the stage before any model is built or Ray is started."""
    from lrl.cli import main
    from lrl.data.files import InputError
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain import stage_output

    job = _job(tmp_path, {"deepspeed": {"config_file": "ds.json"}})
    ds = tmp_path / "ds.json"  # data.root is tmp_path (see _corpus)
    with pytest.raises(InputError, match="ds.json: file not found"):
        stage_output(StageContext(load_job(str(job))))
    ds.write_text(json.dumps({"zero_optimization": {"stage": 1}}))
    first = stage_output(StageContext(load_job(str(job))))[0].hash
    ds.write_text(json.dumps({"zero_optimization": {"stage": 0}}))
    assert stage_output(StageContext(load_job(str(job))))[0].hash != first
    ds.write_text(json.dumps({"train_micro_batch_size_per_gpu": 99}))
    assert main(["pretrain", str(job)]) == 2
    err = capsys.readouterr().err
    assert "ds.json: train_micro_batch_size_per_gpu=99 differs" in err and "Traceback" not in err
    assert not (tmp_path / "runs" / f".pretrain-{stage_output(StageContext(load_job(str(job))))[0].hash}.ray"
                / "init").exists()


def test_user_ds_config_zero_stage_must_agree_and_overrides_are_reported(tmp_path, caplog):
    """ZeRO-3 from the ds_config alone (pretrain.deepspeed.zero_stage left at 2): the loop gathers
    partitioned parameters for the final save only when zero_stage says 3, so an fp32 run saved
    every weight as an empty (0,) tensor. The stage must agree; other keys the file changes win,
    as documented, and are named in a warning. The merged dict is what ``deepspeed.initialize``
    gets (``DeepSpeedEngine.ds_config``)."""
    import logging

    from lrl.config import ConfigError
    from lrl.train.pretrain_config import PretrainConfig
    from lrl.train.pretrain_engine import deepspeed_config

    user = tmp_path / "ds.json"
    user.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    with pytest.raises(ConfigError, match="ds.json: zero_optimization.stage=3 but pretrain.deepspeed.zero_stage=2"):
        deepspeed_config(PretrainConfig(precision="fp32", deepspeed={"config_file": str(user)}), 1, False)
    both = PretrainConfig(precision="fp32", deepspeed={"config_file": str(user), "zero_stage": 3})
    assert deepspeed_config(both, 1, False)["zero_optimization"]["stage"] == 3
    user.write_text(json.dumps({"gradient_clipping": 5.0, "zero_optimization": {"overlap_comm": False},
                                "optimizer": {"type": "AdamW", "params": {"lr": 0.01}}}))
    cfg = PretrainConfig(clip_norm=1.0, deepspeed={"config_file": str(user), "client_optimizer": False})
    with caplog.at_level(logging.WARNING, logger="lrl.train.pretrain_engine"):
        ds = deepspeed_config(cfg, 1, False, warn=True)  # as the driver's check before Ray calls it
    assert ds["gradient_clipping"] == 5.0 and ds["optimizer"]["params"] == {"lr": 0.01, "weight_decay": 0.01}
    assert ds["zero_optimization"] == {"stage": 2, "overlap_comm": False}
    assert "gradient_clipping: 1.0 -> 5.0" in caplog.text and "optimizer.params.lr: 0.0005 -> 0.01" in caplog.text
    assert "zero_optimization" not in caplog.text  # an added key changes nothing pretrain set


def test_user_ds_config_precision_must_agree_with_pretrain_precision(tmp_path):
    """bf16 switched on (or off) in the ds_config while pretrain.precision says otherwise trained
    in one dtype and recorded the other (metrics, MFU peak, attention kernel choice)."""
    from lrl.config import ConfigError
    from lrl.train.pretrain_config import PretrainConfig
    from lrl.train.pretrain_engine import deepspeed_config

    user = tmp_path / "ds.json"
    user.write_text(json.dumps({"bf16": {"enabled": True}}))
    with pytest.raises(ConfigError, match="ds.json: bf16.enabled=True but pretrain.precision=fp32"):
        deepspeed_config(PretrainConfig(precision="fp32", deepspeed={"config_file": str(user)}), 1, False)
    assert deepspeed_config(PretrainConfig(precision="bf16", deepspeed={"config_file": str(user)}), 1, False)
    user.write_text(json.dumps({"bf16": {"enabled": False}}))
    with pytest.raises(ConfigError, match="bf16.enabled=False but pretrain.precision=bf16"):
        deepspeed_config(PretrainConfig(precision="bf16", deepspeed={"config_file": str(user)}), 1, False)


def test_seq_len_beyond_the_models_positions_is_a_cli_error(tmp_path, ray_session, capsys):
    """It was a ValueError, so ``lrl pretrain`` ended in a traceback instead of its one-line error."""
    from lrl.cli import main

    job = _job(tmp_path, {"engine": "torch", "seq_len": 64})  # the model has 32 positions
    assert main(["pretrain", str(job)]) == 2
    err = capsys.readouterr().err
    assert "pretrain.seq_len=64 exceeds the model's 32 positions" in err and "Traceback" not in err


def test_model_path_with_a_bigger_tokenizer_is_a_clear_error(tmp_path, ray_session, capsys):
    """``pretrain.model_path`` is used as is (no embedding growth): a tokenizer with more tokens
    than the model's embedding rows ended in "IndexError: index out of range in self" inside
    every worker, after the workers had started."""
    from transformers import BertConfig, BertForMaskedLM

    from lrl.cli import main

    small = tmp_path / "small"
    BertForMaskedLM(BertConfig(vocab_size=20, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=32)).save_pretrained(small)
    job = _job(tmp_path, {"engine": "torch", "model_path": str(small)})
    assert main(["pretrain", str(job)]) == 2
    err = capsys.readouterr().err
    assert "tokens but the model at" in err and "model.checkpoint" in err and "Traceback" not in err


def test_reported_lr_is_the_rate_the_last_step_used(tmp_path):
    """After ``scheduler.step()`` the scheduler holds the next step's rate; the reports showed that
    (at warmup's end the report said the peak one step early)."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from lrl.train.pretrain_aux import build_module
    from lrl.train.pretrain_config import PretrainConfig
    from lrl.train.pretrain_engine import TorchEngine
    from lrl.train.schedules import schedule_factor

    model = BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=64, max_position_embeddings=16))
    cfg = PretrainConfig(engine="torch", precision="fp32", lr=1e-3, grad_accum=2,
                         schedule={"type": "linear", "warmup_ratio": 0.5})
    engine = TorchEngine(build_module(model, 0), cfg, 1, "cpu", 4)
    ids = torch.randint(5, 50, (2, 8))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    for step in range(3):
        for _ in range(cfg.grad_accum):
            engine.micro_step(batch)
        assert engine.lr() == pytest.approx(1e-3 * schedule_factor(cfg.schedule, step, 4))
