"""EDA (Wei & Zou 2019) made safe for NER: insertion, swap, deletion and synonym replacement
touch only O tokens, and insertion never lands inside an entity span, so every entity span keeps
its tokens and type; the labels stay correct without re-annotation.

They also move words, not punctuation. WikiANN tags punctuation O: Latin-script rows (wo, yo, sw,
ug) have standalone ``.`` ``,`` ``(`` ``)`` and quote tokens, Amharic and Uyghur attach it to the
word (``ሆነ።``, ``ተባለ፤``, ``«የማሪና``, ``ئافېنا،``). Treated as words, swap moved the final stop
mid-sentence, delete dropped it or one bracket of a pair, and insert put words after it: on
WikiANN ug/wo/am train, 23/18/23% of swap rows and 13/8/9% of delete rows lost their final stop.
"""

from __future__ import annotations

import functools
import random
import unicodedata

from lrl.generate.augment.op import AugmentOp, Edit
from lrl.generate.augment.resources import script_of
from lrl.generate.augment.words import split_punct


def _count(alpha: float, n: int) -> int:
    return max(1, round(alpha * n))


def _o_positions(tags: list[str]) -> list[int]:
    return [i for i, t in enumerate(tags) if t == "O"]


@functools.lru_cache(maxsize=1 << 16)
def is_bare(token: str) -> bool:
    """A word with no punctuation attached (``ሆነ`` yes; ``ሆነ።``, ``(ko)``, ``.`` no)."""
    return split_punct(token)[1] == token


@functools.lru_cache(maxsize=1 << 16)
def is_punct(token: str) -> bool:
    """Punctuation (or symbols) only: no word in it (``.``, ``(``, ``''``, ``።``)."""
    return not split_punct(token)[1]


def bare_words(tokens: list[str], positions: list[int]) -> list[int]:
    """The positions (of ``positions``) that hold a bare word: the tokens swap, shuffle and delete
    may move or drop. A word with punctuation attached ends a clause or stands in brackets or
    quotes (``ሆነ።`` is the sentence-final verb of verb-final Amharic, ``ئافېنا،`` ends a clause):
    it stays put, and so does its punctuation; moving only its word would break the clause
    instead."""
    return [i for i in positions if is_bare(tokens[i])]


# Quote marks that open or close alike (WikiANN Latin rows keep wiki markup: ' '' "): category Po.
_QUOTES = frozenset("\"'")


@functools.lru_cache(maxsize=1 << 12)
def _encloses(token: str) -> tuple[bool, bool]:
    """(may open, may close) a bracketed or quoted part, for a punctuation-only token: by its
    last/first character's Unicode category (Ps/Pi open, Pe/Pf close) or an ASCII quote (both)."""
    if not token or not is_punct(token):
        return False, False
    last, first = unicodedata.category(token[-1]), unicodedata.category(token[0])
    return last in ("Ps", "Pi") or token[-1] in _QUOTES, first in ("Pe", "Pf") or token[0] in _QUOTES


def _last_slot(tokens: list[str]) -> int:
    """The last insertion slot that keeps the sentence's final punctuation final: right after its
    last word, or right before that word when punctuation is attached to it (``ሆነ።``). No list of
    sentence-final marks needed: whatever punctuation ends the sentence (``.``, ``።``, ``؟``,
    ``…``, a closing bracket) stays last."""
    for i in range(len(tokens) - 1, -1, -1):
        lead, core, trail = split_punct(tokens[i])
        if core:
            return i if trail else i + 1
    return len(tokens)


def has_synonym(op: AugmentOp, token: str, lang: str) -> bool:
    core = split_punct(token)[1]
    return bool(core) and bool(op.res.synonyms_of(lang, core))


def synonym_for(op: AugmentOp, token: str, lang: str, rng: random.Random, cased: bool = True) -> list[str] | None:
    """A synonym of ``token`` (punctuation around it kept), split into tokens; None if none.
    ``cased``: the synonym takes the case of ``token``'s word (``with_case``) where it was found
    by folding case (every neighbour; a lexicon entry of the word as written is used as written)."""
    lead, core, trail = split_punct(token)
    syns, folded = op.res.synonym_entry(lang, core) if core else ((), False)
    if not syns:
        return None
    words = rng.choice(syns).split()
    if not words:
        return None
    if folded and cased:
        words = with_case(words, core)
    words[0] = lead + words[0]
    words[-1] = words[-1] + trail
    return words


