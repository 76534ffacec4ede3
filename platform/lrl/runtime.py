"""Starting or joining Ray the same way locally and on a cluster.

``ray.init()`` without an address joins the cluster named by ``RAY_ADDRESS`` (as under
``ray job submit``) and otherwise starts an embedded local instance; resources come from config.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
from typing import Literal

from pydantic import Field

from lrl.capacity import autoscaler_cpus
from lrl.config import ConfigError, StrictModel


class RayConfig(StrictModel):
    """How the job reaches Ray."""

    address: str | None = None
    """Cluster to join (``HOST:6379``, ``ray://host:10001`` or ``auto``); None uses ``RAY_ADDRESS``
    when set and otherwise starts an embedded local Ray. An address where nothing answers, or a
    cluster that rejects this machine's token, is an error within seconds (``lrl.ray_join``)."""
    num_cpus: int | None = Field(default=None, gt=0)
    """CPUs of the embedded local Ray (ignored when joining a cluster); None takes all."""
    object_store_memory_mb: int | None = Field(default=None, gt=0)
    """Object store size of the embedded local Ray in MiB; None lets Ray choose."""
    include_dashboard: bool = False
    """Start the dashboard with the embedded Ray (bound to 127.0.0.1 only)."""
    data_autoscaler: Literal["V2", "RATE_BASED"] = "V2"
    """Ray Data's cluster autoscaler (sets ``RAY_DATA_CLUSTER_AUTOSCALER`` in the driver). Ray 2.60's
    default, RATE_BASED, grants a dataset the cluster's CPUs one coordinator poll (~1 s) at a time,
    which left half of a 2-CPU machine idle for a dataset's first second
    (docs/benchmarks.md, generate stage); V2 uses the CPUs there are at once and still asks an
    autoscaling cluster for more."""
    data_limits_refresh_s: float = Field(default=0.1, gt=0)
    """How often Ray Data re-reads the cluster's resources while a dataset runs. Ray 2.60 reads them
    once a second and starts every dataset with none granted yet, so for its first second a dataset
    ran one task at a time (one of two CPUs idle: 1 s of a 6 s job); 0.1 s closes that gap."""
    data_metadata_on_thread: bool = False
    """Let Ray Data fetch each finished task's block metadata on a background thread (Ray 2.60's
    default; sets ``RAY_DATA_METADATA_PREFETCH_ON_THREAD``). That thread polls every 0.1 s and a
    task's CPU is only handed to the next task after it, so each task boundary left its worker idle
    for ~0.15-0.2 s; fetching inline at the completion halved workers' idle time on 2 CPUs
    (docs/benchmarks.md, generate stage)."""
    data_wake_on_first_completion: bool = True
    """Wake Ray Data's scheduling loop as soon as ONE running task finishes. Ray 2.60's loop waits
    in ``ray.wait`` for *all* running tasks or 0.1 s, so a worker whose task had ended sat idle
    until the next tick before its next task was dispatched: 48 ms per task boundary on 2 CPUs
    against 7 ms with this on (docs/benchmarks.md, generate stage, session 7). The loop still
    runs at least every 0.1 s."""
    data_start_on_cluster_resources: bool = True
    """Size a dataset's budget from the cluster's current resources until Ray Data's autoscaling
    coordinator (the V2 autoscaler's) has granted it something. Ray 2.60 asks the coordinator
    without waiting and counts nothing granted until the answer arrives, one or two limit refreshes
    later, so every dataset started with a budget of zero CPUs: one task ran and the second CPU
    idled ~0.11 s (docs/benchmarks.md, generate stage, session 8). From the first grant on, the
    coordinator's answer is used as before."""
    freeze_worker_heap: bool = True
    """In each worker process that runs one of the generate stage's sliced Ray Data steps
    (oversample and augment, ``lrl.generate.base.map_slices``), move every Python object alive
    after the step's first slice into the permanent GC generation (``gc.freeze``). The imported
    modules and the step's resources (~115k objects) are then skipped by every later full
    collection: in the augment benchmark the workers spent ~0.65 s of ~11 CPU-s in the
    collector, 0.16 s with this on (docs/benchmarks.md, generate stage, session 10). Objects
    frozen that later become unreachable *in a cycle* are only reclaimed when the worker exits;
    anything freed by reference counting is freed as usual."""
    plan_cpus: int | None = Field(default=None, gt=0)
    """CPUs the generate stage cuts its input for (4 blocks, i.e. tasks, per CPU). None: the CPUs
    the cluster has when the stage starts, or the most it can grow to where Ray publishes its
    autoscaler's node groups with maximum counts (``get_cluster_config``; Ray 2.60's own
    autoscalers, ``ray up`` and KubeRay's, do not publish them). On an autoscaling cluster set it
    to the CPUs the cluster may grow to (the shipped ones: 128): cut for the CPUs of the moment, a
    cluster that starts with a 0-CPU head and no workers got 4 tasks, which fit on one node, so
    augmentation never spread over more nodes. It changes how the work is split, never the rows."""
    start_data_actors: bool = True
    """Create Ray Data's two cluster-wide actors (its stats actor and the autoscaling coordinator
    that Ray Data and Ray Train both ask for resources) as the embedded Ray starts, without
    waiting for them. Otherwise Ray Train's controller starts the coordinator (a new worker
    process) and waits for it before it starts the training workers: 2-4 s less before the
    first step with this on, on 2 CPUs (docs/benchmarks.md, pretraining, session 9)."""


def plan_cpus(cfg: RayConfig) -> int:
    """The CPUs to split a stage's work over (``RayConfig.plan_cpus``); Ray must be running."""
    import ray

    if cfg.plan_cpus:
        return cfg.plan_cpus
    return max(1, int(ray.cluster_resources().get("CPU", 0)), autoscaler_cpus())


def embedded_ray() -> bool:
    """True when this process started the Ray it uses (``lrl.runtime.init_ray`` without an
    address): no autoscaler adds nodes to it, so what it has is all it will ever have. Read from
    Ray's private node handle (the head only in the process that started it); False (treated as a
    cluster) when it is missing, as under Ray Client."""
    try:
        import ray._private.worker

        node = ray._private.worker._global_node
    except Exception:
        return False
    return bool(node is not None and getattr(node, "head", False))


def quiet_env() -> None:
    """Process-wide defaults, set before Ray starts: an offline machine, readable logs, and Ray
    Train reports that do not stall."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Ray Train V2 blocks ~2 s per report at its default health-check interval (DESIGN.md). The
    # controller reads it when Ray starts, so it is set here, before the first stage starts Ray,
    # not by the training stage (Ray may already be running when that stage begins).
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
    if not _has_cuda():
        # DeepSpeed finds its CPU accelerator itself; setting it silences a warning per process.
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # torch missing or broken: treat as CPU
        return False


def tune_ray_data(cfg: RayConfig) -> None:
    """Ray Data settings of this (the driver) process, read whenever a dataset starts executing."""
    os.environ["RAY_DATA_CLUSTER_AUTOSCALER"] = cfg.data_autoscaler
    # The environment reaches processes started later (Ray's workers, e.g. the split coordinator
    # that runs a training dataset); the module flag covers this process if Ray Data is imported.
    os.environ["RAY_DATA_METADATA_PREFETCH_ON_THREAD"] = "1" if cfg.data_metadata_on_thread else "0"
    _set_internal("ray.data._internal.execution.metadata_fetcher", None, "_PREFETCH_ON_THREAD",
                  cfg.data_metadata_on_thread)
    _set_internal("ray.data._internal.execution.resource_manager", "ResourceManager",
                  "GLOBAL_LIMITS_UPDATE_INTERVAL_S", cfg.data_limits_refresh_s)
    _wake_on_first_completion(cfg.data_wake_on_first_completion)
    _start_on_cluster_resources(cfg.data_start_on_cluster_resources)
    global _FREEZE_WORKER_HEAP
    _FREEZE_WORKER_HEAP = cfg.freeze_worker_heap


#: ``RayConfig.freeze_worker_heap`` of the last ``init_ray`` in this (driver) process; read when a
#: step builds its Ray Data operator, so the value travels to the workers with the task.
_FREEZE_WORKER_HEAP = True


def freeze_worker_heap() -> bool:
    """Whether lrl's Ray Data steps freeze their workers' heaps (``RayConfig.freeze_worker_heap``)."""
    return _FREEZE_WORKER_HEAP


class FirstCompletionRay:
    """``ray`` as Ray Data's scheduling loop sees it (the name ``ray`` in its
    ``streaming_executor_state`` module) with ``data_wake_on_first_completion``: ``wait`` returns
    as soon as one ref is ready, together with every other ref ready by then, instead of waiting
    for ``num_returns`` refs or the timeout. Everything else is ``ray`` itself."""

    def __getattr__(self, name: str):
        import ray

        return getattr(ray, name)

    @staticmethod
    def wait(refs: list, *, num_returns: int = 1, timeout: float | None = None, fetch_local: bool = True):
        import ray

        if not refs:
            return [], []
        ready, rest = ray.wait(refs, num_returns=1, timeout=timeout, fetch_local=fetch_local)
        if ready and rest:  # whatever else has finished by now, without blocking
            more, rest = ray.wait(rest, num_returns=len(rest), timeout=0, fetch_local=fetch_local)
            ready = ready + more
        return ready, rest


def _wake_on_first_completion(on: bool) -> None:
    """Swap the ``ray`` whose ``wait`` Ray Data's scheduling loop calls (there is no public
    setting); left alone if Ray moves that module or the name there is no longer ``ray``."""
    try:
        import ray
        from ray.data._internal.execution import streaming_executor_state as ses
    except ImportError:
        return
    current = getattr(ses, "ray", None)
    if on and current is ray:
        ses.ray = FirstCompletionRay()
    elif not on and isinstance(current, FirstCompletionRay):
        ses.ray = ray


def _until_granted(original):
    """``DefaultClusterAutoscalerV2.get_total_resources`` that answers with the cluster's resources
    while the coordinator has granted this dataset nothing yet (see
    ``data_start_on_cluster_resources``)."""

    @functools.wraps(original)
    def get_total_resources(self):
        granted = original(self)
        if getattr(self, "_lrl_granted", False) or not granted.is_zero():
            self._lrl_granted = True  # from now on the coordinator's answer stands, even if zero
            return granted
        import ray
        from ray.data._internal.execution.interfaces import ExecutionResources

        return ExecutionResources.from_resource_dict(ray.cluster_resources())

    get_total_resources.lrl_until_granted = True  # how _start_on_cluster_resources knows its own wrapper
    return get_total_resources


def _start_on_cluster_resources(on: bool) -> None:
    """Wrap or unwrap the V2 autoscaler's ``get_total_resources`` (no public setting); left alone if
    Ray moves or renames it."""
    try:
        from ray.data._internal.cluster_autoscaler.default_cluster_autoscaler_v2 import (
            DefaultClusterAutoscalerV2,
        )
    except ImportError:
        return
    current = DefaultClusterAutoscalerV2.__dict__.get("get_total_resources")
    if current is None:
        return
    wrapped = getattr(current, "lrl_until_granted", False)
    if on and not wrapped:
        DefaultClusterAutoscalerV2.get_total_resources = _until_granted(current)
    elif not on and wrapped:
        DefaultClusterAutoscalerV2.get_total_resources = current.__wrapped__


def _set_internal(module: str, owner: str | None, attr: str, value) -> None:
    """Set a Ray Data internal (a module or class constant: there is no public setting); left alone
    if Ray renames or removes it."""
    import importlib

    try:
        target = importlib.import_module(module)
    except ImportError:
        return
    target = getattr(target, owner, None) if owner else target
    if target is not None and hasattr(target, attr):
        setattr(target, attr, value)


@contextlib.contextmanager
def _sigterm_kept(keep: bool):
    """Around ``ray.init``: put the lrl command's SIGTERM handler back after it (Ray replaces it
    with its own ``sys.exit(15)``), and count a SIGTERM that Ray's handler took meanwhile as one."""
    from lrl.signals import handle_sigterm, terminated_by_ray

    try:
        yield
    except SystemExit as exc:
        if keep and exc.code == signal.SIGTERM:
            raise terminated_by_ray(exc) from None
        raise
    if keep:
        handle_sigterm()


