"""Malformed lines that readers used to take silently: a byte-order mark at a line start (files
joined with ``cat``), a CoNLL line with another column count, an empty token, a text line that
only looks like a ``# doc`` header, compressed or CoNLL-U files under ``format: auto``. Each is
either kept intact or quarantined / refused with file, line and reason."""

from __future__ import annotations

import gzip
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lrl.data.bio import BioError
from lrl.data.config import NerSource, TextSource
from lrl.data.files import InputError, read_text
from lrl.data.readers import read_conll, read_ner, read_text_lines

GOOD = "Ali\tB-PER\nwent\tO\n\n"  # one valid sentence in front of every bad one
BOM = "\ufeff"


def _read(tmp_path, name: str, content: bytes, policy: str = "quarantine"):
    (tmp_path / name).write_bytes(content)
    return read_ner(NerSource(path=name, lang="yo"), str(tmp_path), policy)


def _reasons(res) -> list[tuple[int, str]]:
    return [(r["line"], r["reason"].split(":", 1)[0]) for r in res.rejects.to_pylist()]


def test_a_byte_order_mark_at_any_line_start_is_dropped(tmp_path):
    # `cat a.conll b.conll` keeps b's BOM in front of its first line: it became part of a token
    # and turned b's -DOCSTART- line into a sentence of its own.
    joined = (GOOD + BOM + "-DOCSTART- -X- -X- O\n\n" + BOM + "Kano\tB-LOC\n").encode()
    res = _read(tmp_path, "a.conll", joined)
    assert res.table.column("tokens").to_pylist() == [["Ali", "went"], ["Kano"]]
    assert res.rejects.num_rows == 0
    (tmp_path / "crlf.txt").write_bytes(f"one\r\n{BOM}two\r{BOM}three\n".encode())
    assert read_text(str(tmp_path / "crlf.txt")) == "one\r\ntwo\rthree\n"
    # Inside a line U+FEFF is a zero-width no-break space: text, kept as it is.
    (tmp_path / "mid.txt").write_bytes(f"a{BOM}b\n".encode())
    assert read_text(str(tmp_path / "mid.txt")) == f"a{BOM}b\n"


def test_real_uyghur_corpus_has_no_row_starting_with_a_bom(data_root):
    # 13 lines of mono/ug.txt begin with a BOM (articles pasted in from other files), and two
    # "# doc" titles do.
    raw = (data_root / "mono" / "ug.txt").read_text(encoding="utf-8")
    assert sum(line.startswith(BOM) for line in raw.split("\n")) == 13
    table = read_text_lines(TextSource(path="mono/ug.txt", lang="ug"), str(data_root))
    assert not [t for t in table.column("text").to_pylist() if t.startswith(BOM)]
    assert not [d for d in set(table.column("doc").to_pylist()) if d and d.startswith(BOM)]
    # Nothing else changes: the same rows as before, one per non-blank, non-header line.
    assert table.num_rows == sum(1 for line in raw.split("\n") if line.strip() and not line.startswith("# doc "))


@pytest.mark.parametrize("line,width", [("New York\tB-LOC\tX", 3),  # a stray third column
                                        ("foo\tbar\tbaz\tO", 4)])
def test_a_conll_line_with_another_column_count_is_quarantined(tmp_path, line, width):
    res = _read(tmp_path, "a.conll", (GOOD + "in\tO\n" + line + "\n").encode())
    assert res.table.column("tokens").to_pylist() == [["Ali", "went"]]
    assert _reasons(res) == [(4, "column count")]
    assert f"line 5 has {width} columns, the file's lines have 2" in res.rejects.column("reason")[0].as_py()
    with pytest.raises(InputError, match=r"a\.conll:5: column count"):
        _read(tmp_path, "a.conll", (GOOD + "in\tO\n" + line + "\n").encode(), policy="error")


