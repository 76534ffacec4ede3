"""Process settings applied before Ray starts (lrl.runtime)."""

from __future__ import annotations

import logging
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


def test_embedded_ray_quiets_state_api_warnings_and_drops_the_preemption_watcher(tmp_path):
    """Without a dashboard, Ray Train V2's placement-group cleaner logged a failed State API query
    every second; the embedded Ray's worker setup hook raises that logger to ERROR in workers.
    The embedded Ray's workers also see ``EMBEDDED_ENV`` (no preemption watcher on one machine)."""
    import json
    import subprocess
    import sys

    from lrl.runtime import EMBEDDED_ENV, NO_DASHBOARD_QUIET

    code = f"""
import json, logging
from lrl.runtime import RayConfig, init_ray
ray = init_ray(RayConfig(num_cpus=1))
names = {list(NO_DASHBOARD_QUIET)!r}

@ray.remote(num_cpus=0)
def levels():
    return [logging.getLogger(n).level for n in names]

@ray.remote(num_cpus=0)
def env():
    import os
    return {{k: os.environ.get(k) for k in {list(EMBEDDED_ENV)!r}}}

print("LEVELS", json.dumps({{"worker": ray.get(levels.remote()), "env": ray.get(env.remote()),
                            "driver": [logging.getLogger(n).level for n in names]}}))
ray.shutdown()
"""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS" and k not in EMBEDDED_ENV}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                         cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(next(x for x in res.stdout.splitlines() if x.startswith("LEVELS "))[len("LEVELS "):])
    assert got["worker"] == [logging.ERROR] * len(NO_DASHBOARD_QUIET)
    assert got["driver"] == [logging.NOTSET] * len(NO_DASHBOARD_QUIET)  # only Ray's workers are touched
    assert got["env"] == EMBEDDED_ENV
