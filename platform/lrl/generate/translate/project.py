"""Recover entity spans from a translated, marked sentence and emit IOB2 tags on its tokens.

Order of work: pair the markers found in the output (numbered markers pair by number, square
ones by nesting order), give each pair its entity (by number, or by order and similarity to the
separately translated entity strings), then repair what is missing: a lost pair is looked up by
fuzzy matching the entity's own translation in the sentence; a lone marker is closed over as many
words as that translation has. What still cannot be placed rejects the sentence with a reason.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from lrl.generate.translate.markers import Entity, Marker, MarkerStyle

_WORD = re.compile(r"\S+")


@dataclass
class Projection:
    """A recovered sentence (tokens + IOB2 tags) or the reason it could not be recovered."""

    tokens: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    reject: str | None = None


def similarity(a: str, b: str) -> float:
    """Character similarity in [0, 1] of two strings, case-folded, spaces ignored."""
    a, b = "".join(a.casefold().split()), "".join(b.casefold().split())
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


class Projector:
    """Turns translated marked text into tokens and tags; stateless, one per batch or worker."""

    def __init__(self, style: MarkerStyle, token_pattern: str, split_at_markers: bool = True,
                 fuzzy: bool = True, fuzzy_threshold: float = 0.8) -> None:
        self.style = style
        self.token_re = re.compile(token_pattern)
        self.split_at_markers = split_at_markers
        self.fuzzy = fuzzy
        self.threshold = fuzzy_threshold

    def __call__(self, output: str, entities: list[Entity], translated: list[str] | None = None,
                 source: str | None = None) -> Projection:
        """``translated[i]`` is entity i translated on its own (used to repair lost markers);
        ``source`` is the source sentence (its own brackets are not taken for mangled markers)."""
        text, markers = self.style.find(output, source)
        if not text.strip():
            return Projection(reject="projection: empty translation")
        res = Projection()
        found: dict[int, tuple[int, int]] = {}
        pairs, dangling = self._pair(markers, entities, res)
        if res.reject:
            return res
        if self.style.numbered:
            for idx, span in pairs:
                found[idx] = span  # type: ignore[index]
        elif pairs:
            self._assign_square([s for _, s in pairs], entities, translated, text, found, res)
            if res.reject:
                return res
        # Pairs that enclose only spaces count as lost (the words moved out of the markers).
        for idx in [i for i, (s, e) in found.items() if not text[s:e].strip()]:
            del found[idx]
            res.repairs.append("empty_span")
        if self.fuzzy and translated:
            if self.style.numbered:
                self._check_numbers(text, translated, found, res)
            self._check_moved(text, entities, translated, found, res)
        if not self.style.numbered and len(dangling) > len(entities) - len(found):
            # More lone square markers than entities left to place: which belongs to which is a
            # guess ("we saw ] Paris [ today" labelled "saw"), so none closes a span.
            dangling = []
        for ent in entities:
            if ent.index in found:
                continue
            tr = translated[ent.index] if translated else None
            span = self._fuzzy(text, tr, found) if (self.fuzzy and tr) else None
            if span is not None:
                res.repairs.append("fuzzy")
            else:
                span = self._close_dangling(text, ent, tr, dangling, found)
                if span is not None:
                    res.repairs.append("dangling")
            if span is None:
                res.reject = f"projection: entity lost ({ent.type} '{ent.text}')"
                return res
            found[ent.index] = span
        return self._tokens(text, entities, found, res)

    def _pair(self, markers: list[Marker], entities: list[Entity], res: Projection):
        """Pairs ``(index|None, (start, end))`` and the markers left without a partner."""
        pairs: list[tuple[int | None, tuple[int, int]]] = []
        dangling: list[Marker] = []
        n = len(entities)
        if self.style.numbered:
            by_idx: dict[int, list[Marker]] = {}
            for m in markers:
                if m.kind == "junk":
                    res.repairs.append("mangled_marker")
                    continue
                if m.index is not None and m.index >= n:
                    res.repairs.append("unknown_marker")
                    continue
                by_idx.setdefault(m.index, []).append(m)  # type: ignore[arg-type]
            for idx, ms in sorted(by_idx.items()):
                opens = [m for m in ms if m.kind == "open"]
                closes = [m for m in ms if m.kind == "close"]
                if len(opens) > 1 and len(closes) > 1:
                    # Two marked mentions (first open to last close made one span of all words
                    # between). Labelling one leaves the other as O, a wrong label: reject, like
                    # square markers with more spans than entities.
                    ent = next(e for e in entities if e.index == idx)
                    res.reject = f"projection: entity marked {min(len(opens), len(closes))} times ({ent.type} '{ent.text}')"
                    return pairs, dangling
                if len(opens) > 1 or len(closes) > 1:
                    # A stray extra marker: which of the two is right is unknown, so the entity
                    # counts as lost (looked up by its translation, or the row rejected).
                    res.repairs.append("duplicate_marker")
                elif opens and closes:
                    a, b = opens[0].pos, closes[-1].pos
                    if b < a:
                        a, b = b, a
                        res.repairs.append("swapped_markers")
                    pairs.append((idx, (a, b)))
                else:
                    dangling.extend(ms)
            return pairs, dangling
        stack: list[Marker] = []
        for m in markers:
            if m.kind == "junk":
                res.repairs.append("mangled_marker")
            elif m.kind == "open":
                # An open inside an open nests: "[ New [ York ] ]" gives two spans, so it is
                # rejected (more spans than entities, or overlapping spans). Taking the outer open
                # as one that lost its close labelled only "York", with "New" left as O.
                stack.append(m)
            elif stack:
                pairs.append((None, (stack.pop().pos, m.pos)))
            else:
                dangling.append(m)
        dangling.extend(stack)
        return sorted(pairs, key=lambda p: p[1]), sorted(dangling, key=lambda m: m.pos)

    def _assign_square(self, spans, entities, translated, text, found, res) -> None:
        """Give square-bracket spans (in text order) their entities: by order when the counts
        agree and the order matches the translations best, else by best similarity."""
        if len(spans) > len(entities):
            res.reject = f"projection: {len(spans)} marked spans for {len(entities)} entities"
            return
        if len(spans) == len(entities) and not translated:
            for ent, span in zip(entities, spans):
                found[ent.index] = span
            return
        if not translated:
            res.reject = f"projection: {len(entities) - len(spans)} of {len(entities)} marker pairs lost"
            return
        sims = [[similarity(text[s:e], translated[ent.index]) for ent in entities] for s, e in spans]
        if len(spans) == len(entities):
            in_order = sum(sims[k][k] for k in range(len(spans)))
        else:
            in_order = -1.0
        chosen = _greedy(sims)
        best = sum(sims[k][j] for k, j in chosen.items())
        if in_order >= best - 1e-9:
            chosen = {k: k for k in range(len(spans))}
        elif len(spans) == len(entities):
            res.repairs.append("reordered")
        else:
            # Some pairs are lost: a span goes to an entity only when its text is like that
            # entity's translation. Below the threshold the pick was a guess (with all similarities
            # 0, "[ John ] went to Paris ]" gave John LOC and, by the lone marker, Paris PER); the
            # span's entity is then looked up like a lost one, or the row rejected.
            chosen = {k: j for k, j in chosen.items() if sims[k][j] >= self.threshold}
        for k, j in chosen.items():
            found[entities[j].index] = spans[k]

    def _check_numbers(self, text, translated, found, res: Projection) -> None:
        """Numbered pairs whose numbers the model swapped ("<e0> Paris </e0> ... <e1> Jean </e1>"
        for John PER, Paris LOC): their numbers gave each span the other's type. The spans get the
        entities their texts match best when that is clear: one moved span matches its new
        entity's own translation well (the fuzzy threshold) and clearly better than the one its
        number names, and no moved span matches its new entity worse."""
        idx = sorted(found)
        sims = [[similarity(text[s:e], translated[j] or "") for j in idx] for s, e in (found[i] for i in idx)]
        moved = {k: j for k, j in _greedy(sims).items() if j != k}
        if not moved or any(sims[k][j] < sims[k][k] for k, j in moved.items()):
            return
        if not any(sims[k][j] >= self.threshold and sims[k][j] > sims[k][k] + 0.05 for k, j in moved.items()):
            return
        spans = {idx[j]: found[idx[k]] for k, j in moved.items()}
        found.update(spans)
        res.repairs.append("renumbered")

    def _check_moved(self, text, entities, translated, found, res: Projection) -> None:
        """A marked span less like its entity's own translation than a window elsewhere means the
        markers moved (or lost words): take the better window."""
        for ent in entities:
            if ent.index not in found or not translated[ent.index]:
                continue
            s, e = found[ent.index]
            here = similarity(text[s:e], translated[ent.index])
            if here >= 0.999:
                continue
            others = {k: v for k, v in found.items() if k != ent.index}
            alt = self._fuzzy(text, translated[ent.index], others)
            # A clearly better window (not just as good) wins; small gains are inflection noise.
            if alt is not None and similarity(text[alt[0]:alt[1]], translated[ent.index]) > here + 0.05:
                found[ent.index] = alt
                res.repairs.append("moved_marker")

    def _fuzzy(self, text: str, tr: str, found: dict[int, tuple[int, int]]) -> tuple[int, int] | None:
        """Best window of words in ``text`` similar to ``tr`` that overlaps no placed span."""
        words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        n = max(1, len(tr.split()))
        best, best_span = 0.0, None
        for size in {max(1, n - 1), n, n + 1}:
            for i in range(0, len(words) - size + 1):
                s, e = words[i][0], words[i + size - 1][1]
                if any(s < b and a < e for a, b in found.values()):
                    continue
                sim = similarity(text[s:e], tr)
                if sim > best + 1e-9:
                    best, best_span = sim, (s, e)
        return best_span if best >= self.threshold else None

    def _close_dangling(self, text, ent: Entity, tr, dangling: list[Marker], found) -> tuple[int, int] | None:
        """A lone marker of this entity (numbered) or the first unused lone one (square) becomes a
        span over as many words as the entity's translation (or source) has."""
        for m in dangling:
            if self.style.numbered and m.index != ent.index:
                continue
            dangling.remove(m)
            n = len((tr or ent.text).split())
            words = [(w.start(), w.end()) for w in _WORD.finditer(text)]
            if m.kind == "open":
                after = [w for w in words if w[0] >= m.pos][:n]
                span = (m.pos, after[-1][1]) if after else None
            else:
                before = [w for w in words if w[1] <= m.pos][-n:]
                span = (before[0][0], m.pos) if before else None
            if span and not any(span[0] < b and a < span[1] for a, b in found.values()):
                return span
            return None
        return None

    def _tokens(self, text: str, entities: list[Entity], found, res: Projection) -> Projection:
        """Tokenise ``text`` (cutting at span edges when configured) and tag the tokens."""
        order = sorted(((found[ent.index], ent) for ent in entities), key=lambda x: x[0])
        for (_, a1), (b0, _) in zip([s for s, _ in order], [s for s, _ in order][1:]):
            if b0 < a1:
                res.reject = "projection: overlapping entity spans"
                return res
        cuts = sorted({0, len(text)} | ({p for span, _ in order for p in span} if self.split_at_markers else set()))
        tokens: list[tuple[int, int, str]] = []
        for a, b in zip(cuts, cuts[1:]):
            tokens.extend(_join_marks([(a + m.start(), a + m.end(), m.group(0))
                                       for m in self.token_re.finditer(text[a:b])]))
        tags = ["O"] * len(tokens)
        for (s, e), ent in order:
            inside = [i for i, (ts, te, _) in enumerate(tokens) if ts < e and s < te]
            if not inside:
                res.reject = f"projection: no token inside span ({ent.type} '{ent.text}')"
                return res
            if any(tags[i] != "O" for i in inside):
                res.reject = "projection: overlapping entity spans"
                return res
            inside = _trim_punct(inside, tokens, ent.text)
            for k, i in enumerate(inside):
                tags[i] = ("B-" if k == 0 else "I-") + ent.type
        res.tokens = [t for _, _, t in tokens]
        res.tags = tags
        if not res.tokens:
            res.reject = "projection: empty translation"
        return res