def test_space_separated_conll_keeps_multiword_tokens_out(tmp_path):
    # "New York B-LOC" in a space-separated file was read as the token "New" tagged B-LOC.
    res = _read(tmp_path, "a.conll", b"Ali B-PER\nwent O\n\nto O\nNew York B-LOC\n")
    assert res.table.column("tokens").to_pylist() == [["Ali", "went"]]
    assert _reasons(res) == [(4, "column count")]


def test_consistent_multi_column_files_are_read_whole(tmp_path):
    # CoNLL-2003 (token POS chunk tag), and an odd first line that does not set the width.
    conll03 = b"-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n"
    res = _read(tmp_path, "b.conll", conll03)
    assert res.table.column("tags").to_pylist() == [["B-ORG", "O"], ["B-PER"]] and res.rejects.num_rows == 0
    res = _read(tmp_path, "c.conll", ("x\ty\tO\n\n" + GOOD * 3).encode())
    assert res.table.num_rows == 3 and _reasons(res) == [(1, "column count")]


@pytest.mark.parametrize("line", ["\tB-PER", "\u00a0\tO", " \tO"])
def test_an_empty_conll_token_is_quarantined_as_such(tmp_path, line):
    res = _read(tmp_path, "a.conll", (GOOD + "in\tO\n" + line + "\n").encode())
    assert res.table.num_rows == 1 and _reasons(res) == [(4, "empty token")]  # was "tag missing" or kept


def test_an_empty_token_in_jsonl_or_parquet_is_quarantined(tmp_path):
    rows = [{"tokens": ["Ali"], "tags": ["B-PER"]}, {"tokens": ["", "x"], "tags": ["B-PER", "O"]},
            {"tokens": ["x", " "], "tags": ["O", "O"]}]
    res = _read(tmp_path, "a.jsonl", "\n".join(json.dumps(r) for r in rows).encode())
    assert res.table.num_rows == 1 and _reasons(res) == [(2, "empty token"), (3, "empty token")]
    assert res.reject_reasons == {"empty token": 2}
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    res = _read(tmp_path, "a.parquet", sink.getvalue().to_pybytes())
    assert res.table.num_rows == 1 and _reasons(res) == [(2, "empty token"), (3, "empty token")]
    with pytest.raises(InputError, match=r"a\.jsonl:2: empty token: token 0 is ''"):
        _read(tmp_path, "a.jsonl", "\n".join(json.dumps(r) for r in rows).encode(), policy="error")


def test_a_text_line_that_starts_like_a_doc_header_is_kept(tmp_path):
    (tmp_path / "t.txt").write_text("# doc Kano\nfirst\n# doctors say so\n# doc\nsecond\n", encoding="utf-8")
    table = read_text_lines(TextSource(path="t.txt", lang="ha"), str(tmp_path))
    assert table.column("text").to_pylist() == ["first", "# doctors say so", "second"]
    assert table.column("doc").to_pylist() == ["Kano", "Kano", "doc@4"]


def test_auto_format_sees_through_compression_and_refuses_conllu(tmp_path):
    rows = [{"tokens": ["Ali", "went"], "tags": ["B-PER", "O"]}, {"tokens": ["Kano"], "tags": ["B-LOC"]}]
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress("\n".join(json.dumps(r) for r in rows).encode()))
    res = read_ner(NerSource(path="a.jsonl.gz", lang="yo"), str(tmp_path))
    assert res.table.column("tokens").to_pylist() == [["Ali", "went"], ["Kano"]] and res.rejects.num_rows == 0
    (tmp_path / "b.conll.gz").write_bytes(gzip.compress(GOOD.encode()))
    assert read_ner(NerSource(path="b.conll.gz", lang="yo"), str(tmp_path)).table.num_rows == 1
    (tmp_path / "c.conllu").write_text("# sent_id = 1\n1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
                                       "1\tdo\tdo\tAUX\t_\t_\t0\troot\t_\t_\n2\tn't\tnot\tPART\t_\t_\t1\tadvmod\t_\t_\n",
                                       encoding="utf-8")
    with pytest.raises(ValueError, match=r"'c\.conllu' \(a \.conllu path\) is CoNLL-U.*needs scheme: tokens"):
        NerSource(path="c.conllu", lang="yo")  # at config load: a path says what it is
    (tmp_path / "u").mkdir()  # a folder of them: when the reader meets the files
    (tmp_path / "c.conllu").rename(tmp_path / "u" / "c.conllu")
    with pytest.raises(InputError, match=r"c\.conllu: CoNLL-U has no NER tag column"):
        read_ner(NerSource(path="u", lang="yo"), str(tmp_path))


