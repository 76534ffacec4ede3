"""Word-level helpers of label projection: similarity of strings, windows of words, token edges.

Split from ``project.py`` (which keeps the repair logic) to keep both files short.
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lrl.generate.translate.markers import Entity

WORD = re.compile(r"\S+")


def similarity(a: str, b: str) -> float:
    """Character similarity in [0, 1] of two strings, case-folded, spaces ignored."""
    a, b = "".join(a.casefold().split()), "".join(b.casefold().split())
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def windows(words: list[tuple[int, int]], text: str, tr: str, found: dict[int, tuple[int, int]]):
    """``(similarity to tr, span, first word, last word)`` of each window of ``tr``'s word count
    (one more or less) that overlaps no placed span, by size then position."""
    n = max(1, len(tr.split()))
    for size in sorted({max(1, n - 1), n, n + 1}):
        for i in range(0, len(words) - size + 1):
            s, e = words[i][0], words[i + size - 1][1]
            if not any(s < b and a < e for a, b in found.values()):
                yield similarity(text[s:e], tr), (s, e), i, i + size - 1


def word_edges(words: list[tuple[int, int]], span: tuple[int, int]) -> tuple[int, int]:
    """The first and last word (of ``words``) that ``span`` touches."""
    first = next((k for k, (_, we) in enumerate(words) if we > span[0]), len(words))
    return first, max((k for k, (ws, _) in enumerate(words) if ws < span[1]), default=-1)


def in_word(ch: str) -> bool:
    return ch.isalnum() or is_mark(ch)


def has_word(text: str) -> bool:
    return any(c.isalnum() for c in text)


def trim_punct(inside: list[int], tokens: list[tuple[int, int, str]], source: str) -> list[int]:
    """``inside`` without edge tokens of punctuation only (a marker moved over a neighbouring
    full stop, bracket or quote) that the source entity does not have on that edge; never empty.
    "Down ? ( Remember Me ) ''" kept the closing quote of the title: the source entity ends with
    ")" (so it was not trimmed at all), but not with "''"."""
    src = "".join(source.split())
    head = src[: next((i for i, c in enumerate(src) if in_word(c)), len(src))]
    tail = src[next((i for i in range(len(src), 0, -1) if in_word(src[i - 1])), 0):]
    lo, hi = 0, len(inside)
    while hi - lo > 1 and not has_word(t := tokens[inside[lo]][2]) and t not in head:
        lo += 1
    while hi - lo > 1 and not has_word(t := tokens[inside[hi - 1]][2]) and t not in tail:
        hi -= 1
    return inside[lo:hi]


def is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def join_marks(tokens: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Glue combining marks back into their word: ``\\w`` matches no mark (Mn/Mc), so a pattern
    built on it cuts Yoruba ``mẹ́rin`` (ẹ + U+0301) into ``mẹ``, ``́``, ``rin``. A mark-only token
    joins the token it touches on the left, and a word token joins a touching one ending in a mark."""
    out: list[tuple[int, int, str]] = []
    for s, e, t in tokens:
        if out and out[-1][1] == s and (is_mark(t[0]) or (is_mark(out[-1][2][-1]) and t[0].isalnum())):
            ps, _, pt = out[-1]
            out[-1] = (ps, e, pt + t)
        else:
            out.append((s, e, t))
    return out


def greedy(sims: list[list[float]]) -> dict[int, int]:
    """Assign each span (row) an entity (column), best similarities first, one-to-one."""
    cells = sorted((-v, k, j) for k, row in enumerate(sims) for j, v in enumerate(row))  # ties: in order
    used_k: set[int] = set()
    used_j: set[int] = set()
    out: dict[int, int] = {}
    for _, k, j in cells:
        if k not in used_k and j not in used_j:
            out[k] = j
            used_k.add(k)
            used_j.add(j)
    return out


def indistinct(entities: list[Entity], translated: list[str] | None) -> str | None:
    """The reject reason of a row that square markers cannot project: two mentions of different
    types with the same text (case and spaces aside), or the same translation. Their spans can
    only be told apart by order, and a translation that reorders them ("Tanzania" LOC ... ORG
    put the other way round) swapped their types, unnoticed by the ``projection`` filter (the
    multiset of types is unchanged). No order is provably kept, so such rows are rejected;
    numbered markers name each mention's entity."""
    seen: dict[str, Entity] = {}
    for ent in entities:
        keys = {"".join(ent.text.casefold().split())}
        if translated and ent.index < len(translated) and translated[ent.index].strip():
            keys.add("t:" + "".join(translated[ent.index].casefold().split()))
        for key in keys:
            other = seen.setdefault(key, ent)
            if other.type != ent.type:
                return (f"projection_ambiguous: square markers cannot tell {other.type} "
                        f"'{other.text}' from {ent.type} '{ent.text}' (same text, the translation may "
                        "reorder them); use translate.projection.markers: numbered")
    return None
