"""Which attention kernel and dropout a training run uses on its device (one operation).

Shared by pretraining and fine-tuning, which both train on CPUs here and on GPUs in production.
On CPU two of torch's defaults are slow for these small encoders: the fused (sdpa) attention's
bf16 backward, and dropout, which draws one random number per element (``fast_dropout``). A
fine-tuning step of the MiniLM tagger in bf16 on 2 cores: 362 ms with both defaults, 295 ms
with eager attention and ``fast_dropout`` (docs/benchmarks.md, session 21).
"""

from __future__ import annotations


def set_attention(model, choice: str, precision: str, device) -> str:
    """Switch ``model`` to the attention kernel ``choice`` (``pretrain.attention``,
    ``finetune.attention``); returns the kernel used. ``auto``: eager for bf16 on CPU, where
    torch's fused bf16 attention backward is slow, else sdpa. Models without the switch keep
    their own kernel. On CPU the dropout layers (and eager attention's dropout: kernel
    ``lrl_eager``) draw their masks 3 elements per random number (``fast_dropout``): torch's
    per-element draws were ~30% of a micro-preset step."""
    on_cpu = getattr(device, "type", str(device)) == "cpu"
    if choice == "auto":
        choice = "eager" if on_cpu and precision == "bf16" else "sdpa"
    if hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation(choice)
        except (ValueError, ImportError):  # an architecture without that kernel keeps its own
            pass
    if on_cpu:
        from lrl.train.fast_dropout import use_fast_dropout

        use_fast_dropout(model)
    return str(getattr(model.config, "_attn_implementation", None))


__all__ = ["set_attention"]