def _parquet_file(tmp_path, name: str, table: pa.Table) -> str:
    pq.write_table(table, tmp_path / name)
    return name


@pytest.mark.parametrize("table,message", [
    # A string column was read character by character: "Kano" became 4 tokens, kept.
    (pa.table({"tokens": ["Ali", "Kano"], "tags": [["B-PER", "O", "O"], ["B-LOC", "O", "O", "O"]]}),
     r"column 'tokens' is string, not a list"),
    (pa.table({"tokens": [[["Ali"]]], "tags": [["B-PER"]]}), r"column 'tokens' is list<.*list<.*not a list of strings"),
    # Integer ids without names crashed the BIO check with a TypeError.
    (pa.table({"tokens": [["Ali"]], "tags": [[1]]}), r"column 'tags' holds integer tag ids but .* no ClassLabel"),
], ids=["string tokens", "nested tokens", "integer tags"])
def test_parquet_columns_of_the_wrong_type_are_a_clear_error(tmp_path, table, message):
    name = _parquet_file(tmp_path, "a.parquet", table)
    with pytest.raises(InputError, match=rf"a\.parquet: {message}"):
        read_ner(NerSource(path=name, lang="yo"), str(tmp_path))


def test_hugging_face_parquet_export_with_class_label_ids(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER"]))})
    ds = datasets.Dataset.from_dict({"tokens": [["Ali", "went"], ["x"]], "ner_tags": [[1, 0], [-1]]}, features=features)
    ds.to_parquet(str(tmp_path / "hf.parquet"))
    res = read_ner(NerSource(path="hf.parquet", lang="yo"), str(tmp_path))
    assert res.table.column("tags").to_pylist() == [["B-PER", "O"]]
    assert _reasons(res) == [(2, "tag id")]  # ClassLabel -1 ("no label") is not a tag
    assert res.rejects.column("reason")[0].as_py().endswith("(ids 0-2) (-1: a ClassLabel's 'no label')")


def test_jsonl_tokens_that_are_not_strings_are_quarantined(tmp_path):
    rows = [{"tokens": ["Ali", 2019], "tags": ["B-PER", "O"]},  # a number is fine: its text
            {"tokens": [["New", "York"]], "tags": ["B-LOC"]}, {"tokens": ["x"], "tags": [True]},
            {"tokens": [{"t": "x"}], "tags": ["O"]}]
    res = _read(tmp_path, "a.jsonl", "\n".join(json.dumps(r) for r in rows).encode())
    assert res.table.column("tokens").to_pylist() == [["Ali", "2019"]]
    assert _reasons(res) == [(2, "not a string"), (3, "not a string"), (4, "not a string")]
    assert res.rejects.column("reason")[0].as_py() == 'not a string: token 0 is ["New", "York"]'


def test_not_utf8_error_counts_lines_as_the_readers_do(tmp_path):
    """A file with CR-only line ends (old Mac exports) reported line 1 for a bad byte on line 3."""
    from lrl.data.files import InputError, read_text

    for sep in (b"\r", b"\r\n", b"\n"):
        f = tmp_path / "x.txt"
        f.write_bytes(sep.join([b"one", b"two", b"thr\xe9e", b"four"]))
        with pytest.raises(InputError, match=r"x\.txt:3: not UTF-8"):
            read_text(str(f))


def test_a_bad_tag_in_conll_names_its_own_line(tmp_path):
    """An unknown label in a long sentence was reported at the sentence's first line as "tag 37":
    the user had to count lines. The reject and the error name the token's own line."""
    path = tmp_path / "bad.conll"
    path.write_text("a\tO\nb\tB-PER\n\n# note\nc\tO\nd\tO\ne\tB-FOO\n\n", encoding="utf-8")
    res = read_conll(str(path), "ug", labels=["PER"])
    [reject] = res.rejects.to_pylist()
    assert reject["line"] == 5 and reject["reason"].endswith("unknown label 'FOO' (line 7)")
    with pytest.raises(BioError, match=rf"^{re.escape(str(path))}:7: unknown label: tag 2 'B-FOO'"):
        read_conll(str(path), "ug", labels=["PER"], policy="error")


def test_a_hugging_face_source_without_a_config_is_named_by_its_path(tmp_path):
    """Errors and the manifest named a ``format: hf`` source without ``hf_config`` ``sw_hf[]``."""
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"tokens": [["Ali", "went"], ["x"]], "tags": [["B-PER", "O"], ["I-XX"]]})
    ds.save_to_disk(str(tmp_path / "sw_hf"))
    res = read_ner(NerSource(path="sw_hf", lang="sw", format="hf"), str(tmp_path))
    assert res.source == str(tmp_path / "sw_hf")
    with pytest.raises(InputError, match=r"sw_hf:2: invalid BIO"):
        read_ner(NerSource(path="sw_hf", lang="sw", format="hf"), str(tmp_path), policy="error")


