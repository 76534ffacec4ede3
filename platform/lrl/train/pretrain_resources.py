"""What pretraining asks of the Ray cluster: the device (``choose_device``), whether the cluster can
ever place the workers (``check_resources``), Ray Train's ``fit`` with a user's Ctrl-C ending as a
stop (``fit_or_stop``) and the config error its workers raised (``worker_config_error``). Ray must be
running for all but the last two."""

from __future__ import annotations

import os
import signal

from lrl.capacity import autoscaler_fit, autoscaler_max, largest_node_type, workers_that_fit
from lrl.config import ConfigError
from lrl.runtime import embedded_ray
from lrl.train.pretrain_config import PretrainConfig


def choose_device(cfg: PretrainConfig) -> tuple[bool, str]:
    """(train on GPUs, why): ``pretrain.use_gpu`` when set; when None, whether the Ray cluster has,
    or its autoscaler can add, a GPU for each of the ``num_workers`` workers. Ray must be running.

    Decided from the cluster, not from the driver's CUDA: on the shipped clusters (cluster/) the
    driver runs on a head without GPUs beside GPU worker groups, and pretraining ran on CPU and
    never asked for the GPU workers. Too few GPUs trains on CPU instead of waiting forever for a
    placement group that cannot be placed (``use_gpu: true`` waits)."""
    if cfg.use_gpu is not None:
        return cfg.use_gpu, f"pretrain.use_gpu={str(cfg.use_gpu).lower()}"
    import ray

    need = cfg.num_workers
    have = float(ray.cluster_resources().get("GPU", 0))
    grow = autoscaler_gpus()
    if have >= need:
        return True, f"auto: the Ray cluster has {have:g} GPUs for {need} worker(s)"
    if grow >= need:
        most = "no limit" if grow == float("inf") else f"up to {grow:g}"
        return True, f"auto: the cluster's autoscaler can add GPU nodes ({most} GPUs) for {need} worker(s)"
    if max(have, grow) > 0:
        return False, (f"auto: {need} worker(s) need {need} GPUs and the cluster has {have:g} (at most "
                       f"{max(have, grow):g}); set pretrain.num_workers, or use_gpu=true to wait for them")
    return False, "auto: no GPUs in the Ray cluster or its autoscaler's node types"


def autoscaler_gpus() -> float:
    """GPUs of the cluster at its autoscaler's maximum (``autoscaler_max``); 0 without a config."""
    return autoscaler_max("GPU") or 0.0


def check_resources(cfg: PretrainConfig, gpu: bool, embedded: bool | None = None) -> str | None:
    """Fail with a ``ConfigError`` when the workers can never be placed; None when they fit now, or
    a warning when they fit only if the cluster grows.

    Ray Train asks for one bundle per worker and waits until it is granted: with
    ``num_workers: 2, cpus_per_worker: 4`` on an embedded Ray of 2 CPUs it printed "No available
    node types can fulfill resource request {'CPU': 4.0}" for ever. The embedded Ray never grows,
    nor does a cluster whose published autoscaler maximum is too small. Ray 2.60's autoscalers
    (``ray up``, KubeRay) publish no maximum, so a joined cluster that is too small now may still
    grow: only a warning then."""
    import ray

    embedded = embedded_ray() if embedded is None else embedded
    need_gpus = 1.0 if gpu else 0.0
    nodes = [n.get("Resources") or {} for n in ray.nodes() if n.get("Alive")]
    if workers_that_fit(nodes, cfg.cpus_per_worker, need_gpus) >= cfg.num_workers:
        return None
    total = ray.cluster_resources()
    what = (f"pretrain.num_workers={cfg.num_workers} x cpus_per_worker={cfg.cpus_per_worker:g}"
            + (" and 1 GPU each" if gpu else "") + f" ({cfg.num_workers * cfg.cpus_per_worker:g} CPUs"
            + (f", {cfg.num_workers} GPUs" if gpu else "") + ", each worker's on one node)")
    has = (f"{total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs on {len(nodes)} node(s), at most "
           f"{max((r.get('CPU', 0) for r in nodes), default=0):g} CPUs on one")
    fix = "lower pretrain.num_workers or cpus_per_worker" + (", or set pretrain.use_gpu" if gpu else "")
    if embedded:
        raise ConfigError(f"{what} can never be placed on the embedded local Ray ({has}; ray.num_cpus sets "
                          f"its CPUs) and Ray Train would wait for them for ever: {fix}, or join a "
                          "cluster (ray.address)")
    most = autoscaler_fit(cfg.cpus_per_worker, 1.0 if gpu else 0.0)  # per node type, as Ray places them
    if most is not None and most < cfg.num_workers:
        raise ConfigError(f"{what} can never be placed: the nodes the Ray cluster's autoscaler can add hold at "
                          f"most {most:g} such workers ({largest_node_type()}; now {has}): {fix}")
    return (f"pretrain: {what} do not fit on the Ray cluster now ({has}); Ray Train waits until an "
            "autoscaler adds nodes, for ever if this cluster has none")


