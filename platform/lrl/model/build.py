"""Masked-LM models: named BERT presets built from config, or checkpoints loaded from safetensors
and grown to an extended tokenizer; language ids; FLOPs per token for MFU.

Language embedding design: BERT already adds a learned "token type" embedding to every token.
With ``model.lang_embedding`` the model gets one token type per language (``type_vocab_size`` =
number of languages) and the trainer passes the language id of each sequence as
``token_type_ids`` (all positions of a sequence carry its language's id). No new module is needed,
so the saved folder loads with plain ``AutoModelForMaskedLM``. The language list is stored in the
model config (``lrl_langs``) so that later stages recover the same ids.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

from lrl.config import ConfigError
from lrl.data.config import check_lang

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

    from lrl.model.config import ModelConfig

log = logging.getLogger(__name__)

#: The preset names: ``model.preset`` (pretraining) and ``preset:<name>`` (finetune, tune) take
#: the same ones, so a name means one architecture wherever it is written.
PresetName = Literal["tiny", "micro", "small", "base"]

#: preset -> (hidden, layers, heads, intermediate); the one table every path builds from.
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "tiny": (32, 2, 2, 128),  # tests and smoke runs: trains in seconds, its scores mean nothing
    "micro": (128, 3, 2, 512),  # MicroBERT scale (Gessler & Zeldes 2022 used hidden 100, 3 layers)
    "small": (256, 4, 4, 1024),  # BERT-Mini (Turc et al. 2019)
    "base": (768, 12, 12, 3072),  # BERT-base
}


def preset_sizes(name: str) -> tuple[int, int, int, int]:
    """(hidden, layers, heads, intermediate) of preset ``name``; an unknown name is a
    ``ConfigError`` listing the valid ones (the same message from every path)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown model preset {name!r} (choose from {', '.join(PRESETS)})")
    return PRESETS[name]


def lang_ids(langs: Iterable[str]) -> dict[str, int]:
    """Language -> id (token type id when ``lang_embedding`` is on): sorted ISO codes, so every
    stage that sees the same set of languages gets the same mapping."""
    return {lang: i for i, lang in enumerate(sorted({check_lang(x) for x in langs}))}


def model_langs(config) -> list[str]:
    """The languages a model built here was made for (``config.lrl_langs``), in id order."""
    return list(getattr(config, "lrl_langs", None) or [])


def read_model_config(folder: str):
    """The Hugging Face config of the model folder ``folder`` (any filesystem), from its
    ``config.json`` alone: ``AutoConfig.from_pretrained`` needs a local folder, and the driver
    copied a whole remote model (maybe GBs) only to read it. Built as ``from_pretrained`` builds
    it (the ``model_type``'s class, ``from_dict``), with lrl's attributes (``lrl_langs``, ...).

    InputError for a config without a ``model_type`` or with one transformers does not know (a
    custom, remote-code model), where a bare KeyError named neither folder nor reason. Not a
    fallback to ``AutoConfig``: without ``trust_remote_code`` it refuses such a config as well,
    after copying the whole folder, and pretraining's workers load the model without it too."""
    from transformers import CONFIG_MAPPING

    from lrl.data.files import InputError, read_json

    try:
        d = read_json(f"{folder.rstrip('/')}/config.json")
    except FileNotFoundError as exc:  # as local_folder said it for a remote one
        raise InputError(f"{folder}: not a Hugging Face model folder (no config.json)") from exc
    kind = d.get("model_type") if isinstance(d, dict) else None
    if not kind or not isinstance(kind, str):
        raise InputError(f"{folder}: its config.json names no model_type; lrl reads Hugging Face model folders "
                         "saved by transformers (a BERT-like masked LM)")
    if kind not in CONFIG_MAPPING:
        raise InputError(f"{folder}: model_type {kind!r} of its config.json is not one transformers knows (a "
                         "custom or remote-code model?); pretraining loads models without remote code")
    return CONFIG_MAPPING[kind].from_dict(d, name_or_path=folder)


