"""A token's word and the punctuation around it: what the ops move, draw and look up.

Its own module because both the ops (``eda``, ``ner_ops``) and the resources they draw from
(``names``) split tokens the same way.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Leading/trailing punctuation kept around a replaced word (WikiANN tokens carry "،" or ",").
_SPLIT = re.compile(r"^(\W*)(.*?)(\W*)$", re.S)


@functools.lru_cache(maxsize=1 << 16)  # every op asks for every O token: once per distinct string
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
