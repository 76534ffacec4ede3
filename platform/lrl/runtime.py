"""Starting or joining Ray the same way locally and on a cluster.

``ray.init()`` without an address joins the cluster named by ``RAY_ADDRESS`` (as under
``ray job submit``) and otherwise starts an embedded local instance; resources come from config.
"""

from __future__ import annotations

import os

from pydantic import Field

from lrl.config import StrictModel


class RayConfig(StrictModel):
    """How the job reaches Ray."""

    address: str | None = None
    """Cluster to join (``ray://host:10001`` or ``auto``); None uses ``RAY_ADDRESS`` when set and
    otherwise starts an embedded local Ray."""
    num_cpus: int | None = Field(default=None, gt=0)
    """CPUs of the embedded local Ray (ignored when joining a cluster); None takes all."""
    object_store_memory_mb: int | None = Field(default=None, gt=0)
    """Object store size of the embedded local Ray in MiB; None lets Ray choose."""
    include_dashboard: bool = False
    """Start the dashboard with the embedded Ray (bound to 127.0.0.1 only)."""


def quiet_env() -> None:
    """Defaults that suit an offline machine and keep logs readable."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not _has_cuda():
        # DeepSpeed finds its CPU accelerator itself; setting it silences a warning per process.
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # torch missing or broken: treat as CPU
        return False


def init_ray(cfg: RayConfig | None = None):
    """Join or start Ray once per process; returns the ``ray`` module."""
    import ray

    cfg = cfg or RayConfig()
    quiet_env()
    if ray.is_initialized():
        return ray
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        # address="local": always an embedded instance here, never a cluster someone happened to
        # `ray start` on this machine (plain ray.init() would silently join it).
        ray.init(
            address="local",
            num_cpus=cfg.num_cpus,
            object_store_memory=cfg.object_store_memory_mb * 2**20 if cfg.object_store_memory_mb else None,
            include_dashboard=cfg.include_dashboard,
            dashboard_host="127.0.0.1",
            log_to_driver=True,
        )
    return ray
