"""Readers on inputs far larger than the shared data: memory that grows with the table, not with
Python objects per line and per sentence, and line splitting that matches ``split_lines``."""

from __future__ import annotations

import json
import random
import tracemalloc

import pytest

import lrl.data.collect as collect
import lrl.data.readers as readers
from lrl.data.config import TextSource
from lrl.data.files import iter_lines, split_lines


def _peak(fn) -> int:
    """Peak Python heap (tracemalloc) of ``fn()``; Arrow buffers are not Python objects."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def small_chunks(monkeypatch):
    # Chunks of 64 rows so that a file of a few hundred KB already has hundreds of them.
    monkeypatch.setattr(collect, "CHUNK_ROWS", 64, raising=False)
    monkeypatch.setattr(readers, "CHUNK_ROWS", 64, raising=False)


def test_conll_reader_memory_does_not_grow_with_sentences(tmp_path, small_chunks):
    """Every accepted sentence was held as a dict with token and tag lists, and every line as a
    str, until the end: 6.7 GB of driver memory for a 179 MB file (2M sentences). Now a
    chunk's dicts at a time: the Python heap stays within a few times the file's size."""
    path = tmp_path / "big.conll"
    path.write_text("".join(f"Ali{i}\tB-PER\nkeldi\tO\n.\tO\n\n" for i in range(20_000)), encoding="utf-8")
    readers.read_conll(str(path), "ug")  # imports and caches outside the measurement
    size = path.stat().st_size
    peak = _peak(lambda: readers.read_conll(str(path), "ug"))
    res = readers.read_conll(str(path), "ug")
    assert res.table.num_rows == 20_000
    assert res.table.column("id").to_pylist()[-1] == "ug:train:19999"
    assert peak < 8 * size, f"Python heap peak {peak / size:.1f}x the file's size"


def test_text_reader_memory_does_not_grow_with_lines(tmp_path, small_chunks):
    """Same for text: a dict per line and the list of every line were held until the end."""
    path = tmp_path / "big.txt"
    path.write_text("# doc A\n" + "".join(f"bir ikki {i}\n" for i in range(40_000)), encoding="utf-8")
    src = TextSource(path=str(path), lang="ug")
    readers.read_text_lines(src, None)
    size = path.stat().st_size
    peak = _peak(lambda: readers.read_text_lines(src, None))
    table = readers.read_text_lines(src, None)
    assert table.num_rows == 40_000
    assert table.column("id").to_pylist()[:2] == ["ug:big.txt:2", "ug:big.txt:3"]
    assert set(table.column("doc").to_pylist()) == {"A"}
    assert peak < 8 * size, f"Python heap peak {peak / size:.1f}x the file's size"


def test_chunked_reading_keeps_ids_rejects_and_max_lines(tmp_path, small_chunks):
    """Across chunk boundaries: made ids count kept and rejected sentences, rejects keep their
    lines, and max_lines stops at the same row."""
    lines = []
    for i in range(300):
        lines.append(f"w{i}\tB-PER\n\n" if i % 7 else f"w{i}\tI-XXX\n\n")  # every 7th: invalid tag
    path = tmp_path / "a.conll"
    path.write_text("".join(lines), encoding="utf-8")
    res = readers.read_conll(str(path), "ug", labels=["PER"])
    ids = res.table.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 300 - 43
    assert ids[:2] == ["ug:train:1", "ug:train:2"]
    assert res.rejects.column("line").to_pylist()[:2] == [1, 15]
    txt = tmp_path / "t.txt"
    txt.write_text("".join(f"line {i}\n" for i in range(500)), encoding="utf-8")
    assert readers.read_text_lines(TextSource(path=str(txt), lang="ug", max_lines=130), None).num_rows == 130


def test_duplicate_ids_between_given_and_made_ids(tmp_path):
    """The made ids (lang:split:n) are tracked by number, not by a dict entry each: a given id
    equal to an earlier made one, and a made id equal to an earlier given one, are still rejects."""
    rows = [{"tokens": ["a"], "tags": ["O"]},                     # made ug:train:0
            {"id": "ug:train:0", "tokens": ["b"], "tags": ["O"]},  # given, repeats line 1's id
            {"id": "ug:train:3", "tokens": ["c"], "tags": ["O"]},  # given first
            {"tokens": ["d"], "tags": ["O"]},                      # made ug:train:3: repeats line 3's
            {"id": "ug:train:03", "tokens": ["e"], "tags": ["O"]}]  # not the number 3's id: kept
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    res = readers.read_jsonl(str(path), "ug")
    assert res.table.column("id").to_pylist() == ["ug:train:0", "ug:train:3", "ug:train:03"]
    assert res.rejects.column("reason").to_pylist() == ["duplicate id: 'ug:train:0' also on line 1",
                                                        "duplicate id: 'ug:train:3' also on line 3"]


def test_iter_lines_matches_split_lines():
    rng = random.Random(1)
    for _ in range(5000):
        text = "".join(rng.choice("ab\n\r \ufeff") for _ in range(rng.randint(0, 30)))
        for chunk in (1, 2, 5, 1 << 16):
            assert list(iter_lines(text, chunk)) == split_lines(text), (text, chunk)
