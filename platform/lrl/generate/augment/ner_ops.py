"""NER-aware augmentation (Dai & Adel 2020): mention replacement, label-wise token replacement,
shuffle within segments. Mention replacement regenerates B-/I- tags for the new mention length
and keeps the sequence of entity types; the other two never change a tag.
"""

from __future__ import annotations

import random

from lrl.data.bio import spans
from lrl.generate.augment.eda import bare_words, fragment, plain_word, split_punct
from lrl.generate.augment.op import AugmentOp, Edit
from lrl.generate.augment.resources import NUMBER, script_of


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
    """Replace each token with probability p (one at least) by a word seen with the same tag,
    written in the same script (numbers by numbers; an O token never by an entity word of the
    language, ``names``: the O pool leaves them out). Only the word changes: the token's own
    punctuation stays (``ئافېنا،`` -> ``مالاۋى،``, ``''Cry`` -> ``''Pinda``) and pool tokens give
    their word alone, so a clause-ending comma, a closing ``»`` or a wiki quote is neither lost
    nor brought mid-sentence. Replacing whole tokens did both: on WikiANN train 11% of ug and 20%
    of am replacements (5% sw) changed the punctuation around the word. Punctuation tokens are
    never replaced (they have no word)."""

    name = "labelwise"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._words: dict[tuple[str, str, str | None], tuple[str, ...]] = {}

    def edit(self, tokens: list[str], tags: list[str], lang: str, rng: random.Random) -> Edit:
        usable = []
        for i, (tok, tag) in enumerate(zip(tokens, tags)):
            lead, word, trail = split_punct(tok)
            if word:
                pool = self._words_in(lang, tag, script_of((word,)))
                if _has_other(pool, word):
                    usable.append((i, lead, word, trail, pool))
        if not usable:
            return None
        chosen = [u for u in usable if rng.random() < self.params.p] or [rng.choice(usable)]
        for i, lead, word, trail, pool in chosen:
            tokens[i] = lead + _pick_other(pool, word, rng) + trail  # type: ignore[operator]
        return tokens, tags

    def _words_in(self, lang: str, tag: str, script: str | None) -> tuple[str, ...]:
        """The distinct words (punctuation split off) of the tokens seen with ``tag`` in
        ``script``, in inventory order; tokenizer leftovers with a stop inside
        (``Paris.foofee``) are left out, numbers (``5.4``) kept."""
        key = (lang, tag, script)
        words = self._words.get(key)
        if words is None:
            seen = dict.fromkeys(split_punct(t)[1] for t in self.res.tagged_in(lang, tag, script)
                                 if script == NUMBER or not fragment(t))
            words = self._words[key] = tuple(w for w in seen if w and (script == NUMBER or plain_word(w)))
        return words


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
