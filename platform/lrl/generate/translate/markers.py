"""Markers around entities that survive machine translation (the EasyProject approach).

Before translation each entity of a labelled sentence is wrapped in markers; after translation
the markers are found again (tolerating spaces inside them, full-width brackets and markers glued
to words) and removed, which yields the translated text and a character position per marker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Entity:
    """One entity of the source sentence: its order, type and surface text (tokens joined by spaces)."""

    index: int
    type: str
    text: str


@dataclass(frozen=True)
class Marker:
    """A marker found in translated text: open, close or junk (a mangled numbered marker), the
    entity number it names (numbered style only) and its position in the text with all markers
    removed."""

    kind: str
    index: int | None
    pos: int


def spans_from_tags(tags: list[str]) -> list[tuple[int, int, str]]:
    """Token spans ``(start, end, type)`` of IOB2 tags (end exclusive); a stray I- starts a span."""
    spans: list[tuple[int, int, str]] = []
    start, etype = -1, ""
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, kind = tag.partition("-")
        continues = prefix == "I" and start >= 0 and kind == etype
        if start >= 0 and not continues:
            spans.append((start, i, etype))
            start = -1
        if prefix in ("B", "I") and not continues:
            start, etype = i, kind
    return spans


class MarkerStyle:
    """How entities are wrapped: ``square`` (``[ x ]``) or ``numbered`` (``<e0> x </e0>``)."""

    # Brackets a model may emit for ours (full-width and lenticular ones appear in MT output).
    _SQUARE = re.compile(r"[\[［【]|[\]］】]")
    _NUMBERED = re.compile(r"<\s*(/?)\s*[eE]\s*(\d{1,3})\s*>")
    # Numbered markers the model mangled (``<e0/>``, ``<\\e0>``, ``«e0»``, ``e0>``): no pattern
    # above takes them, and left in the text they became tokens ``<`` ``e0`` ``/`` ``>`` of an
    # accepted row. They are removed as ``junk`` markers (their entity is then found like a lost
    # one). ``‹ ›`` are left alone: ``escape`` turns marker-like source text into them.
    _JUNK = re.compile(r"[<«＜]\s*[/\\]?\s*[eE]\s*\d{1,3}\s*[/\\]?\s*[>»＞]?"
                       r"|[/\\]?\s*\b[eE]\s*\d{1,3}\s*[/\\]?\s*[>»＞]")
    # Markers that lost their number or their letter (``<e>``, ``</e>``, ``<0>``): left in the
    # text they were tokens ``<`` ``e`` ``>`` of an accepted row. Junk too (source text like them
    # is escaped, as numbered markers are).
    _BARE = re.compile(r"[<＜]\s*[/\\]?\s*(?:[eE]|\d{1,3})\s*[/\\]?\s*[>＞]")
    _NUMBERED_OR_JUNK = re.compile(f"{_NUMBERED.pattern}|{_JUNK.pattern}|{_BARE.pattern}")
    _ESCAPED = re.compile(f"{_NUMBERED.pattern}|{_BARE.pattern}")
    # Models trained on web text write our markers HTML-escaped (``&lt;e0&gt;``): unescaped
    # before the search, else the row kept ``&`` ``lt`` ``;`` ``e0`` tokens.
    _HTML = re.compile(r"&lt;\s*(/?)\s*([eE]\s*\d{1,3})\s*&gt;")
    # A doubled pair (``[[ Paris ]]``, wiki-link style) is one pair: entities never nest and
    # never touch without a token between, so "[[" and "]]" are never two of our markers.
    _DOUBLED = re.compile(r"[\[［【]\s*[\[［【]([^\[\]［］【】]*)[\]］】]\s*[\]］】]")
    # Other brackets a model may put for our square ones (``{ x }``, ``( x )``). Left in the text
    # they became tokens ``{`` ``}`` of an accepted row. A group the source sentence (as sent, so
    # with its ``[ ]`` escaped to ``( )``) did not have is taken for mangled markers and removed
    # as ``junk``; a group it had is the sentence's own and stays. Removal, not pairing: a pair
    # the model added on its own (a gloss in parentheses) then costs a bracket, never a label.
    _SQUARE_ALT = ("{}｛｝", "()（）")

    def __init__(self, name: str) -> None:
        if name not in ("square", "numbered"):
            raise ValueError(f"unknown marker style {name!r} (square, numbered)")
        self.name = name

    @property
    def numbered(self) -> bool:
        return self.name == "numbered"

    def open(self, i: int) -> str:
        return f"<e{i}>" if self.numbered else "["

    def close(self, i: int) -> str:
        return f"</e{i}>" if self.numbered else "]"

    def escape(self, token: str) -> str:
        """Keep source text from looking like a marker (square brackets become parentheses)."""
        if self.numbered:
            return self._ESCAPED.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), token)
        return token.translate(str.maketrans("[]［］【】", "()()()"))

    def mark(self, tokens: list[str], tags: list[str]) -> tuple[str, list[Entity]]:
        """The sentence with every entity wrapped in markers, and the entities in order."""
        spans = spans_from_tags(tags)
        starts = {s: (n, e, t) for n, (s, e, t) in enumerate(spans)}
        ends = {e: n for n, (s, e, t) in enumerate(spans)}
        words: list[str] = []
        entities = []
        for i, tok in enumerate(tokens + [""]):
            if i in ends:
                words.append(self.close(ends[i]))
            if i == len(tokens):
                break
            if i in starts:
                n, end, etype = starts[i]
                words.append(self.open(n))
                entities.append(Entity(n, etype, " ".join(self.escape(t) for t in tokens[i:end])))
            words.append(self.escape(tok))
        return " ".join(words), entities

    def find(self, text: str, source: str | None = None) -> tuple[str, list[Marker]]:
        """Remove the markers from ``text``; return the clean text and the markers found.
        ``source`` is the source sentence (square style: decides which other brackets are junk)."""
        if self.numbered:
            text = self._HTML.sub(r"<\1\2>", text)
        else:
            text = self._DOUBLED.sub(r"[\1]", text)
        pattern = self._NUMBERED_OR_JUNK if self.numbered else self._square(source)
        pieces: list[str] = []
        markers: list[Marker] = []
        last = 0
        length = 0
        for m in pattern.finditer(text):
            pieces.append(text[last : m.start()])
            length += m.start() - last
            last = m.end()
            if (m.group(2) is None) if self.numbered else (m.group(0) not in "[［【]］】"):
                kind, index = "junk", None
                pieces.append(" ")  # it may have stood between two words: keep them apart
                length += 1
            elif self.numbered:
                kind, index = ("close" if m.group(1) else "open"), int(m.group(2))
            else:
                kind, index = ("open" if m.group(0) in "[［【" else "close"), None
            markers.append(Marker(kind, index, length))
        pieces.append(text[last:])
        return "".join(pieces), markers

    def _square(self, source: str | None) -> re.Pattern:
        if source is None:
            return self._SQUARE
        sent = self.escape(source)
        alt = "".join(g for g in self._SQUARE_ALT if not any(c in sent for c in g))
        return re.compile(f"{self._SQUARE.pattern}|[{re.escape(alt)}]") if alt else self._SQUARE
