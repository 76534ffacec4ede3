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
    The embedded Ray's workers also see ``EMBEDDED_ENV`` (no preemption watcher on one machine)
    and look up their own Ray by address. Token authentication is on without Ray's warning."""
    import json
    import subprocess
    import sys

    from lrl.runtime import EMBEDDED_ENV, NO_DASHBOARD_QUIET

    code = f"""
import json, logging, os
from lrl.runtime import RayConfig, init_ray
ray = init_ray(RayConfig(num_cpus=1))
actors = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True))  # before any dataset
names = {list(NO_DASHBOARD_QUIET)!r}

@ray.remote(num_cpus=0)
def levels():
    return [logging.getLogger(n).level for n in names]

@ray.remote(num_cpus=0)
def ray_internal_warning():
    import warnings
    from ray.data._internal.execution.interfaces.execution_options import ExecutionOptions, ExecutionResources
    with warnings.catch_warnings(record=True) as seen:
        ExecutionOptions(exclude_resources=ExecutionResources.zero())  # what Ray Train's DatasetManager does
    return [str(w.message) for w in seen]

@ray.remote(num_cpus=0)
def env():
    import os
    return {{k: os.environ.get(k) for k in {list(EMBEDDED_ENV)!r}}}

@ray.remote(num_cpus=0)
def lookup():  # what Ray's address lookup (the cleaner's State API client) finds in a worker
    import os
    from ray._private.services import canonicalize_bootstrap_address_or_die
    own = ray.get_runtime_context().gcs_address
    return os.environ.get("RAY_ADDRESS") == own and canonicalize_bootstrap_address_or_die(None) == own

print("LEVELS", json.dumps({{"worker": ray.get(levels.remote()), "env": ray.get(env.remote()),
                            "driver": [logging.getLogger(n).level for n in names], "actors": actors,
                            "own_address": ray.get(lookup.remote()),
                            "auth": os.environ.get("RAY_AUTH_MODE"),
                            "ray_internal_warning": ray.get(ray_internal_warning.remote())}}))
ray.shutdown()
"""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE") and k not in EMBEDDED_ENV}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                         cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(next(x for x in res.stdout.splitlines() if x.startswith("LEVELS "))[len("LEVELS "):])
    assert got["worker"] == [logging.ERROR] * len(NO_DASHBOARD_QUIET)
    assert got["driver"] == [logging.NOTSET] * len(NO_DASHBOARD_QUIET)  # only Ray's workers are touched
    assert got["env"] == EMBEDDED_ENV
    # Ray Data's stats actor and autoscaling coordinator are asked for as Ray starts (start_data_actors)
    assert got["actors"] == ["AutoscalingCoordinator", "datasets_stats_actor"]
    # With another Ray on the machine the cleaner's lookup raised "Found multiple active Ray
    # instances"; the workers now name their own Ray (its GCS address in RAY_ADDRESS).
    assert got["own_address"] is True
    # Token authentication stays on, as Ray's default, without Ray's warning at every command
    assert got["auth"] == "token" and "Token authentication is enabled" not in res.stderr
    assert got["ray_internal_warning"] == []  # Ray Train's own use of a deprecated Ray Data option


def test_start_data_actors_creates_each_actor_once(ray_session):
    from lrl.runtime import start_data_actors

    start_data_actors()
    start_data_actors()
    named = [a["name"] for a in ray_session.util.list_named_actors(all_namespaces=True)]
    assert named.count("AutoscalingCoordinator") == 1 and named.count("datasets_stats_actor") == 1


def test_scheduling_loop_wakes_on_the_first_finished_task(ray_session, monkeypatch):
    """Ray Data's loop waits on ``streaming_executor_state.ray.wait`` for every running task or its
    timeout; with ``data_wake_on_first_completion`` it gets back the finished ones at once."""
    import time

    from ray.data._internal.execution import streaming_executor_state as ses

    from lrl.runtime import FirstCompletionRay

    ray = ray_session
    monkeypatch.setattr(ses, "ray", ray)  # restored after the test
    tune_ray_data(RayConfig(data_wake_on_first_completion=False))
    assert ses.ray is ray
    tune_ray_data(RayConfig())
    assert isinstance(ses.ray, FirstCompletionRay) and ses.ray.get is ray.get  # the rest is ray itself

    @ray.remote(num_cpus=0)
    def sleep(s: float) -> float:
        time.sleep(s)
        return s

    fast, fast2, slow = sleep.remote(0.0), sleep.remote(0.0), sleep.remote(60.0)
    ray.get([fast, fast2])
    t0 = time.perf_counter()
    ready, rest = ses.ray.wait([slow, fast, fast2], num_returns=3, timeout=30.0, fetch_local=False)
    assert set(ready) == {fast, fast2} and rest == [slow]  # every finished ref, not just the first
    assert time.perf_counter() - t0 < 15.0  # did not wait for the slow task or the 30 s timeout
    ready, rest = ses.ray.wait([slow], num_returns=1, timeout=0.2, fetch_local=False)
    assert ready == [] and rest == [slow]  # nothing finished: the timeout still bounds the wait
    ray.cancel(slow, force=True)
    tune_ray_data(RayConfig(data_wake_on_first_completion=False))
    assert ses.ray is ray