@pytest.mark.parametrize("data,message", [
    # A string column of tokens was read character by character: "Ali" became A, l, i, kept.
    ({"tokens": ["Ali"], "ner_tags": [["B-PER", "O", "O"]]}, r"column 'tokens' is string, not a list"),
    # A string tag column and integer tokens crashed with an AttributeError.
    ({"tokens": [["Ali"]], "ner_tags": ["B-PER"]}, r"column 'ner_tags' is string, not a list"),
    ({"tokens": [[1]], "ner_tags": [["B-PER"]]}, r"column 'tokens' is list<.*int64>, not a list of strings"),
], ids=["string tokens", "string tags", "integer tokens"])
def test_hugging_face_columns_of_the_wrong_type_are_a_clear_error(tmp_path, data, message):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict(data).save_to_disk(str(tmp_path / "hf"))
    with pytest.raises(InputError, match=rf"hf: {message}"):
        read_ner(NerSource(path="hf", lang="yo", format="hf"), str(tmp_path))


def test_hugging_face_null_rows_and_other_langs_are_rejects(tmp_path):
    """A null tokens or tags list crashed with "'NoneType' object is not iterable", then was read as
    an empty list: rejected as an "empty sentence" or a "length mismatch", which named no null. A
    row of another lang was kept under the source's (JSONL and Parquet reject it)."""
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"tokens": [["Ali"], None, ["x"], ["y"]], "tags": [["B-PER"], ["O"], None, ["O"]],
                                "lang": ["yo", "yo", "yo", "wo"]}).save_to_disk(str(tmp_path / "hf"))
    res = read_ner(NerSource(path="hf", lang="yo", format="hf"), str(tmp_path))
    assert res.table.column("tokens").to_pylist() == [["Ali"]]
    assert _reasons(res) == [(2, "null list"), (3, "null list"), (4, "lang mismatch")]
    assert [(r["source"], r["reason"]) for r in res.rejects.to_pylist()[:2]] == [
        (str(tmp_path / "hf"), "null list: 'tokens' is null; need a list with one entry per token"),
        (str(tmp_path / "hf"), "null list: 'tags' is null; need a list with one entry per token")]
    with pytest.raises(InputError, match=rf"^{re.escape(str(tmp_path / 'hf'))}:2: null list: 'tokens' is null"):
        read_ner(NerSource(path="hf", lang="yo", format="hf"), str(tmp_path), "error")


