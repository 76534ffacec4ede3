"""A token classifier built on any Hugging Face encoder folder, with an optional CRF head.

Loading uses safetensors and never runs remote code. The saved folder is a plain HF
token-classification folder (config with id2label, weights, tokenizer) plus ``lrl_tagger.json``
(head, max_length, language-tag use) and, for the CRF head, ``crf.safetensors``; any HF tool can
load it, and ``Tagger.load`` restores the CRF too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from lrl.data.remote import local_folder
from lrl.model.build import readable_weights
from lrl.model.crf import CRF
from lrl.model.tokenizer import save_tokenizer
from lrl.train.align import IGNORE, Chunk
from lrl.train.finetune_dropout import apply_dropout

META = "lrl_tagger.json"
CRF_FILE = "crf.safetensors"


def quiet_transformers() -> None:
    """Load reports and progress bars of transformers are noise in training logs."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def resolve_model_path(path: str, work_dir: str | None = None) -> str:
    """An HF folder as is (one on an object store copied to this machine: Ray tasks call this on
    any node); ``preset:<name>`` is built (random init) by the model package."""
    if not path.startswith("preset:"):
        path = local_folder(path)
        if not Path(path).is_dir():
            raise ValueError(f"{path}: model folder not found (hub downloads are off; pass a local folder)")
        return path
    raise ValueError(f"{path}: a preset has no weights or tokenizer to load; train_tagger builds it "
                     "(lrl.train.finetune_scratch.build_preset_encoder)")


def position_limit(model: torch.nn.Module) -> int | None:
    """Longest input (pieces, special tokens included) the encoder has position embeddings for;
    None when it has no absolute positions (e.g. DeBERTa-v2 with relative ones only).

    RoBERTa-like embeddings (``padding_idx`` set on the module) number positions from
    ``padding_idx + 1``, so two of XLM-R's 514 rows are unusable."""
    emb = getattr(getattr(model, "base_model", model), "embeddings", None)
    table = getattr(emb, "position_embeddings", None)
    if not isinstance(table, torch.nn.Embedding):
        return None
    offset = getattr(emb, "padding_idx", None)
    return table.num_embeddings - (offset + 1 if isinstance(offset, int) else 0)


