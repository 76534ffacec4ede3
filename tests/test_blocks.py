"""``lrl.data.blocks.from_tables``: the dataset ``ray.data.from_arrow`` gives, without its remote
metadata tasks; Ray's own ``from_arrow`` when Ray moves the internals it uses."""

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