def with_case(words: list[str], like: str) -> list[str]:
    """``words`` (a synonym, lower-cased as tables keep them) in the case of the word ``like``
    they stand for: all upper when it is (two letters or more: ``UN``, ``ÀWỌN``), the first letter
    upper when its first letter is (at a sentence start, or a capitalised word inside one), else
    as they are. Left lower-cased, WikiANN sw ``Eneo lake ni 33 km²`` became ``shambulizi lake ni
    ...``: 51 of 352 synonym rows of 2,000 sw train rows (neighbours of 3,000 mono/sw lines) had
    a capitalised word so replaced. Scripts without case (Arabic, Ethiopic) have no upper letter."""
    if not like[:1].isupper():
        return words
    if like.isupper() and sum(c.isalpha() for c in like) > 1:
        return [w.upper() for w in words]
    # The first letter, not character: Hausa ``'yan`` at a sentence start is ``'Yan``.
    first = words[0]
    at = next((i for i, c in enumerate(first) if c.isalpha()), 0)
    return [first[:at] + first[at:at + 1].title() + first[at + 1:], *words[1:]]


def _first_word(tokens: list[str]) -> int | None:
    """The position of the sentence's first word (punctuation before it skipped)."""
    return next((i for i, tok in enumerate(tokens) if split_punct(tok)[1]), None)


class InsertOp(AugmentOp):
    """Insert words (a synonym of an O word of the sentence, else an O word seen in training
    written in the sentence's script, never an entity word of the language: ``names``; bare
    words, without their punctuation) at positions that do
    not split an entity (never right before an I- tag), never after the sentence's final
    punctuation, and never just inside a standalone bracket or quote token (``( word`` or
    ``word )``; an ASCII quote may open or close, so no word goes on either side of it)."""

    name = "insert"

    def edit(self, tokens: list[str], tags: list[str], lang: str, rng: random.Random) -> Edit:
        pool = self.res.tagged_in(lang, "O", script_of(tokens))
        shut: list[tuple[bool, bool]] | None = None
        first = _first_word(tokens)  # the sentence's own first word, followed as words go in before it
        for _ in range(_count(self.params.alpha, len(tokens))):
            words = None
            o_pos = _o_positions(tags)
            if o_pos:
                # The synonym takes the case of its word only where that word is not the first
                # of the sentence: there a capital marks the sentence start, not the word, and the
                # synonym goes elsewhere. Inserted first, the synonym is left as found, as pool
                # words are (the old first word keeps its capital): a rare slot, left simple.
                at_word = rng.choice(o_pos)
                words = synonym_for(self, split_punct(tokens[at_word])[1], lang, rng,
                                    cased=at_word != first)
            if words is None:
                word = _pool_word(pool, rng)
                if word is None:
                    break
                words = [word]
            if shut is None:  # per token: (closes the slot before it, closes the slot after it)
                shut = [(tag.startswith("I-") or closes, opens) for (opens, closes), tag in zip(map(_encloses, tokens), tags)]
            n = len(tokens)
            slots = [i for i in range(_last_slot(tokens) + 1) if not (i < n and shut[i][0]) and not (i and shut[i - 1][1])]
            if not slots:
                break
            at = rng.choice(slots)
            tokens[at:at] = words
            if first is not None and at <= first:  # review: recomputed, an inserted word became first
                first += len(words)
            tags[at:at] = ["O"] * len(words)
            shut[at:at] = [(False, False)] * len(words)  # bare O words close no slot
        return tokens, tags


def _pool_word(pool: tuple[str, ...], rng: random.Random) -> str | None:
    """The word of a random pool token (``ሆነ`` for ``ሆነ።``). The pool holds every O token, so
    some are punctuation only, and some are tokenizer leftovers with a stop inside
    (``Paris.foofee``, ``باشلىغان.بۇلاردىن``, ``Genghis_Khan.jpg``: inserted, 1% of ug rows got a
    stop mid-sentence): those are drawn again, a few times at most. None when no word was drawn."""
    for _ in range(8 if pool else 0):
        token = rng.choice(pool)
        word = split_punct(token)[1]
        if word and plain_word(word) and not fragment(token):
            return word
    return None


#: An apostrophe that starts a clitic when a token begins with it alone (``'s``, ``’re``).
_APOSTROPHES = ("'", "\u2019")


