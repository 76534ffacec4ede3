"""The masked-LM loss with the vocabulary projection and cross-entropy fused (one operation).

Why: a small model's step is dominated by its vocabulary logits, not its encoder. With the
plain ``F.cross_entropy(decoder(h).float(), y)`` a micro-preset bf16 step on 2 CPU cores spent
~14 ms of ~55 ms on four full passes over the ``[masked tokens x vocabulary]`` logits besides the
matmuls: the fp32 copy, log-softmax, a zero-filled gradient and the log-softmax backward
(torch profiler, ``docs/benchmarks.md``). Here the forward pass goes chunk by chunk: logits,
one fp32 softmax, the loss, and while the chunk is in cache the gradient of its logits (softmax
minus the one-hot target, in the compute dtype) goes into the two matmuls and the column sum of
the input, weight and bias gradients; the backward only scales those. The numbers are
those of the plain path: logits in the compute dtype (bf16 under autocast), softmax in fp32,
gradients cast back to each input's dtype (tests compare both, values and gradients).

It also bounds memory on GPUs with large vocabularies: fp32 logits exist one chunk at a time.
"""

from __future__ import annotations

from typing import Any

import torch

# Rows of logits per chunk: ~1M fp32 values (4 MiB) per chunk keeps a chunk near the cores'
# caches at small vocabularies (the micro preset's bf16 MFU: 33% with 131-row chunks, 28% with
# 256-row ones; docs/benchmarks.md, session 21).
_CHUNK_VALUES = 1 << 20
# Above this many projection weights (16 MiB of fp32 weight gradient, out of the caches), at
# least _ROWS_PER_HIDDEN rows per hidden unit. Each chunk adds its [vocabulary x hidden] product
# into the fp32 weight gradient (~12 bytes of memory traffic per weight), against ~22 bytes per
# logit for the chunk's own logits: with rows >= 2 x hidden that addition is at most ~1/4 of a
# chunk's traffic. With 4-row chunks a 250k x 256 projection of 1,000 rows took 32.5 s on 2 CPU
# cores against 2.0 s by the plain path; with 512-row chunks 1.8 s.
_CACHED_WEIGHTS = 1 << 22
_ROWS_PER_HIDDEN = 2


def rows_per_chunk(rows: int, hidden: int, vocab: int) -> int:
    """Rows of logits computed at once: ``_CHUNK_VALUES`` values, or ``_ROWS_PER_HIDDEN x hidden``
    rows where that is more and the projection is too large to stay in cache; at most all rows.
    A chunk's temporaries (bf16 and fp32 logits, fp32 softmax, bf16 gradient: ~12 bytes a logit)
    are then ~12 MiB, or at most ~6x the fp32 projection weight, while the plain path's grow
    with the batch."""
    least = _CHUNK_VALUES // max(vocab, 1)
    if vocab * hidden > _CACHED_WEIGHTS:
        least = max(least, _ROWS_PER_HIDDEN * hidden)
    return max(1, min(rows, least))


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    """The dtype the plain path's linear layer would run in: autocast's when it is on."""
    kind = t.device.type
    if torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return t.dtype