def preset_config(cfg: ModelConfig, vocab_size: int, pad_token_id: int, langs: Iterable[str]):
    """The ``BertConfig`` of ``cfg.preset`` for a tokenizer of ``vocab_size`` tokens."""
    from transformers import BertConfig

    hidden, layers, heads, ffn = preset_sizes(cfg.preset)
    ids = lang_ids(langs)
    return BertConfig(
        vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=ffn, max_position_embeddings=cfg.max_length,
        type_vocab_size=max(len(ids), 1) if cfg.lang_embedding else 2,
        hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout,
        pad_token_id=pad_token_id, lrl_langs=list(ids), lrl_lang_embedding=cfg.lang_embedding,
    )


def build_mlm_model(cfg: ModelConfig, tokenizer: PreTrainedTokenizerFast, langs: Iterable[str]) -> PreTrainedModel:
    """A masked-LM for ``tokenizer`` and ``langs``: a fresh ``BertForMaskedLM`` of ``cfg.preset``,
    or ``cfg.checkpoint`` loaded from safetensors. When the tokenizer extends the checkpoint's,
    embeddings grow with mean-of-old-pieces rows (``resize_and_init_embeddings``)."""
    from transformers import BertForMaskedLM

    langs = list(langs)
    if cfg.checkpoint is None:
        conf = preset_config(cfg, len(tokenizer), tokenizer.pad_token_id or 0, langs)
        return BertForMaskedLM(conf)
    return _from_checkpoint(cfg, tokenizer, langs)


def _from_checkpoint(cfg: ModelConfig, tokenizer, langs: list[str]):
    from transformers import AutoModelForMaskedLM

    from lrl.data.local_or_hub import missing_folder, no_local_folder

    assert cfg.checkpoint is not None
    if (problem := missing_folder("model.checkpoint", cfg.checkpoint)) is not None:
        # transformers took models/x for a hub id: "Repo id must use alphanumeric chars", or a
        # minute of retries and "couldn't connect to 'https://huggingface.co'", in a traceback
        raise ConfigError(problem)
    ckpt = os.path.expanduser(cfg.checkpoint)  # ~/x: a folder to missing_folder, so to the loader too
    if os.path.isdir(ckpt) and not any(os.path.exists(os.path.join(ckpt, f)) for f in
                                       ("model.safetensors", "model.safetensors.index.json")):
        raise ConfigError(f"model.checkpoint={ckpt}: no model.safetensors in the folder (only safetensors are loaded)")
    try:
        with readable_weights(f"model.checkpoint={ckpt}"), _no_load_report():
            model, info = AutoModelForMaskedLM.from_pretrained(
                ckpt, use_safetensors=True, trust_remote_code=cfg.trust_remote_code, output_loading_info=True,
                hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout)
    except OSError as exc:  # transformers' hub wording, over several lines: one line naming the folder
        said = " ".join(str(exc).split())
        if os.path.isdir(ckpt):
            raise ConfigError(f"model.checkpoint={ckpt}: cannot load a checkpoint: {said}") from exc
        raise ConfigError(f"model.checkpoint={ckpt}: {no_local_folder('model.checkpoint', ckpt)}, and as a Hugging "
                          f"Face hub id it cannot be loaded (not on the hub, or not reachable offline): {said}") from exc
    fresh_head = _check_loaded(model, ckpt, info.get("missing_keys") or (), info.get("unexpected_keys") or ())
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and cfg.max_length > limit:
        raise ConfigError(f"model.max_length={cfg.max_length} exceeds the checkpoint's {limit} positions")
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows or _differs(tokenizer, ckpt):
        from lrl.model.extend import load_tokenizer, resize_and_init_embeddings

        try:
            old = load_tokenizer(ckpt)
        except (OSError, ValueError) as exc:
            # Without the checkpoint's own tokenizer there is no telling which ids are new (an
            # empty placeholder made every row past the specials "new" and overwrote them all).
            raise ConfigError(f"the tokenizer has {len(tokenizer)} tokens but the checkpoint {ckpt} has {rows} "
                              "embedding rows and no tokenizer of its own to tell which tokens are new: save "
                              "the checkpoint's tokenizer beside its weights") from exc
        try:
            new_rows = len(resize_and_init_embeddings(model, old, tokenizer))
        except ValueError as exc:  # moved ids: a tokenizer trained anew, not extended from the checkpoint's
            raise ConfigError(f"model.checkpoint={ckpt}: {exc}; make the tokenizer with tokenizer.mode=extend "
                              f"and tokenizer.base={ckpt}") from exc
    else:
        new_rows = 0
    ids = lang_ids(langs)
    if cfg.lang_embedding:
        _lang_types(model, list(ids))
    model.config.lrl_langs = list(ids)
    model.config.lrl_lang_embedding = cfg.lang_embedding
    # Where the weights came from, in the saved config (and so in every later stage's folder): the
    # pretrain manifest and model cards otherwise named only the lrl folder it was trained in.
    init = {"checkpoint": ckpt, "license": _card_license(ckpt), "mlm_head": "fresh" if fresh_head else "checkpoint",
            "new_embedding_rows": new_rows}
    if getattr(model.config, "lrl_init", None):  # a checkpoint that lrl itself started from another
        init["from"] = model.config.lrl_init
    model.config.lrl_init = init
    return model


