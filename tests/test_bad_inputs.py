"""A table of bad inputs, each under each BIO policy: a clear error naming file and line, or a
quarantine row carrying its reason (and nothing dropped silently)."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lrl.config import ConfigError
from lrl.data.config import NerSource
from lrl.data.files import InputError
from lrl.data.readers import read_ner
from lrl.job import load_job

POLICIES = ["error", "repair", "quarantine"]
GOOD = "Ali\tB-PER\nwent\tO\n\n"  # one valid sentence in front of every bad one


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    content: bytes
    #: per policy: ("raise", regex on the message) or ("reject", reason kind, line) or ("ok", tags)
    expect: dict
    labels: tuple[str, ...] | None = None


def _all(outcome) -> dict:
    return {p: outcome for p in POLICIES}


def _parquet(**columns) -> bytes:
    """A Parquet file's bytes (for cases whose bad values only Parquet can carry, e.g. nulls)."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue().to_pybytes()


CASES = [
    Case("truncated conll line", "a.conll", (GOOD + "Kano\tB-LOC\ncity").encode(),
         {"error": ("raise", r"a\.conll:5: tag missing"),
          "repair": ("reject", "tag missing", 4), "quarantine": ("reject", "tag missing", 4)}),
    Case("truncated jsonl line", "a.jsonl",
         b'{"tokens": ["Ali"], "tags": ["B-PER"]}\n{"tokens": ["Kano", "ci',
         {"error": ("raise", r"a\.jsonl:2: not valid JSON"),
          "repair": ("reject", "not valid JSON", 2), "quarantine": ("reject", "not valid JSON", 2)}),
    Case("tag missing", "b.conll", (GOOD + "Kano\tB-LOC\nis\nbig\tO\n").encode(),
         {"error": ("raise", r"b\.conll:5: tag missing"),
          "repair": ("reject", "tag missing", 4), "quarantine": ("reject", "tag missing", 4)}),
    Case("tags shorter than tokens", "c.jsonl",
         b'{"tokens": ["Ali"], "tags": ["B-PER"]}\n{"tokens": ["a", "b"], "tags": ["O"]}\n',
         {"error": ("raise", r"c\.jsonl:2: length mismatch"),
          "repair": ("reject", "length mismatch", 2), "quarantine": ("reject", "length mismatch", 2)}),
    Case("I- without B-", "d.conll", (GOOD + "in\tO\nLagos\tI-LOC\n").encode(),
         {"error": ("raise", r"d\.conll:5: invalid BIO: tag 1 'I-LOC' follows 'O'"),  # Lagos's own line
          "repair": ("ok", ["O", "B-LOC"]), "quarantine": ("reject", "invalid BIO", 4)}),
    Case("malformed tag", "e.conll", (GOOD + "Lagos\tLOC\n").encode(),
         {"error": ("raise", r"e\.conll:4: invalid BIO: tag 0 'LOC' is not O, B-X or I-X"),
          "repair": ("reject", "invalid BIO", 4), "quarantine": ("reject", "invalid BIO", 4)}),
    Case("unknown label", "f.conll", (GOOD + "Dakar\tB-CITY\n").encode(),
         {"error": ("raise", r"f\.conll:4: unknown label: .*'CITY'"),
          "repair": ("reject", "unknown label", 4), "quarantine": ("reject", "unknown label", 4)},
         labels=("PER", "LOC", "ORG")),
    Case("empty file", "g.conll", b"\n  \n", _all(("raise", r"g\.conll: empty file"))),
    Case("only comments", "h.conll", b"-DOCSTART- O\n# comment\n", _all(("raise", r"h\.conll: empty file"))),
    Case("empty jsonl", "i.jsonl", b"", _all(("raise", r"i\.jsonl: empty file"))),
    Case("non-UTF-8 bytes", "j.conll", GOOD.encode() + b"Dak\xe0r\tB-LOC\n",
         _all(("raise", r"j\.conll:4: not UTF-8 \(byte 0xe0"))),
    Case("jsonl without tags", "k.jsonl", b'{"tokens": ["Ali"], "tags": ["B-PER"]}\n{"tokens": ["a"]}\n',
         {"error": ("raise", r"k\.jsonl:2: tokens or tags missing"),
          "repair": ("reject", "tokens or tags missing", 2), "quarantine": ("reject", "tokens or tags missing", 2)}),
    # A string of tokens was "tokens or tags missing"; an id past tag_names was "invalid BIO".
    Case("jsonl tokens as a string", "k2.jsonl", b'{"tokens": ["Ali"], "tags": ["B-PER"]}\n'
         b'{"tokens": "Ali went", "tags": ["B-PER", "O"]}\n',
         {"error": ("raise", r"k2\.jsonl:2: not a list: 'tokens' is a string \(\"Ali went\"\)"),
          "repair": ("reject", "not a list", 2), "quarantine": ("reject", "not a list", 2)}),
    Case("missing file", "absent.conll", None, _all(("raise", r"absent\.conll: file not found"))),
    # A byte-order mark (files saved by Windows editors) must not end up in the first token, turn
    # a -DOCSTART- line into a sentence, or make the first JSON line invalid.
    Case("BOM before -DOCSTART-", "l.conll", b"\xef\xbb\xbf-DOCSTART- -X- -X- O\n\n" + GOOD.encode()
         + b"Kano\tB-LOC\n", _all(("ok", ["B-LOC"]))),
    Case("BOM before JSON", "m.jsonl",
         b'\xef\xbb\xbf{"tokens": ["Ali"], "tags": ["B-PER"]}\n{"tokens": ["Kano"], "tags": ["B-LOC"]}\n',
         _all(("ok", ["B-LOC"]))),
    # Only \n ends a line: a U+2028 inside a token must neither split it nor shift line numbers.
    Case("line separator in a token", "n.conll", (GOOD + "Da\u2028kar\tB-LOC\nis\n").encode(),
         {"error": ("raise", r"n\.conll:5: tag missing"),
          "repair": ("reject", "tag missing", 4), "quarantine": ("reject", "tag missing", 4)}),
    # A token that starts with '#' (a hashtag) opening a sentence is a token, not a comment.
    Case("hashtag first token", "o.conll", (GOOD + "#Kano\tB-LOC\nis\tO\n").encode(),
         _all(("ok", ["B-LOC", "O"]))),
    Case("null token", "p.jsonl", b'{"tokens": ["Ali"], "tags": ["B-PER"]}\n{"tokens": ["Kano", null], '
         b'"tags": ["B-LOC", "O"]}\n',
         {"error": ("raise", r"p\.jsonl:2: null value"),
          "repair": ("reject", "null value", 2), "quarantine": ("reject", "null value", 2)}),
    Case("null tag", "q.parquet", _parquet(tokens=[["Ali"], ["Kano", "is"]], tags=[["B-PER"], ["B-LOC", None]]),
         {"error": ("raise", r"q\.parquet:2: null value"),
          "repair": ("reject", "null value", 2), "quarantine": ("reject", "null value", 2)}),
    Case("lang column differs", "r.parquet", _parquet(tokens=[["Ali"], ["Kano"]], tags=[["B-PER"], ["B-LOC"]],
                                                      lang=["yo", "wo"]),
         {"error": ("raise", r"r\.parquet:2: lang mismatch"),
          "repair": ("reject", "lang mismatch", 2), "quarantine": ("reject", "lang mismatch", 2)}),
    Case("duplicate id", "s.jsonl", b'{"id": "a", "tokens": ["Ali"], "tags": ["B-PER"]}\n'
         b'{"id": "a", "tokens": ["Kano"], "tags": ["B-LOC"]}\n',
         {"error": ("raise", r"s\.jsonl:2: duplicate id: 'a' also on line 1"),
          "repair": ("reject", "duplicate id", 2), "quarantine": ("reject", "duplicate id", 2)}),
    # A float token became its float's text (1.50 "1.5", 1e5 "100000.0"), kept.
    Case("jsonl float token", "u.jsonl", b'{"tokens": ["Ali"], "tags": ["B-PER"]}\n'
         b'{"tokens": ["Kano", 1.50], "tags": ["B-LOC", "O"]}\n',
         {"error": ("raise", r"u\.jsonl:2: not a string: token 1 is 1\.5"),
          "repair": ("reject", "not a string", 2), "quarantine": ("reject", "not a string", 2)}),
    # A token with a line break or a tab was kept: the predictions .conll written from it broke.
    Case("jsonl token with a line break", "u2.jsonl", b'{"tokens": ["Ali"], "tags": ["B-PER"]}\n'
         b'{"tokens": ["Kano", "is\\nbig"], "tags": ["B-LOC", "O"]}\n',
         {"error": ("raise", r"u2\.jsonl:2: tab or line break in a token: token 1 is 'is\\nbig'"),
          "repair": ("reject", "tab or line break in a token", 2),
          "quarantine": ("reject", "tab or line break in a token", 2)}),
    # The other line breaks of str.splitlines (U+2028, \f ...) too, in every reader: a CoNLL line is
    # split at "\n" only, and a space-separated one no longer at them ("column count", or silently
    # the token "Da" in a 3-column file); all broke the .conll files evaluate writes.
    Case("jsonl token with a line separator", "u3.jsonl", b'{"tokens": ["Ali"], "tags": ["B-PER"]}\n'
         + '{"tokens": ["Kano", "Da\u2028kar"], "tags": ["B-LOC", "B-LOC"]}\n'.encode(),
         {"error": ("raise", r"u3\.jsonl:2: tab or line break in a token: token 1 is 'Da\\u2028kar'"),
          "repair": ("reject", "tab or line break in a token", 2),
          "quarantine": ("reject", "tab or line break in a token", 2)}),
    Case("conll token with a form feed", "u4.conll", (GOOD + "Da\x0ckar\tB-LOC\n").encode(),
         {"error": ("raise", r"u4\.conll:4: tab or line break in a token: token 0 is 'Da\\x0ckar'"),
          "repair": ("reject", "tab or line break in a token", 4),
          "quarantine": ("reject", "tab or line break in a token", 4)}),
    Case("space-separated conll token with a line separator", "u5.conll",
         "Ali B-PER\nwent O\n\nDa\u2028kar B-LOC\n".encode(),
         {"error": ("raise", r"u5\.conll:4: tab or line break in a token: token 0 is 'Da\\u2028kar'"),
          "repair": ("reject", "tab or line break in a token", 4),
          "quarantine": ("reject", "tab or line break in a token", 4)}),
    # A null list cell was read as []: "empty sentence" or "length mismatch", which named no null.
    Case("null tokens list", "n1.parquet", _parquet(tokens=[["Ali"], None], tags=[["B-PER"], ["B-LOC"]]),
         {"error": ("raise", r"n1\.parquet:2: null list: 'tokens' is null; need a list"),
          "repair": ("reject", "null list", 2), "quarantine": ("reject", "null list", 2)}),
    Case("null ner_tags list", "n2.parquet", _parquet(tokens=[["Ali"], ["Kano"]], ner_tags=[["B-PER"], None]),
         {"error": ("raise", r"n2\.parquet:2: null list: 'ner_tags' is null"),
          "repair": ("reject", "null list", 2), "quarantine": ("reject", "null list", 2)}),
    Case("jsonl null tags", "n3.jsonl", b'{"tokens": ["Ali"], "tags": ["B-PER"]}\n{"tokens": ["Kano"], "tags": null}\n',
         {"error": ("raise", r"n3\.jsonl:2: null list: 'tags' is null"),  # was "tokens or tags missing"
          "repair": ("reject", "null list", 2), "quarantine": ("reject", "null list", 2)}),
    # -DOCSTART- without the blank line after it joined two documents' sentences into one.
    Case("-DOCSTART- inside a sentence", "v.conll", (GOOD + "Kano\tB-LOC\n-DOCSTART- -X- -X- O\nis\tO\n").encode(),
         _all(("ok", ["O"]))),
    # Not UTF-8 text: the error says what the file is, not only "byte 0x8b at offset 1".
    Case("gzip without .gz", "w.conll", gzip.compress(GOOD.encode()),
         _all(("raise", r"w\.conll:1: not UTF-8 \(byte 0x8b at offset 1\): the file is gzip-compressed; name it \.gz"))),
    Case("UTF-16 with a mark", "x.conll", GOOD.encode("utf-16"), _all(("raise", r"x\.conll:1: not UTF-8 .*: the file is UTF-16"))),
    # UTF-16 without a mark is valid UTF-8 ("K\x00a\x00n\x00o"): its lines were read as rows.
    Case("UTF-16 without a mark", "y.conll", GOOD.encode() + "Kano\tB-LOC\n".encode("utf-16-le"),
         _all(("raise", r"y\.conll:4: NUL character"))),
    # Nothing usable (wrong format, BIOES tags): an error, not a finished output with no rows.
    Case("every sentence rejected", "t.conll", b"Ali\tS-PER\n\nKano\tS-LOC\n",
         {"error": ("raise", r"t\.conll:1: invalid BIO"),
          "repair": ("raise", r"t\.conll: no usable sentence: all 2 were rejected \(first: line 1: invalid BIO"),
          "quarantine": ("raise", r"t\.conll: no usable sentence: all 2 were rejected")}),
]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input(tmp_path, case, policy):
    path = tmp_path / case.filename
    if case.content is not None:
        path.write_bytes(case.content)
    src = NerSource(path=case.filename, lang="yo")
    outcome = case.expect[policy]
    if outcome[0] == "raise":
        with pytest.raises(InputError, match=outcome[1]) as info:
            read_ner(src, str(tmp_path), policy, case.labels)
        assert str(tmp_path / case.filename) in str(info.value)  # names the file in full
        return
    res = read_ner(src, str(tmp_path), policy, case.labels)
    # The good sentence in front of the bad one is always kept.
    assert res.table.column("tokens")[0].as_py() in (["Ali", "went"], ["Ali"])
    if outcome[0] == "ok":
        assert res.rejects.num_rows == 0
        assert res.table.column("tags").to_pylist()[-1] == outcome[1]
        return
    _, kind, line = outcome
    assert res.table.num_rows == 1 and res.rejects.num_rows == 1
    row = res.rejects.to_pylist()[0]
    assert row["reason"].startswith(kind + ":"), row["reason"]
    assert row["line"] == line and row["source"] == str(tmp_path / case.filename)
    assert row["raw"]  # the offending text is kept for inspection
    assert res.reject_reasons == {kind: 1}


