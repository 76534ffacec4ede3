"""Token-level tags (POS and the like) as one-token spans, so that every stage after reading
(generate ops, oversampling, fine-tuning, the CRF, span F1, reports) works on them unchanged.
Fine-tuning gives such a language the labels ``B-X`` of its tags only, no ``I-X`` and no ``O``
unless some token has no tag (``lrl.train.finetune_data.label_list``; the stages mark its tables
with ``lrl.data.schema.with_scheme``).

Under ``scheme: tokens`` a tag ``X`` becomes ``B-X``; ``O`` and UD's no-tag ``_`` become ``O``.
Every tagged token is then a span of its own, and seqeval's strict span F1 counts a token as right
when its predicted tag is ``B-`` of its gold tag and the next prediction does not continue it.
When every token carries a tag and the model predicts a ``B-`` tag on every token (the training
data holds no other), the gold and predicted span counts both equal the token count, so micro
precision = recall = F1 = token accuracy. An ``O`` or ``I-X`` prediction is no span of its own
(and ``I-X`` after ``B-X`` widens that span, making it wrong), so F1 = 2 * right / (tokens +
predicted spans) then differs from accuracy, either way: fewer predicted spans raise precision. A
tiny model after 2 steps on ud/ug predicted 25 of 957 dev tokens as O or I-: F1 0.2128, accuracy
0.2100; after 30 steps none, and F1 = accuracy = 0.4368 (tests/test_token_tags.py). Those models
had the BIO labels; one with the B-X labels only predicts a span on every token.

CoNLL-U (``format: conllu``) is read with ``lrl.data.conllu.read_conllu``: syntactic words with
their UPOS or XPOS column, into the same ``Collector`` as every other reader (ids ``lang:split:n``,
rejects, ``ReadResult``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from lrl.data.bio import BioPolicy, TagProblem

if TYPE_CHECKING:  # collect.py imports token_span_tags from here
    from lrl.data.collect import ReadResult, Shard
    from lrl.data.nfc import UnicodeForm

TagScheme = Literal["iob2", "tokens"]

#: The tags that mean "no tag": ``O`` as written in NER files, ``_`` as UD writes an empty column.
NO_TAG = frozenset({"O", "_"})


def token_spans(tags: Sequence[str]) -> tuple[list[str] | None, str | None]:
    """``tags`` of a ``scheme: tokens`` sentence as IOB2 one-token spans, or a reject reason
    (``token_span_tags``, as text)."""
    out = token_span_tags(tags)
    return (None, out.reason) if isinstance(out, TagProblem) else (out, None)


def token_span_tags(tags: Sequence[str]) -> list[str] | TagProblem:
    """``tags`` of a ``scheme: tokens`` sentence as IOB2 one-token spans, or the tag at fault (its
    index as data: the collector names that token's line).

    A tag already written as ``B-X``/``I-X`` means the source is IOB2 and the scheme was picked
    wrongly: read as tokens, ``B-PER I-PER`` would become the types ``B-PER`` and ``I-PER``
    (``B-B-PER``), a model of nonsense labels that no later check would catch."""
    out: list[str] = []
    for i, tag in enumerate(tags):
        if tag in NO_TAG:
            out.append("O")
        elif not tag.strip():
            return TagProblem(i, f"tag {i} is {tag!r}", "empty tag")
        elif tag[:2] in ("B-", "I-"):
            return TagProblem(i, f"tag {i} {tag!r} is an IOB2 span tag but the source has scheme: tokens "
                                 "(one label per token); set scheme: iob2 for NER spans", "IOB2 tag")
        else:
            out.append("B-" + tag)
    return out


def read_conllu_tags(path: str, lang: str, split: str = "train", policy: BioPolicy = "quarantine",
                     labels: Iterable[str] | None = None, shard: Shard | None = None,
                     column: Literal["upos", "xpos"] = "upos", unicode: UnicodeForm = "nfc") -> ReadResult:
    """A CoNLL-U file's syntactic words with their ``column`` tags as ``scheme: tokens`` rows.

    A malformed line raises ``InputError`` with file and line (``read_conllu``: a treebank is
    curated input); sentence-level problems (an unknown label) are rejects as in the other readers.
    A ``column`` that is ``_`` on every word is an ``InputError`` too: many treebanks leave XPOS
    empty, and read as the no-tag ``O`` such a file trained a model of the one label ``O`` (loss 0,
    dev F1 0.0) without a word on why. A tag or word at fault is named by its own line, as in CoNLL
    (``word_lines``), not only by the sentence's first."""
    from lrl.data.collect import Collector
    from lrl.data.conllu import check_tagged, read_conllu

    sents = read_conllu(path)
    check_tagged(sents, column, path)
    col = Collector(path, lang, split, policy, labels, shard, scheme="tokens", unicode=unicode)
    for sent in sents:
        tags = sent.tags(column)
        raw = f"# sent_id = {sent.sent_id}\n" + "\n".join(f"{w}\t{t}" for w, t in zip(sent.words, tags))
        col.sentence(sent.line, list(sent.words), list(tags), raw, token_lines=sent.word_lines)
    return col.result()


__all__ = ["TagScheme", "NO_TAG", "token_spans", "token_span_tags", "read_conllu_tags"]
