"""How the generate stage splits work into Ray tasks: the block plan and whole-block slicing."""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from lrl.data.readers import read_conll
from lrl.generate import base
from lrl.generate.base import call_sliced, map_slices
from lrl.generate.config import OversampleConfig
from lrl.generate.oversample import OversampleStep, plan_oversample
from lrl.generate.stage import plan_blocks


def setup_module(module) -> None:
    # Ray workers cannot import this test module: ship its helpers by value.
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _rows(n: int, start: int = 0) -> pa.Table:
    return pa.table({"i": pa.array(range(start, start + n), pa.int64())})


def _seen(table: pa.Table) -> pa.Table:
    """One output row per input row, recording how many rows the call was given."""
    return table.append_column("seen", pa.array([table.num_rows] * table.num_rows, pa.int64()))


class _Seen:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __call__(self, table: pa.Table) -> pa.Table:
        return _seen(table)


def _expand(table: pa.Table, times: int) -> list[pa.Table]:
    return [table] * times  # a generator-like step: several tables per call


def test_call_sliced_bounds_each_call_and_keeps_every_row():
    out = list(call_sliced(_rows(25), _seen, 10, {}))
    assert [t.num_rows for t in out] == [10, 10, 5]
    assert pa.concat_tables(out).column("i").to_pylist() == list(range(25))
    assert [t.num_rows for t in call_sliced(_rows(4), _expand, 3, {"times": 2})] == [3, 3, 1, 1]
    assert list(call_sliced(_rows(0), _seen, 10, {})) == []


@pytest.mark.parametrize("form", ["function", "actors"])
def test_map_slices_gives_each_small_block_its_own_task(ray_session, form):
    """With ``map_batches(batch_size=1000)`` Ray Data would bundle the eight 10-row blocks into
    one 80-row call; ``map_slices`` leaves the block plan in charge."""
    ray = ray_session
    ds = ray.data.from_arrow([_rows(10, 10 * b) for b in range(8)])
    if form == "function":
        ds = map_slices(ds, _seen, 1000)
        assert "MapBatches(_seen)" in str(ds)
    else:
        ds = map_slices(ds, _Seen, 1000, compute=ray.data.ActorPoolStrategy(size=2),
                        constructor_kwargs={"tag": "x"})
    rows = ds.take_all()
    assert sorted(r["i"] for r in rows) == list(range(80))
    assert Counter(r["seen"] for r in rows) == {10: 80}

    bundled = ray.data.from_arrow([_rows(10, 10 * b) for b in range(8)]).map_batches(
        _seen, batch_format="pyarrow", batch_size=1000)
    assert max(r["seen"] for r in bundled.take_all()) > 10  # what map_slices avoids


