"""Predict one tag per original token with a ``Tagger``, and write predictions.

Chunks are sorted by length before batching (less padding), and predictions are mapped back to
the words through ``align.merge_predictions``, which fails loudly if any word is missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from lrl.train.align import AlignStats, encode, merge_predictions
from lrl.train.finetune_model import Tagger, collate


def predict_tags(tagger: Tagger, sentences: Sequence[Sequence[str]], langs: Sequence[str | None] | None,
                 batch_size: int = 64, device: torch.device | str = "cpu",
                 autocast_dtype: torch.dtype | None = None) -> tuple[list[list[str]], AlignStats]:
    """Tags (label names) for every token of every sentence, and the alignment statistics."""
    chunks, stats = encode(tagger.tokenizer, sentences, None, tagger.max_length, langs, tagger.lang_tag)
    for m in tagger.modules():
        m.eval()
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i].input_ids))
    preds: list[list[int]] = [[] for _ in chunks]
    pad = tagger.tokenizer.pad_token_id or 0
    dev = torch.device(device)
    for start in range(0, len(order), batch_size):
        idx = order[start: start + batch_size]
        batch = collate([chunks[i] for i in idx], pad, dev, tagger.lang_types)
        with torch.autocast(dev.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            out = tagger.predict_batch(batch)
        for i, p in zip(idx, out):
            preds[i] = p
    words = merge_predictions(chunks, preds, [len(s) for s in sentences])
    return [[tagger.labels[i] for i in row] for row in words], stats


def predictions_table(table: pa.Table, pred: list[list[str]]) -> pa.Table:
    """The input rows (id, lang, tokens, gold tags) with a ``pred`` column."""
    keep = [c for c in ("id", "lang", "tokens", "tags") if c in table.column_names]
    return table.select(keep).append_column("pred", pa.array(pred, type=pa.list_(pa.string())))


def write_predictions(table: pa.Table, pred: list[list[str]], out_dir: str, name: str) -> dict[str, str]:
    """``<name>.parquet`` and ``<name>.conll`` (token, gold, predicted; blank line between sentences)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pt = predictions_table(table, pred)
    pq.write_table(pt, out / f"{name}.parquet")
    lines: list[str] = []
    has_gold = "tags" in pt.column_names
    for row in pt.to_pylist():
        lines.append(f"# id = {row['id']}\tlang = {row['lang']}")
        gold = row["tags"] if has_gold else ["_"] * len(row["tokens"])
        for tok, g, p in zip(row["tokens"], gold, row["pred"]):
            lines.append(f"{tok}\t{g}\t{p}")
        lines.append("")
    (out / f"{name}.conll").write_text("\n".join(lines), encoding="utf-8")
    return {"parquet": str(out / f"{name}.parquet"), "conll": str(out / f"{name}.conll")}
