"""In-memory Arrow tables as a Ray Dataset, without remote tasks; ``materialize`` without
Ray Data's false "will hang" warning.

``ray.data.from_arrow`` (Ray 2.60) puts each table in the object store and then runs one remote
task per table to compute its block metadata and schema. On a fresh Ray those tasks wait for new
worker processes: the first call took 1.7 s on 2 CPUs, against 0.6 ms to compute the same
metadata here (docs/benchmarks.md, pretraining, session 9), and left two more idle worker
processes behind. The generate stage's planned blocks and the pretraining stage's packed text
are already in the driver, so their metadata is computed here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    import ray.data


def from_tables(tables: list[pa.Table]) -> ray.data.Dataset:
    """``ray.data.from_arrow(tables)`` (one block per table, in order) with the blocks' metadata
    computed in this process; falls back to ``from_arrow`` if Ray moves these internals."""
    import ray
    import ray.data

    try:
        from ray.data._internal.logical.interfaces import LogicalPlan
        from ray.data._internal.logical.operators.from_operators import FromArrow
        from ray.data._internal.stats import DatasetStats
        from ray.data._internal.util import get_table_block_metadata_schema
        from ray.data.context import DataContext
        from ray.data.dataset import MaterializedDataset
    except ImportError:
        return ray.data.from_arrow(tables)
    meta = [get_table_block_metadata_schema(t) for t in tables]
    refs = [ray.put(t) for t in tables]
    ctx = DataContext.get_current().copy()
    return MaterializedDataset(LogicalPlan(FromArrow(refs, meta), ctx), ctx,
                               DatasetStats(metadata={"FromArrow": meta}, parent=None))


#: Ray Data's ``log_once`` key of "The Ray cluster currently does not have any available CPUs. The
#: Dataset job will hang unless more CPUs are freed up" (``Dataset._execute``, Ray 2.60).
CPU_WARNING = "cpu_warning"


def wait_for_free_cpu(timeout_s: float = 1.0) -> bool:
    """Wait (at most ``timeout_s``) until Ray reports a free CPU; whether one is free. A dataset
    that has just finished shows its tasks' CPUs as free ~10 ms later (Ray's report period)."""
    import time

    import ray

    end = time.monotonic() + timeout_s
    while not ray.available_resources().get("CPU"):
        if time.monotonic() >= end:
            return False
        time.sleep(0.01)
    return True


def materialize(ds: ray.data.Dataset) -> ray.data.MaterializedDataset:
    """``ds.materialize()``, without Ray Data's false "no available CPUs ... will hang" warning.

    ``materialize`` checks for a free CPU twice: before it runs, and again when it fills the
    result's cache, right after its own tasks have finished but before their CPUs show as free
    again. Every generate run printed the warning (at the second check, or at the first when the
    dataset before had just finished) though nothing ever hung. So: wait (bounded) for a free CPU,
    and only if there is one, hold Ray's once-per-process key of that warning for this call; a
    cluster still busy after the wait gets Ray's warning as before, and so does any later call.
    """
    from ray.util.debug import log_once, reset_log_once

    if not wait_for_free_cpu():
        return ds.materialize()
    held = log_once(CPU_WARNING)  # True: not printed before, and now held by this call
    try:
        return ds.materialize()
    finally:
        if held:
            reset_log_once(CPU_WARNING)


__all__ = ["from_tables", "materialize", "wait_for_free_cpu"]
