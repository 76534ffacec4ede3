"""Recover entity spans from a translated, marked sentence and emit IOB2 tags on its tokens.

Order of work: pair the markers found in the output (numbered markers pair by number, square
ones by nesting order), give each pair its entity (by number, or by order and similarity to the
separately translated entity strings), then repair what is missing: a lost pair is looked up by
fuzzy matching the entity's own translation next to a lone marker of its own, then anywhere in
the sentence; a lone marker is closed over as many words as that translation has. What still
cannot be placed rejects the sentence with a reason. Markers the model kept are trusted over the
entity's own translation (often another form of the name): a marked span only moves to a window
one word off its edges, and an edge inside a word only snaps to the word's edge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lrl.generate.translate.markers import Entity, Marker, MarkerStyle
from lrl.generate.translate.words import (
    WORD,
    greedy,
    in_word,
    indistinct,
    join_marks,
    similarity,
    trim_punct,
    windows,
    word_edges,
)


@dataclass
class Projection:
    """A recovered sentence (tokens + IOB2 tags) or the reason it could not be recovered."""

    tokens: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    reject: str | None = None


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
        if not self.style.numbered and (why := indistinct(entities, translated)):
            return Projection(reject=why)
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
            span = self._anchored(text, tr, ent, dangling, found) if (self.fuzzy and tr) else None
            if span is not None:
                res.repairs.append("dangling")
            elif (span := self._fuzzy(text, tr, found) if (self.fuzzy and tr) else None) is not None:
                res.repairs.append("fuzzy")
            else:
                span = self._close_dangling(text, ent, tr, dangling, found)
                if span is not None:
                    res.repairs.append("dangling")
            if span is None:
                res.reject = f"projection: entity lost ({ent.type} '{ent.text}')"
                return res
            found[ent.index] = span
        if self.split_at_markers and translated:
            self._snap_to_words(text, translated, found, res)
        return self._tokens(text, entities, found, res)

    def _snap_to_words(self, text: str, translated: list[str], found, res: Projection) -> None:
        """A span edge inside a word (letters on both sides) moves to the word's edge when that
        makes the span more like the entity's own translation: "[ New Jers ] ey" split "Jersey"
        into "Jers" (the label) and "ey" (O), 67% of sw WikiANN rows with a close marker slipped
        into a word (27% of ug). A suffix after the marker ("[ Paris ]te", entity "Paris") stays
        split: the whole word is less like the entity than the marked part."""
        for idx, (s, e) in list(found.items()):
            tr = translated[idx] if idx < len(translated) else ""
            if not tr:
                continue
            s2, e2 = s, e
            while 0 < s2 < len(text) and in_word(text[s2 - 1]) and in_word(text[s2]):
                s2 -= 1
            while 0 < e2 < len(text) and in_word(text[e2 - 1]) and in_word(text[e2]):
                e2 += 1
            if (s2, e2) == (s, e):
                continue
            others = [v for k, v in found.items() if k != idx]
            best, best_sim = (s, e), similarity(text[s:e], tr)
            for cand in ((s2, e), (s, e2), (s2, e2)):
                if any(cand[0] < b and a < cand[1] for a, b in others):
                    continue
                sim = similarity(text[cand[0]:cand[1]], tr)
                if sim > best_sim + 1e-9:
                    best, best_sim = cand, sim
            if best != (s, e):
                found[idx] = best
                res.repairs.append("snapped_to_word")

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
        chosen = greedy(sims)
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
        moved = {k: j for k, j in greedy(sims).items() if j != k}
        if not moved or any(sims[k][j] < sims[k][k] for k, j in moved.items()):
            return
        if not any(sims[k][j] >= self.threshold and sims[k][j] > sims[k][k] + 0.05 for k, j in moved.items()):
            return
        spans = {idx[j]: found[idx[k]] for k, j in moved.items()}
        found.update(spans)
        res.repairs.append("renumbered")

    def _check_moved(self, text, entities, translated, found, res: Projection) -> None:
        """Move a marked span to the best window of its entity's own translation only on evidence
        that the markers slipped: that window is one word off the span's edges at most; or the
        span is nothing like the entity (below the threshold) and the window lies outside it (a
        square pair given to the wrong entity); or the window lies inside it and the rest holds
        another entity (one pair around two). Else the markers stay: the entity translated alone
        is often another form of it (inflected, shortened) and a repeated mention elsewhere can
        match it better. Taking the best window anywhere moved correct markers: "[ Church
        Missionary Society ( CMS ) ]" with "Church" translated alone became one label on
        "Church"; "[ Tailandda ] ... Tailand" moved the label to the second, unlabelled mention
        (WikiANN sw: 76% of rows wrong when the standalone translation kept only the first word,
        18% now; ug: 0.8% wrong with an inflected first mention, none now)."""
        words = [(m.start(), m.end()) for m in WORD.finditer(text)]
        for ent in entities:
            if ent.index not in found or not translated[ent.index]:
                continue
            s, e = found[ent.index]
            here = similarity(text[s:e], translated[ent.index])
            if here >= 0.999:
                continue
            others = {k: v for k, v in found.items() if k != ent.index}
            wins = list(windows(words, text, translated[ent.index], others))
            if not wins:
                continue
            first, last = word_edges(words, (s, e))
            top = max(wins, key=lambda w: w[0])  # the first of equals: max keeps it
            near = [w for w in wins if abs(w[2] - first) <= 1 and abs(w[3] - last) <= 1]
            # A shift must be as good as any window (a far one as good is a tie: no evidence).
            alt = max(near, key=lambda w: w[0]) if near else None
            if alt is None or alt[0] < top[0] - 1e-9:
                if top[1][0] < e and s < top[1][1]:
                    ok = self._holds_another(text, words, (s, e), top[1], ent, entities, translated)
                else:
                    ok = here < self.threshold
                alt = top if ok else None
            # Reaching the threshold, and clearly better (small gains are inflection noise).
            if alt is not None and alt[0] >= self.threshold and alt[0] > here + 0.05:
                found[ent.index] = alt[1]
                res.repairs.append("moved_marker")

    def _holds_another(self, text, words, span, taken, ent: Entity, entities, translated) -> bool:
        """``span`` has, beside ``taken``, a window like another entity's own translation."""
        inside = [w for w in words if span[0] <= w[0] and w[1] <= span[1]]
        for other in entities:
            tr = translated[other.index] if other.index != ent.index else ""
            if tr and any(sim >= self.threshold for sim, *_ in windows(inside, text, tr, {0: taken})):
                return True
        return False

    def _fuzzy(self, text: str, tr: str, found: dict[int, tuple[int, int]]) -> tuple[int, int] | None:
        """Best window of words in ``text`` similar to ``tr`` that overlaps no placed span."""
        words = [(m.start(), m.end()) for m in WORD.finditer(text)]
        best, best_span = 0.0, None
        for sim, span, _, _ in windows(words, text, tr, found):
            if sim > best + 1e-9:
                best, best_span = sim, span
        return best_span if best >= self.threshold else None

    def _anchored(self, text: str, tr: str, ent: Entity, dangling: list[Marker], found) -> tuple[int, int] | None:
        """The best window like ``tr`` that starts (ends) within one word of a lone open (close)
        marker of this entity (numbered only: a lone square marker names no entity). The marker
        the model kept says where the entity is: the best window anywhere was taken before it,
        and "<e0> Tailandda ... Tailand" labelled the second, unmarked mention."""
        if not self.style.numbered:
            return None
        words = [(m.start(), m.end()) for m in WORD.finditer(text)]
        best, best_span, used = 0.0, None, None
        for m in (m for m in dangling if m.index == ent.index):
            if m.kind == "open":
                at = next((k for k, (ws, _) in enumerate(words) if ws >= m.pos), len(words))
            else:
                at = max((k for k, (_, we) in enumerate(words) if we <= m.pos), default=-1)
            for sim, span, first, last in windows(words, text, tr, found):
                if abs((first if m.kind == "open" else last) - at) <= 1 and sim > best + 1e-9:
                    best, best_span, used = sim, span, m
        if best < self.threshold:
            return None
        dangling.remove(used)
        return best_span

    def _close_dangling(self, text, ent: Entity, tr, dangling: list[Marker], found) -> tuple[int, int] | None:
        """A lone marker of this entity (numbered) or the first unused lone one (square) becomes a
        span over as many words as the entity's translation (or source) has."""
        for m in dangling:
            if self.style.numbered and m.index != ent.index:
                continue
            dangling.remove(m)
            n = len((tr or ent.text).split())
            words = [(w.start(), w.end()) for w in WORD.finditer(text)]
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
            tokens.extend(join_marks([(a + m.start(), a + m.end(), m.group(0))
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
            inside = trim_punct(inside, tokens, ent.text)
            for k, i in enumerate(inside):
                tags[i] = ("B-" if k == 0 else "I-") + ent.type
        res.tokens = [t for _, _, t in tokens]
        res.tags = tags
        if not res.tokens:
            res.reject = "projection: empty translation"
        return res
