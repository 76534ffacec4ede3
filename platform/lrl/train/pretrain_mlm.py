"""Masked-LM corruption of packed batches: 80/10/10 replacement, optional whole-word masking.

Special tokens ([CLS], [SEP], [PAD], [MASK], [UNK]) and language-tag tokens are never selected:
predicting a tag is trivial and masking it would hide the language from the model. Masks are
drawn from a generator the caller seeds (by step and rank), so a resumed run sees the same masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from lrl.train.pretrain_config import MaskingConfig

IGNORE = -100


@dataclass(frozen=True)
class MaskVocab:
    """Token ids the masker needs: the mask id, protected ids, and the range of random ids."""

    mask_id: int
    vocab_size: int
    protected: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer, extra_protected: list[int] | tuple[int, ...] = ()) -> MaskVocab:
        """Protect every special token of ``tokenizer`` (language tags are special there) plus
        ``extra_protected`` ids."""
        ids = set(tokenizer.all_special_ids) | set(extra_protected)
        return cls(int(tokenizer.mask_token_id), int(len(tokenizer)), tuple(sorted(ids)))


def mask_batch(input_ids: torch.Tensor, cfg: MaskingConfig, vocab: MaskVocab,
               generator: torch.Generator, word_start: torch.Tensor | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (corrupted inputs, labels); labels are ``IGNORE`` where nothing is predicted.

    With ``cfg.whole_word`` and ``word_start`` (1 where a token begins a word), one draw per
    word decides for all of its pieces, so a word is predicted whole or not at all."""
    import torch

    protected = torch.isin(input_ids, torch.tensor(vocab.protected, dtype=input_ids.dtype))
    if cfg.whole_word and word_start is not None:
        # Word index of each token within its row; one uniform draw per word index.
        word_idx = torch.cumsum(word_start.to(torch.int64), dim=1).clamp(max=input_ids.shape[1] - 1)
        per_word = torch.rand(input_ids.shape, generator=generator)
        draw = per_word.gather(1, word_idx)
    else:
        draw = torch.rand(input_ids.shape, generator=generator)
    selected = (draw < cfg.rate) & ~protected
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE))
    how = torch.rand(input_ids.shape, generator=generator)
    to_mask = selected & (how < cfg.mask_fraction)
    to_random = selected & (how >= cfg.mask_fraction) & (how < cfg.mask_fraction + cfg.random_fraction)
    out = input_ids.clone()
    out[to_mask] = vocab.mask_id
    if bool(to_random.any()):
        out[to_random] = _random_ordinary(int(to_random.sum()), vocab, generator, input_ids.dtype)
    return out, labels


def _random_ordinary(n: int, vocab: MaskVocab, generator: torch.Generator, dtype) -> torch.Tensor:
    """``n`` token ids drawn uniformly from the vocabulary minus the protected ids."""
    import torch

    allowed = torch.ones(vocab.vocab_size, dtype=torch.bool)
    allowed[[i for i in vocab.protected if i < vocab.vocab_size]] = False
    pool = torch.nonzero(allowed).flatten()
    return pool[torch.randint(len(pool), (n,), generator=generator)].to(dtype)


def step_generator(seed: int, step: int, rank: int, micro: int = 0) -> torch.Generator:
    """A generator seeded by (seed, step, rank, micro batch): masks are reproducible on resume."""
    import torch

    g = torch.Generator()
    g.manual_seed(step_seed(seed, step, rank, micro))
    return g


def step_seed(seed: int, step: int, rank: int, micro: int = 0) -> int:
    """A 63-bit seed per (seed, step, rank, micro batch), distinct for distinct tuples (up to hash
    collisions). The linear mix used before, ``step * 9176 + rank * 131 + micro``, gave rank 70's
    micro batch 6 the masks of rank 0 one step later: repeated masks from 70 workers up."""
    import hashlib

    blob = hashlib.blake2b(f"{seed}:{step}:{rank}:{micro}".encode(), digest_size=8).digest()
    return int.from_bytes(blob, "little") >> 1


__all__ = ["IGNORE", "MaskVocab", "mask_batch", "step_generator", "step_seed"]