def _token_auth_quietly() -> None:
    """Token authentication on for the embedded Ray, as Ray 2.60 turns it on by default, without
    the warning Ray then prints at every command ("Token authentication is enabled for this Ray
    cluster. Set RAY_AUTH_MODE=disabled to opt out"). Turned on the way Ray does it: the mode in
    this process's environment and Ray's cached config read again (the variable alone failed to
    start Ray). A mode the user set is left alone; if Ray moves this private function, Ray's own
    default, warning included, stays."""
    from lrl.ray_token import ensure_token_file

    ensure_token_file()  # before Ray's own in-place write, which concurrent starts raced on
    if os.environ.get("RAY_AUTH_MODE") is not None:
        return
    try:
        from ray._private.authentication.authentication_token_setup import _enable_token_auth
    except ImportError:
        return
    _enable_token_auth()


def init_ray(cfg: RayConfig | None = None):
    """Join or start Ray once per process; returns the ``ray`` module."""
    import ray

    cfg = cfg or RayConfig()
    quiet_env()
    tune_ray_data(cfg)
    if ray.is_initialized():
        return ray
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    if address and address.startswith(("http://", "https://")):
        # A job server URL: what `lrl submit` reads from RAY_ADDRESS. Exported for it, it made every
        # later `lrl run` on the laptop end in a traceback from inside ray.init.
        where = "ray.address" if cfg.address else "RAY_ADDRESS"
        raise ConfigError(f"{where}={address} is a job server (dashboard) address, which `lrl submit` "
                          "takes; `lrl run` joins a cluster at its GCS address (HOST:6379) or "
                          "ray://HOST:10001, and starts an embedded Ray when neither is set: unset "
                          f"{where} to run here, or submit the job (`lrl submit ... --address {address}`)")
    from lrl.signals import sigterm_is_handled

    # ray.init replaces the SIGTERM handler with its own sys.exit(15); the lrl command's turns
    # SIGTERM into Ctrl-C's unwinding (stages remove their temporary folders) and exit status 143.
    keep_sigterm = sigterm_is_handled()
    if address:
        from lrl.ray_join import check_join

        check_join(address, "ray.address" if cfg.address else "RAY_ADDRESS")
        with _sigterm_kept(keep_sigterm):
            ray.init(address=address, log_to_driver=True)
    else:
        # address="local": always an embedded instance here, never a cluster someone happened to
        # `ray start` on this machine (plain ray.init() would silently join it).
        for key, value in EMBEDDED_ENV.items():  # before Ray starts: its processes inherit them
            os.environ.setdefault(key, value)
        _token_auth_quietly()
        with _sigterm_kept(keep_sigterm):
            ray.init(
                address="local",
                num_cpus=cfg.num_cpus,
                object_store_memory=cfg.object_store_memory_mb * 2**20 if cfg.object_store_memory_mb else None,
                include_dashboard=cfg.include_dashboard,
                dashboard_host="127.0.0.1",
                log_to_driver=True,
                # with a dashboard the silenced warnings do not occur; the address pin is needed anyway
                runtime_env={"worker_process_setup_hook": "lrl.runtime.no_dashboard_logs"},
            )
        if cfg.start_data_actors:
            start_data_actors()
    return ray


