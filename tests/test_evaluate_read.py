"""How ``lrl evaluate --data`` reads rows that cannot be scored: its own Parquet reader gives the
main readers' reasons, and a JSONL file read without ``--lang`` rejects lines that are no JSON
object rather than crashing."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lrl.data.files import InputError

#: Rows no reader may keep, each with the main readers' reason (``lrl.data.collect``).
BAD = [
    ({"tokens": None, "tags": ["O"]}, "null list: 'tokens' is null; need a list with one entry per token"),
    ({"tokens": ["Kano"], "tags": None}, "null list: 'tags' is null; need a list with one entry per token"),
    ({"tokens": ["Ka\tno"], "tags": ["B-LOC"]}, "tab or line break in a token: token 0 is 'Ka\\tno'"),
    ({"tokens": ["Dakar", "Da\u2028kar"], "tags": ["B-LOC", "O"]},
     "tab or line break in a token: token 1 is 'Da\\u2028kar'"),
    ({"tokens": ["a\x85b"], "tags": ["O"]}, "tab or line break in a token: token 0 is 'a\\x85b'"),
    ({"tokens": ["Kano", None], "tags": ["B-LOC", "O"]}, "null value: token 1 is null"),
    ({"tokens": [" "], "tags": ["O"]}, "empty token: token 0 is ' '"),
]


def _table(rows: list[dict]) -> pa.Table:
    cols = {"tokens": [r["tokens"] for r in rows], "tags": [r["tags"] for r in rows], "lang": ["ha"] * len(rows)}
    return pa.table(cols, schema=pa.schema([("tokens", pa.list_(pa.string())), ("tags", pa.list_(pa.string())),
                                            ("lang", pa.string())]))


def test_parquet_rows_get_the_main_readers_reasons(tmp_path):
    """A null token list read as "0 tokens but 1 tags", and a token holding a tab or a line break
    was scored and written into the predictions .conll, a column or a line too many."""
    from lrl.data.readers import read_parquet_ner
    from lrl.evaluate.predict import read_labelled

    good = {"tokens": ["Kano", "ne"], "tags": ["B-LOC", "O"]}
    pq.write_table(_table([row for row, _ in BAD] + [good]), tmp_path / "d.parquet")
    table, bad = read_labelled(str(tmp_path / "d.parquet"), None)
    assert table.column("tokens").to_pylist() == [good["tokens"]] and bad == len(BAD)
    for i, (row, reason) in enumerate(BAD):
        path = str(tmp_path / f"bad{i}.parquet")
        pq.write_table(_table([row]), path)
        with pytest.raises(InputError, match=re.escape(f"(first: row 1: {reason})")):
            read_labelled(path, None)
        with pytest.raises(InputError, match=re.escape(f"(first: line 1: {reason})")):
            read_parquet_ner(path, "ha", "eval")  # the same words as the main reader's


def test_generate_output_rows_with_a_tab_in_a_token_are_rejected(tmp_path):
    """A generate stage folder (``data/``, partitioned by lang) is read by the same reader."""
    from lrl.data.schema import ner_table
    from lrl.evaluate.predict import read_labelled

    rows = [{"id": "a", "lang": "ha", "tokens": ["Kano"], "tags": ["B-LOC"]},
            {"id": "b", "lang": "ha", "tokens": ["Ka\nno"], "tags": ["B-LOC"]}]
    pq.write_to_dataset(ner_table(rows), str(tmp_path / "gen/data"), partition_cols=["lang"])
    table, bad = read_labelled(str(tmp_path / "gen"), None)
    assert table.column("id").to_pylist() == ["a"] and bad == 1


def test_jsonl_without_lang_rejects_lines_that_are_no_json_object(tmp_path):
    """Gathering the languages, ``json.loads`` met a line that is no JSON (a JSONDecodeError) or no
    object (an AttributeError): a raw traceback. Such lines are rejects, as with ``--lang``, each
    counted once (not once per language read), and a lang that is no string names its line."""
    from lrl.evaluate.predict import read_labelled

    rows = [{"id": "a", "lang": "ha", "tokens": ["Kano"], "tags": ["B-LOC"]},
            {"id": "b", "lang": "yo", "tokens": ["Ọ̀yọ́"], "tags": ["B-LOC"]}]
    lines = ['{"id": "x", "tokens": [', "[1, 2]", json.dumps({"lang": "ha", "tokens": ["a"]}),
             *(json.dumps(r, ensure_ascii=False) for r in rows)]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table, bad = read_labelled(str(path), None)
    assert sorted(table.column("id").to_pylist()) == ["a", "b"] and bad == 3  # with two languages: not 6
    assert read_labelled(str(path), "ha")[1] == 3  # --lang: the same rejects
    path.write_text('{"tokens": [\n[1]\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"d\.jsonl: no usable sentence: all 2 .*line 1: not valid JSON"):
        read_labelled(str(path), None)
    path.write_text(json.dumps(rows[0]) + "\n" + json.dumps({**rows[1], "lang": 5}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"d\.jsonl:2: the row has lang 5, not a language code; pass --lang"):
        read_labelled(str(path), None)
