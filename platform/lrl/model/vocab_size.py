"""How a trained vocabulary compares with ``tokenizer.vocab_size``.

Every character of the training text is a piece of its own before any longer piece is learned
(WordPiece: also its ``##`` form inside words). Where ``vocab_size`` is below that alphabet, the
Unigram trainer stopped with "The vocabulary is not large enough to contain all chars" (a
traceback), and the WordPiece trainer returned every character and nothing longer, more entries
than asked, without a word: ug + wo at ``vocab_size: 500`` made a 633-entry character-level
tokenizer (pieces per word 7.06 against 7.08 for characters). Likewise a ``min_frequency`` that no
pair of pieces reaches. The first is now an error naming the key and the size needed, the second
a warning in ``stats.json`` (``vocabulary``) and the stage's summary.
"""

from __future__ import annotations

from collections import Counter

from lrl.config import ConfigError

#: Characters that a whitespace run the normalizer makes one space of, or a pre-tokenizer splits
#: at: not pieces. Python's ``isspace`` also takes U+001C-U+001F, which Unicode does not.
_SEPARATORS = frozenset("\x1c\x1d\x1e\x1f")


def unigram_alphabet(seen: Counter[str], extra: list[str], vocab_size: int, pre_tokenizer=None
                     ) -> tuple[list[str], int]:
    """The ``extra`` characters (punctuation the text lacks, ``lrl.model.alphabet``) that fit a
    Unigram vocabulary of ``vocab_size`` beside the text's own characters, and how many pieces
    those take: each non-space character of ``seen`` (counts after normalization) and what the
    pre-tokenizer writes for a space (Metaspace's ``▁``). The trainer keeps every one of them and
    refuses a smaller ``vocab_size``; the marks the text lacks are then left out first."""
    marks: set[str] = set()
    if pre_tokenizer is not None:  # "a b" -> "▁a", "▁b": the "▁" is a character of the pieces too
        marks = {c for w, _ in pre_tokenizer.pre_tokenize_str("a b") for c in w} - {"a", "b"}
    own = {c for c in seen if not c.isspace() or c in _SEPARATORS} | marks
    return extra[: max(0, vocab_size - len(own))], len(own)


def too_small(vocab_size: int, chars: int) -> ConfigError:
    """The error for a Unigram ``vocab_size`` below the ``chars`` characters of the text."""
    return ConfigError(f"tokenizer.vocab_size={vocab_size} is too small: a Unigram tokenizer (with tokenizer.mode="
                       f"extend, the one learned on the new text) holds each of the {chars} distinct characters of its "
                       f"training text (after normalization) as a piece of its own; set tokenizer.vocab_size above "
                       f"{chars} to learn longer pieces too")


def vocab_report(tokenizer, vocab_size: int, min_frequency: int, kind: str, train_lines: int) -> dict:
    """Size of a trained tokenizer against ``vocab_size``, how many of its pieces are longer than
    one character, and a warning where none is (a character-level tokenizer) or where the text
    gives fewer entries than asked."""
    specials = set(tokenizer.all_special_tokens)
    pieces = [p for p in tokenizer.get_vocab() if p not in specials]
    longer = sum(len(p.removeprefix("##").removeprefix("\u2581")) > 1 for p in pieces)
    size = len(tokenizer)
    out: dict = {"size": size, "vocab_size": vocab_size, "longer_pieces": longer, "warnings": []}
    if not longer and size >= vocab_size:
        out["warnings"].append(
            f"tokenizer.vocab_size={vocab_size} leaves no room for pieces longer than one character: the "
            f"special tokens and the text's characters{' (and their ## forms)' if kind == 'wordpiece' else ''} "
            f"alone make {size} entries, so the tokenizer is character-level; set tokenizer.vocab_size above {size}")
    elif not longer:
        why = (f"no pair of adjacent pieces occurs tokenizer.min_frequency={min_frequency} times in"
               if kind == "wordpiece" else "no longer piece is worth its place in")
        out["warnings"].append(
            f"no piece longer than one character was learned: {why} the {train_lines:,} training lines, so the "
            f"tokenizer is character-level{'; lower tokenizer.min_frequency' if kind == 'wordpiece' else ''}")
    elif size < vocab_size:
        why = (f" occurring tokenizer.min_frequency={min_frequency} times" if kind == "wordpiece" else "")
        out["warnings"].append(f"the vocabulary has {size} entries, fewer than tokenizer.vocab_size={vocab_size}: "
                               f"the {train_lines:,} training lines hold no more pieces{why}")
    return out


__all__ = ["unigram_alphabet", "too_small", "vocab_report"]
