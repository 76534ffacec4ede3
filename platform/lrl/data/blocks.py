"""In-memory Arrow tables as a Ray Dataset, without remote tasks.

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


__all__ = ["from_tables"]
