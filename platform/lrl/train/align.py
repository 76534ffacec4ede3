"""Sub-word alignment of word-level tags, and mapping of predictions back to the words, exactly.

The first piece of each original token carries its label; the other pieces get -100 (ignored by
the loss). Three cases that usually lose tokens are handled so that every original token gets
exactly one prediction:

- a token that the tokenizer turns into no pieces at all (control or zero-width characters,
  empty strings) is fed as the unknown token instead, and counted;
- a sentence longer than ``max_length`` pieces is cut at word boundaries into several chunks
  (each with its own special tokens and language tag), instead of being truncated;
- a single token longer than a whole chunk keeps only its first pieces (its label sits on the
  first one anyway), and is counted.

A word that spells a special token (``[SEP]``, ``[MASK]``, a tag such as ``[ug]``) is read as its
characters (``split_special_tokens``): the chunk's own ``[CLS]``, tag and ``[SEP]`` come by id.

Needs a fast tokenizer (``word_ids()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

IGNORE = -100


@dataclass
class Chunk:
    """One model input: a whole sentence or a word-aligned piece of a long one."""

    sentence: int
    """Index of the sentence (in the encoded batch) this chunk belongs to."""
    input_ids: list[int]
    labels: list[int]
    """-100 everywhere except the first piece of each word (the word's label id, or 0 when
    encoding without labels)."""
    first: list[tuple[int, int]]
    """(position in input_ids, word index in the sentence) of each word's first piece."""
    lang: str | None = None


@dataclass
class AlignStats:
    """Counts of the cases that needed special handling (reported in results and manifests)."""

    sentences: int = 0
    words: int = 0
    empty_words: int = 0
    """Tokens that produced no pieces and were fed as the unknown token."""
    unk_words: int = 0
    """Tokens whose pieces are all the unknown token (the model sees nothing of them)."""
    split_sentences: int = 0
    """Sentences longer than max_length, cut into several chunks at word boundaries."""
    cut_words: int = 0
    """Single tokens longer than a chunk, of which only the first pieces were kept."""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "extra"}


def lang_tag_ids(tokenizer, lang: str | None) -> list[int]:
    """The id of the language tag token (``[ug]``) when the tokenizer knows it, else nothing.

    Tags are whole tokens added in the tokenizer stage; a tokenizer without them (a hub
    checkpoint) simply gets no tag, rather than a tag spelled out in pieces.
    """
    if lang is None:
        return []
    try:
        from lrl.model.tokenizer import lang_tag  # the tokenizer stage's spelling, when present
        tag = lang_tag(lang)
    except ImportError:
        tag = f"[{lang}]"
    tid = tokenizer.convert_tokens_to_ids(tag)
    unk = tokenizer.unk_token_id
    return [] if tid is None or (unk is not None and tid == unk) else [tid]


def encode(tokenizer, sentences: Sequence[Sequence[str]], label_ids: Sequence[Sequence[int]] | None,
           max_length: int, langs: Sequence[str | None] | None = None,
           use_lang_tag: bool = True) -> tuple[list[Chunk], AlignStats]:
    """Encode word-tokenised sentences into chunks with first-piece labels."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer; word alignment needs word_ids()")
    stats = AlignStats(sentences=len(sentences))
    if not sentences:
        return [], stats
    # A word "[SEP]" or "[MASK]" gets its characters' pieces, not the special id (split_special_tokens):
    # the head, tag and tail below are the only special tokens of a chunk.
    enc = tokenizer([list(s) for s in sentences], is_split_into_words=True, add_special_tokens=False,
                    split_special_tokens=True)
    unk = tokenizer.unk_token_id
    head = [t for t in (tokenizer.cls_token_id,) if t is not None] or \
        [t for t in (tokenizer.bos_token_id,) if t is not None]
    tail = [t for t in (tokenizer.sep_token_id,) if t is not None] or \
        [t for t in (tokenizer.eos_token_id,) if t is not None]
    tag_cache: dict[str | None, list[int]] = {}
    chunks: list[Chunk] = []
    for i, words in enumerate(sentences):
        lang = langs[i] if langs is not None else None
        if lang not in tag_cache:
            tag_cache[lang] = lang_tag_ids(tokenizer, lang) if use_lang_tag else []
        prefix = head + tag_cache[lang]
        budget = max_length - len(prefix) - len(tail)
        if budget < 1:
            raise ValueError(f"max_length={max_length} leaves no room for tokens")
        pieces = _pieces_per_word(enc["input_ids"][i], enc.word_ids(i), len(words))
        stats.words += len(words)
        for w, p in enumerate(pieces):
            if not p:
                pieces[w] = [unk]
                stats.empty_words += 1
            elif unk is not None and all(t == unk for t in p):
                stats.unk_words += 1
        labels = label_ids[i] if label_ids is not None else [0] * len(words)
        if len(labels) != len(words):
            raise ValueError(f"sentence {i}: {len(words)} tokens but {len(labels)} labels")
        n_chunks = 0
        for span in _word_spans(pieces, budget, stats):
            ids, labs, first = list(prefix), [IGNORE] * len(prefix), []
            for w in span:
                p = pieces[w][:budget]
                first.append((len(ids), w))
                ids.extend(p)
                labs.extend([labels[w]] + [IGNORE] * (len(p) - 1))
            ids.extend(tail)
            labs.extend([IGNORE] * len(tail))
            chunks.append(Chunk(i, ids, labs, first, lang))
            n_chunks += 1
        stats.split_sentences += n_chunks > 1
    return chunks, stats


def _pieces_per_word(ids: list[int], word_ids: list[int | None], n_words: int) -> list[list[int]]:
    pieces: list[list[int]] = [[] for _ in range(n_words)]
    for tid, w in zip(ids, word_ids):
        if w is not None:
            pieces[w].append(tid)
    return pieces


def _word_spans(pieces: list[list[int]], budget: int, stats: AlignStats) -> list[list[int]]:
    """Greedy split of word indices into runs whose pieces fit ``budget``."""
    spans: list[list[int]] = [[]]
    used = 0
    for w, p in enumerate(pieces):
        n = len(p)
        if n > budget:
            stats.cut_words += 1
            n = budget
        if spans[-1] and used + n > budget:
            spans.append([])
            used = 0
        spans[-1].append(w)
        used += n
    return [s for s in spans if s]


def merge_predictions(chunks: Sequence[Chunk], chunk_preds: Sequence[Sequence[int]],
                      lengths: Sequence[int]) -> list[list[int]]:
    """Per-sentence word predictions from per-chunk ones.

    ``chunk_preds[c][j]`` is the prediction for ``chunks[c].first[j]``. Every word of every
    sentence must be covered exactly once; anything else is a bug, so it raises.
    """
    out: list[list[int | None]] = [[None] * n for n in lengths]
    for chunk, preds in zip(chunks, chunk_preds):
        if len(preds) != len(chunk.first):
            raise AssertionError(f"chunk of sentence {chunk.sentence}: {len(preds)} predictions "
                                 f"for {len(chunk.first)} words")
        row = out[chunk.sentence]
        for (_, w), p in zip(chunk.first, preds):
            if row[w] is not None:
                raise AssertionError(f"sentence {chunk.sentence} word {w} predicted twice")
            row[w] = int(p)
    for i, row in enumerate(out):
        if any(p is None for p in row):
            raise AssertionError(f"sentence {i}: words without a prediction")
    return out  # type: ignore[return-value]
