"""Invisible format characters (Unicode category Cf) in the text of lrl's own tokenizers.

A WordPiece tokenizer makes a whole word one [UNK] when one of its characters is not in the
alphabet, and a Unigram one an [UNK] piece. Format characters are rare, so they miss the alphabet
of a tokenizer trained on a slice of the text and then hit the rest: mono/yo.txt writes U+200B
ZERO WIDTH SPACE 72 times and U+2060 WORD JOINER 27 times, none in its first 3,000 lines, and a
WordPiece trained on those lines (and 3,000 of mono/ug.txt) read every one of those 99 words as
[UNK]; of the 697 words of mono/yo and mono/ug beyond those lines that hold a format character,
24% kept an [UNK] (Unigram: 24%), and 3.2% (2.6%) once the invisible ones were removed and the
joiners put in the alphabet (the rest: other unseen letters, U+180E). BERT's normalizer
(``clean_text``) removes every Cf character, so an extended BERT base never had the problem.

``INVISIBLE`` are the ones that only steer line breaking, hyphenation or bidi display: lrl's
trained normalizer removes them (``PATTERN``). ZWNJ and ZWJ (``JOINERS``) change how letters join
(Persian and Uyghur ``ه``, Indic conjuncts, emoji sequences), and U+180E MONGOLIAN VOWEL SEPARATOR
shapes Mongolian: they are kept, and a tokenizer whose text holds format characters and writes a
script they shape gets both joiners in its alphabet (``missing_joiners``): mono/ug.txt has 37 ZWNJ
and 103 ZWJ, none in its first 3,000 lines, and wikiann/ug/train 12 ZWNJ.

Tokenizers trained before kept these characters; the stage's hash names ``FORMAT_CHARS`` only
for text that holds one (``format_key``), so other finished outputs keep their folders.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import pyarrow as pa
import pyarrow.compute as pc

#: Removed by the normalizer of a trained tokenizer: soft hyphen, Arabic letter mark, zero width
#: space, left-to-right / right-to-left marks, bidi embeddings and overrides (U+202A-U+202E), word
#: joiner, invisible math operators (U+2061-U+2064), bidi isolates (U+2066-U+2069), and U+FEFF
#: (a byte order mark inside a line; as a word joiner it is deprecated for U+2060).
INVISIBLE = "\u00ad\u061c\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064" \
            "\u2066\u2067\u2068\u2069\ufeff"

#: Zero width non-joiner and joiner: kept, they shape the letters around them.
JOINERS = "\u200c\u200d"

#: Scripts (first word of a letter's Unicode name) whose letters the joiners shape.
JOINING_SCRIPTS = frozenset({"ARABIC", "SYRIAC", "NKO", "MANDAIC", "MONGOLIAN", "DEVANAGARI", "BENGALI",
                             "GURMUKHI", "GUJARATI", "ORIYA", "TAMIL", "TELUGU", "KANNADA", "MALAYALAM",
                             "SINHALA"})

#: The value of the tokenizer stage's hash key ``format_chars``.
FORMAT_CHARS = 1


def _char_class(chars: str) -> str:
    """A regex character class of ``chars``, each written ``\\x{..}`` (Rust's regex and RE2 alike)."""
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in chars) + "]"


#: What the trained normalizer replaces by nothing (a ``tokenizers`` Regex).
PATTERN = _char_class(INVISIBLE)

_STRIP = str.maketrans("", "", INVISIBLE)


def strip_invisible(text: str) -> str:
    """``text`` without the ``INVISIBLE`` characters, as the trained normalizer reads it."""
    return text.translate(_STRIP)


def holds_format(lines: Iterable[str]) -> bool:
    """Whether a line holds an ``INVISIBLE`` character or a joiner."""
    wanted = set(INVISIBLE + JOINERS)
    return any(not wanted.isdisjoint(line) for line in lines)


def missing_joiners(chars: Counter[str], lines: Iterable[str], normalize: Callable[[str], str] | None) -> list[str]:
    """The joiners the normalized text counted in ``chars`` lacks, when its raw ``lines`` hold a
    format character and one of its scripts is joined (``JOINING_SCRIPTS``) by them; joiners the
    normalizer removes (BERT's does) are left out. Text without format characters gets none, so
    its tokenizer is the one it got before."""
    from lrl.model.alphabet import scripts

    if not JOINING_SCRIPTS & scripts(chars) or not holds_format(lines):
        return []
    return [j for j in JOINERS if j not in chars and (normalize is None or normalize(j) == j)]


def format_key(texts: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """``{"format_chars": FORMAT_CHARS}`` when a string of ``texts`` holds an ``INVISIBLE``
    character or a joiner (one RE2 pass), else ``{}``: the tokenizer stage's hash names it only
    then, so outputs of other text keep their names."""
    if len(texts) == 0:
        return {}
    found = pc.any(pc.match_substring_regex(texts, _char_class(INVISIBLE + JOINERS))).as_py() is True
    return {"format_chars": FORMAT_CHARS} if found else {}


__all__ = ["INVISIBLE", "JOINERS", "PATTERN", "FORMAT_CHARS", "strip_invisible", "holds_format",
           "missing_joiners", "format_key"]