@dataclass
class Tagger:
    """Encoder + token-classification head (+ CRF), the tokenizer and the label list."""

    model: torch.nn.Module
    tokenizer: object
    labels: list[str]
    crf: CRF | None = None
    max_length: int = 128
    lang_tag: bool = True

    @property
    def lang_types(self) -> dict[str, int] | None:
        """Language -> token type id when the encoder was pretrained with language embeddings
        (``lrl_lang_embedding`` in its config, see ``lrl.model.build``), else None."""
        conf = self.model.config
        if not getattr(conf, "lrl_lang_embedding", False):
            return None
        return {lang: i for i, lang in enumerate(sorted(getattr(conf, "lrl_langs", None) or []))}

    @classmethod
    def from_encoder(cls, path: str, labels: list[str], head: str = "linear", dropout: float | None = None,
                     max_length: int = 128, lang_tag: bool = True) -> Tagger:
        """A new tagger on top of an encoder folder (MLM or other heads are dropped). A truncated or
        corrupt ``model.safetensors`` is a ``ConfigError`` naming the folder."""
        from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

        quiet_transformers()
        path = resolve_model_path(path)
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        conf = AutoConfig.from_pretrained(
            path, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={lab: i for i, lab in enumerate(labels)}, trust_remote_code=False)
        apply_dropout(conf, dropout, path)  # every family's keys (``finetune_dropout``)
        with readable_weights(f"encoder folder {path}"):  # truncated or corrupt: one line, not a traceback
            model = AutoModelForTokenClassification.from_pretrained(
                path, config=conf, use_safetensors=True, trust_remote_code=False)
        limit = position_limit(model)
        if limit is not None and max_length > limit:
            # Chunks of max_length pieces would index past the position table: a shape error on
            # the first long sentence, possibly only at the first dev evaluation.
            raise ValueError(f"finetune.max_length={max_length} but the encoder {path} has positions "
                             f"for {limit} pieces; set finetune.max_length <= {limit}")
        crf = CRF(len(labels), list(labels)) if head == "crf" else None
        return cls(model, tok, list(labels), crf, max_length, lang_tag)

    @classmethod
    def load(cls, path: str) -> Tagger:
        """A saved tagger folder (from ``save``), or any HF token-classification folder; a truncated
        or corrupt weights file is a ``ConfigError`` naming the folder, as in ``from_encoder``."""
        from safetensors.torch import load_file
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        quiet_transformers()
        p = Path(path)
        if not p.is_dir():
            raise ValueError(f"{path}: model folder not found")
        with readable_weights(f"model folder {path}"):
            model = AutoModelForTokenClassification.from_pretrained(path, use_safetensors=True,
                                                                    trust_remote_code=False)
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        meta = json.loads((p / META).read_text()) if (p / META).is_file() else {}
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        crf = None
        if (p / CRF_FILE).is_file():
            crf = CRF(len(labels), labels)
            with readable_weights(f"model folder {path}", CRF_FILE):
                crf.load_state_dict(load_file(str(p / CRF_FILE)))
        # A plain HF folder has no lrl_tagger.json: chunk to what its positions allow.
        max_length = int(meta.get("max_length", position_limit(model) or 512))
        return cls(model, tok, labels, crf, max_length, bool(meta.get("lang_tag", True)))

    def save(self, path: str, extra: dict | None = None) -> None:
        """Write the HF folder, the tokenizer, the CRF (if any) and ``lrl_tagger.json``."""
        from safetensors.torch import save_file

        from lrl.train.tagger_inputs import (
            add_inputs_to_tokenizer,
            one_language_inputs,
            remove_inputs_from_tokenizer,
        )

        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(p))
        # Tokenizers built for `preset:` encoders (and hub ones above max_length) had no limit to match, so
        # ``pipeline("token-classification")`` fed a long text the whole of it and crashed in the
        # position embeddings (a 258-piece WikiANN ug dev sentence on a 256-position model), and its
        # ``stride=`` chunking needs the limit. The chunk size lrl trained and scores with is it.
        limit = getattr(self.tokenizer, "model_max_length", None)
        if not isinstance(limit, int) or limit > self.max_length:
            self.tokenizer.model_max_length = self.max_length
        save_tokenizer(self.tokenizer, p)
        if self.crf is not None:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.crf.state_dict().items()},
                      str(p / CRF_FILE))
        # one language: its tokenizer adds the tag and type id itself, for plain transformers users
        inputs = one_language_inputs(extra or {})
        baked = inputs is not None and add_inputs_to_tokenizer(p, *inputs)
        if not baked:  # tuned from a one-language folder: its tokenizer must not keep that language's tag
            remove_inputs_from_tokenizer(p)
        meta = {"head": "crf" if self.crf is not None else "linear", "max_length": self.max_length,
                "lang_tag": self.lang_tag, "labels": self.labels, **(extra or {}),
                **({"inputs_in_tokenizer": True} if baked else {})}
        (p / META).write_text(json.dumps(meta, indent=2, ensure_ascii=False))

    def to(self, device: torch.device) -> Tagger:
        self.model.to(device)
        if self.crf is not None:
            self.crf.to(device)
        return self

    def modules(self) -> list[torch.nn.Module]:
        return [self.model] + ([self.crf] if self.crf is not None else [])

    def word_emissions(self, batch: dict) -> torch.Tensor:
        """Logits at each word's first piece, left-aligned: [B, W, L]."""
        extra = {"token_type_ids": batch["token_type_ids"]} if "token_type_ids" in batch else {}
        logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **extra).logits
        idx = batch["first_pos"].unsqueeze(-1).expand(-1, -1, logits.shape[-1])
        return logits.gather(1, idx)

    def loss(self, batch: dict) -> torch.Tensor:
        em = self.word_emissions(batch)
        mask = batch["word_mask"]
        if self.crf is not None:
            return self.crf.nll(em, batch["word_labels"].clamp(min=0), mask, batch.get("continues"))
        target = batch["word_labels"].masked_fill(~mask, IGNORE)
        return torch.nn.functional.cross_entropy(em.float().reshape(-1, em.shape[-1]), target.reshape(-1),
                                                 ignore_index=IGNORE)

    @torch.no_grad()
    def predict_batch(self, batch: dict) -> list[list[int]]:
        """Label ids per word of each chunk in the batch (argmax, or Viterbi with a CRF). With a CRF,
        each chunk is decoded alone: the chunks of a long sentence may then join into invalid IOB2
        (``I-X`` after ``O`` at a boundary), so sentences go through ``lrl.evaluate.predict.predict_tags``,
        which decodes them whole."""
        em = self.word_emissions(batch)
        mask = batch["word_mask"]
        if self.crf is not None:
            return self.crf.decode(em, mask, batch.get("continues"))
        best = em.argmax(-1).tolist()
        return [row[: int(n)] for row, n in zip(best, mask.sum(1).tolist())]


def collate(chunks: list[Chunk], pad_id: int, device: torch.device | str = "cpu",
            lang_types: dict[str, int] | None = None) -> dict:
    """Pad a list of chunks into tensors, with word-level label and first-piece positions.

    With ``lang_types`` every position of a chunk carries its language's token type id, as in
    pretraining; an unknown language gets type 0 (the encoder never saw it)."""
    n = len(chunks)
    t = max(len(c.input_ids) for c in chunks)
    w = max(max(len(c.first) for c in chunks), 1)
    ids = torch.full((n, t), pad_id, dtype=torch.long)
    att = torch.zeros((n, t), dtype=torch.long)
    first = torch.zeros((n, w), dtype=torch.long)
    wmask = torch.zeros((n, w), dtype=torch.bool)
    wlab = torch.full((n, w), IGNORE, dtype=torch.long)
    for i, c in enumerate(chunks):
        ids[i, : len(c.input_ids)] = torch.tensor(c.input_ids)
        att[i, : len(c.input_ids)] = 1
        pos = [p for p, _ in c.first]
        first[i, : len(pos)] = torch.tensor(pos, dtype=torch.long)
        wmask[i, : len(pos)] = True
        wlab[i, : len(pos)] = torch.tensor([c.labels[p] for p in pos], dtype=torch.long)
    # A chunk whose first word is not the sentence's first continues a long sentence: it may start
    # inside an entity (``I-X``), which the CRF allows there only (``lrl.model.crf``).
    continues = torch.tensor([bool(c.first) and c.first[0][1] > 0 for c in chunks], dtype=torch.bool)
    out = {"input_ids": ids, "attention_mask": att, "first_pos": first, "word_mask": wmask, "word_labels": wlab,
           "continues": continues}
    if lang_types is not None:
        types = [lang_types.get(c.lang or "", 0) for c in chunks]
        out["token_type_ids"] = torch.tensor(types, dtype=torch.long).view(-1, 1).expand(n, t).contiguous()
    return {k: v.to(device) for k, v in out.items()}