def _has_word(text: str) -> bool:
    return any(c.isalnum() for c in text)


def _trim_punct(inside: list[int], tokens: list[tuple[int, int, str]], source: str) -> list[int]:
    """``inside`` without edge tokens of punctuation only (a marker moved over a neighbouring
    full stop or bracket) on the edges where the source entity has none; never empty."""
    src = source.strip()
    lo, hi = 0, len(inside)
    if src[:1].isalnum():
        while hi - lo > 1 and not _has_word(tokens[inside[lo]][2]):
            lo += 1
    if src[-1:].isalnum():
        while hi - lo > 1 and not _has_word(tokens[inside[hi - 1]][2]):
            hi -= 1
    return inside[lo:hi]


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def _join_marks(tokens: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Glue combining marks back into their word: ``\\w`` matches no mark (Mn/Mc), so a pattern
    built on it cuts Yoruba ``mẹ́rin`` (ẹ + U+0301) into ``mẹ``, ``́``, ``rin``. A mark-only token
    joins the token it touches on the left, and a word token joins a touching one ending in a mark."""
    out: list[tuple[int, int, str]] = []
    for s, e, t in tokens:
        if out and out[-1][1] == s and (_is_mark(t[0]) or (_is_mark(out[-1][2][-1]) and t[0].isalnum())):
            ps, _, pt = out[-1]
            out[-1] = (ps, e, pt + t)
        else:
            out.append((s, e, t))
    return out


def _greedy(sims: list[list[float]]) -> dict[int, int]:
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
