"""``RAY_TRAIN_V2_ENABLED`` read as Ray reads it: Ray Train 2.60 takes V2 only for ``1`` or ``true``
(any case, the value not stripped: ``ray._private.ray_constants.env_bool``), V1 for any other
value. lrl refused only ``0``, ``false`` and ``False``: ``FALSE``, ``no``, ``off``, an empty
value or `` 1`` selected V1 while the pretrain stage went on reading V2's run folder."""

from __future__ import annotations

import re

import pytest
from pretrain_jobs import _job


@pytest.mark.parametrize("value", ["0", "false", "FALSE", "no", "off", "", " 1"])
def test_every_value_that_selects_ray_train_v1_is_refused(value, tmp_path, monkeypatch):
    import lrl.train.pretrain as pretrain
    from lrl.config import ConfigError
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    monkeypatch.setenv("RAY_TRAIN_V2_ENABLED", value)
    shown = value if value and value == value.strip() else repr(value)  # a blank value quoted
    with pytest.raises(ConfigError, match=re.escape(f"RAY_TRAIN_V2_ENABLED={shown} selects Ray Train V1")):
        pretrain.run_pretrain(StageContext(load_job(str(_job(tmp_path, {"engine": "torch"})))))


@pytest.mark.parametrize("value", [None, "1", "true", "TRUE", "True"])
def test_values_that_keep_ray_train_v2_pass(value, monkeypatch):
    from ray._private.ray_constants import env_bool

    from lrl.train.pretrain_resources import ray_train_v1_value

    if value is None:
        monkeypatch.delenv("RAY_TRAIN_V2_ENABLED", raising=False)
    else:
        monkeypatch.setenv("RAY_TRAIN_V2_ENABLED", value)
    assert ray_train_v1_value() is None and env_bool("RAY_TRAIN_V2_ENABLED", True)


@pytest.mark.parametrize("value", ["0", "FALSE", "no", "", " 1"])
def test_the_check_agrees_with_ray(value, monkeypatch):
    """Ray's own reading, so that a Ray upgrade that reads the variable otherwise shows here."""
    from ray._private.ray_constants import env_bool

    from lrl.train.pretrain_resources import ray_train_v1_value

    monkeypatch.setenv("RAY_TRAIN_V2_ENABLED", value)
    assert ray_train_v1_value() == value and not env_bool("RAY_TRAIN_V2_ENABLED", True)
