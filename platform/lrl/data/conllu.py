"""CoNLL-U reader for auxiliary tagging (UPOS / XPOS), e.g. the UD Uyghur treebank.

Only syntactic words are kept: multi-word token ranges (``3-4``) and empty nodes (``5.1``) are
skipped, as the word lines carry the tags. A malformed line is an ``InputError`` naming the file,
the line and the reason: a treebank is curated input, so silently dropping rows would hide a
wrong file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lrl.data.files import InputError, read_text, split_lines

#: ``3-4`` (a multi-word token) or ``5.1`` (an empty node). Any id with a ``-`` or ``.`` was
#: skipped, so a word line with a damaged id (``7.``, ``-3``) vanished without an error.
_RANGE_OR_EMPTY = re.compile(r"\d+-\d+|\d+\.\d+")


@dataclass(frozen=True)
class ConlluSentence:
    """One sentence: its id (``# sent_id``), words and their UPOS and XPOS tags."""

    sent_id: str
    words: list[str]
    upos: list[str]
    xpos: list[str]
    line: int = 0
    """Line of the sentence's first word line, 1-based (what rejects of ``data.ner`` name)."""
    word_lines: tuple[int, ...] = ()
    """Line of each word, 1-based: a reject or error for one word names that word's own line."""

    def tags(self, column: str) -> list[str]:
        """The tag column named ``upos`` or ``xpos``."""
        if column not in ("upos", "xpos"):
            raise ValueError(f"unknown tag column {column!r} (upos or xpos)")
        return self.upos if column == "upos" else self.xpos


def read_conllu(path: str) -> list[ConlluSentence]:
    """All sentences of a CoNLL-U file, in order."""
    text = read_text(path)
    out: list[ConlluSentence] = []
    words: list[str] = []
    upos: list[str] = []
    xpos: list[str] = []
    sent_id: str | None = None
    lines = split_lines(text)
    at: list[int] = []  # each word's line
    skipped = 0  # line of the sentence's first range or empty node, 0 if none
    need = (0, 0)  # the last word a range of the sentence covers, and that range's line
    for lineno, line in enumerate(lines + [""], start=1):
        if not line.strip():
            if words and need[0] > len(words):  # a range past the last word: the sentence was cut short
                raise InputError(f"{path}:{need[1]}: the multi-word token range ends at word {need[0]}, but the "
                                 f"sentence has {len(words)} words")
            if words:
                name = sent_id or f"{path}#{len(out) + 1}"
                out.append(ConlluSentence(name, words, upos, xpos, at[0], tuple(at)))
            elif skipped:  # ranges or empty nodes without a word line: the sentence vanished unsaid
                raise InputError(f"{path}:{skipped}: sentence without word lines (only multi-word token ranges or "
                                 "empty nodes): the words they stand for are missing")
            words, upos, xpos, at, sent_id, skipped, need = [], [], [], [], None, 0, (0, 0)
            continue
        if line.startswith("#"):
            if line.startswith("# sent_id"):
                sent_id = line.split("=", 1)[-1].strip()
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            raise InputError(f"{path}:{lineno}: expected 10 tab-separated columns, got {len(cols)}")
        wid = cols[0]
        if _RANGE_OR_EMPTY.fullmatch(wid):
            skipped = skipped or lineno
            if "-" in wid and int(wid.split("-")[1]) > need[0]:
                need = (int(wid.split("-")[1]), lineno)
            continue  # multi-word token range or empty node: the word lines carry the tags
        if not wid.isdigit():
            raise InputError(f"{path}:{lineno}: word id {wid!r} is not a number")
        if int(wid) != len(words) + 1:
            raise InputError(f"{path}:{lineno}: word id {wid} out of sequence (expected {len(words) + 1})")
        at.append(lineno)
        words.append(cols[1])
        upos.append(cols[3])
        xpos.append(cols[4])
    if not out:
        raise InputError(f"{path}: no sentences")
    return out


def tag_set(sentences: list[ConlluSentence], column: str) -> list[str]:
    """Sorted tags of ``column`` seen in ``sentences`` (the label list of a tagging head).

    A column that is ``_`` on every word is an ``InputError``: many treebanks leave XPOS empty,
    and pretraining's auxiliary task then learned the one label ``_`` (a loss of 0, no signal)."""
    check_tagged(sentences, column, "CoNLL-U")
    return sorted({t for s in sentences for t in s.tags(column)})


def check_tagged(sentences: list[ConlluSentence], column: str, where: str) -> None:
    """``InputError`` when ``column`` is ``_`` (no tag) on every word of ``sentences`` (read from
    ``where``): many treebanks leave XPOS empty, and such a column trained a model of one label
    (fine-tuning: O; pretraining's auxiliary task: ``_``) with a loss of 0 and no word on why."""
    if sentences and all(t == "_" for s in sentences for t in s.tags(column)):
        other = "xpos" if column == "upos" else "upos"
        raise InputError(f"{where}: column {column} is '_' (no tag) on every word of the {len(sentences)} sentences: "
                         f"the treebank has no {column.upper()} tags; read the other column ({other})")


__all__ = ["ConlluSentence", "read_conllu", "tag_set", "check_tagged"]
