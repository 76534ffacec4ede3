"""``lrl.data.blocks.from_tables``: the dataset ``ray.data.from_arrow`` gives, without its remote
metadata tasks; Ray's own ``from_arrow`` when Ray moves the internals it uses. ``materialize``
without Ray Data's false "will hang" warning, and the bounded wait for a free CPU before it."""

import sys

import numpy as np
import pyarrow as pa
import pytest

from lrl.data.blocks import from_tables


def _tables() -> list[pa.Table]:
    return [pa.table({"id": np.arange(at, at + n), "text": [f"row {i}" for i in range(at, at + n)]})
            for at, n in ((0, 5), (5, 0), (5, 7), (12, 3))]


def test_same_dataset_as_from_arrow_without_remote_tasks(ray_session, monkeypatch):
    import ray.data
    from ray.data import read_api

    ours, theirs = from_tables(_tables()), ray.data.from_arrow(_tables())
    assert ours.num_blocks() == theirs.num_blocks() == 4
    assert ours.count() == 15 and ours.schema() == theirs.schema()
    assert ours.take_all() == theirs.take_all()
    assert ours.map_batches(lambda b: {"id": b["id"] * 2}).sum("id") == 2 * sum(range(15))

    def no_remote(fn, **kwargs):
        raise AssertionError(f"remote task {fn.__name__}")

    monkeypatch.setattr(read_api, "cached_remote_fn", no_remote)
    with pytest.raises(AssertionError, match="remote task get_table_block_metadata_schema"):
        ray.data.from_arrow(_tables())
    assert [r["id"] for r in from_tables(_tables()).take_all()] == list(range(15))


def test_falls_back_to_from_arrow_when_ray_moves_its_internals(ray_session, monkeypatch):
    import ray.data

    calls, original = [], ray.data.from_arrow
    monkeypatch.setattr(ray.data, "from_arrow", lambda tables: calls.append(len(tables)) or original(tables))
    monkeypatch.setitem(sys.modules, "ray.data._internal.logical.operators.from_operators", None)
    ds = from_tables(_tables())
    assert calls == [4]
    assert [r["id"] for r in ds.take_all()] == list(range(15)) and ds.num_blocks() == 4


def test_wait_for_free_cpu_is_bounded(monkeypatch):
    """Ray's view of free CPUs lags the tasks by its report period: lrl waits for a free CPU
    (bounded) before materialising. The view is replayed here."""
    import time

    import ray

    from lrl.data.blocks import wait_for_free_cpu

    views = iter([{}, {"CPU": 0.0}, {}, {"CPU": 2.0}])
    seen = []
    monkeypatch.setattr(ray, "available_resources", lambda: seen.append(1) or next(views, {"CPU": 2.0}))
    assert wait_for_free_cpu(10.0)
    assert len(seen) == 4  # asked until a CPU was free, then no more
    monkeypatch.setattr(ray, "available_resources", lambda: {})  # a cluster that stays busy
    t0 = time.monotonic()
    assert not wait_for_free_cpu(0.2)
    assert 0.2 <= time.monotonic() - t0 < 2  # bounded: Ray's warning then says what it knows


def test_materialize_prints_no_false_will_hang_warning(ray_session, monkeypatch):
    """Every generate run printed Ray Data's "does not have any available CPUs ... will hang"
    warning though nothing hung: ``materialize()`` checks for a free CPU again when it fills its
    result's cache, right after its own tasks finished and before their CPUs show as free. Here
    Ray's view is replayed: a CPU free when lrl asks, none at Ray Data's checks. The warning still
    comes when the cluster stays busy, and for any later call."""
    import logging

    import ray
    import ray.data

    from lrl.data import blocks
    from lrl.data.blocks import materialize

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    logger = logging.getLogger("ray.data.dataset")
    logger.addHandler(handler)
    try:
        from ray.util.debug import reset_log_once

        reset_log_once(blocks.CPU_WARNING)  # as in a fresh driver
        free = iter([{"CPU": 2.0}])  # lrl's own wait sees a free CPU, then Ray Data's checks none
        monkeypatch.setattr(ray, "available_resources", lambda: next(free, {}))
        ds = materialize(ray.data.range(8).map_batches(lambda b: b))
        assert ds.count() == 8
        assert not [m for m in records if "available CPUs" in m], records
        # Busy for longer than the wait: Ray's warning, as before (the key was given back).
        monkeypatch.setattr(blocks, "wait_for_free_cpu", lambda timeout_s=1.0: False)
        materialize(ray.data.range(4).map_batches(lambda b: b))
        assert [m for m in records if "available CPUs" in m], records
    finally:
        logger.removeHandler(handler)
