"""Property tests: random valid IOB2 sentences in, every op's output is valid IOB2 and keeps what
the op promises (entity spans for O-token ops, the type sequence for mention replacement, the
tags for label-wise replacement and shuffling)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrl.data.bio import bio_problems, spans
from lrl.data.schema import ner_table
from lrl.generate.augment import OP_CLASSES, AugmentResources, build_resources, make_op
from lrl.generate.augment.eda import split_punct
from lrl.generate.augment.ner_ops import _segments
from lrl.generate.config import AugmentConfig

WORDS = ["ala", "bek", "cur", "dëkk", "ئەل", "يۇرت", "xam,", "(ko)", "na", "ci"]
TYPES = ["PER", "ORG", "LOC"]


@st.composite
def sentences(draw) -> tuple[list[str], list[str]]:
    """A valid IOB2 sentence: O runs and entity spans (adjacent same-type spans allowed)."""
    tokens: list[str] = []
    tags: list[str] = []
    for _ in range(draw(st.integers(1, 6))):
        n = draw(st.integers(1, 3))
        words = draw(st.lists(st.sampled_from(WORDS), min_size=n, max_size=n))
        etype = draw(st.sampled_from(TYPES + ["O"]))
        tokens += words
        tags += ["O"] * n if etype == "O" else [f"B-{etype}"] + [f"I-{etype}"] * (n - 1)
    return tokens, tags


def _resources() -> AugmentResources:
    rows = [
        (["Ayşe", "Nur", "dëkk", "na", "Dakar"], ["B-PER", "I-PER", "O", "O", "B-LOC"]),
        (["Bank", "of", "Kashgar", "ci", "Ürümchi", "Shehiri"], ["B-ORG", "I-ORG", "I-ORG", "O", "B-LOC", "I-LOC"]),
        (["Moodu", "ak", "Unesco"], ["B-PER", "O", "B-ORG"]),
    ]
    train = ner_table([{"id": f"xx:{i}", "lang": "xx", "tokens": t, "tags": g} for i, (t, g) in enumerate(rows)])
    res = build_resources(AugmentConfig(ops=["mention"]), train)
    syn = {"ala": ("bala",), "na": ("nanu", "dina dem"), "xam": ("xamxam",), "ئەل": ("ئەللەر",)}
    return AugmentResources(entities=res.entities, tokens=res.tokens, synonyms={"xx": syn})


RES = _resources()
CFG = AugmentConfig(ops=sorted(OP_CLASSES))
OPS = {name: make_op(name, CFG, RES, 0) for name in OP_CLASSES}


def _run(op: str, sent: tuple[list[str], list[str]], seed: int) -> tuple[list[str], list[str]] | None:
    row = {"id": "p", "lang": "xx", "tokens": sent[0], "tags": sent[1], "source": None, "op": "orig",
           "parent_id": None, "seed": None}
    made = OPS[op].make(row, seed, 0)
    return None if made is None else (made["tokens"], made["tags"])


def _entities(tokens, tags):
    return [(tuple(tokens[s:e]), t) for s, e, t in spans(tags)]


@pytest.mark.parametrize("op", sorted(OP_CLASSES))
@settings(max_examples=80, deadline=None)
@given(sent=sentences(), seed=st.integers(0, 2**63 - 1))
def test_every_op_emits_valid_iob2(op, sent, seed):
    out = _run(op, sent, seed)
    if out is None:
        return
    tokens, tags = out
    assert not bio_problems(tags, TYPES), (op, sent, out)
    assert 0 < len(tokens) == len(tags)
    assert all(tokens), "no empty tokens"


@pytest.mark.parametrize("op", ["insert", "swap", "delete", "synonym"])
@settings(max_examples=80, deadline=None)
@given(sent=sentences(), seed=st.integers(0, 2**63 - 1))
def test_o_token_ops_never_touch_entity_spans(op, sent, seed):
    out = _run(op, sent, seed)
    if out is None:
        return
    assert _entities(*out) == _entities(*sent)
    if op == "swap":
        assert Counter(out[0]) == Counter(sent[0]) and out[1] == sent[1]
    if op == "delete":
        assert len(out[0]) < len(sent[0])


@settings(max_examples=100, deadline=None)
@given(sent=sentences(), seed=st.integers(0, 2**63 - 1))
def test_mention_replacement_keeps_types_and_context(sent, seed):
    out = _run("mention", sent, seed)
    if out is None:
        return
    assert [t for _, _, t in spans(out[1])] == [t for _, _, t in spans(sent[1])]  # type multiset, in order
    assert [w for w, t in zip(*out) if t == "O"] == [w for w, t in zip(*sent) if t == "O"]
    for mention, etype in _entities(*out):
        assert mention in RES.mentions("xx", etype) or (mention, etype) in _entities(*sent)


@settings(max_examples=100, deadline=None)
@given(sent=sentences(), seed=st.integers(0, 2**63 - 1))
def test_labelwise_and_shuffle_keep_every_tag(sent, seed):
    for op in ("labelwise", "shuffle"):
        out = _run(op, sent, seed)
        if out is None:
            continue
        assert out[1] == sent[1]
        if op == "labelwise":
            for old, new, tag in zip(sent[0], out[0], sent[1]):
                # the word comes from the tag's pool, the punctuation around it from the token
                (lo, _, to), (ln, wn, tn) = split_punct(old), split_punct(new)
                assert old == new or ((ln, tn) == (lo, to) and wn in {split_punct(t)[1] for t in RES.tagged("xx", tag)})
        else:
            for s, e in _segments(sent[1]):
                assert Counter(out[0][s:e]) == Counter(sent[0][s:e])


@settings(max_examples=100, deadline=None)
@given(sent=sentences(), seed=st.integers(0, 2**63 - 1))
def test_same_seed_same_row(sent, seed):
    for op in OP_CLASSES:
        assert _run(op, sent, seed) == _run(op, sent, seed)
