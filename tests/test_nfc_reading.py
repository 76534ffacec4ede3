"""The data layer reads tokens and text lines in NFC (``data.unicode``, ``lrl.data.nfc``): a word
written decomposed (Yoruba ``e`` + combining dot below + combining acute, 5% of FLORES Yoruba
words) and composed (WikiANN) is one string to the synonyms, the mention inventory and dedup,
and the reading says how many it changed. ``data.unicode: none`` keeps the bytes as given."""

from __future__ import annotations

import json
import unicodedata

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lrl.data.config import DataConfig
from lrl.data.nfc import changed_in
from lrl.data.readers import read_ner, read_parallel, read_text_lines
from lrl.generate.augment import build_resources, read_lexicon
from lrl.generate.augment.resources import inventories
from lrl.generate.config import AugmentConfig, NeighbourConfig
from lrl.generate.manifest import unicode_counts, unicode_line
from lrl.job import load_job

#: Composed (NFC) Yoruba: a name and words with tone marks and dots below.
NAME, BOAT, HOUSE = "Ọbáfẹ́mi", "ọkọ̀", "ilé"


def nfd(s: str) -> str:
    return unicodedata.normalize("NFD", s)


def data(tmp_path, unicode: str = "nfc", ner: list[dict] | None = None, text: list[dict] | None = None) -> DataConfig:
    return DataConfig(root=str(tmp_path), ner=ner or [], text=text or [], unicode=unicode)


def _conll(path, sentences: list[list[tuple[str, str]]]) -> None:
    path.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in s) for s in sentences) + "\n", encoding="utf-8")


SENTENCES = [[(NAME, "B-PER"), ("ra", "O"), (BOAT, "O")], [(HOUSE, "O"), ("dára", "O")]]
TOKENS = [[w for w, _ in s] for s in SENTENCES]
TAGS = [[t for _, t in s] for s in SENTENCES]
#: Tokens NFD writes otherwise: all but "ra"
CHANGED = sum(nfd(w) != w for s in TOKENS for w in s)


def _write(tmp_path, fmt: str) -> str:
    """The sentences decomposed, in ``fmt``; JSONL with ``\\u`` escapes (the file is ASCII)."""
    if fmt == "conll":
        _conll(tmp_path / "yo.conll", [[(nfd(w), t) for w, t in s] for s in SENTENCES])
        return "yo.conll"
    if fmt == "jsonl":
        rows = [json.dumps({"tokens": [nfd(w) for w in toks], "tags": tags}) for toks, tags in zip(TOKENS, TAGS)]
        (tmp_path / "yo.jsonl").write_text("\n".join(rows) + "\n", encoding="ascii")
        return "yo.jsonl"
    pq.write_table(pa.table({"tokens": [[nfd(w) for w in toks] for toks in TOKENS], "tags": TAGS}),
                   tmp_path / "yo.parquet")
    return "yo.parquet"


@pytest.mark.parametrize("fmt", ["conll", "jsonl", "parquet"])
def test_decomposed_input_is_read_composed_and_counted(tmp_path, fmt):
    """Read as given, every token but ``ra`` was another string than the same word in WikiANN."""
    src = data(tmp_path, ner=[{"path": _write(tmp_path, fmt), "lang": "yo"}]).ner[0]
    res = read_ner(src, str(tmp_path))
    assert res.table.column("tokens").to_pylist() == TOKENS
    assert res.nfc_changed == CHANGED == 4


@pytest.mark.parametrize("fmt", ["conll", "jsonl", "parquet"])
def test_unicode_none_keeps_the_bytes(tmp_path, fmt):
    src = data(tmp_path, "none", ner=[{"path": _write(tmp_path, fmt), "lang": "yo"}]).ner[0]
    res = read_ner(src, str(tmp_path))
    assert res.table.column("tokens").to_pylist() == [[nfd(w) for w in toks] for toks in TOKENS]
    assert res.nfc_changed == 0


