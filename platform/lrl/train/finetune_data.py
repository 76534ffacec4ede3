"""Training-set shaping for fine-tuning: few-shot selection, original : augmented mix, labels and
temperature-balanced language sampling. All choices are seeded, so a run is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc


def label_list(tables: Sequence[pa.Table], types: Sequence[str] | None = None) -> list[str]:
    """``O`` then ``B-X``, ``I-X`` for each entity type (sorted), from ``types`` or the tags seen."""
    if types is None:
        found: set[str] = set()
        for t in tables:
            for tags in t.column("tags").to_pylist():
                found.update(tag[2:] for tag in tags if tag != "O")
        types = sorted(found)
    return ["O"] + [f"{p}-{x}" for x in sorted(types) for p in ("B", "I")]


def is_orig(table: pa.Table) -> pa.Array:
    """Boolean mask of original rows (``op`` null or ``orig``); generated rows have another op."""
    if "op" not in table.column_names:
        return pa.array([True] * table.num_rows)
    op = table.column("op")
    return pc.fill_null(pc.equal(op, "orig"), True)


def few_shot(table: pa.Table, k: int, seed: int) -> pa.Table:
    """k original sentences per language (all when fewer), plus the generated rows derived from them.

    Choice depends only on (seed, language, sorted ids), not on row order, so it is stable
    across readers and machines.
    """
    orig = table.filter(is_orig(table))
    chosen: set[str] = set()
    for lang in sorted(set(orig.column("lang").to_pylist())):
        ids = sorted(orig.filter(pc.equal(orig.column("lang"), lang)).column("id").to_pylist())
        rng = random.Random(f"{seed}:{lang}")
        chosen.update(rng.sample(ids, min(k, len(ids))))
    keep_orig = pc.is_in(table.column("id"), pa.array(sorted(chosen), pa.string()))
    if "parent_id" in table.column_names:
        keep_aug = pc.and_(pc.invert(is_orig(table)),
                           pc.fill_null(pc.is_in(table.column("parent_id"), pa.array(sorted(chosen), pa.string())), False))
        keep = pc.or_(pc.and_(keep_orig, is_orig(table)), keep_aug)
    else:
        keep = keep_orig
    return table.filter(keep)


def mix(table: pa.Table, aug_ratio: float | None, seed: int) -> pa.Table:
    """Originals plus ``aug_ratio`` generated rows per original (sampled, seeded); None keeps all."""
    if aug_ratio is None:
        return table
    mask = is_orig(table)
    orig, aug = table.filter(mask), table.filter(pc.invert(mask))
    want = min(aug.num_rows, int(round(aug_ratio * orig.num_rows)))
    if want >= aug.num_rows:
        return table
    rng = random.Random(f"mix:{seed}")
    idx = sorted(rng.sample(range(aug.num_rows), want))
    return pa.concat_tables([orig, aug.take(pa.array(idx, pa.int64()))])


def prepare_train(table: pa.Table, few_shot_k: int | None, aug_ratio: float | None, seed: int) -> pa.Table:
    """Few-shot selection (if asked), then the original : augmented mix."""
    if few_shot_k is not None:
        table = few_shot(table, few_shot_k, seed)
    return mix(table, aug_ratio, seed)


def language_weights(langs: Sequence[str], alpha: float) -> list[float]:
    """Per-row sampling weights so that language l is drawn with probability ∝ n_l**alpha.

    Uses the shared ``lrl.data.sampling`` when it offers the same, else this local formula.
    """
    counts: dict[str, int] = {}
    for lang in langs:
        counts[lang] = counts.get(lang, 0) + 1
    probs = _lang_probs(counts, alpha)
    return [probs[lang] / counts[lang] for lang in langs]


def _lang_probs(counts: dict[str, int], alpha: float) -> dict[str, float]:
    try:
        from lrl.data.sampling import temperature_probs  # pretraining's sampler, when present

        return dict(temperature_probs(counts, alpha))
    except (ImportError, TypeError):
        z = sum(n**alpha for n in counts.values())
        return {lang: n**alpha / z for lang, n in counts.items()}
