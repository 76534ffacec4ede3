"""Punctuation a trained tokenizer knows even where its training text never wrote it.

A WordPiece or Unigram tokenizer only knows the characters of its training text; any other one
makes an unknown piece (WordPiece: the whole word). Punctuation is where corpora of one language
differ most: mono/am.txt (news) writes no Ethiopic comma ``፣`` or semicolon ``፤``, which FLORES
Amharic uses 686 and 44 times, and neither mono/am.txt nor mono/yo.txt has the closing quote
``”``. An 8000-piece WordPiece trained on both read FLORES am with 2.1% unknown pieces (4.6% of
words with one), 90% of them these three marks, and 85% of its FLORES yo unknowns were ``”``;
MiniLM extended with the same text kept every ``፣`` and ``፤`` unknown (94% of its am unknowns).

So the alphabet is seeded with the punctuation of every script the text is written in (Unicode
names it after the script: ``ETHIOPIC COMMA``, ``ARABIC QUESTION MARK``, ``DEVANAGARI DANDA``)
and a short list of punctuation common to all (quotes, dashes, ASCII): single characters, each
a piece of its own since the pre-tokenizers split punctuation off words; 28 of the 8000 pieces
of that am + yo WordPiece, which then read FLORES am with 0.02% unknown pieces, yo 0.02% (0.19%
before), at the same pieces per word (am 2.19; yo 1.742 -> 1.748). Such a piece is trained only
where pretraining or fine-tuning text has the mark; before, the mark was ``[UNK]`` everywhere.
"""

from __future__ import annotations

import functools
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable

#: Punctuation written in text of any script, most wanted first: typographic quotes and dashes
#: (the text of a language often has straight quotes only), then the rest and ASCII.
COMMON = "“”‘’«»„‚‹›–—‐…•·¡¿§¶†‡′″" + string.punctuation

#: At most this share of the vocabulary goes to marks the text lacks (a 100-piece test tokenizer
#: would otherwise be half punctuation).
MAX_SHARE = 0.02

#: A script counts when it writes at least this share of the text's letters: Uyghur Wikipedia
#: quotes some Greek and Cyrillic, whose punctuation it does not need.
MIN_SCRIPT_SHARE = 0.01


@functools.cache
def punctuation_by_script() -> dict[str, str]:
    """Every punctuation character (category P*) by the first word of its Unicode name (the
    script, for script-specific marks: ``ETHIOPIC``, ``ARABIC``). ~0.15 s, once per process."""
    out: dict[str, list[str]] = {}
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if unicodedata.category(ch).startswith("P"):
            out.setdefault(unicodedata.name(ch, "").split(" ", 1)[0], []).append(ch)
    return {k: "".join(v) for k, v in out.items()}


@functools.lru_cache(maxsize=1 << 16)
def letter_script(ch: str) -> str | None:
    """The script of a letter (first word of its name: ``ETHIOPIC``, ``LATIN``); None otherwise."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    return unicodedata.name(ch, "").split(" ", 1)[0] or None


def scripts(chars: Counter[str], min_share: float = MIN_SCRIPT_SHARE) -> set[str]:
    """The scripts that write at least ``min_share`` of the letters counted in ``chars``."""
    letters: Counter[str] = Counter()
    for ch, n in chars.items():
        script = letter_script(ch)
        if script is not None:
            letters[script] += n
    total = sum(letters.values())
    return {s for s, n in letters.items() if n >= min_share * total}


def missing_punctuation(chars: Counter[str], normalize: Callable[[str], str] | None = None,
                        vocab_size: int | None = None) -> list[str]:
    """The punctuation the text counted in ``chars`` (characters after normalization) does not
    write: its scripts' marks (in code point order), then ``COMMON``'s, at most ``MAX_SHARE`` of
    ``vocab_size``. Characters the normalizer rewrites (NFKC makes ``…`` three stops) are left
    out, since the tokenizer never sees them."""
    by_script = punctuation_by_script()
    own = sorted(set().union(*(by_script.get(s, "") for s in scripts(chars))))
    out: list[str] = []
    for c in [*own, *COMMON]:
        if c not in chars and c not in out and (normalize is None or normalize(c) == c):
            out.append(c)
    return out if vocab_size is None else out[: int(vocab_size * MAX_SHARE)]


def split_alone(pre_tokenizer, ch: str) -> bool:
    """Whether ``pre_tokenizer`` makes ``ch`` a word of its own inside a word (BERT's and the
    Punctuation pre-tokenizer do for punctuation): a WordPiece then needs no ``##ch`` piece."""
    if pre_tokenizer is None:
        return False
    words = [w for w, _ in pre_tokenizer.pre_tokenize_str(f"a{ch}{ch}a")]
    return all(ch not in w or w == ch for w in words)
