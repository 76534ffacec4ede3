"""Unigram pieces in a fixed id order (``UNIGRAM_ORDER`` in ``lrl.model.command`` names it in the
tokenizer stage's hash).

The Unigram trainer's scores differ in their last bits between runs, and it appends rare
characters in Rust hash-map order, so the same text gave the same pieces under other ids on every
training. ``stable_unigram`` rebuilds a trained Unigram with its pieces ordered by rounded score
and text; segmentation, which depends on the scores only, is unchanged.
"""

from __future__ import annotations

import json


def stable_unigram(tok, special: list[str]):
    """``tok`` (a trained Unigram) rebuilt with its pieces in a fixed order: the special tokens
    first, as trained, then by score (rounded) and text. The trainer's scores differ in their last
    bits between runs (even on one thread), and ids follow the scores: four trainings on the same
    am + yo text gave the same pieces under 86-119 different ids. Ids only: Unigram segments by
    the scores, which are kept."""
    from tokenizers import Tokenizer, models

    model = json.loads(tok.to_str())["model"]
    vocab = [(piece, score) for piece, score in model["vocab"]]
    head = [v for v in vocab[:len(special)] if v[0] in special]
    rest = vocab[len(head):]
    # The characters the trainer appends at the bottom get scores 1e-4 apart in hash-map order:
    # sorted by text, they take the same scores in order.
    lo, hi = _appended_range([sc for pc, sc in rest if len(pc) == 1])
    appended = [len(pc) == 1 and lo <= round(sc, 7) <= hi for pc, sc in rest]
    tail = [v for v, a in zip(rest, appended) if a]
    body = sorted((v for v, a in zip(rest, appended) if not a), key=lambda v: (-round(v[1], 5), v[0]))
    # Their scores differ in the last bits between runs too (many share the lowest): rounded.
    scores = sorted((round(sc, 7) for _, sc in tail), reverse=True)
    ordered = head + body + list(zip(sorted(pc for pc, _ in tail), scores))
    unk = model.get("unk_id")
    unk_id = None if unk is None else [p for p, _ in ordered].index(vocab[unk][0])
    out = Tokenizer(models.Unigram(ordered, unk_id, model.get("byte_fallback", False)))
    out.normalizer, out.pre_tokenizer, out.decoder = tok.normalizer, tok.pre_tokenizer, tok.decoder
    out.add_special_tokens(special)
    return out


def _appended_range(scores: list[float], step: float = 1e-4) -> tuple[float, float]:
    """The lowest and highest score (rounded to 7 places) of the run of single characters the
    Unigram trainer appends: from the lowest score up, while each next one is ``step`` above."""
    if not scores:
        return float("inf"), float("-inf")
    ladder = sorted({round(sc, 7) for sc in scores})  # rounded: they differ in the last bits
    top = ladder[0]
    for sc in ladder[1:]:
        if abs(sc - top - step) > step / 100:
            break
        top = sc
    return ladder[0], top


__all__ = ["stable_unigram"]
