"""Process settings applied before Ray starts (lrl.runtime)."""

from __future__ import annotations

import os

from lrl.runtime import RayConfig, quiet_env, tune_ray_data


def test_quiet_env_sets_the_train_health_check_interval_only_when_unset(monkeypatch):
    monkeypatch.delenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", raising=False)
    quiet_env()
    assert os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] == "0.5"
    monkeypatch.setenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "3")
    quiet_env()
    assert os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] == "3"  # the user's value wins


def test_tune_ray_data_sets_the_autoscaler_and_the_limits_refresh(monkeypatch):
    from ray.data._internal.execution.resource_manager import ResourceManager

    monkeypatch.setattr(ResourceManager, "GLOBAL_LIMITS_UPDATE_INTERVAL_S",
                        ResourceManager.GLOBAL_LIMITS_UPDATE_INTERVAL_S)  # restored after the test
    monkeypatch.delenv("RAY_DATA_CLUSTER_AUTOSCALER", raising=False)
    tune_ray_data(RayConfig(data_autoscaler="RATE_BASED", data_limits_refresh_s=0.25))
    assert os.environ["RAY_DATA_CLUSTER_AUTOSCALER"] == "RATE_BASED"
    assert ResourceManager.GLOBAL_LIMITS_UPDATE_INTERVAL_S == 0.25


def test_tune_ray_data_chooses_where_block_metadata_is_fetched(monkeypatch):
    from ray.data._internal.execution import metadata_fetcher

    monkeypatch.setattr(metadata_fetcher, "_PREFETCH_ON_THREAD", metadata_fetcher._PREFETCH_ON_THREAD)
    monkeypatch.delenv("RAY_DATA_METADATA_PREFETCH_ON_THREAD", raising=False)
    tune_ray_data(RayConfig())  # default: inline, at the task's completion
    assert metadata_fetcher._PREFETCH_ON_THREAD is False
    assert os.environ["RAY_DATA_METADATA_PREFETCH_ON_THREAD"] == "0"
    tune_ray_data(RayConfig(data_metadata_on_thread=True))
    assert metadata_fetcher._PREFETCH_ON_THREAD is True
    assert os.environ["RAY_DATA_METADATA_PREFETCH_ON_THREAD"] == "1"
