"""GPU code paths, simulated on a CPU-only machine (no GPU has been available to this project).

Each test stands in for the part of a GPU machine the code looks at (Ray Train's worker device,
``torch.cuda`` queries, the GPUs Ray assigned a task) and checks what the code would then do.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest


def test_stream_batches_stay_on_the_cpu_in_a_gpu_worker(ray_session, monkeypatch):
    """Ray Data's ``iter_torch_batches`` puts batches on the Ray Train worker's device by default
    (``device="auto"``): on a GPU the loop then masked CUDA ids with CPU draws and failed at its
    first batch. Simulated with a worker whose device is ``meta``."""
    import ray.train.torch
    import ray.train.utils
    import torch

    from lrl.train.pretrain_config import PretrainConfig
    from lrl.train.pretrain_eval import model_inputs
    from lrl.train.pretrain_mlm import MaskVocab, step_generator
    from lrl.train.pretrain_stream import _epoch

    worker_device = torch.device("meta")  # what ray.train.torch.get_device() gives a GPU worker
    monkeypatch.setattr(ray.train.utils, "_in_ray_train_worker", lambda: True)
    monkeypatch.setattr(ray.train.torch, "get_device", lambda: worker_device)
    rows = [{"input_ids": np.arange(5, 13, dtype=np.int32), "word_start": np.ones(8, np.int8), "lang_id": i % 2,
             "n_tokens": 8} for i in range(6)]
    cfg = PretrainConfig(batch_size=4)
    batch = next(iter(_epoch(ray_session.data.from_items(rows).iterator(), cfg, 0, 0, 0)))
    assert {v.device.type for v in batch.values()} == {"cpu"}
    vocab = MaskVocab(mask_id=4, vocab_size=64, protected=(0, 1, 2, 3, 4))
    inputs, n = model_inputs(batch["input_ids"], batch["word_start"], batch["lang_id"], 0, cfg.masking, vocab,
                             step_generator(0, 1, 0), worker_device, True)
    assert {v.device for k, v in inputs.items() if k != "kind"} == {worker_device}
    # the masks are the CPU generator's, whatever the device: a GPU run draws what a CPU run does
    _, cpu_n = model_inputs(batch["input_ids"], batch["word_start"], batch["lang_id"], 0, cfg.masking, vocab,
                            step_generator(0, 1, 0), "cpu", True)
    assert n == cpu_n


def _gpu_node(monkeypatch, gpu_ids: list):
    """A node with a GPU, seen from inside a Ray task that was given ``gpu_ids``."""
    import ray
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: list(gpu_ids))


def _result():
    from lrl.train.tagger import TaggerResult

    return TaggerResult(dev_f1=0.5, per_type={}, per_lang={}, history=[], model_dir=None)


@pytest.mark.parametrize("gpu_ids, want", [([], "cpu"), ([0], "cuda")])
def test_finetune_task_trains_on_the_gpu_ray_gave_it(monkeypatch, gpu_ids, want):
    """README: finetune trains on GPUs when ``finetune.num_gpus`` > 0. Ray 2.60 leaves
    CUDA_VISIBLE_DEVICES alone for a task that reserved no GPU, so ``device: auto`` saw the node's
    GPUs and every task trained on the first one, reserved by none of them."""
    import lrl.train.tagger as tagger
    from lrl.train.finetune import _train_task
    from lrl.train.finetune_config import FinetuneConfig

    _gpu_node(monkeypatch, gpu_ids)
    used = []

    def fake_train(cfg, model_path, train, dev, **kwargs):
        used.append(tagger.pick_device(cfg).type)
        return _result()

    monkeypatch.setattr(tagger, "train_tagger", fake_train)
    _train_task(FinetuneConfig(save_model=False), "m", None, None, 0, ["O"])
    assert used == [want]


@pytest.mark.parametrize("gpu_ids, want", [([], "cpu"), (["1"], "cuda")])
def test_tune_trials_and_retrains_train_on_the_gpu_ray_gave_them(monkeypatch, gpu_ids, want):
    """The same rule for ``tune.gpus_per_trial``: a trial (and the best config's retrain) that
    reserved no GPU trains on the CPU; ``device: cuda`` is kept as set."""
    import ray.tune

    import lrl.train.tagger as tagger
    from lrl.train.finetune_config import FinetuneConfig
    from lrl.tune.search import trial_fn
    from lrl.tune.stage import _retrain

    _gpu_node(monkeypatch, gpu_ids)
    monkeypatch.setattr(ray.tune, "report", lambda metrics: None)
    used = []

    def fake_train(cfg, model_path, train, dev, **kwargs):
        used.append(tagger.pick_device(cfg).type)
        return _result()

    trial_fn({"lr": 1e-4}, train=None, dev=None, base=FinetuneConfig(), model_path="m", seed=0, threads=1,
             train_fn=fake_train)
    _retrain(FinetuneConfig(), "m", None, None, 0, 1, fake_train)
    _retrain(FinetuneConfig(device="cuda"), "m", None, None, 0, 1, fake_train)
    assert used == [want, want, "cuda"]


def test_fp16_in_a_task_without_a_gpu_names_the_setting(monkeypatch):
    from lrl.train.finetune_config import FinetuneConfig, in_ray_task

    _gpu_node(monkeypatch, [])
    with pytest.raises(ValueError, match="tune.gpus_per_trial"):
        in_ray_task(FinetuneConfig(precision="fp16"), "tune.gpus_per_trial")


@pytest.mark.parametrize("capability, precision, warned", [((7, 0), "bf16", True), ((7, 5), "fp32", False),
                                                           ((8, 0), "bf16", False), ((9, 0), "bf16", False)])
def test_bf16_on_a_gpu_before_ampere_is_warned(monkeypatch, caplog, capability, precision, warned):
    """torch's autocast and DeepSpeed accept bf16 on a V100/T4 (emulation counts as support):
    the default precision would train there without tensor cores, and say nothing."""
    import torch

    import lrl.train.pretrain_engine as pe
    from lrl.train.pretrain_config import PretrainConfig

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100-SXM2-16GB")
    built = []
    monkeypatch.setattr(pe, "TorchEngine", lambda *args: built.append(args) or "engine")
    with caplog.at_level(logging.WARNING, logger=pe.__name__):
        assert pe.build_engine(None, PretrainConfig(engine="torch", precision=precision), 1,
                               torch.device("cuda", 0), 10) == "engine"
    notes = [r.getMessage() for r in caplog.records if "Ampere" in r.getMessage()]
    assert bool(notes) == warned and len(built) == 1
    if warned:
        assert "V100" in notes[0] and "fp16" in notes[0]


def test_gpu_matmul_peak_uses_large_matrices(monkeypatch):
    """A 2048 product cannot fill an H100/H200 long enough to show its rate; the GPU peak (MFU's
    denominator) is measured on 8192 x 8192, the CPU one stays 2048."""
    import torch

    from lrl.train.pretrain_metrics import measure_matmul_peak

    sizes = []
    real = torch.randn

    def randn(*size, device=None, **kwargs):
        sizes.append((size, torch.device(device).type))
        return real(8, 8)

    monkeypatch.setattr(torch, "randn", randn)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    assert measure_matmul_peak("bf16", device="cuda:0", seconds=0.01, use_cache=False) > 0
    assert measure_matmul_peak("fp32", threads=1, seconds=0.01, use_cache=False) > 0
    assert sizes == [((8192, 8192), "cuda")] * 2 + [((2048, 2048), "cpu")] * 2
