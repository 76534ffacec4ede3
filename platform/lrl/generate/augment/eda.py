"""EDA (Wei & Zou 2019) made safe for NER: insertion, swap, deletion and synonym replacement
touch only O tokens, and insertion never lands inside an entity span, so every entity span keeps
its tokens and type; the labels stay correct without re-annotation.
"""

from __future__ import annotations

import random
import re
import unicodedata

from lrl.generate.augment.op import AugmentOp, Edit
from lrl.generate.augment.resources import script_of

# Leading/trailing punctuation kept around a replaced word (WikiANN tokens carry "،" or ",").
_SPLIT = re.compile(r"^(\W*)(.*?)(\W*)$", re.S)


def _count(alpha: float, n: int) -> int:
    return max(1, round(alpha * n))


def _o_positions(tags: list[str]) -> list[int]:
    return [i for i, t in enumerate(tags) if t == "O"]


def split_punct(token: str) -> tuple[str, str, str]:
    """(leading punctuation, word, trailing punctuation) of a token.

    Combining marks after the word stay with it: ``\\W`` matches them, and in Yoruba (``jẹ́``,
    ``ilẹ̀``: tone marks with no precomposed form, even in NFC) or pointed Arabic the word lost
    its last tone mark, was looked up as another word, and the mark was stuck onto the synonym
    (``tí`` + U+0301 gave a double accent)."""
    lead, core, trail = _SPLIT.match(token).groups()  # type: ignore[union-attr]
    if core:
        n = 0
        while n < len(trail) and unicodedata.category(trail[n]).startswith("M"):
            n += 1
        core, trail = core + trail[:n], trail[n:]
    return lead, core, trail


def has_synonym(op: AugmentOp, token: str, lang: str) -> bool:
    core = split_punct(token)[1]
    return bool(core) and bool(op.res.synonyms_of(lang, core))


def synonym_for(op: AugmentOp, token: str, lang: str, rng: random.Random) -> list[str] | None:
    """A synonym of ``token`` (punctuation around it kept), split into tokens; None if none."""
    lead, core, trail = split_punct(token)
    syns = op.res.synonyms_of(lang, core) if core else ()
    if not syns:
        return None
    words = rng.choice(syns).split()
    if not words:
        return None
    words[0] = lead + words[0]
    words[-1] = words[-1] + trail
    return words


class InsertOp(AugmentOp):
    """Insert words (a synonym of an O word of the sentence, else an O word seen in training
    written in the sentence's script) at positions that do not split an entity (never right
    before an I- tag)."""

    name = "insert"

    def edit(self, tokens: list[str], tags: list[str], lang: str, rng: random.Random) -> Edit:
        pool = self.res.tagged_in(lang, "O", script_of(tokens))
        for _ in range(_count(self.params.alpha, len(tokens))):
            words = None
            o_pos = _o_positions(tags)
            if o_pos:
                words = synonym_for(self, tokens[rng.choice(o_pos)], lang, rng)
            if words is None:
                if not pool:
                    return None
                words = [rng.choice(pool)]
            slots = [i for i in range(len(tokens) + 1) if i == len(tokens) or not tags[i].startswith("I-")]
            at = rng.choice(slots)
            tokens[at:at] = words
            tags[at:at] = ["O"] * len(words)
        return tokens, tags


class SwapOp(AugmentOp):
    """Swap two O tokens, ``alpha * len`` times; entity tokens never move."""

    name = "swap"

    def edit(self, tokens: list[str], tags: list[str], lang: str, rng: random.Random) -> Edit:
        o_pos = _o_positions(tags)
        if len(o_pos) < 2:
            return None
        for _ in range(_count(self.params.alpha, len(tokens))):
            i, j = rng.sample(o_pos, 2)
            tokens[i], tokens[j] = tokens[j], tokens[i]
        return tokens, tags


class DeleteOp(AugmentOp):
    """Delete each O token with probability p (one at least, and never the last token)."""

    name = "delete"

    def edit(self, tokens: list[str], tags: list[str], lang: str, rng: random.Random) -> Edit:
        o_pos = _o_positions(tags)
        if not o_pos or len(tokens) < 2:
            return None
        drop = {i for i in o_pos if rng.random() < self.params.p}
        if not drop:
            drop = {rng.choice(o_pos)}
        if len(drop) == len(tokens):  # an all-O sentence: keep one token
            drop.discard(rng.choice(sorted(drop)))
        keep = [i for i in range(len(tokens)) if i not in drop]
        return [tokens[i] for i in keep], [tags[i] for i in keep]


class SynonymOp(AugmentOp):
    """Replace up to ``alpha * len`` O words that have synonyms (lexicon or corpus neighbours)."""

    name = "synonym"

    def edit(self, tokens: list[str], tags: list[str], lang: str, rng: random.Random) -> Edit:
        cands = [i for i in _o_positions(tags) if has_synonym(self, tokens[i], lang)]
        if not cands:
            return None
        chosen = sorted(rng.sample(cands, min(len(cands), _count(self.params.alpha, len(tokens)))))
        for i in reversed(chosen):  # right to left: a multi-word synonym shifts later indices
            words = synonym_for(self, tokens[i], lang, rng)
            assert words is not None
            tokens[i : i + 1] = words
            tags[i : i + 1] = ["O"] * len(words)
        return tokens, tags