def test_conllu_words_are_read_composed(tmp_path):
    """A treebank under ``scheme: tokens`` goes through the same collector."""
    rows = [f"{i}\t{nfd(w)}\t_\t{'PROPN' if i == 1 else 'NOUN'}\t_\t_\t0\troot\t_\t_"
            for i, w in enumerate(TOKENS[0], start=1)]
    (tmp_path / "yo.conllu").write_text("# sent_id = 1\n" + "\n".join(rows) + "\n\n", encoding="utf-8")
    src = data(tmp_path, ner=[{"path": "yo.conllu", "lang": "yo", "scheme": "tokens"}]).ner[0]
    res = read_ner(src, str(tmp_path))
    assert res.table.column("tokens").to_pylist() == TOKENS[:1] and res.nfc_changed == 2


def test_files_of_a_pattern_add_up_and_rejects_keep_their_raw_text(tmp_path):
    """A pattern's files each count their own; a rejected sentence is not counted and its raw
    text stays as the file has it (it shows the input)."""
    for name in ("a", "b"):
        _conll(tmp_path / f"yo-{name}.conll", [[(nfd(BOAT), "O")], [(nfd(HOUSE), "I-XXX")]])
    res = read_ner(data(tmp_path, ner=[{"path": "yo-*.conll", "lang": "yo"}]).ner[0], str(tmp_path))
    assert res.table.column("tokens").to_pylist() == [[BOAT], [BOAT]]
    assert res.nfc_changed == 2
    assert res.rejects.column("raw").to_pylist() == [f"{nfd(HOUSE)}\tI-XXX"] * 2


