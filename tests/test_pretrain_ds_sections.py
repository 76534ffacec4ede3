"""Sections of a user ds_config (``pretrain.deepspeed.config_file``) as DeepSpeed reads them
(``lrl.train.pretrain_ds_file.normal_sections``): its old ``bfloat16`` name, and a section that
is not a JSON object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lrl.config import ConfigError
from lrl.train.pretrain_config import PretrainConfig
from lrl.train.pretrain_engine import deepspeed_config


def _ds(tmp_path: Path, body: dict, zero_stage: int = 2, **pretrain) -> PretrainConfig:
    user = tmp_path / "ds.json"
    user.write_text(json.dumps(body))
    return PretrainConfig(deepspeed={"config_file": str(user), "zero_stage": zero_stage}, **pretrain)


def test_a_bfloat16_section_that_contradicts_the_precision_is_an_error(tmp_path):
    """DeepSpeed reads ``bfloat16`` only where ``bf16`` is absent, and the generated config always
    has ``bf16``: ``{"bfloat16": {"enabled": false}}`` under pretrain.precision=bf16 trained in
    bf16 without a word."""
    cfg = _ds(tmp_path, {"bfloat16": {"enabled": False}}, precision="bf16")
    with pytest.raises(ConfigError, match=r"ds.json: bf16.enabled=False but pretrain.precision=bf16"):
        deepspeed_config(cfg, 1, False)


def test_a_bfloat16_sections_other_keys_reach_deepspeed(tmp_path):
    """The section's other keys were dropped with it; DeepSpeed now sees them."""
    from deepspeed.runtime.config import DeepSpeedConfig

    cfg = _ds(tmp_path, {"bfloat16": {"enabled": True, "immediate_grad_update": True}}, precision="bf16")
    ds = deepspeed_config(cfg, 1, False)
    assert "bfloat16" not in ds and ds["bf16"] == {"enabled": True, "immediate_grad_update": True}
    seen = DeepSpeedConfig(ds)
    assert seen.bfloat16_config.enabled and seen.bfloat16_config.immediate_grad_update
    both = _ds(tmp_path, {"bfloat16": {"enabled": True}, "bf16": {"enabled": True}})
    with pytest.raises(ConfigError, match=r"ds.json: both 'bf16' and its old name 'bfloat16' are set"):
        deepspeed_config(both, 1, False)


@pytest.mark.parametrize("body, key", [({"bf16": True}, "bf16"), ({"fp16": None}, "fp16"),
                                       ({"zero_optimization": 1}, "zero_optimization"),
                                       ({"bfloat16": True}, "bfloat16")])
def test_a_section_that_is_not_an_object_is_a_one_line_error(tmp_path, body, key):
    """``"bf16": true`` was ``AttributeError: 'bool' object has no attribute 'get'`` and
    ``"zero_optimization": 1`` a TypeError from DeepSpeed's config class: tracebacks."""
    cfg = _ds(tmp_path, body, zero_stage=1, precision="bf16")
    with pytest.raises(ConfigError, match=rf"ds.json: {key} must be a JSON object such as \{{"):
        deepspeed_config(cfg, 1, False)


def test_only_a_file_with_the_old_name_hashes_apart(tmp_path):
    """Runs of such a file trained without its section: their folders must not be reused."""
    from lrl.train.pretrain_preflight import ds_file_inputs

    plain, old = tmp_path / "a.json", tmp_path / "b.json"
    plain.write_text(json.dumps({"bf16": {"enabled": True}}))
    old.write_text(json.dumps({"bfloat16": {"enabled": True}}))
    assert set(ds_file_inputs(str(plain))) == {"ds_config"}
    assert ds_file_inputs(str(old))["ds_bf16_alias"] == 2


@pytest.mark.parametrize("on, stage", [(True, 1), (False, 0)])
def test_zero_optimization_as_a_boolean_is_deepspeeds_old_form(tmp_path, on, stage):
    """``"zero_optimization": true`` (false) is DeepSpeed's deprecated way to say stage 1 (0), which
    it still reads (``read_zero_config_deprecated``) and which trained before ``normal_sections``:
    not "must be a JSON object". A stage that is not pretrain's is still refused."""
    from deepspeed.runtime.config import DeepSpeedConfig

    ds = deepspeed_config(_ds(tmp_path, {"zero_optimization": on}, zero_stage=stage, precision="bf16"), 1, False)
    assert ds["zero_optimization"] is on and DeepSpeedConfig(ds).zero_optimization_stage == stage
    with pytest.raises(ConfigError, match=r"ds.json: zero_optimization.stage=.* but pretrain.deepspeed.zero_stage=2"):
        deepspeed_config(_ds(tmp_path, {"zero_optimization": on}, zero_stage=2, precision="bf16"), 1, False)
