"""Per-language held-out perplexity: exp of the mean masked-token cross-entropy.

Masks are drawn from a fixed seed per language, so every evaluation of a run scores the same
positions and the numbers are comparable across steps (and across runs with the same seed).
Every rank evaluates the same (small) slice: with ZeRO-3 all ranks must run the same forwards.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lrl.train.pretrain_config import MaskingConfig
from lrl.train.pretrain_mlm import IGNORE, MaskVocab, mask_batch, step_generator


def model_inputs(ids, word_start, lang_ids, pad_id: int, masking: MaskingConfig, vocab: MaskVocab,
                 generator, device, lang_embedding: bool) -> tuple[dict[str, Any], int]:
    """A masked MLM batch for the module's forward, and its count of predicted tokens."""

    ids = ids.long()
    masked, labels = mask_batch(ids, masking, vocab, generator, word_start)
    batch: dict[str, Any] = {"input_ids": masked.to(device), "attention_mask": (ids != pad_id).long().to(device),
                             "labels": labels.to(device), "kind": 0}
    if lang_embedding:
        batch["token_type_ids"] = lang_ids.long().view(-1, 1).expand_as(ids).contiguous().to(device)
    return batch, int((labels != IGNORE).sum())


def heldout_perplexity(module, heldout: dict[str, dict[str, np.ndarray]], langs: list[str], pad_id: int,
                       masking: MaskingConfig, vocab: MaskVocab, seed: int, batch_size: int, device,
                       autocast: bool, lang_embedding: bool) -> dict[str, float]:
    """Perplexity per language of ``module`` (an MLM ``PretrainModule``) on ``heldout``."""
    import torch

    was_training = module.training
    module.eval()
    out: dict[str, float] = {}
    dev = getattr(device, "type", str(device))
    try:
        for lang, arr in sorted(heldout.items()):
            total, count = 0.0, 0
            gen = step_generator(seed, 0, 0, langs.index(lang))
            for at in range(0, len(arr["input_ids"]), batch_size):
                ids = torch.as_tensor(arr["input_ids"][at: at + batch_size])
                ws = torch.as_tensor(arr["word_start"][at: at + batch_size])
                lid = torch.as_tensor(arr["lang_id"][at: at + batch_size])
                batch, n = model_inputs(ids, ws, lid, pad_id, masking, vocab, gen, device, lang_embedding)
                if n == 0:
                    continue
                with torch.no_grad(), torch.autocast(dev, dtype=torch.bfloat16, enabled=autocast):
                    loss = module(**batch)
                total += float(loss.float()) * n
                count += n
            out[lang] = math.exp(min(total / count, 50.0)) if count else float("nan")
    finally:
        module.train(was_training)
    return out


__all__ = ["heldout_perplexity", "model_inputs"]