@contextmanager
def readable_weights(what: str, file: str = "model.safetensors"):
    """safetensors' ``SafetensorError`` (a truncated or corrupt weights file) while loading, as a
    ``ConfigError`` naming the folder (``what``, e.g. ``model.checkpoint=DIR``) and ``file``: it
    is no ``OSError``, so it was a raw traceback. Used by every loader of weights folders."""
    from safetensors import SafetensorError

    try:
        yield
    except SafetensorError as exc:
        raise ConfigError(f"{what}: cannot read its {file} (truncated or corrupt file?): {exc}") from exc


@contextmanager
def _no_load_report():
    """transformers' warnings while a checkpoint loads, held back: its load report (a table of
    MISSING and UNEXPECTED keys) and, for an encoder-only save, "This checkpoint seem corrupted"
    about the absent decoder bias. ``_check_loaded`` says in one line what they mean here (a fresh
    head, unused tensors) and refuses what is wrong (missing encoder weights); errors still raise."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _check_loaded(model, ckpt: str, missing: Iterable[str], unexpected: Iterable[str] = ()) -> bool:
    """Refuse a checkpoint whose encoder weights are missing; say what a missing MLM head becomes.

    A sentence-transformers folder (all-MiniLM-L6-v2) or any ``BertModel`` save holds the encoder
    only. transformers then builds the masked-LM head as BERT does from scratch: the transform
    (dense + LayerNorm) random N(0, initializer_range) / 1 and 0, the output bias 0, the decoder
    tied to the word embeddings (so new rows of an extended tokenizer predict as they embed). It
    said so only in a load report that also called the folder "corrupted"; continued pretraining
    therefore starts at a loss near ln(vocab) however good the encoder is (9.7 at step 20 for
    MiniLM + 6,707 Uyghur pieces), and the first steps mostly train that head. True when the
    head is fresh."""
    prefix = getattr(model, "base_model_prefix", "") + "."
    missing = sorted(missing)
    encoder = [k for k in missing if k.startswith(prefix)]
    if encoder:
        # Silently random encoder weights would make "transfer" a from-scratch run of that size.
        raise ConfigError(f"model.checkpoint={ckpt}: {len(encoder)} encoder weights are missing from the "
                          f"checkpoint (e.g. {encoder[:3]}); it is not a {type(model.base_model).__name__} of "
                          "this architecture")
    head = [k for k in missing if not k.startswith(prefix)]
    if head:
        tied = model.get_output_embeddings() is not None and \
            model.get_output_embeddings().weight is model.get_input_embeddings().weight
        msg = (f"model.checkpoint={ckpt} has no masked-LM head (an encoder-only save, e.g. sentence-transformers): "
               f"{len(head)} head tensors start fresh (transform random, output bias 0"
               f"{', decoder tied to the word embeddings' if tied else ', decoder random'})")
        log.warning("%s", msg)  # on stderr from ``lrl run`` (printing it as well showed it twice)
    unused = sorted(unexpected)
    if unused:  # e.g. a BertModel's pooler: a masked LM has none; other heads' tensors likewise
        log.warning("model.checkpoint=%s: %d tensors of the checkpoint are not used by a masked LM (%s)",
                    ckpt, len(unused), ", ".join(unused[:4]) + (", ..." if len(unused) > 4 else ""))
    return bool(head)


def _card_license(ckpt: str) -> str | None:
    """The ``license`` of a local checkpoint's model card (README.md front matter), else None."""
    import yaml

    path = os.path.join(ckpt, "README.md")
    if not os.path.isfile(path):
        return None
    text = open(path, encoding="utf-8").read()
    if not text.startswith("---"):
        return None
    try:
        meta = yaml.safe_load(text.split("---", 2)[1])
    except yaml.YAMLError:
        return None
    lic = meta.get("license") if isinstance(meta, dict) else None
    return str(lic) if lic else None


