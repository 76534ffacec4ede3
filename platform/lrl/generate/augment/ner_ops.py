"""NER-aware augmentation (Dai & Adel 2020): mention replacement, label-wise token replacement,
shuffle within segments. Mention replacement regenerates B-/I- tags for the new mention length
and keeps the sequence of entity types; the other two never change a tag.
"""

from __future__ import annotations

import random

from lrl.data.bio import spans
from lrl.generate.augment.eda import bare_words
from lrl.generate.augment.op import AugmentOp, Edit
from lrl.generate.augment.resources import script_of


def _has_other(pool: tuple, current: object) -> bool:
    return len(pool) > 1 or (len(pool) == 1 and pool[0] != current)


def _pick_other(pool: tuple, current: object, rng: random.Random) -> object | None:
    """A random pool item different from ``current`` (None when there is none)."""
    if not pool or (len(pool) == 1 and pool[0] == current):
        return None
    i = rng.randrange(len(pool))
    if pool[i] == current:
        i = (i + 1 + rng.randrange(len(pool) - 1)) % len(pool)
    return pool[i]


def _segments(tags: list[str]) -> list[tuple[int, int]]:
    """Maximal same-label segments: each entity span, and each run of O tokens."""
    bounds = {0, len(tags)}
    for start, end, _ in spans(tags):
        bounds.update((start, end))
    cuts = sorted(bounds)
    return list(zip(cuts[:-1], cuts[1:]))


class MentionOp(AugmentOp):
    """Replace each mention with probability p (one at least) by another mention of the same
    type, language and script from the training inventory."""

    name = "mention"

    def edit(self, tokens: list[str], tags: list[str], lang: str, rng: random.Random) -> Edit:
        options = []
        for s, e, t in spans(tags):
            mention = tuple(tokens[s:e])
            pool = self.res.mentions_in(lang, t, script_of(mention))
            if _has_other(pool, mention):
                options.append((s, e, pool))
        if not options:
            return None
        chosen = [sp for sp in options if rng.random() < self.params.p] or [rng.choice(options)]
        for start, end, pool in reversed(chosen):  # right to left keeps earlier indices valid
            etype = tags[start][2:]
            new = _pick_other(pool, tuple(tokens[start:end]), rng)
            assert new is not None  # guaranteed by _has_other
            tokens[start:end] = list(new)  # type: ignore[arg-type]
            tags[start:end] = [f"B-{etype}"] + [f"I-{etype}"] * (len(new) - 1)  # type: ignore[arg-type]
        return tokens, tags


class LabelwiseOp(AugmentOp):
    """Replace each token with probability p (one at least) by a token seen with the same tag,
    written in the same script (punctuation and numbers by punctuation and numbers)."""

    name = "labelwise"

    def edit(self, tokens: list[str], tags: list[str], lang: str, rng: random.Random) -> Edit:
        pools = [self.res.tagged_in(lang, t, script_of((tok,))) for tok, t in zip(tokens, tags)]
        usable = [i for i, pool in enumerate(pools) if _has_other(pool, tokens[i])]
        if not usable:
            return None
        chosen = [i for i in usable if rng.random() < self.params.p] or [rng.choice(usable)]
        for i in chosen:
            tokens[i] = _pick_other(pools[i], tokens[i], rng)  # type: ignore[assignment]
        return tokens, tags


class ShuffleOp(AugmentOp):
    """Shuffle the words of each segment with two or more distinct ones with probability p (one at
    least); tags stay where they are, so every segment keeps its label. Only bare words move (see
    ``eda.bare_words``): punctuation, and words that carry it, keep their place, so an O run does
    not end mid-sentence on ``.`` or put ``ሆነ።`` first."""

    name = "shuffle"

    def edit(self, tokens: list[str], tags: list[str], lang: str, rng: random.Random) -> Edit:
        words = [bare_words(tokens, list(range(s, e))) for s, e in _segments(tags)]
        segs = [pos for pos in words if len({tokens[i] for i in pos}) > 1]
        if not segs:
            return None
        chosen = [pos for pos in segs if rng.random() < self.params.p] or [rng.choice(segs)]
        for pos in chosen:
            part = [tokens[i] for i in pos]
            rng.shuffle(part)
            for i, tok in zip(pos, part):
                tokens[i] = tok
        return tokens, tags
