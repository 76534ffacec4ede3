"""``pretrain.steps: 0``: the pretrain stage's folder holds the starting model as built, not trained.

Transferring a trained encoder to a language is two steps, growing its vocabulary (the tokenizer
stage's ``mode: extend``, new embedding rows initialised from the old pieces,
``lrl.model.extend``) and continued masked-LM training; the second does not always help. On
WikiANN yo, 927 steps of ``jobs/minilm_yo.yaml``'s pretraining gave dev span F1 79.7 against 82.3
for the same extended MiniLM fine-tuned directly (docs/benchmarks.md, C1). There was no way to
ask lrl for the second: ``steps`` had to be > 0. With 0, this module writes the same folder the
stage writes after training (HF masked LM + tokenizer + metrics.json + card) from the model as
built, seeded like a training run's start, with its held-out perplexity (on the slice a training
run would hold out, fp32 on the driver), so that fine-tuning and the report read it as any other
pretrained folder. No Ray Train worker starts.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any

import pyarrow as pa

from lrl.data.output import StageOutput
from lrl.data.remote import local_folder, local_output
from lrl.data.sampling import heldout_split
from lrl.job import JobConfig
from lrl.pipeline.stage import StageContext
from lrl.train.pretrain_checkpoint import with_print


def run_initial(ctx: StageContext, out: StageOutput, tok_dir: str, table: pa.Table) -> str:
    """Commit ``out`` (the pretrain stage's folder of a ``steps: 0`` job) holding the starting model;
    returns its path. The manifest has a trained folder's keys; what training measures is None."""
    from lrl.evaluate.pretrain_card import write_pretrain_card

    try:
        with local_output(out.tmp) as local:
            m = build_initial(ctx.cfg, table, tok_dir, local)
            write_pretrain_card(local, ctx.cfg, ctx.upstream.get("generate"))
            with open(os.path.join(local, "config.json"), encoding="utf-8") as f:
                started = json.load(f).get("lrl_init")  # None for a model built from scratch
        return out.commit({
            "tokenizer": tok_dir, "model_init": None, "started_from": with_print(started, ctx.cfg), "trained": False,
            "languages": m["languages"], "steps": 0, "steps_planned": 0, "stopped_early": None, "loss": None,
            "ppl": {k[4:]: v for k, v in m.items() if k.startswith("ppl_")}, "eval_precision": "fp32",
            "tokens_per_s": None, "mfu": None, "device": "cpu", "heldout_rows": m["heldout_rows"],
            "train_rows": m["train_rows"], "checkpoints": None,
        })
    except BaseException:
        out.abort()
        raise


def build_initial(cfg: JobConfig, table: pa.Table, tok_dir: str, out_dir: str) -> dict[str, Any]:
    """Build ``cfg.model`` for the tokenizer in ``tok_dir`` (seeded with ``cfg.seed``) into
    ``out_dir`` (a local folder) with the tokenizer and a ``metrics.json`` holding its held-out
    perplexity per language; returns those metrics."""
    import torch
    from transformers import AutoTokenizer

    from lrl.model.build import build_mlm_model, model_langs
    from lrl.model.tokenizer import save_tokenizer
    from lrl.train.pretrain_progress import no_transformers_bars

    t0 = time.time()
    p = cfg.pretrain
    tok = AutoTokenizer.from_pretrained(local_folder(tok_dir))
    present = sorted(set(table.column("lang").to_pylist()))
    torch.manual_seed(cfg.seed)  # the weights a training run of this seed starts from
    with no_transformers_bars():  # "Loading weights" of a checkpoint
        model = build_mlm_model(cfg.model, tok, present)
    langs = model_langs(model.config) or present
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and p.seq_len > limit:  # as fit() checks it: the held-out sequences would not fit
        from lrl.config import ConfigError

        raise ConfigError(f"pretrain.seq_len={p.seq_len} exceeds the model's {limit} positions (model.max_length)")
    model.config.dtype = "float32"  # as a trained folder says: the weights are fp32
    os.makedirs(out_dir, exist_ok=True)
    with no_transformers_bars():
        model.save_pretrained(out_dir, safe_serialization=True)
    save_tokenizer(tok, out_dir, limit)
    train, heldout = heldout_split(table, p.heldout_fraction)
    ppl = heldout_ppl(cfg, model, tok, tok_dir, heldout, langs) if heldout.num_rows else {}
    metrics: dict[str, Any] = {
        "step": 0, "steps_planned": 0, "trained": False, "loss": None,
        **{f"ppl_{k}": v for k, v in ppl.items()},
        "eval_precision": "fp32",  # a training run evaluates in its own precision (bf16 by default)
        "languages": langs, "alpha": p.alpha,
        "heldout_rows": dict(Counter(heldout.column("lang").to_pylist())),
        "train_rows": dict(Counter(train.column("lang").to_pylist())),
        "engine": "none (pretrain.steps 0)", "precision": "fp32", "num_workers": 0, "device": "cpu",
        "end_to_end_s": time.time() - t0,
    }
    with open(os.path.join(out_dir, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=1, default=str, ensure_ascii=False)
    return metrics


def heldout_ppl(cfg: JobConfig, model, tok, tok_dir: str, heldout: pa.Table, langs: list[str]) -> dict[str, float]:
    """Held-out perplexity per language of ``model`` as a training run's last evaluation measures
    it (the same packed sequences, masks and loss: ``pretrain_eval.heldout_perplexity``)."""
    import torch

    from lrl.train.pretrain_aux import build_module
    from lrl.train.pretrain_data import pack_local
    from lrl.train.pretrain_eval import heldout_perplexity
    from lrl.train.pretrain_mlm import MaskVocab

    p = cfg.pretrain
    held = pack_local(heldout, tok_dir, p.seq_len, langs, p.heldout_max_seqs)
    module = build_module(model, 0)
    return heldout_perplexity(module, held, langs, int(tok.pad_token_id), p.masking, MaskVocab.from_tokenizer(tok),
                              cfg.seed, p.batch_size, torch.device("cpu"), False,
                              bool(getattr(model.config, "lrl_lang_embedding", False)))


__all__ = ["build_initial", "heldout_ppl", "run_initial"]
