"""Freezing and layer-wise learning rates for BERT-like encoders, found generically.

Works for any Hugging Face encoder whose base model has an ``embeddings`` module and an
``encoder.layer`` (BERT, RoBERTa, XLM-R, ELECTRA, DeBERTa), ``transformer.layer`` (DistilBERT) or
its own ``layers`` (ModernBERT, mmBERT) list, so fine-tuning never needs a per-architecture table.
An encoder of another layout (ALBERT's shared layers, Funnel, a T5 encoder) fine-tunes too, as long
as nothing is frozen and ``layer_lr_decay`` is 1.0: only those need the layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class EncoderParts:
    """The pieces of an encoder that freezing and LR decay address."""

    embeddings: nn.Module
    layers: list[nn.Module]
    top: list[nn.Module] = field(default_factory=list)
    """Base-model modules applied to the top layer's output (ModernBERT's ``final_norm``)."""


def find_parts(model: nn.Module) -> EncoderParts:
    """Locate the embedding module and the ordered list of transformer layers of ``model``."""
    base = getattr(model, "base_model", model)
    emb = getattr(base, "embeddings", None)
    layers, top = None, []
    for owner in (getattr(base, "encoder", None), getattr(base, "transformer", None), base):
        for list_name in ("layer", "layers"):
            cand = getattr(owner, list_name, None) if owner is not None else None
            if isinstance(cand, nn.ModuleList):
                layers = list(cand)
                if owner is base:  # ModernBERT: what the base holds after its layers acts on their output
                    children = list(base.children())
                    top = children[next(i for i, c in enumerate(children) if c is cand) + 1:]
                break
        if layers is not None:
            break
    if emb is None or layers is None:
        raise ValueError(f"{type(model).__name__}: cannot find embeddings and encoder layers "
                         "(expected a BERT-like encoder with .embeddings and .encoder.layer or .layers), which "
                         "finetune.freeze_embeddings, freeze_layers and layer_lr_decay < 1 need")
    return EncoderParts(emb, layers, top)


def freeze(model: nn.Module, embeddings: bool, bottom_layers: int) -> int:
    """Set ``requires_grad=False`` on the embeddings (if asked) and the bottom k layers.

    Returns the number of frozen parameters (elements). Asking for more layers than the model has
    is an error rather than silently freezing the whole encoder. Nothing asked: the model is not
    looked into (an encoder whose layers ``find_parts`` cannot find trains as it is).
    """
    if not embeddings and not bottom_layers:
        return 0
    parts = find_parts(model)
    if bottom_layers > len(parts.layers):
        raise ValueError(f"freeze_layers={bottom_layers} but the encoder has {len(parts.layers)} layers")
    modules = ([parts.embeddings] if embeddings else []) + parts.layers[:bottom_layers]
    frozen = 0
    for mod in modules:
        for p in mod.parameters():
            if p.requires_grad:
                p.requires_grad_(False)
                frozen += p.numel()
    return frozen


def _no_decay(name: str) -> bool:
    return name.endswith("bias") or "norm" in name.lower()


def param_groups(model: nn.Module, lr: float, decay: float, weight_decay: float,
                 head_lr: float | None = None) -> list[dict]:
    """AdamW parameter groups with layer-wise LR decay.

    The top layer trains at ``lr``, layer i below it at ``lr * decay**i``, the embeddings at
    ``lr * decay**n_layers``; everything outside the base model (the head) at ``head_lr`` (default
    ``lr``). Parameters of the base model outside its embeddings and layers (DeBERTa-v2's shared
    relative-position embeddings and their LayerNorm, ELECTRA's embedding projection) train with
    the embeddings: counted as head they trained at ``head_lr``, often 10x the top layer's rate.
    Frozen parameters are left out. Each group carries ``name`` for logging. ModernBERT's
    ``final_norm`` (``EncoderParts.top``) trains with the top layer. Without decay (1.0) an encoder
    whose layers cannot be found has the whole base model at ``lr`` (group ``depth0``).
    """
    base = getattr(model, "base_model", model)
    try:
        parts = find_parts(model)
    except ValueError:
        if decay != 1.0:
            raise
        parts = EncoderParts(base if base is not model else nn.Module(), [])
    n = len(parts.layers)
    depth: dict[int, int] = {}  # id(param) -> distance from the top (0 = top layer)
    # A bare encoder (no head around it) is its own base_model: its own extras count as head.
    for p in [*(base.parameters() if base is not model else ()), *parts.embeddings.parameters()]:
        depth[id(p)] = n
    for i, layer in enumerate(parts.layers):
        for p in layer.parameters():
            depth[id(p)] = n - 1 - i
    for mod in parts.top:
        for p in mod.parameters():
            depth[id(p)] = 0
    groups: dict[tuple[str, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        d = depth.get(id(p))
        key = ("head" if d is None else f"depth{d}", _no_decay(name))
        rate = (head_lr or lr) if d is None else lr * decay**d
        group = groups.setdefault(key, {"params": [], "lr": rate, "name": key[0],
                                        "weight_decay": 0.0 if key[1] else weight_decay})
        group["params"].append(p)
    return list(groups.values())


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter (tests and sanity checks compare against it)."""
    return {k: v.detach().clone() for k, v in model.named_parameters()}
