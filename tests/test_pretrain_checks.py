"""Settings pretraining cannot use: one-line errors, and bf16 on a CPU without bf16 kernels said
instead of trained on silently."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from pretrain_jobs import _job


def _tiny_checkpoint(path: Path, positions: int, weights: bool = True) -> None:
    """A one-layer BERT masked LM with its own tokenizer (trained on other text than the job's)."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from lrl.model.config import TokenizerConfig
    from lrl.model.tokenizer import train_tokenizer

    tok = train_tokenizer({"en": ["the cat sat on the mat", "a dog ran in the park"] * 5},
                          TokenizerConfig(vocab_size=60, min_frequency=1))
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=64, max_position_embeddings=positions))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    if not weights:
        (path / "model.safetensors").unlink()


@pytest.mark.parametrize("positions, weights, said", [
    (16, True, "model.max_length=32 exceeds the checkpoint's 16 positions"),
    (64, True, "is not an extension of the old one; make the tokenizer with tokenizer.mode=extend"),
    (64, False, "no model.safetensors in the folder"),
])
def test_a_checkpoint_that_does_not_fit_is_a_one_line_cli_error(tmp_path, capsys, positions, weights, said):
    """``model.checkpoint`` with more positions asked than it has, a tokenizer trained anew instead
    of extended from the checkpoint's, or no safetensors: each was a ValueError, so ``lrl
    pretrain`` ended in a traceback (exit 1)."""
    from lrl.cli import main

    job = _job(tmp_path, {"engine": "torch"})  # model.max_length 32
    _tiny_checkpoint(tmp_path / "ckpt", positions, weights)
    assert main(["pretrain", str(job), f"model.checkpoint={tmp_path / 'ckpt'}"]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err, err


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="ONEDNN_MAX_CPU_ISA=AVX2 stands for an AVX2-only CPU on x86 only")
def test_bf16_on_a_cpu_without_bf16_kernels_is_warned():
    """With oneDNN held to AVX2 (as on AVX2-only Ryzen and Core laptops) torch emulates bf16
    matmuls: a micro-preset run trained at 1.3k tokens/s against 9.4k in fp32, and the default
    precision (bf16) said nothing. The check runs in a fresh process, where oneDNN reads the cap."""
    code = ("import torch\nfrom lrl.train.pretrain_engine import emulated_bf16 as e\n"
            "print(e('bf16', torch.device('cpu')))\nprint(e('fp32', torch.device('cpu')))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"},
                         capture_output=True, text=True, check=True, timeout=120).stdout.splitlines()
    assert "pretrain.precision=fp32" in out[0] and "bf16" in out[0]
    assert out[1] == "None"


def test_bf16_on_a_cpu_with_bf16_kernels_is_not_warned(monkeypatch):
    """No warning where oneDNN has bf16 kernels (AVX-512, AMX): bf16 is the fast path there."""
    import torch

    from lrl.train.pretrain_engine import emulated_bf16

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert emulated_bf16("bf16", torch.device("cpu")) is None


@pytest.mark.parametrize("trained", [False, True])
def test_a_config_error_removes_the_run_folder_only_before_ray_train(tmp_path, monkeypatch, trained):
    """Before Ray Train the run folder holds only the seeded initial model, under a hash the
    corrected config no longer has: removed. Once Ray Train has written its folder, checkpoints
    that do not fit are kept, as after any failure."""
    import lrl.train.pretrain as pretrain
    from lrl.config import ConfigError
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    def fails(p, seed, table, tok_dir, model_dir, tmp, run_dir, *args, **kwargs):
        if trained:
            os.makedirs(os.path.join(run_dir, pretrain.STAGE, "checkpoint_000001"))
        raise ConfigError("pretrain.x does not fit")

    monkeypatch.setattr(pretrain, "fit", fails)
    monkeypatch.setattr("lrl.runtime.init_ray", lambda cfg: None)
    with pytest.raises(ConfigError, match="does not fit"):
        pretrain.run_pretrain(StageContext(load_job(str(_job(tmp_path, {"engine": "torch"})))))
    runs = tmp_path / "runs"
    assert len(list(runs.glob(".pretrain-*.ray"))) == (1 if trained else 0)
    assert not list(runs.glob("pretrain-*"))  # nothing that looks finished


def test_a_missing_checkpoint_folder_is_one_line_naming_it_not_a_hub_error(tmp_path, capsys, monkeypatch):
    """``model.checkpoint=models/x`` (no such folder; ``models/`` is local) went to transformers as
    a hub id: a traceback ending in "couldn't connect to 'https://huggingface.co'" (after a minute
    of retries without a network), and the run folder was left behind. A hub id that cannot be
    loaded is one line too, saying that no local folder of that name exists either."""
    import lrl.runtime
    from lrl.cli import main

    monkeypatch.setattr(lrl.runtime, "init_ray", lambda *_: pytest.fail("Ray started"))
    job = _job(tmp_path, {"engine": "torch"})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    assert main(["pretrain", str(job), "model.checkpoint=models/x"]) == 2
    err = capsys.readouterr().err
    assert err.endswith(f"lrl pretrain: error: model.checkpoint=models/x: no such folder ({tmp_path}/models/x not "
                        f"found; a relative model.checkpoint is read from the working folder {tmp_path})\n"), err
    assert main(["pretrain", str(job), "model.checkpoint=org/name"]) == 2  # offline (conftest): not in the cache
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(
        f"lrl pretrain: error: model.checkpoint=org/name: no local folder {tmp_path}/org/name (a relative "
        f"model.checkpoint is read from the working folder {tmp_path}), and as a Hugging Face hub id it cannot be "
        "loaded") and "Traceback" not in err, err
    assert not list((tmp_path / "runs").glob(".pretrain-*")), "a run folder was left behind"
