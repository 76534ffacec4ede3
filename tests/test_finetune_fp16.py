"""The fp16 path of fine-tuning (autocast to float16 with a GradScaler), run on CPU: lrl lets
users choose fp16 on GPUs only (a one-line error at load), but recent torch has CPU float16
autocast and a CPU GradScaler, so the loop itself is tested without a GPU."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def wo(data_root, tmp_path_factory):
    """(train, dev, encoder folder): 48 / 16 WikiANN wo sentences and a tiny saved encoder."""
    from lrl.data.readers import read_conll
    from lrl.train.finetune_scratch import build_scratch_encoder

    train = read_conll(str(data_root / "wikiann/wo/train"), "wo", "train").table.slice(0, 48)
    dev = read_conll(str(data_root / "wikiann/wo/dev"), "wo", "dev").table.slice(0, 16)
    enc = build_scratch_encoder(tmp_path_factory.mktemp("fp16"), train.column("tokens").to_pylist(), ["wo"],
                                vocab_size=300, hidden=32, layers=2)
    return train, dev, str(enc)


@pytest.mark.parametrize("head", ["linear", "crf"])
def test_fp16_steps_on_cpu_scale_train_and_stay_finite(wo, tmp_path, monkeypatch, head):
    """Three fp16 steps: finite losses and dev F1, changed weights, and a GradScaler that ran on
    the training device (a CUDA one is disabled on CPU: the loop stepped unscaled)."""
    from safetensors.torch import load_file

    import lrl.train.tagger as tagger_mod
    from lrl.train.finetune_config import FinetuneConfig

    train, dev, enc = wo
    scalers: list[torch.amp.GradScaler] = []

    class Recorded(torch.amp.GradScaler):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            scalers.append(self)

    monkeypatch.setattr(torch.amp, "GradScaler", Recorded)
    monkeypatch.setattr(tagger_mod, "_autocast_dtype", lambda cfg, device: torch.float16)  # lrl's GPU-only rule
    # fp16 is refused at load without a GPU; model_copy keeps the checked fields and sets fp16.
    cfg = FinetuneConfig(max_steps=3, eval_every=3, batch_size=16, lr=1e-2, max_length=64, head=head,
                         device="cpu").model_copy(update={"precision": "fp16"})
    res = tagger_mod.train_tagger(cfg, enc, train, dev, seed=0, out_dir=str(tmp_path / "out"))
    assert len(scalers) == 1 and scalers[0].is_enabled() and math.isfinite(scalers[0].get_scale())
    assert res.history and all(math.isfinite(h["train_loss"]) for h in res.history)
    assert math.isfinite(res.dev_f1) and res.info["precision"] == "fp16"
    before, after = load_file(f"{enc}/model.safetensors"), load_file(str(tmp_path / "out/model.safetensors"))
    shared = [k for k in after if k in before and after[k].shape == before[k].shape]
    assert shared and any(not torch.equal(before[k], after[k]) for k in shared)
    assert all(v.dtype == torch.float32 for v in after.values())  # master weights stay fp32


def test_fp16_without_a_gpu_is_refused_in_one_line():
    """By design users get fp16 on GPUs only: refused at load, the setting and the fix on one line
    (under the loader's heading, which lists each invalid setting on a line of its own)."""
    from lrl.config import ConfigError
    from lrl.job import load_job

    with pytest.raises(ConfigError) as err:
        load_job(None, ["finetune.precision=fp16", "finetune.device=cpu"])
    lines = [line for line in str(err.value).splitlines() if "fp16" in line]
    assert len(lines) == 1 and "finetune" in lines[0] and "needs a GPU" in lines[0] and "bf16" in lines[0]
