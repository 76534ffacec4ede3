"""The matmul peak cache (``$LRL_CACHE_DIR/matmul_peak.json``) is shared by every training worker
of a node and every concurrent run (the test processes of ``pytest -n``): a reader never sees it
half-written."""

from __future__ import annotations

import json
import pathlib


def test_a_reader_never_sees_the_peak_cache_half_written(tmp_path, monkeypatch):
    """Written in place, the cache was truncated and then filled: a worker reading it meanwhile got
    invalid JSON and dropped every peak measured before (and two writers could leave one's longer
    tail after the other's text). Every write is caught here halfway, and the cache read then."""
    from lrl.train.pretrain_metrics import measure_matmul_peak

    monkeypatch.setenv("LRL_CACHE_DIR", str(tmp_path))
    cache = tmp_path / "matmul_peak.json"
    cache.write_text(json.dumps({"other-device|fp32|1|x|256": 5e9}))
    seen = []
    write_text = pathlib.Path.write_text

    def halfway(self, data, *args, **kwargs):
        write_text(self, data[: len(data) // 2], *args, **kwargs)
        try:
            seen.append(json.loads(cache.read_text()))  # what a concurrent reader finds now
        except ValueError as exc:
            seen.append(f"half-written: {exc}")
        return write_text(self, data, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", halfway)
    measure_matmul_peak("fp32", threads=1, n=64, seconds=0.05)
    assert seen and all(isinstance(s, dict) and "other-device|fp32|1|x|256" in s for s in seen), seen
    monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    known = json.loads(cache.read_text())
    assert len(known) == 2 and known["other-device|fp32|1|x|256"] == 5e9
    assert [p.name for p in tmp_path.iterdir()] == ["matmul_peak.json"]  # no temporary file left


def test_an_unwritable_cache_costs_only_the_cache(tmp_path, monkeypatch):
    from lrl.train.pretrain_metrics import measure_matmul_peak

    (tmp_path / "file").write_text("")
    monkeypatch.setenv("LRL_CACHE_DIR", str(tmp_path / "file"))  # a file where the folder would be
    assert measure_matmul_peak("fp32", threads=1, n=64, seconds=0.05) > 0