def test_a_parquet_folder_reject_names_its_file_and_row(tmp_path):
    """A folder of Parquet files is read as one table: its rejects named the folder and the row's
    index in that table (here 4), which no file has."""
    (tmp_path / "pq").mkdir()
    pq.write_table(pa.table({"tokens": [["Ali"], ["x"]], "tags": [["B-PER"], ["O"]]}), tmp_path / "pq" / "a.parquet")
    pq.write_table(pa.table({"tokens": [["y"], ["z"]], "tags": [["O"], ["I-LOC"]]}), tmp_path / "pq" / "b.parquet")
    res = read_ner(NerSource(path="pq", lang="yo"), str(tmp_path))
    [reject] = res.rejects.to_pylist()
    assert (reject["source"], reject["line"]) == (str(tmp_path / "pq" / "b.parquet"), 2)
    assert res.table.column("id").to_pylist() == ["yo:train:0", "yo:train:1", "yo:train:2"]  # ids as before
    with pytest.raises(InputError, match=rf"^{re.escape(str(tmp_path / 'pq' / 'b.parquet'))}:2: invalid BIO"):
        read_ner(NerSource(path="pq", lang="yo"), str(tmp_path), "error")
    pq.write_table(pa.table({"tokens": [["y"]], "tags": [["I-X"]]}), tmp_path / "pq" / "a.parquet")
    pq.write_table(pa.table({"tokens": [["y"], ["z"]], "tags": [["I-Y"], ["I-Z"]]}), tmp_path / "pq" / "b.parquet")
    with pytest.raises(InputError, match=r"pq: no usable sentence: all 3 were rejected \(first: line 1 of .*a\.parquet"):
        read_ner(NerSource(path="pq", lang="yo"), str(tmp_path))


def test_a_parquet_folder_duplicate_id_names_the_file_it_was_taken_in(tmp_path):
    """A Parquet folder's reject names its own file and row: an id taken in another file said
    "b.parquet:2: duplicate id: 'a' also on line 1", b.parquet's own line 1 (which holds "c")."""
    (tmp_path / "pq").mkdir()
    pq.write_table(pa.table({"id": ["a", None], "tokens": [["Ali"], ["x"]], "tags": [["B-PER"], ["O"]]}),
                   tmp_path / "pq" / "a.parquet")
    pq.write_table(pa.table({"id": ["c", "a", "yo:train:1", "c"], "tokens": [["y"], ["z"], ["w"], ["v"]],
                             "tags": [["O"], ["O"], ["O"], ["O"]]}), tmp_path / "pq" / "b.parquet")
    res = read_ner(NerSource(path="pq", lang="yo"), str(tmp_path))
    a = str(tmp_path / "pq" / "a.parquet")
    assert [(r["line"], r["reason"]) for r in res.rejects.to_pylist()] == [
        (2, f"duplicate id: 'a' also on line 1 of {a}"), (3, f"duplicate id: 'yo:train:1' also on line 2 of {a}"),
        (4, "duplicate id: 'c' also on line 1")]  # in its own file: as before


def test_a_stray_nul_in_utf8_text_is_named_as_such_not_as_utf16(tmp_path):
    """One NUL in a UTF-8 corpus was called UTF-16 or binary data, and told to save it as UTF-8."""
    f = tmp_path / "mono.txt"
    f.write_text("bir\nikki\x00\nüch\n" * 20, encoding="utf-8")
    with pytest.raises(InputError, match=r"mono\.txt:2: NUL character: 20 NUL character\(s\) in the file; remove them"):
        read_text(str(f))
    f.write_bytes("bir\nikki\n".encode("utf-16-le"))
    with pytest.raises(InputError, match=r"mono\.txt:1: NUL character: not UTF-8 text \(UTF-16 without"):
        read_text(str(f))
