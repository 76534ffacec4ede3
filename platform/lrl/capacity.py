"""What the Ray cluster can hold: tasks per node now, and at its autoscaler's published maximum.

A task's bundle (a Ray Train worker, a fine-tuning task, a Tune trial, an MT actor) must fit on one
node; cluster totals say nothing about that. These checks let a stage fail at once with the
setting to change instead of waiting for ever for a placement no node type can give.
"""

from __future__ import annotations


def workers_that_fit(nodes: list[dict[str, float]], cpus: float, gpus: float) -> int:
    """How many workers of ``cpus`` CPUs and ``gpus`` GPUs fit on nodes with these total resources
    (a worker's bundle must fit on one node). Counted in Ray's units of 1/10000, as Ray places
    them: in floats ``1 // 0.1`` is 9, and Ray places 10 (pretraining's workers and the MT actor pool).
    A bundle of no CPUs and no GPUs fits without bound (counted as a large number)."""
    def units(x: float) -> int:
        return round(float(x) * 10000)

    unbounded = 1 << 30
    count = 0
    for res in nodes:
        n = units(res.get("CPU", 0)) // units(cpus) if units(cpus) else unbounded
        if units(gpus):
            n = min(n, units(res.get("GPU", 0)) // units(gpus))
        count += n
    return count


def _node_groups() -> list | None:
    """The autoscaler's node types (``resources``, ``max_count``; -1 is unbounded), or None when
    Ray publishes no autoscaler config (a local or fixed cluster, and Ray 2.60's own autoscalers,
    ``ray up`` and KubeRay's)."""
    try:
        import ray._private.state

        config = ray._private.state.state.get_cluster_config()
    except Exception:  # a private API: without it, only the resources there are count
        return None
    if not config or not config.node_group_configs:
        return None
    return list(config.node_group_configs)


def autoscaler_max(resource: str) -> float | None:
    """How much of ``resource`` the cluster has at its autoscaler's maximum (every node type at its
    max count; inf when a node type with it is unbounded); None without a published config. A
    total: right for planning work over CPUs, wrong for placing one task (``autoscaler_fit``)."""
    groups = _node_groups()
    if groups is None:
        return None
    total = 0.0
    for group in groups:
        amount = float((group.resources or {}).get(resource, 0))
        if amount and group.max_count < 0:
            return float("inf")
        total += amount * max(0, group.max_count)
    return total


def autoscaler_cpus() -> int:
    """CPUs of the cluster at its autoscaler's maximum (``autoscaler_max``); 0 when that is
    unknown or unbounded (no number to plan for)."""
    most = autoscaler_max("CPU")
    return 0 if most is None or most == float("inf") else int(most)


def autoscaler_fit(cpus: float, gpus: float = 0.0) -> float | None:
    """How many tasks of ``cpus`` CPUs and ``gpus`` GPUs, each on one node, the cluster holds at its
    autoscaler's maximum (every node type at its max count); inf when an unbounded node type holds
    one; None without a published config. Ten 2-CPU nodes hold no 4-CPU task, though they have 20."""
    groups = _node_groups()
    if groups is None:
        return None
    total = 0.0
    for group in groups:
        per_node = workers_that_fit([group.resources or {}], cpus, gpus)
        if per_node and group.max_count < 0:
            return float("inf")
        total += per_node * max(0, group.max_count)
    return total


def largest_node_type() -> str:
    """The largest CPU and GPU counts of one node type the autoscaler can add ("" without a
    config), for messages that say why a task never fits."""
    groups = _node_groups() or []
    cpus = max((float((g.resources or {}).get("CPU", 0)) for g in groups if g.max_count), default=0)
    gpus = max((float((g.resources or {}).get("GPU", 0)) for g in groups if g.max_count), default=0)
    return f"its node types have at most {cpus:g} CPUs and {gpus:g} GPUs each" if groups else ""


__all__ = ["autoscaler_cpus", "autoscaler_fit", "autoscaler_max", "largest_node_type", "workers_that_fit"]