def test_a_dataset_runs_to_the_same_rows_with_the_loop_waking_early(ray_session, monkeypatch):
    """The executor still finishes with every row exactly once when ``wait`` returns early."""
    from ray.data._internal.execution import streaming_executor_state as ses

    from lrl.runtime import FirstCompletionRay

    ray = ray_session
    monkeypatch.setattr(ses, "ray", ses.ray)
    tune_ray_data(RayConfig())
    assert isinstance(ses.ray, FirstCompletionRay)
    ds = ray.data.range(400, override_num_blocks=8).map_batches(lambda b: {"id": b["id"] * 2}, batch_size=None)
    assert sorted(r["id"] for r in ds.take_all()) == list(range(0, 800, 2))


def test_a_dataset_budgets_the_cluster_resources_until_the_coordinator_grants_some(ray_session, monkeypatch):
    """Until the first grant, the V2 autoscaler's total is the cluster's (2 CPUs here), not zero;
    from the first grant on, the coordinator's answer stands, even when it later grants nothing."""
    from ray.data._internal.cluster_autoscaler.default_cluster_autoscaler_v2 import DefaultClusterAutoscalerV2

    monkeypatch.setattr(DefaultClusterAutoscalerV2, "get_total_resources",
                        DefaultClusterAutoscalerV2.__dict__["get_total_resources"])  # restored after the test
    tune_ray_data(RayConfig())

    class Coordinator:  # the client's cached answers, one per refresh
        answers = [{}, {}, {"node-a": {"CPU": 1.0}}, {}]

        def get_reserved_resources(self):
            return self.answers.pop(0)

    autoscaler = object.__new__(DefaultClusterAutoscalerV2)
    autoscaler.__dict__["_autoscaling_coordinator"] = Coordinator()
    assert [autoscaler.get_total_resources().cpu for _ in range(4)] == [2, 2, 1, 0]

    tune_ray_data(RayConfig(data_start_on_cluster_resources=False))
    autoscaler = object.__new__(DefaultClusterAutoscalerV2)
    autoscaler.__dict__["_autoscaling_coordinator"] = Coordinator()
    Coordinator.answers = [{}]
    assert autoscaler.get_total_resources().cpu == 0  # Ray's own behaviour: nothing granted yet


def test_a_dataset_starts_with_a_budget_of_every_cpu(ray_session, monkeypatch):
    """The executor's first limits already hold the cluster's CPUs (with Ray 2.60 alone they were
    zero until the coordinator answered, so only one task could start)."""
    from ray.data._internal.cluster_autoscaler.default_cluster_autoscaler_v2 import DefaultClusterAutoscalerV2
    from ray.data._internal.execution import resource_manager as rm

    ray = ray_session
    monkeypatch.setattr(DefaultClusterAutoscalerV2, "get_total_resources",
                        DefaultClusterAutoscalerV2.__dict__["get_total_resources"])
    monkeypatch.setenv("RAY_DATA_CLUSTER_AUTOSCALER", "V2")
    tune_ray_data(RayConfig())
    seen: list[float] = []
    original = rm.ResourceManager.get_global_limits

    def get_global_limits(self):
        limits = original(self)
        seen.append(limits.cpu)
        return limits

    monkeypatch.setattr(rm.ResourceManager, "get_global_limits", get_global_limits)
    ds = ray.data.range(40, override_num_blocks=4).map_batches(lambda b: {"id": b["id"] + 1}, batch_size=None)
    assert sorted(r["id"] for r in ds.take_all()) == list(range(1, 41))
    assert seen and seen[0] == ray.cluster_resources()["CPU"]


class _Group:
    def __init__(self, cpus: float, max_count: int, min_count: int = 0):
        self.resources, self.max_count, self.min_count = {"CPU": cpus}, max_count, min_count


class _Config:
    def __init__(self, *groups):
        self.node_group_configs = list(groups)


def test_work_is_planned_for_the_cpus_an_autoscaling_cluster_can_grow_to(ray_session, monkeypatch):
    """A cluster that starts with a 0-CPU head and no workers was planned as 1 CPU: 4 tasks, which
    fit on one node, so augmentation never spread. Its node types' max counts say how far it grows."""
    import ray._private.state

    from lrl.capacity import autoscaler_cpus
    from lrl.runtime import plan_cpus

    now = int(ray_session.cluster_resources()["CPU"])
    state = ray._private.state.state
    monkeypatch.setattr(state, "get_cluster_config", lambda: _Config(_Group(0, 1), _Group(8, 10), _Group(0, 2)))
    assert autoscaler_cpus() == 80 and plan_cpus(RayConfig()) == 80
    assert plan_cpus(RayConfig(plan_cpus=12)) == 12  # the user's number wins
    monkeypatch.setattr(state, "get_cluster_config", lambda: _Config(_Group(0, 1), _Group(8, -1)))
    assert autoscaler_cpus() == 0 and plan_cpus(RayConfig()) == now  # unbounded: no number to plan for
    monkeypatch.setattr(state, "get_cluster_config", lambda: None)
    assert plan_cpus(RayConfig()) == now  # a local or fixed cluster


def test_generate_cuts_its_blocks_for_the_planned_cpus(tmp_path, data_root, monkeypatch):
    import lrl.generate.stage as stage
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    seen = []
    real = stage.plan_blocks
    monkeypatch.setattr(stage, "plan_blocks", lambda table, cpus, weights=None: seen.append(cpus) or real(table, cpus, weights))
    cfg = load_job(None, [f"data.root={data_root}", f"output.root={tmp_path}", "ray.plan_cpus=6",
                          "data.ner=[{path: wikiann/wo/train, lang: wo}]", "augment.ops=[swap]"])
    stage.run_generate(StageContext(cfg), quiet=True)
    assert seen and set(seen) == {6}
