"""The module trained in pretraining: an HF masked LM plus an optional tagging head (UPOS/XPOS).

The tagging head is a linear layer on the encoder's last hidden states, trained on auxiliary
steps; the saved model stays a standard HF masked-LM folder and the head is saved beside it
(``aux_head/``: ``head.safetensors`` + ``labels.json``), so downstream code that expects an
``AutoModelForMaskedLM`` is unaffected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lrl.data.conllu import ConlluSentence
from lrl.model.special_text import SPLIT
from lrl.train.pretrain_mlm import IGNORE

if TYPE_CHECKING:
    import torch


def tagging_arrays(sentences: list[ConlluSentence], column: str, labels: list[str], tokenizer,
                   tag_token_id: int, seq_len: int) -> dict[str, np.ndarray]:
    """``[CLS] [lang] pieces [SEP]`` per sentence with the word's tag on its first piece (others
    ``IGNORE``); sentences longer than ``seq_len`` are truncated (their tail words unlabelled)."""
    index = {t: i for i, t in enumerate(labels)}
    ids = np.full((len(sentences), seq_len), tokenizer.pad_token_id, dtype=np.int32)
    lab = np.full((len(sentences), seq_len), IGNORE, dtype=np.int64)
    # A word "[MASK]" or "[ug]" is its characters (lrl.model.special_text): the specials come by id.
    enc = tokenizer([s.words for s in sentences], is_split_into_words=True, add_special_tokens=False, **SPLIT)
    for row, sent in enumerate(sentences):
        pieces = enc["input_ids"][row][: seq_len - 3]
        words = enc.word_ids(row)[: len(pieces)]
        tags = sent.tags(column)
        seq = [tokenizer.cls_token_id, tag_token_id] + pieces + [tokenizer.sep_token_id]
        ids[row, : len(seq)] = seq
        prev = None
        for j, w in enumerate(words):
            if w is not None and w != prev:
                lab[row, j + 2] = index[tags[w]]
            prev = w
    return {"input_ids": ids, "labels": lab}


def build_module(mlm_model, n_tags: int):
    """Wrap ``mlm_model`` (and a fresh tagging head when ``n_tags`` > 0) for training."""
    import torch

    from lrl.train.mlm_loss import FusedMLMHead

    class PretrainModule(torch.nn.Module):
        """forward(kind=0) is the MLM loss; forward(kind=1) the weighted tagging loss. Parameters
        a kind does not use get a zero-weighted term so DDP/ZeRO see every gradient each step."""

        def __init__(self) -> None:
            super().__init__()
            self.mlm = mlm_model
            hidden = mlm_model.config.hidden_size
            self.aux_head = torch.nn.Linear(hidden, n_tags) if n_tags > 0 else None
            head = mlm_head(mlm_model)
            # The projection and the loss fused (mlm_loss); None: this head's logits, then the loss.
            self._fused = FusedMLMHead.of(head) if head is not None else None

        def forward(self, input_ids, attention_mask, labels, token_type_ids=None, kind: int = 0,
                    aux_weight: float = 1.0):
            extra: dict[str, Any] = {}
            if token_type_ids is not None:
                extra["token_type_ids"] = token_type_ids
            if kind == 0:
                head = mlm_head(self.mlm)
                if head is None:  # unknown architecture: the model's own (dense) MLM loss
                    out = self.mlm(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **extra)
                    return out.loss + _zero_touch(self.aux_head)
                # Vocabulary logits only at predicted positions (~15%): the d x V decoder
                # dominates small models, so this is most of their training FLOPs saved.
                hidden = self.mlm.base_model(input_ids=input_ids, attention_mask=attention_mask,
                                             **extra).last_hidden_state
                picked = labels != IGNORE
                if self._fused is not None:
                    return self._fused.loss(hidden[picked], labels[picked]) + _zero_touch(self.aux_head)
                logits = head(hidden[picked]).float()
                loss = torch.nn.functional.cross_entropy(logits, labels[picked]) if logits.shape[0] \
                    else logits.sum() * 0.0
                return loss + _zero_touch(self.aux_head)
            hidden = self.mlm.base_model(input_ids=input_ids, attention_mask=attention_mask,
                                         **extra).last_hidden_state
            logits = self.aux_head(hidden).float()
            loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1),
                                                     ignore_index=IGNORE)
            used = {id(p) for p in self.mlm.base_model.parameters()}
            return aux_weight * loss + _zero_touch(self.mlm, skip=used)

    return PretrainModule()


def mlm_head(model):
    """The MLM prediction head (hidden -> vocabulary logits) of BERT-like (``cls``) and
    RoBERTa-like (``lm_head``) models; None for other architectures."""
    for name in ("cls", "lm_head"):
        head = getattr(model, name, None)
        if head is not None:
            return head
    return None


def _zero_touch(module, skip: set[int] | None = None):
    """0 * (one element of each parameter not in ``skip``): keeps unused parameters in the graph."""
    if module is None:
        return 0.0
    terms = [p.view(-1)[0] for p in module.parameters() if p.requires_grad and id(p) not in (skip or set())]
    return 0.0 * sum(terms) if terms else 0.0


def save_aux_head(module, labels: list[str], column: str, path: str,
                  master: dict[str, torch.Tensor] | None = None) -> None:
    """Write the tagging head (safetensors) and its label list to ``path``; ``master`` holds fp32
    values of its tensors (by name) where the module's are 16-bit copies."""
    import json
    import os

    from safetensors.torch import save_file

    os.makedirs(path, exist_ok=True)
    state = {k: (master or {}).get(k, v).detach().float().contiguous().cpu()
             for k, v in module.aux_head.state_dict().items()}
    save_file(state, os.path.join(path, "head.safetensors"))
    with open(os.path.join(path, "labels.json"), "w", encoding="utf-8") as f:
        json.dump({"column": column, "labels": labels}, f, ensure_ascii=False, indent=1)


def as_tensor_batch(arrays: dict[str, np.ndarray], idx: np.ndarray, pad_id: int,
                    device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Rows ``idx`` of tagging arrays as model inputs (attention mask from the pad id), cut after
    the batch's longest row.

    ``tagging_arrays`` pads every sentence to ``seq_len``, and treebank sentences are short: a
    batch of 16 UD Uyghur sentences held 572 non-pad tokens of 2048 at seq_len 128 (28%), so an
    auxiliary step cost 0.20 s against 0.23 s for an MLM step of 2048 tokens (micro preset, one
    CPU thread). The cut columns are padding only (attention-masked, labels ``IGNORE``), so the
    loss is the same."""
    import torch

    ids = torch.as_tensor(arrays["input_ids"][idx], dtype=torch.long)
    keep = ids != pad_id
    width = int(keep.any(dim=0).nonzero().max()) + 1 if bool(keep.any()) else ids.shape[1]
    # contiguous: the tagging loss flattens labels with view()
    ids, keep = ids[:, :width].contiguous(), keep[:, :width].contiguous()
    labels = torch.as_tensor(np.ascontiguousarray(arrays["labels"][idx][:, :width]))
    return {"input_ids": ids.to(device), "attention_mask": keep.long().to(device), "labels": labels.to(device)}


__all__ = ["tagging_arrays", "build_module", "mlm_head", "save_aux_head", "as_tensor_batch"]
