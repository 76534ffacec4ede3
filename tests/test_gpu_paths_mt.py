"""GPU code paths of translation and evaluation, simulated on a CPU-only machine (no GPU has been
available to this project): ``torch.cuda`` queries are stood in for, Ray's resources are real."""

from __future__ import annotations

import logging

import pytest

from lrl.config import ConfigError


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from lrl.generate.translate.tiny import build_tiny_marian

    texts = ["the cat sat on the mat", "a b c d", "hello world again"] * 30
    return build_tiny_marian(tmp_path_factory.mktemp("tiny-mt"), texts, d_model=16, vocab_size=60)


def _rows(ray):
    from lrl.generate.translate import ops

    ds = ray.data.from_items([{"id": str(i), "lang": "en", "text": "a b c"} for i in range(4)])
    return ds, (ops.mark_batch, {"langs": ["en"], "markers": "square"})


def test_gpu_pool_that_can_never_start_fails_on_the_driver(ray_session):
    """``num_gpus: 1`` on the embedded Ray of a machine without a GPU: Ray Data waited for the
    actor for ever (no row in 120 s, "pending: 1 GPU"). Now an error naming the setting."""
    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate import ops

    ds, pre = _rows(ray_session)
    cfg = MTModelConfig(model="org/some-model", num_gpus=1, cpus_per_actor=0.5)
    with pytest.raises(ConfigError, match=r"translate.train.model.*num_gpus=0"):
        ops.hop(ds, cfg, "en", "ug", 0, setting="translate.train.model", pre=pre)


def test_gpu_pool_on_a_cluster_that_may_grow_is_only_warned(ray_session, monkeypatch, caplog):
    import lrl.runtime as pr
    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate import ops

    monkeypatch.setattr(pr, "embedded_ray", lambda: False)
    ds, pre = _rows(ray_session)
    cfg = MTModelConfig(model="org/some-model", num_gpus=0.5, num_actors=2, cpus_per_actor=0.5)
    with caplog.at_level(logging.WARNING, logger=ops.__name__):
        ops.hop(ds, cfg, "en", "ug", 0, setting="translate.train.model", pre=pre)
    assert any("0 of which fit" in r.getMessage() for r in caplog.records)


def test_gpu_pool_no_node_type_can_hold_fails_on_the_driver(monkeypatch):
    """An autoscaler that adds 2 nodes of 1 GPU and 4 CPUs has GPUs enough in total, but an actor
    of 1 GPU and 8 CPUs fits on neither: the check summed GPUs and only warned (Ray Data then
    waits for ever)."""
    import types

    import ray._private.state

    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate.ops import check_pool

    group = types.SimpleNamespace(resources={"CPU": 4, "GPU": 1}, max_count=2, min_count=0, name="gpu")
    config = types.SimpleNamespace(node_group_configs=[group])
    monkeypatch.setattr(ray._private.state.state, "get_cluster_config", lambda: config)
    big = MTModelConfig(model="org/some-model", num_gpus=1, cpus_per_actor=8)
    with pytest.raises(ConfigError, match=r"no node its autoscaler can add holds one actor \(its node types have "
                                          r"at most 4 CPUs and 1 GPUs each"):
        check_pool(big, "translate.train.model", [{"CPU": 2.0}], embedded=False)
    fits = big.model_copy(update={"cpus_per_actor": 4})
    assert any("0 of which fit" in w for w in check_pool(fits, "translate.train.model", [{"CPU": 2.0}], False))


def test_fractional_gpus_are_counted_as_ray_places_them():
    from lrl.capacity import workers_that_fit as _actors_that_fit

    assert _actors_that_fit([{"CPU": 16, "GPU": 1}], 1, 0.1) == 10  # 1 // 0.1 is 9 in floats
    assert _actors_that_fit([{"CPU": 16, "GPU": 2}, {"CPU": 8}], 1, 0.5) == 4
    assert _actors_that_fit([{"CPU": 1, "GPU": 8}], 0.5, 1) == 2


@pytest.mark.parametrize("settings, match", [({"num_gpus": 2}, "num_gpus=2"),
                                             ({"num_gpus": 1.5}, "num_gpus=1.5"),
                                             ({"dtype": "float16"}, "dtype=float16")])
def test_gpu_settings_the_pool_cannot_use_fail_on_the_driver(ray_session, settings, match):
    """An actor runs its model on one GPU: ``num_gpus: 2`` reserved a second one for nothing;
    ``float16`` without a GPU failed in every actor's constructor, inside the pool."""
    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate import ops

    ds, pre = _rows(ray_session)
    with pytest.raises(ConfigError, match=f"translate.train.model.{match}"):
        ops.hop(ds, MTModelConfig(model="org/some-model", **settings), "en", "ug", 0,
                setting="translate.train.model", pre=pre)


def test_an_actor_without_num_gpus_stays_on_the_cpu_of_a_gpu_node(tiny_model, monkeypatch):
    """Guard (held before this change too): Ray 2.60 leaves CUDA_VISIBLE_DEVICES unset for an actor
    that reserved no GPU, so ``torch.cuda`` sees the node's GPUs; the translator must not use them."""
    import torch

    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate.hf import HFTranslator

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    t = HFTranslator(MTModelConfig(model=tiny_model, max_length=8), "en", "ug")
    assert t.device == "cpu" and {p.device.type for p in t.model.parameters()} == {"cpu"}


def test_a_reserved_gpu_torch_cannot_see_is_an_error_not_a_cpu_run(tiny_model, monkeypatch):
    """``num_gpus: 1`` with a CPU-only torch on the GPU node: the actor translated on one CPU
    thread while its GPU stayed reserved, and said nothing."""
    import torch

    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate.hf import HFTranslator

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="num_gpus=1 reserved a GPU"):
        HFTranslator(MTModelConfig(model=tiny_model, max_length=8, num_gpus=1), "en", "ug")


@pytest.mark.parametrize("device, ok", [("cpu", True), ("cuda", True), ("cuda:1", True),
                                        ("auto", False), ("gpu", False)])
def test_evaluate_device_is_checked_at_load(device, ok):
    """``evaluate.device: auto`` (finetune's default) failed only when the evaluate stage began
    predicting (``torch.device("auto")``), after every stage before it."""
    from pydantic import ValidationError

    from lrl.evaluate.config import EvaluateConfig

    if ok:
        assert EvaluateConfig(device=device).device == device
    else:
        with pytest.raises(ValidationError, match="use cpu, cuda or cuda:N"):
            EvaluateConfig(device=device)


def test_evaluate_on_cuda_without_a_gpu_says_the_stage_runs_in_the_driver(tmp_path, monkeypatch):
    """The stage predicts in ``lrl run``'s process; on the shipped clusters that is the head,
    which has no GPU. torch's own error ("Found no NVIDIA driver") came at the first model."""
    import torch

    from lrl.evaluate.command import run_evaluate
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (tmp_path / "dev.conll").write_text("Ali\tB-PER\nkeldi\tO\n", encoding="utf-8")
    (tmp_path / "job.yaml").write_text(
        "data:\n  ner:\n    - {path: dev.conll, lang: ug, split: dev}\n"
        f"output: {{root: {tmp_path / 'runs'}}}\n"
        f"evaluate: {{model: {model}, device: cuda, splits: [dev]}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="evaluate.device=cuda.*driver.*sees 0 GPU"):
        run_evaluate(StageContext(load_job(tmp_path / "job.yaml"), {}))
    assert not list((tmp_path / "runs").glob("evaluate-*/metrics.json"))