def fit_or_stop(trainer):
    """``trainer.fit()``, with a user's Ctrl-C during it raised as ``KeyboardInterrupt``.

    Ray Train installs its own SIGINT handler in ``fit``: the first Ctrl-C aborts the run (its
    checkpoints stay, so a rerun resumes) and ``fit`` then raises ``SystemExit(1)``, which ``lrl
    run`` logged as "pretrain: FAILED" with exit status 1. Ray's handler is wrapped to note the
    signal; after one, a ``SystemExit`` (or a normal return: the run had just finished) becomes a
    ``KeyboardInterrupt``, which stops like any Ctrl-C (STOPPED, exit 130). Without a Ctrl-C nothing
    changes: a training failure stays Ray Train's error."""
    received: list[int] = []
    register = getattr(trainer, "_register_sigint_handler", None)  # Ray 2.60's; left alone if moved
    if callable(register):
        def noting(controller) -> None:
            register(controller)
            handler = signal.getsignal(signal.SIGINT)

            def on_sigint(signum, frame) -> None:
                received.append(signum)
                if callable(handler):
                    handler(signum, frame)
                else:
                    raise KeyboardInterrupt

            signal.signal(signal.SIGINT, on_sigint)

        trainer._register_sigint_handler = noting
    stopped = "pretraining stopped by Ctrl-C; its checkpoints are kept, run the same command again to resume"
    try:
        result = trainer.fit()
    except SystemExit:
        if received:
            raise KeyboardInterrupt(stopped) from None
        raise
    if received:
        raise KeyboardInterrupt(stopped)
    return result


def ray_train_v1_value() -> str | None:
    """The value of ``RAY_TRAIN_V2_ENABLED`` when it selects Ray Train V1, else None. Ray takes V2
    only for ``1`` or ``true`` (any case, not stripped: ``ray_constants.env_bool``), V1 for any
    other value: testing for ``0``/``false``/``False`` let ``FALSE``, ``no``, an empty value or
    `` 1`` through to V1."""
    value = os.environ.get("RAY_TRAIN_V2_ENABLED")
    return None if value is None or value.lower() in ("1", "true") else value


def worker_config_error(exc: BaseException) -> ConfigError | None:
    """The ``ConfigError`` a Ray Train worker raised, when ``exc`` (``fit``'s error at the driver, a
    ``ray.train.WorkerGroupError``) holds one; else None. Settings checked only where they are used
    (DeepSpeed's config against the engine, a checkpoint against the model) fail in the workers:
    the driver saw Ray Train's error, not a config error."""
    failures = getattr(exc, "worker_failures", None)
    found = [e for e in failures.values() if isinstance(e, ConfigError)] if isinstance(failures, dict) else []
    return found[0] if found else None


__all__ = ["choose_device", "autoscaler_gpus", "check_resources", "fit_or_stop", "ray_train_v1_value",
           "worker_config_error"]