class _GcCalls:
    """Stands in for ``gc`` in ``freeze_after_first``: counts the calls instead of freezing the
    test process's heap."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def collect(self) -> int:
        self.calls.append("collect")
        return 0

    def freeze(self) -> None:
        self.calls.append("freeze")


@pytest.fixture()
def gc_calls(monkeypatch):
    calls = _GcCalls()
    monkeypatch.setitem(sys.modules, "gc", calls)
    monkeypatch.setattr(base, "_FROZEN_AFTER", set())
    return calls


def test_freeze_after_first_slice_once_per_process_and_callable(gc_calls):
    out = list(call_sliced(_rows(25), _seen, 10, {}, freeze=True))
    assert [t.num_rows for t in out] == [10, 10, 5]  # same output as without freezing
    assert gc_calls.calls == ["collect", "freeze"]  # collected first, frozen once, after the first slice
    list(call_sliced(_rows(25), _seen, 10, {}, freeze=True))  # another block in the same process
    assert gc_calls.calls == ["collect", "freeze"]
    list(call_sliced(_rows(4), _expand, 3, {"times": 2}, freeze=True))  # a chained step brings its own
    assert gc_calls.calls == ["collect", "freeze"] * 2
    list(call_sliced(_rows(25), _Seen("x"), 10, {}, freeze=False))
    assert gc_calls.calls == ["collect", "freeze"] * 2


@pytest.mark.parametrize("on", [True, False])
def test_map_slices_takes_freeze_worker_heap_from_init_ray(gc_calls, monkeypatch, on):
    """The setting is read in the driver when the step is built and travels inside the task."""
    from lrl import runtime
    from lrl.runtime import RayConfig, tune_ray_data

    monkeypatch.setattr(runtime, "_FREEZE_WORKER_HEAP", runtime._FREEZE_WORKER_HEAP)  # restored after

    class FakeDataset:
        def map_batches(self, fn, **kwargs):
            self.fn, self.kwargs = fn, kwargs
            return self

    tune_ray_data(RayConfig(freeze_worker_heap=on))
    try:
        ds = map_slices(FakeDataset(), _seen, 10)
        monkeypatch.setattr(base, "_FROZEN_AFTER", set())
        assert sum(t.num_rows for t in ds.fn(_rows(25))) == 25
        assert gc_calls.calls == (["collect", "freeze"] if on else [])
        actors = map_slices(FakeDataset(), _Seen, 10, compute="pool", constructor_kwargs={"tag": "x"})
        assert actors.kwargs["fn_constructor_kwargs"]["freeze"] is on
    finally:
        tune_ray_data(RayConfig())


def _freeze_count(table: pa.Table) -> pa.Table:
    import gc

    return table.append_column("frozen", pa.array([gc.get_freeze_count()] * table.num_rows, pa.int64()))


def test_ray_worker_heap_is_frozen_after_the_first_slice(ray_session):
    ray = ray_session
    rows = map_slices(ray.data.from_arrow([_rows(30)]), _freeze_count, 10).take_all()
    assert sorted(r["i"] for r in rows) == list(range(30))
    # Slices 2 and 3 ran after the worker froze its imported modules (tens of thousands of objects).
    assert sorted(r["frozen"] for r in rows)[-10] > 1000


def test_plan_blocks_equal_rows_without_weights():
    blocks = plan_blocks(_rows(2561), cpus=2)
    assert len(blocks) == 8
    assert pa.concat_tables(blocks).column("i").to_pylist() == list(range(2561))
    assert max(b.num_rows for b in blocks) - min(b.num_rows for b in blocks) <= 321


def test_plan_blocks_balances_weighted_output():
    weights = np.array([60.0] * 1600 + [100.0] * 960)  # ug rows copied 60x, wo rows 100x
    blocks = plan_blocks(_rows(2560), cpus=2, weights=weights)
    assert pa.concat_tables(blocks).column("i").to_pylist() == list(range(2560))
    out = [weights[b.column("i").to_numpy()].sum() for b in blocks]
    assert len(blocks) == 8
    assert max(out) / min(out) < 1.01  # equal input slices would differ 60 : 100
    # Output rows count against MAX_BLOCK_ROWS: 9.6M output rows from 2,560 sentences.
    assert len(plan_blocks(_rows(2560), cpus=2, weights=weights * 50)) == 96
    # One row heavier than a block: blocks stay non-empty and cover every row once.
    spiky = plan_blocks(_rows(10), cpus=2, weights=np.array([1000.0] + [1.0] * 9))
    assert all(b.num_rows for b in spiky)
    assert pa.concat_tables(spiky).column("i").to_pylist() == list(range(10))


def test_oversample_weights_match_the_plan(data_root):
    train = pa.concat_tables([read_conll(str(data_root / "wikiann" / lang / "train"), lang).table
                              for lang in ("ug", "wo")])
    plan = plan_oversample(OversampleConfig(enabled=True, target_per_lang=100_000), train, seed=0)
    weights = OversampleStep(plan).row_weights(train)
    langs = np.array(train.column("lang").to_pylist())
    for lang in ("ug", "wo"):
        assert weights[langs == lang].sum() == pytest.approx(plan.after[lang], rel=0.01)
    blocks = plan_blocks(train, cpus=2, weights=weights)
    share = [weights[sum(b.num_rows for b in blocks[:k]):][: blocks[k].num_rows].sum() for k in range(len(blocks))]
    assert max(share) / min(share) < 1.05