@functools.lru_cache(maxsize=1 << 16)
def fragment(token: str) -> bool:
    """Whether the word of ``token`` is a piece of a word, not one: a clitic after one apostrophe
    (``'s`` -> ``s``, ``'re``, ``'ll``) or a single letter cut from its punctuation (``c.`` -> ``c``).
    Drawn for insert and label-wise replacement, they made ``Thr33 s Times`` (sw I-ORG; 8 of 954
    label-wise rows) and stray ``c`` (ig insert, 6 of 194). Bare single letters (``a``, ``ó``)
    are words and stay."""
    lead, word, trail = split_punct(token)
    letters = [c for c in word if not unicodedata.category(c).startswith("M")]
    if lead in _APOSTROPHES and not trail and len(letters) <= 3:  # not ''Cry (wiki italics), 'Cry'
        return True
    return bool(lead or trail) and len(letters) == 1 and letters[0].isalpha()


@functools.lru_cache(maxsize=1 << 16)
def plain_word(word: str) -> bool:
    """No sentence punctuation (category Po, e.g. ``.`` ``،`` ``።``) inside; apostrophes allowed."""
    return not any(c != "'" and unicodedata.category(c) == "Po" for c in word)


class SwapOp(AugmentOp):
    """Swap two O words, ``alpha * len`` times; entity tokens and punctuation never move (only
    bare words take part, see ``bare_words``)."""

    name = "swap"

    def edit(self, tokens: list[str], tags: list[str], lang: str, rng: random.Random) -> Edit:
        o_pos = bare_words(tokens, _o_positions(tags))
        if len(o_pos) < 2:
            return None
        for _ in range(_count(self.params.alpha, len(tokens))):
            i, j = rng.sample(o_pos, 2)
            tokens[i], tokens[j] = tokens[j], tokens[i]
        return tokens, tags


class DeleteOp(AugmentOp):
    """Delete each O word with probability p (one at least, and never every word). Punctuation
    is structure, not a word: it is never deleted, nor is a word that carries punctuation (its
    ``።`` or ``،`` would go with it, and moved onto a neighbour it could land on an entity token,
    which must not change), nor a word with punctuation (or the sentence's edge) on both sides
    (``( word )``, ``'' word ''``, ``word، word .``: deleting it would leave an empty pair, two
    marks in a row, or a sentence that starts with ``,``)."""

    name = "delete"

    def edit(self, tokens: list[str], tags: list[str], lang: str, rng: random.Random) -> Edit:
        last = len(tokens) - 1
        shape = list(map(_shape, tokens))
        o_pos = [i for i, tag in enumerate(tags) if tag == "O" and shape[i][0]
                 and not ((i == 0 or shape[i - 1][2]) and (i == last or shape[i + 1][1]))]
        if not o_pos or len(tokens) < 2:
            return None
        drop = {i for i in o_pos if rng.random() < self.params.p}
        if not drop:
            drop = {rng.choice(o_pos)}
        if len(drop) == len(o_pos) and all(i in drop or is_punct(tok) for i, tok in enumerate(tokens)):
            drop.discard(rng.choice(sorted(drop)))  # keep one word
        if len(drop) > 1:
            drop = _spare_structure(tokens, drop)
        keep = [i for i in range(len(tokens)) if i not in drop]
        return [tokens[i] for i in keep], [tags[i] for i in keep]


def _spare_structure(tokens: list[str], drop: set[int]) -> set[int]:
    """``drop`` less the words whose deletion, together with their neighbours', would bring two
    marks together (each candidate has a word beside it, but "، w1 w2 ." still gave "، ."):
    left to right, a word stays when the last token kept before it and the next one not dropped
    are both punctuation. One at least still goes: the rightmost word of ``drop`` has a word on
    one side, which is either kept or itself gone."""
    out: set[int] = set()
    kept = -1  # the last token kept so far
    for i in range(len(tokens)):
        if i not in drop:
            kept = i
            continue
        j = next((j for j in range(i + 1, len(tokens)) if j not in drop), len(tokens))
        if (kept < 0 or _shape(tokens[kept])[2]) and (j == len(tokens) or _shape(tokens[j])[1]):
            kept = i
        else:
            out.add(i)
    return out


@functools.lru_cache(maxsize=1 << 16)
def _shape(token: str) -> tuple[bool, bool, bool]:
    """(a bare word, starts with punctuation, ends with punctuation): a punctuation-only token
    does both."""
    lead, core, trail = split_punct(token)
    return core == token, not core or bool(lead), not core or bool(trail)


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
