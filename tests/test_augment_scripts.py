"""Augmentation on scripts with combining marks and mixed-script corpora (real WikiANN and
Wikipedia/news slices of yo, ug, am, sw), and duplicate copies of one parent."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import pyarrow as pa
import pytest

from lrl.data.bio import spans
from lrl.data.readers import read_conll
from lrl.generate.augment import OP_CLASSES, AugmentResources, build_resources, make_op
from lrl.generate.augment.eda import split_punct
from lrl.generate.augment.resources import script_of
from lrl.generate.augment.synonyms import corpus_neighbours
from lrl.generate.config import AugmentConfig, NeighbourConfig

SMALL_NB = NeighbourConfig(min_count=3, max_vocab=3000, contexts=800, dims=40, max_words=1500)
MARKS = "\u0300-\u036f"  # the combining diacritics Yoruba uses (acute, grave, dot below...)


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def _script(word: str) -> str | None:
    """First word of the Unicode name of the word's first letter (ARABIC, LATIN...)."""
    letters = [c for c in word if unicodedata.category(c).startswith("L")]
    return unicodedata.name(letters[0]).split()[0] if letters else None


def _lines(data_root, lang: str, n: int) -> list[str]:
    with open(data_root / "mono" / f"{lang}.txt", encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith("# doc")]
    return lines[:n]


@pytest.fixture(scope="module")
def yo_train(data_root) -> pa.Table:
    return read_conll(str(data_root / "wikiann" / "yo" / "train"), "yo").table


def test_split_punct_keeps_tone_marks_with_the_word(yo_train):
    # Yoruba tone marks over dotted vowels have no precomposed form, even in NFC: ``\W`` matched
    # them and split_punct moved the last one of 31 of the 564 train tokens into the "punctuation".
    assert split_punct("jẹ́") == ("", "jẹ́", "")
    assert split_punct("(ilẹ̀),") == ("(", "ilẹ̀", "),")
    tokens = [t for row in yo_train.column("tokens").to_pylist() for t in row]
    for tok in tokens:
        lead, core, trail = split_punct(tok)
        assert lead + core + trail == tok
        assert not (trail and _is_mark(trail[0])), tok


def test_synonym_replacement_does_not_move_a_tone_mark(yo_train):
    # Before: "jẹ́" was looked up as "jẹ" and its acute was appended to the synonym ("tí" + U+0301).
    rows = [r for r in yo_train.to_pylist() if "jẹ́" in r["tokens"]]
    assert rows
    res = AugmentResources(synonyms={"yo": {"jẹ́": ("tí",), "jẹ": ("bí",)}})
    op = make_op("synonym", AugmentConfig(ops=["synonym"], synonym={"alpha": 1.0}), res, 0)
    made = [r for row in rows for r in op.rows(row)]
    assert made
    for r in made:
        assert "tí" in r["tokens"] and not {"bí", "bí\u0301", "tí\u0301"} & set(r["tokens"]), r["tokens"]
        assert all(t == unicodedata.normalize("NFC", t) for t in r["tokens"]), r["tokens"]


def test_corpus_neighbours_are_whole_words_with_their_marks(data_root):
    # A fifth of the words of mono/yo.txt carry a combining mark; ``\w+`` cut them there
    # ("agbóhùnsáfẹ́fẹ́" -> "agbóhùnsáfẹ", "fẹ"), so the table held fragments, not words.
    lines = _lines(data_root, "yo", 3000)
    table = corpus_neighbours(lines, SMALL_NB)
    assert len(table) > 300
    text = "\n".join(lines).lower()
    words = set(table) | {s for syns in table.values() for s in syns}
    fragments = [w for w in words
                 if not re.search(rf"(?<![\w{MARKS}]){re.escape(w)}(?![\w{MARKS}])", text)]
    assert not fragments, (len(fragments), len(words), sorted(fragments)[:10])
    assert any(any(_is_mark(c) for c in w) for w in words)  # marked words are in the table


def test_corpus_neighbours_stay_in_the_words_script(data_root):
    # Uyghur Wikipedia holds Latin names (macintosh, iq, x): they were neighbours of Uyghur words.
    table = corpus_neighbours(_lines(data_root, "ug", 3000), SMALL_NB)
    assert len(table) > 500
    cross = [(w, s) for w, syns in table.items() for s in syns
             if _script(w) and _script(s) and _script(w) != _script(s)]
    assert not cross, (len(cross), cross[:5])
    assert {_script(w) for w in table} >= {"ARABIC", "LATIN"}  # Latin heads keep Latin neighbours


@pytest.mark.parametrize("op", sorted(OP_CLASSES))
def test_copies_of_one_parent_are_distinct(data_root, op):
    # With copies=3, short rows have few variants (a two-token mention has one shuffle, a row
    # with two O tokens one swap): 12-18% of swap/delete rows repeated a sibling on these slices.
    train = pa.concat_tables([read_conll(str(data_root / "wikiann" / lang / "train"), lang).table.slice(0, 150)
                              for lang in ("yo", "am", "sw", "ug")])
    cfg = AugmentConfig(ops=[op], copies=3)
    res = build_resources(cfg, train, None)
    if op in ("synonym", "insert"):  # a tiny lexicon: the synonym op needs one
        res = AugmentResources(res.entities, res.tokens, {"sw": {"ni": ("ndiyo", "ndio"), "na": ("pamoja",)}})
    gen = make_op(op, cfg, res, 5)(train).to_pylist()
    assert gen
    seen = Counter((r["parent_id"], tuple(r["tokens"]), tuple(r["tags"])) for r in gen)
    dups = {k: n for k, n in seen.items() if n > 1}
    assert not dups, (len(dups), len(gen), next(iter(dups)))


@pytest.mark.parametrize("op", ["mention", "labelwise", "insert"])
def test_replacements_stay_in_the_script_of_what_they_replace(data_root, op):
    # WikiANN ug mixes Arabic-script rows with Latin-script (ULY) rows and names; am, sw, wo rows
    # quote Faroese, Chinese, Arabic and Cyrillic words. Drawing from the whole inventory, 70 of
    # 1024 ug mention rows (203 labelwise, 92 insert) of the multilingual recipe put a Latin word
    # into an Arabic sentence or the reverse, and am got "føroyskt", wo "България".
    train = pa.concat_tables([read_conll(str(data_root / "wikiann" / lang / "train"), lang).table
                              for lang in ("ug", "am", "sw", "wo")])
    cfg = AugmentConfig(ops=[op])
    res = build_resources(cfg, train, None)  # no text: insert draws from the O-token inventory
    gen = make_op(op, cfg, res, 0)(train).to_pylist()
    assert len(gen) > 1000
    parents = {r["id"]: r for r in train.to_pylist()}

    def units(row) -> set[tuple[str, ...]]:  # what the op puts in: whole mentions, or tokens
        if op == "mention":
            return {tuple(row["tokens"][s:e]) for s, e, _ in spans(row["tags"])}
        return {(t,) for t in row["tokens"]}

    new_script = []
    for r in gen:
        parent = units(parents[r["parent_id"]])
        before = {script_of(u) for u in parent} | {None}  # None: punctuation, numbers
        added = [u for u in units(r) - parent if script_of(u) not in before]
        if added:
            new_script.append((r["lang"], added, r["tokens"]))
    assert not new_script, (len(new_script), len(gen), new_script[:3])
    # The ops still apply to ug's Latin-script rows (drawing from the Latin part of the inventory).
    ug_latin = [r for r in gen if r["lang"] == "ug" and "LATIN" in {_script(t) for t in r["tokens"]}]
    assert len(ug_latin) > 20