def _differs(tokenizer, ckpt: str) -> bool:
    """True when ``tokenizer`` is not the checkpoint's own tokenizer (other tokens or ids).

    Comparing sizes only let a tokenizer retrained on other text at the same ``vocab_size`` pass
    as the checkpoint's: every id then read another token's embedding row, silently."""
    from lrl.model.extend import load_tokenizer

    try:
        old = load_tokenizer(ckpt)
    except (OSError, ValueError):
        return False  # no tokenizer beside the weights: nothing to compare with
    return tokenizer.get_vocab() != old.get_vocab()


def _lang_types(model, langs: list[str]) -> None:
    """One token type per language. A language the checkpoint already embeds (a model built here
    with ``lang_embedding``) keeps its row; any other starts as the checkpoint's type-0 row (so the
    model initially computes what it did before) or, for a language-embedding checkpoint, as the
    mean of its language rows."""
    import torch

    emb = getattr(getattr(model.base_model, "embeddings", None), "token_type_embeddings", None)
    if emb is None:
        raise ConfigError(f"model.lang_embedding needs token-type embeddings; {type(model).__name__} has none")
    old = emb.weight.detach()
    known = model_langs(model.config) if getattr(model.config, "lrl_lang_embedding", False) else []
    default = old[: len(known)].mean(0) if known else old[0]
    new = torch.nn.Embedding(max(len(langs), 1), old.shape[1])
    with torch.no_grad():
        for i, lang in enumerate(langs):
            new.weight[i] = old[known.index(lang)] if lang in known else default
    model.base_model.embeddings.token_type_embeddings = new
    model.config.type_vocab_size = max(len(langs), 1)


def non_embedding_params(config) -> int:
    """Matmul weights of the encoder layers: attention 4 d^2 plus FFN 2 d f per layer."""
    d, f, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    return n * (4 * d * d + 2 * d * f)


def model_flops_per_token(config, seq_len: int | None = None, lm_head_tokens: float = 1.0) -> float:
    """Training FLOPs (forward + backward) per token of a BERT-like masked LM:

        6 * (N + h * (d^2 + d * V)) + 12 * L * s * d

    N = non-embedding matmul parameters (L * (4 d^2 + 2 d f)); d^2 is the MLM head transform, d * V
    its decoder (h = ``lm_head_tokens``, the share of positions sent through it: 1.0 when
    logits are computed everywhere, the masking rate when only masked positions are); the last term
    is attention scores and weighted sum (2 matmuls of s * d per token and layer, x3 for backward),
    after PaLM (Chowdhery et al. 2022, appendix B). ``s`` defaults to max_position_embeddings.
    Embedding lookups, layer norms, softmax and biases are ignored (a few %)."""
    d, n_layers, vocab = config.hidden_size, config.num_hidden_layers, config.vocab_size
    s = seq_len or config.max_position_embeddings
    dense = non_embedding_params(config) + lm_head_tokens * (d * d + d * vocab)
    return float(6 * dense + 12 * n_layers * s * d)