def test_text_lines_and_document_titles_are_read_composed(tmp_path):
    lines = [f"# doc {nfd(NAME)}", nfd(f"{NAME} ra {BOAT}"), "ascii only", f"{HOUSE} dára"]
    (tmp_path / "yo.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    text = [{"path": "yo.txt", "lang": "yo"}]
    table = read_text_lines(data(tmp_path, text=text).text[0], str(tmp_path))
    assert table.column("text").to_pylist() == [f"{NAME} ra {BOAT}", "ascii only", f"{HOUSE} dára"]
    assert table.column("doc").to_pylist() == [NAME] * 3
    assert changed_in(table) == 1  # the rows' lines: a title is no row
    kept = read_text_lines(data(tmp_path, "none", text=text).text[0], str(tmp_path))
    assert kept.column("text").to_pylist()[0] == nfd(f"{NAME} ra {BOAT}") and changed_in(kept) == 0


def test_parallel_lines_are_read_composed(tmp_path):
    (tmp_path / "en.txt").write_text("a boat\n", encoding="utf-8")
    (tmp_path / "yo.txt").write_text(nfd(f"{BOAT} kan") + "\n", encoding="utf-8")
    args = (str(tmp_path / "en.txt"), str(tmp_path / "yo.txt"), "en", "yo")
    table = read_parallel(*args)
    assert table.column("tgt").to_pylist() == [f"{BOAT} kan"] and changed_in(table) == 1
    assert read_parallel(*args, unicode="none").column("tgt").to_pylist() == [nfd(f"{BOAT} kan")]


def test_mention_inventory_is_one_whatever_the_form(tmp_path):
    """A decomposed CoNLL file and a composed JSONL file of one language: the same name was two
    mentions, and mention replacement swapped it for itself."""
    _write(tmp_path, "conll")
    (tmp_path / "more.jsonl").write_text(json.dumps({"tokens": [NAME, "wá"], "tags": ["B-PER", "O"]},
                                                    ensure_ascii=False) + "\n", encoding="utf-8")
    cfg = data(tmp_path, ner=[{"path": "yo.conll", "lang": "yo"}, {"path": "more.jsonl", "lang": "yo", "split": "b"}])
    train = pa.concat_tables([read_ner(s, str(tmp_path)).table for s in cfg.ner])
    entities, tokens = inventories(train, 100)
    assert entities["yo"]["PER"] == ((NAME,),)
    assert tokens["yo"]["B-PER"] == (NAME,)


#: Tiny corpus of three word classes (subject, verb, time): the subjects share every context.
SUBJECTS, VERBS, TIMES = [BOAT, HOUSE, "ajá", "ẹṣin"], ["ra", "ta", "rí"], ["àná", "ọ̀la", "lónìí"]
CORPUS = [f"{s} {v} {t}" for s in SUBJECTS for v in VERBS for t in TIMES] * 3
NB = NeighbourConfig(min_count=1, max_vocab=100, contexts=10, dims=4, k=2, max_words=100, min_similarity=0.0)


@pytest.mark.parametrize("unicode", ["nfc", "none"])
def test_corpus_neighbours_match_decomposed_tokens(tmp_path, unicode):
    """The yo train set in NFD: none of its 1,503 decomposed words matched the neighbour table
    learned from (composed) mono/yo.txt, and synonym rows fell from 24 to 18. Under ``none`` the
    token stays decomposed, and the lookup itself composes it."""
    (tmp_path / "yo.txt").write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    _write(tmp_path, "conll")
    cfg = data(tmp_path, unicode, ner=[{"path": "yo.conll", "lang": "yo"}], text=[{"path": "yo.txt", "lang": "yo"}])
    train = read_ner(cfg.ner[0], str(tmp_path)).table
    texts = read_text_lines(cfg.text[0], str(tmp_path))
    res = build_resources(AugmentConfig(ops=["synonym"], neighbours=NB), train, texts)
    assert BOAT in res.synonyms["yo"]  # learned from composed text
    boat = train.column("tokens").to_pylist()[0][2]
    assert boat == (BOAT if unicode == "nfc" else nfd(BOAT))
    assert res.synonyms_of("yo", boat) == res.synonyms["yo"][BOAT]


def test_lexicon_is_read_composed_and_matches_either_form(tmp_path):
    """A decomposed lexicon entry matched no token of composed data; the two forms of a word in
    one lexicon are one entry."""
    (tmp_path / "yo.tsv").write_text(f"{nfd(BOAT)}\t{nfd(HOUSE)},ajá\n{BOAT}\tẹṣin\n", encoding="utf-8")
    assert read_lexicon(str(tmp_path / "yo.tsv")) == {BOAT: (HOUSE, "ajá", "ẹṣin")}
    train = pa.table({"id": ["yo:1"], "lang": ["yo"], "tokens": [[BOAT]], "tags": [["O"]]})
    res = build_resources(AugmentConfig(ops=["synonym"], lexicons={"yo": "yo.tsv"}), train, None, str(tmp_path))
    assert res.synonyms_of("yo", BOAT) == res.synonyms_of("yo", nfd(BOAT)) == (HOUSE, "ajá", "ẹṣin")


def test_the_setting_reaches_every_source_of_a_job(tmp_path):
    cfg = load_job(None, ["data.ner=[{path: a.conll, lang: yo}]", "data.text=[{path: a.txt, lang: yo}]",
                          "data.unicode=none"])
    assert [s.unicode_form for s in (*cfg.data.ner, *cfg.data.text)] == ["none", "none"]
    assert load_job(None, ["data.ner=[{path: a.conll, lang: yo}]"]).data.ner[0].unicode_form == "nfc"


def test_manifest_counts_and_the_printed_line():
    ner = [{"lang": "yo", "nfc_changed": 6}, {"lang": "ug", "nfc_changed": 0}]
    text = [{"lang": "yo", "nfc_changed": 2}]
    counts = unicode_counts("nfc", ner, text)
    assert counts == {"form": "nfc", "tokens_changed": 6, "text_lines_changed": 2}
    line = unicode_line({"unicode": counts, "inputs": {"ner": ner, "text": text}})
    assert line is not None and "changed 6 tokens (yo 6) and 2 text lines (yo 2)" in line
    assert unicode_line({"unicode": unicode_counts("nfc", ner[1:], []), "inputs": {"ner": ner[1:], "text": []}}) is None
    assert unicode_line({}) is None  # a manifest of older code


def test_the_tokenizer_hash_sees_data_unicode_only_without_nfkc(tmp_path, data_root):
    """Without ``tokenizer.nfkc`` the form the text is read in decides the tokenizer's alphabet, so
    a finished tokenizer of the other form must not be reused; with NFKC (the default) NFC changes
    nothing the tokenizer sees, and finished tokenizers keep their folder."""
    from lrl.job import load_job
    from lrl.model.command import stage_output
    from lrl.pipeline.stage import StageContext

    base = [f"output.root={tmp_path}", f"data.text=[{{path: {data_root}/mono/wo.txt, lang: wo, max_lines: 50}}]"]

    def folder(*extra: str) -> str:
        return stage_output(StageContext(load_job(None, [*base, *extra]))).path

    assert folder("tokenizer.nfkc=false") != folder("tokenizer.nfkc=false", "data.unicode=none")
    assert folder() == folder("data.unicode=none")
