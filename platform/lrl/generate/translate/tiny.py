"""Build a tiny random-init Marian translation model offline (tests, benchmarks, smoke runs).

The hub is not needed: a Unigram tokenizer is trained on a few text lines with ``tokenizers``,
wrapped as a ``PreTrainedTokenizerFast`` (pad/eos/unk, ``</s>`` appended like Marian's own), and
a ``MarianMTModel`` is built from a ``MarianConfig``. Both are saved (safetensors) to a folder that
``MTModelConfig.model`` can name. Its translations are garbage; the plumbing is real.
"""

from __future__ import annotations

from pathlib import Path


def build_tiny_marian(out_dir: str | Path, texts: list[str], d_model: int = 32, layers: int = 1,
                      vocab_size: int = 800, ffn: int | None = None, seed: int = 0) -> str:
    """Train a tokenizer on ``texts``, build the model, save both to ``out_dir``; return the path."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specials = ["<pad>", "</s>", "<unk>"]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    from tokenizers import decoders

    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>")
    tok.train_from_iterator(texts, trainer=trainer)
    eos = tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", eos)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=512)
    fast.save_pretrained(out)
    pad = fast.pad_token_id
    cfg = MarianConfig(
        vocab_size=fast.vocab_size if len(fast) <= fast.vocab_size else len(fast),
        d_model=d_model, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=ffn or 2 * d_model, decoder_ffn_dim=ffn or 2 * d_model,
        max_position_embeddings=512, pad_token_id=pad, eos_token_id=eos,
        decoder_start_token_id=pad, forced_eos_token_id=eos,
    )
    torch.manual_seed(seed)
    model = MarianMTModel(cfg)
    model.generation_config.max_length = 64
    model.save_pretrained(out, safe_serialization=True)
    return str(out)