class LinearCrossEntropy(torch.autograd.Function):
    """mean over rows of cross_entropy(hidden @ weight.T + bias, target), every target valid.

    The forward pass also computes the unscaled gradients (the loss is a mean, so the backward
    only scales them): each chunk's logits gradient is used while in cache and then dropped,
    so nothing of size ``rows x vocabulary`` outlives its chunk."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                target: torch.Tensor) -> torch.Tensor:
        dtype = _compute_dtype(hidden)
        h, w = hidden.to(dtype), weight.to(dtype)
        b = bias.to(dtype) if bias is not None else None
        n, vocab = h.shape[0], w.shape[0]
        want_grad = any(ctx.needs_input_grad[:3])
        f32 = dict(dtype=torch.float32, device=h.device)
        grad_h = torch.empty((n, h.shape[1]), **f32) if want_grad else None
        grad_w = torch.zeros(w.shape, **f32) if want_grad else None
        grad_b = torch.zeros((vocab,), **f32) if want_grad and b is not None else None
        total = torch.zeros((), **f32)
        step = rows_per_chunk(n, h.shape[1], vocab)
        with torch.autocast(h.device.type, enabled=False):
            for start in range(0, n, step):
                end = min(n, start + step)
                rows, picked = torch.arange(end - start, device=h.device), target[start:end]
                logits = torch.nn.functional.linear(h[start:end], w, b)  # compute dtype
                # softmax is one fused kernel (log-softmax + exp are two passes, and exp alone
                # runs at ~3 G values/s on these cores), reading the logits in the compute dtype
                # and computing in fp32 (no fp32 copy of the logits). The loss is lse - x[target],
                # with lse = max x - log max p (the largest logit has the largest p, >= 1/vocab,
                # which never underflows; -log p[target] would be inf where p[target] underflows).
                probs = torch.softmax(logits, dim=1, dtype=torch.float32)
                lse = torch.amax(logits, dim=1).float() - torch.log(torch.amax(probs, dim=1))
                loss = lse - logits[rows, picked].float()
                total += loss.sum()
                if want_grad:  # d loss_row / d logits = softmax - one-hot, in the compute dtype
                    probs[rows, picked] -= 1.0
                    if grad_b is not None:
                        grad_b += probs.sum(0)
                    g = probs.to(dtype)
                    grad_h[start:end] = g @ w
                    grad_w += g.t() @ h[start:end]
        ctx.save_for_backward(grad_h, grad_w, grad_b)
        ctx.dtypes = (hidden.dtype, weight.dtype, bias.dtype if bias is not None else None)
        return total / n

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor):
        grad_h, grad_w, grad_b = ctx.saved_tensors
        scale = grad_out.float() / grad_h.shape[0]
        h_dtype, w_dtype, b_dtype = ctx.dtypes
        need = ctx.needs_input_grad
        return ((grad_h * scale).to(h_dtype) if need[0] else None,
                (grad_w * scale).to(w_dtype) if need[1] else None,
                (grad_b * scale).to(b_dtype) if need[2] and grad_b is not None else None,
                None)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``hidden @ weight.T + bias`` against ``target`` (no ignored rows)."""
    if hidden.shape[0] == 0:
        return hidden.sum() * 0.0 + weight.view(-1)[0] * 0.0
    return LinearCrossEntropy.apply(hidden, weight, bias, target)


class FusedMLMHead:
    """Splits an HF MLM head (BERT's ``cls``, RoBERTa's ``lm_head``) into the transform before
    its vocabulary projection and that projection, so the loss can use ``linear_cross_entropy``.

    ``of(head)`` returns None when the split is not exact for this head (checked once on random
    input against the head's own forward): the caller then uses the plain logits path.
    """

    def __init__(self, head: torch.nn.Module, owner: torch.nn.Module, decoder: torch.nn.Linear) -> None:
        self.head, self.owner, self.decoder = head, owner, decoder

    @classmethod
    def of(cls, head: torch.nn.Module) -> FusedMLMHead | None:
        owner = getattr(head, "predictions", head)  # BERT: cls.predictions.decoder
        decoder = getattr(owner, "decoder", None)
        if not isinstance(decoder, torch.nn.Linear) or type(decoder).forward is not torch.nn.Linear.forward:
            return None
        fused = cls(head, owner, decoder)
        return fused if fused._matches_head() else None

    def transform(self, hidden: torch.Tensor) -> torch.Tensor:
        """The head's layers before the vocabulary projection: its forward with the projection
        swapped for the identity (restored at once)."""
        self.owner.decoder = torch.nn.Identity()
        try:
            return self.head(hidden)
        finally:
            self.owner.decoder = self.decoder

    def loss(self, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean MLM cross-entropy of the head at ``hidden`` rows (all predicted) against ``target``."""
        w = self.decoder.weight
        if getattr(w, "ds_numel", None) is not None:  # ZeRO-3 partitions it outside its own forward
            logits = self.head(hidden).float()
            return torch.nn.functional.cross_entropy(logits, target) if logits.shape[0] else logits.sum() * 0.0
        return linear_cross_entropy(self.transform(hidden), w, self.decoder.bias, target)

    def _matches_head(self) -> bool:
        if getattr(self.decoder.weight, "ds_numel", None) is not None:
            return True  # ZeRO-3: loss() takes the plain path anyway
        size = self.decoder.in_features
        param = self.decoder.weight
        with torch.no_grad():
            x = torch.randn(3, size, generator=torch.Generator().manual_seed(0)).to(param.device, param.dtype)
            want = self.head(x)
            got = torch.nn.functional.linear(self.transform(x), param, self.decoder.bias)
        return want.shape == got.shape and torch.allclose(want.float(), got.float(), rtol=1e-3, atol=1e-3)


__all__ = ["FusedMLMHead", "LinearCrossEntropy", "linear_cross_entropy", "rows_per_chunk"]
