"""Whether one task of a stage (a fine-tuning task, a Tune trial) can ever be placed on the Ray
this process uses, asked before the stage starts any.

Ray waits for a task's resources without end: ``tune.cpus_per_trial: 4`` (or
``finetune.num_cpus: 4``) on the embedded Ray of 2 CPUs printed "No available node types can
fulfill resource request {'CPU': 4.0}" every 35 s and never returned, naming no setting. The
embedded Ray never grows; a joined cluster may (Ray 2.60's autoscalers publish no maximum), so
there it is a warning. Pretraining asks for several workers at once (``pretrain_resources``).
"""

from __future__ import annotations


def check_placement(what: str, cpus: float, gpus: float, task: str, waiter: str,
                    embedded: bool | None = None) -> str | None:
    """None when one task of ``cpus`` CPUs and ``gpus`` GPUs fits on a node now; a ``ConfigError``
    when it never can (the embedded Ray, or an autoscaler's published maximum); else a warning
    line. ``what`` names the settings (``tune.cpus_per_trial=4``), ``task`` the unit ("trial"),
    ``waiter`` who would wait ("Ray Tune"). Ray must be running."""
    import ray

    from lrl.capacity import autoscaler_fit, largest_node_type, workers_that_fit
    from lrl.config import ConfigError
    from lrl.runtime import embedded_ray

    embedded = embedded_ray() if embedded is None else embedded
    nodes = [n.get("Resources") or {} for n in ray.nodes() if n.get("Alive")]
    if workers_that_fit(nodes, cpus, gpus) >= 1:
        return None
    total = ray.cluster_resources()
    has = (f"{total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs on {len(nodes)} node(s), at most "
           f"{max((r.get('CPU', 0) for r in nodes), default=0):g} CPUs and "
           f"{max((r.get('GPU', 0) for r in nodes), default=0):g} GPUs on one")
    if embedded:
        raise ConfigError(f"{what}: no {task} can ever be placed on the embedded local Ray ({has}; ray.num_cpus "
                          f"sets its CPUs) and {waiter} would wait for ever: lower them, or join a cluster "
                          "(ray.address)")
    if autoscaler_fit(cpus, gpus) == 0:  # per node type: a task's CPUs are all on one node
        raise ConfigError(f"{what}: no {task} can ever be placed: no node the Ray cluster's autoscaler can add "
                          f"holds one ({largest_node_type()}; now {has})")
    return (f"{what.split('.')[0]}: {what} fits on no node of the Ray cluster now ({has}); {waiter} waits until "
            "an autoscaler adds one, for ever if this cluster has none")


__all__ = ["check_placement"]