def start_data_actors() -> None:
    """Ask Ray for Ray Data's stats actor and autoscaling coordinator now (named, get-if-exists:
    the calls Ray Data and Ray Train make later, which then find them); returns at once. Left
    alone if Ray moves these internals."""
    try:
        from ray.data._internal.cluster_autoscaler import get_or_create_autoscaling_coordinator
        from ray.data._internal.stats import get_or_create_stats_actor
    except ImportError:
        return
    get_or_create_stats_actor()
    get_or_create_autoscaling_coordinator()


#: Environment of the embedded Ray only (a cluster keeps Ray's defaults; a value the user set wins).
#: Ray Train V2's preemption watcher is an extra actor that polls whether a cloud provider is
#: draining a node; one local machine is never drained, so it is one idle process (and its 10 ms
#: signal-check wake-ups) for nothing. It was not shown to change training speed
#: (docs/benchmarks.md, pretraining, sessions 5 and 6).
EMBEDDED_ENV = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}

#: Loggers silenced below WARNING in the workers of an embedded Ray without a dashboard.
#: Ray Train V2's placement-group cleaner asks the State API once a second whether the training
#: controller is alive; the State API is served by the dashboard, so without one every ask fails
#: and logs a warning: a line per second for the whole of ``lrl pretrain`` / ``lrl finetune``.
#: The cleaner only matters if the controller dies without cleaning up; the embedded instance's
#: placement groups go with ``ray.shutdown()`` anyway.
NO_DASHBOARD_QUIET = ("ray.train.v2._internal.execution.controller.placement_group_cleaner",)


#: Ray's deprecation warning raised from inside Ray Train (2.60), not from lrl's settings.
RAY_INTERNAL_DEPRECATION = r"`ExecutionOptions\.exclude_resources` is deprecated"


def no_dashboard_logs() -> None:
    """``worker_process_setup_hook`` of the embedded Ray (run in each worker process as it starts)."""
    import logging
    import warnings

    import ray

    for name in NO_DASHBOARD_QUIET:
        logging.getLogger(name).setLevel(logging.ERROR)
    # Ray Train's own DatasetManager sets an ExecutionOptions field Ray Data deprecated: a two-line
    # warning in every pretraining run that no setting of the user's causes or can change.
    warnings.filterwarnings("ignore", message=RAY_INTERNAL_DEPRECATION)
    # The same cleaner asks with no address, and Ray then looks for "the" Ray on the machine: with
    # another one running (a `ray start` cluster, a second embedded run) it raised "Found multiple
    # active Ray instances" and the run's log got the cleaner's traceback. This worker's own Ray
    # is the one meant; only Ray's address lookups in this worker read the variable.
    os.environ.setdefault("RAY_ADDRESS", ray.get_runtime_context().gcs_address)