def test_every_line_break_of_splitlines_in_a_token_is_a_reject(tmp_path):
    """Each character str.splitlines() breaks at (and \\x1f, which str.split() cuts at) in a JSONL
    or a tab-separated CoNLL token: a reject on its own line, as a tab or \\n already was."""
    breaks = "\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029"
    rows = [{"tokens": ["Ali"], "tags": ["B-PER"]}] + [{"tokens": [f"Da{c}kar"], "tags": ["B-LOC"]} for c in breaks]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "a.conll").write_text(GOOD + "".join(f"Da{c}kar\tB-LOC\n\n" for c in breaks), encoding="utf-8")
    for name, lines in (("a.jsonl", list(range(2, 11))), ("a.conll", list(range(4, 21, 2)))):
        res = read_ner(NerSource(path=name, lang="yo"), str(tmp_path))
        assert res.table.num_rows == 1 and res.rejects.column("line").to_pylist() == lines, name
        assert res.reject_reasons == {"tab or line break in a token": len(breaks)}, name


CONFIG_CASES = [
    (["data.bio_policy=maybe"], r"data\.bio_policy: Input should be 'error', 'repair' or 'quarantine'"),
    (["data.ner=[{path: a.conll, lang: yo, formt: conll}]"], r"data\.ner\.0\.formt: unknown key"),
    (["data.ner=[{path: a.conll, lang: Yoruba}]"], r"data\.ner\.0\.lang: .*ISO 639"),
    (["data.ner=[{lang: yo}]"], r"data\.ner\.0\.path: Field required"),
    (["data.text=[{path: a.txt, lang: yo, max_lines: -3}]"], r"data\.text\.0\.max_lines"),
    (["data.labels=PER"], r"data\.labels: Input should be a valid list"),
    (["dta.ner=[]"], r"dta: unknown key"),
    # An op listed twice gave each of its rows a twin with the same id (and the same content).
    (["augment.ops=[swap,mention,swap]"], r"augment\.ops: .*'swap' is listed twice.*augment\.swap\.copies"),
    # A listed op at 0 copies ran and made no row, and nothing said why.
    (["augment.ops=[swap]", "augment.copies=0"], r"augment: .*'swap' is in augment\.ops but augment\.copies=0 makes no rows"),
    (["augment.ops=[swap,delete]", "augment.delete.copies=0"],
     r"augment: .*'delete' is in augment\.ops but augment\.delete\.copies=0 makes no rows"),
    # Target-language rows would be "translated" into themselves and added as new rows.
    (["translate.train={sources: [en, ug], target: ug, model: {backend: fake}}"],
     r"translate\.train: .*target 'ug' is also listed in sources"),
    # Rows are selected by exact lang: this translated nothing. Checked only when generate built
    # its steps, so --dry-run (and every other command) passed it.
    (["translate={enabled: true, train: {sources: [eng_Latn], target: ug, model: {backend: fake}}}",
      "data.ner=[{path: en.conll, lang: en, split: train}]"],
     r"translate\.train\.sources: 'eng_Latn' is the lang of no input \(inputs: en\)"),
    (["translate={enabled: true, backtranslate: {lang: wo, to_pivot: {backend: fake}, from_pivot: {backend: fake}}}",
      "data.text=[{path: ug.txt, lang: ug}]"],
     r"translate\.backtranslate\.lang: 'wo' is the lang of no input \(inputs: ug\)"),
]


