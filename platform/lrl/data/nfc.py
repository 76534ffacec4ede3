"""Reading tokens and text lines in one Unicode form: NFC, canonical composition (``data.unicode``).

The same word comes in two byte forms that render alike: composed (``ẹ́``, as WikiANN yo writes
it) or decomposed (``e`` + combining dot below + combining acute: 5% of FLORES Yoruba words).
String comparisons of generation took them for different words: the corpus-neighbour synonyms
(with the yo train set in NFD, none of its 1,503 NFD words matched the neighbour table and
synonym rows fell from 24 to 18), the mention inventory, a user's lexicon (dedup already
compared NFC keys). The tokenizers NFKC-normalize, so models never saw the difference; the rows
did. NFC maps only canonically equivalent text, so it does not change how text renders (it
composes marks with their letters and replaces a few singletons such as the Ohm sign by Omega;
NFKC also rewrites ``ﬁ`` as ``fi`` and ``²`` as ``2``): the rows keep the user's characters.
``data.unicode: none`` keeps the bytes as given.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # not at run time: the config module imports this one, and the CLI loads it
    import pyarrow as pa

UnicodeForm = Literal["nfc", "none"]

#: Schema metadata key of a text table (``read_text_lines``): how many of its lines reading
#: composed to NFC, so that the generate manifest can say so (the table is what its callers get).
NFC_KEY = b"lrl.nfc_changed"


class Composer:
    """Brings strings into ``form`` and counts those it changed (``changed``).

    String by string, never a whole file at once: ``unicodedata.is_normalized`` answers most
    strings from a quick table check, but one "maybe" character (a combining mark) makes it
    normalize the whole string to compare, and on all of mono/ug.txt (20M characters) that took
    0.9 s, against 30 ms line by line. ASCII strings (most tokens of Latin-script data) are NFC
    and are not looked at."""

    def __init__(self, form: UnicodeForm = "nfc"):
        self.form = form
        self.changed = 0

    def text(self, s: str) -> str:
        """``s`` in NFC (as given under ``none``)."""
        if self.form == "none" or s.isascii() or unicodedata.is_normalized("NFC", s):
            return s
        self.changed += 1  # not NFC, so normalizing changes it
        return unicodedata.normalize("NFC", s)

    def tokens(self, tokens: Sequence[str]) -> list[str]:
        """Each token in NFC; the list as given under ``none``."""
        if self.form == "none":
            return list(tokens)
        return [self.text(t) for t in tokens]


def with_changed(table: pa.Table, changed: int) -> pa.Table:
    """``table`` marked with the count of its strings reading changed (no mark for none)."""
    meta = dict(table.schema.metadata or {})
    meta.pop(NFC_KEY, None)
    if changed:
        meta[NFC_KEY] = str(changed).encode()
    return table.replace_schema_metadata(meta or None)


def changed_in(table: pa.Table) -> int:
    """The count ``with_changed`` marked ``table`` with; 0 when unmarked."""
    return int((table.schema.metadata or {}).get(NFC_KEY, b"0"))


__all__ = ["UnicodeForm", "Composer", "NFC_KEY", "with_changed", "changed_in"]
