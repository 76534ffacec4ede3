"""``finetune.dropout`` on an encoder's config: a table of the dropout keys of the config classes
``AutoModelForTokenClassification`` builds, by attribute name (not by model class: a key is the
same setting whichever family uses it).

Only seven keys were set before (``EARLIER_KEYS``); Funnel (``hidden_dropout``,
``activation_dropout``), ALBERT (``classifier_dropout_prob``) and T5/MT5/UMT5 (``dropout_rate``)
kept the checkpoint's dropout there, in silence. A config with none of the keys is named in a
warning line. A job whose encoder has a key of the longer table trains otherwise now, so its
output's name changes (``dropout_version``); every other job keeps its name.
"""

from __future__ import annotations

from typing import Any

#: Dropout probabilities of the encoder and its token-classification head, by config attribute.
#: Left out: ``layerdrop`` (drops whole layers), ``token_dropout`` (a flag), and the dropout of
#: heads a token classifier does not have (``pooler_dropout``, ``summary_*``, ``qa_dropout``,
#: ``seq_classif_dropout``).
DROPOUT_KEYS: tuple[str, ...] = (
    "hidden_dropout_prob", "attention_probs_dropout_prob",  # BERT family, ALBERT, ELECTRA, DeBERTa(-v2), RemBERT
    "classifier_dropout",  # the head: BERT family (None: hidden_dropout_prob), ModernBERT, T5, GPT-Neo(X)
    "classifier_dropout_prob",  # the head: ALBERT, RemBERT, BROS
    "classifier_dropout_rate",  # the head: T5Gemma
    "dropout", "attention_dropout",  # DistilBERT, XLM, Flaubert, XLNet; Funnel, ModernBERT attention
    "hidden_dropout", "activation_dropout",  # Funnel (and BLOOM, Falcon, BioGPT)
    "mlp_dropout", "embedding_dropout",  # ModernBERT's hidden dropout
    "dropout_rate",  # T5, MT5, UMT5 encoders
    "resid_pdrop", "embd_pdrop", "attn_pdrop", "emb_pdrop",  # GPT-2 style
    "resid_dropout", "embed_dropout", "residual_dropout",  # GPT-Neo, StarCoder2
)

#: The keys set before the table: an encoder with no other key trains as it did.
EARLIER_KEYS = frozenset({"hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout",
                          "dropout", "attention_dropout", "mlp_dropout", "embedding_dropout"})

#: Added to the output's name when ``finetune.dropout`` reaches a key beyond ``EARLIER_KEYS``.
DROPOUT_KEYS_VERSION = 2


def apply_dropout(conf: Any, dropout: float | None, where: str) -> list[str]:
    """Set every known dropout key ``conf`` (an HF config) has to ``dropout``; returns the keys
    set. None keeps the checkpoint's. Silent: this runs in every Ray task (once per seed and
    language); the stage's driver says once when no key is reached (``unreached``)."""
    if dropout is None:
        return []
    keys = [k for k in DROPOUT_KEYS if hasattr(conf, k)]
    for key in keys:
        setattr(conf, key, dropout)
    return keys


def unreached(config: dict[str, Any], dropout: float | None, where: str, setting: str = "finetune.dropout") -> str | None:
    """The warning line for a dropout set on an encoder whose ``config.json`` (``config``) has
    none of ``DROPOUT_KEYS``: the setting would otherwise be ignored without a word. None when
    unset, reached, or the folder has no config to tell (a hub id)."""
    if dropout is None or not config or config_keys(config) & set(DROPOUT_KEYS):
        return None
    return (f"warning: {setting}={dropout:g}: the encoder {where} ({config.get('model_type') or 'no model_type'}) "
            "has no dropout setting lrl knows; it keeps its own dropout")


def config_keys(config: dict[str, Any]) -> set[str]:
    """The attributes an encoder's config has, from its ``config.json`` dict: its own keys and
    those of its class's defaults (``save_pretrained`` leaves out values equal to the defaults:
    a T5 folder of the default dropout names no ``dropout_rate``)."""
    keys = set(config)
    try:
        from transformers import AutoConfig

        keys |= set(AutoConfig.for_model(config["model_type"]).to_dict())
    except (KeyError, ValueError, ImportError):  # no or an unknown model_type: its own keys only
        pass
    return keys


def encoder_config(model_path: str) -> dict[str, Any]:
    """The encoder folder's ``config.json`` (on an object store too); {} when it has none."""
    from lrl.data.files import read_json

    try:
        return read_json(f"{model_path}/config.json")
    except (OSError, ValueError):
        return {}


def dropout_version(config: dict[str, Any], dropout: float | None) -> dict[str, int]:
    """What the output's name adds for ``finetune.dropout`` on an encoder whose ``config.json``
    is ``config``: nothing unless the dropout is set and reaches a key the earlier code left
    alone (those jobs train otherwise now; every other keeps its folder)."""
    if dropout is None or not (config_keys(config) & (set(DROPOUT_KEYS) - EARLIER_KEYS)):
        return {}
    return {"dropout_keys": DROPOUT_KEYS_VERSION}


__all__ = ["DROPOUT_KEYS", "EARLIER_KEYS", "apply_dropout", "unreached", "config_keys", "dropout_version", "encoder_config"]
