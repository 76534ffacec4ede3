"""``lrl.data.blocks``: waiting for a free CPU, and ``materialize`` without Ray Data's false
"will hang" warning."""

from __future__ import annotations


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