@pytest.mark.parametrize("overrides,message", CONFIG_CASES, ids=[c[0][0] for c in CONFIG_CASES])
def test_bad_config_names_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_job(None, overrides)


def test_bad_config_file_names_the_file(tmp_path):
    f = tmp_path / "job.yaml"
    f.write_text("data:\n  bio_policy: 3\n  ner: {path: x}\n")
    with pytest.raises(ConfigError) as info:
        load_job(f)
    msg = str(info.value)
    assert str(f) in msg and re.search(r"data\.bio_policy", msg) and re.search(r"data\.ner", msg)


def test_a_missing_relative_input_names_data_root(tmp_path, capsys):
    """A relative input resolves against data.root, the job file's folder unless set: a recipe run
    without data.root= failed with "<repo>/jobs/wikiann/ug/train: file not found" and no hint."""
    from lrl.cli import main

    jobs = tmp_path / "jobs"
    jobs.mkdir()
    job = jobs / "job.yaml"
    ner = "[{path: %s, lang: ug, split: train}, {path: %s, lang: ug, split: dev}]"
    job.write_text("data:\n  ner: " + ner % ("wikiann/ug/train", "wikiann/ug/dev") + "\n")
    assert main(["run", str(job), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{jobs / 'wikiann/ug/train'}: file not found" in err
    assert f"resolved against data.root={jobs}" in err and "data.root=FOLDER" in err
    # An absolute path is not resolved: no data.root hint.
    job.write_text("data:\n  ner: " + ner % (tmp_path / "nope", tmp_path / "nope") + "\n")
    assert main(["run", str(job), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'nope'}: file not found" in err and "data.root" not in err


@pytest.mark.parametrize("command", [["generate"], ["run", "--dry-run"], ["generate", "--dry-run"]])
def test_a_missing_held_out_source_is_an_error_at_once(tmp_path, capsys, command):
    """A misspelt dev path (``wikiann/wo/devv``) was recorded under the manifest's ``held_out`` and
    passed ``lrl run --dry-run``; the stages that read it came much later. It now fails as a missing
    training input does, naming the path and how data.root was applied."""
    from lrl.cli import main

    data = tmp_path / "data"
    (data / "wo").mkdir(parents=True)
    (data / "wo" / "train").write_text("Ali\tB-PER\nwent\tO\n\n", encoding="utf-8")
    (data / "wo" / "dev").write_text("Ali\tB-PER\n\n", encoding="utf-8")
    job = tmp_path / "job.yaml"
    job.write_text(f"data:\n  root: {data}\n  ner:\n    - {{path: wo/train, lang: wo, format: conll}}\n"
                   f"    - {{path: wo/devv, lang: wo, split: dev}}\noutput:\n  root: {tmp_path / 'out'}\n"
                   "pipeline:\n  stages: [generate]\n", encoding="utf-8")
    verb, *opts = command
    assert main([verb, str(job), *opts]) == 2
    err = capsys.readouterr().err
    assert f"{data / 'wo' / 'devv'}: dev file not found" in err
    assert f"the relative path wo/devv was resolved against data.root={data}" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("manifest.json"))
    pattern = job.read_text().replace("wo/devv", "'wo/dev*.conll'")
    job.write_text(pattern, encoding="utf-8")
    assert main([verb, str(job), *opts]) == 2
    assert f"{data / 'wo' / 'dev*.conll'}: no file matches this pattern" in capsys.readouterr().err
