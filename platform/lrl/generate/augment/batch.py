"""The op registry, the all-ops batch callable and ``replay``.

``AugmentBatch`` is what Ray Data (or a plain loop, or ``multiprocessing.Pool``) runs per batch:
it returns the input rows unchanged followed by every row the configured ops generate from them.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from lrl.generate.augment.eda import DeleteOp, InsertOp, SwapOp, SynonymOp
from lrl.generate.augment.ner_ops import LabelwiseOp, MentionOp, ShuffleOp
from lrl.generate.augment.op import TALLY, AugmentOp, generated_table
from lrl.generate.augment.resources import AugmentResources
from lrl.generate.config import AugmentConfig
from lrl.generate.write import with_counts

OP_CLASSES: dict[str, type[AugmentOp]] = {
    cls.name: cls for cls in (InsertOp, SwapOp, DeleteOp, SynonymOp, MentionOp, LabelwiseOp, ShuffleOp)
}


def job_seed(cfg: AugmentConfig, default: int) -> int:
    """The augmentation seed: ``augment.seed``, else the job seed."""
    return default if cfg.seed is None else cfg.seed


def make_op(name: str, cfg: AugmentConfig, resources: Any, seed: int) -> AugmentOp:
    """The op ``name`` configured by its section of ``cfg`` (``cfg.swap`` for swap...)."""
    if name not in OP_CLASSES:
        raise ValueError(f"unknown augmentation op {name!r} (known: {sorted(OP_CLASSES)})")
    return OP_CLASSES[name](getattr(cfg, name), resources, seed, cfg.copies_of(name))


class AugmentBatch:
    """Originals plus the rows of every op in ``cfg.ops``, for one pyarrow batch.

    ``resources`` may be an ``AugmentResources`` or a Ray ObjectRef to one (fetched lazily);
    ``count``: also hand the attempt counts per op, language and no-row reason to the writer
    (``lrl.generate.write.ATTEMPTS``)."""

    def __init__(self, cfg: AugmentConfig, resources: Any, seed: int = 0, count: bool = False):
        self.ops = [make_op(name, cfg, resources, seed) for name in cfg.ops]
        self.count = count

    def __call__(self, batch: pa.Table) -> pa.Table:
        tallies: dict[tuple[str, str], list[int]] = {}
        gen = generated_table(batch, self.ops, tallies)
        out = pa.concat_tables([batch, gen]) if gen.num_rows else batch
        if not self.count:
            return out
        # The attempt counts ride in one column to the generate stage's writer (``with_counts``).
        return with_counts(out, {f"{op}/{lang}/{what}": n for (op, lang), tally in tallies.items()
                                 for what, n in zip(TALLY, tally)})


def augment_batch(batch: pa.Table, cfg: AugmentConfig, resources: Any, seed: int = 0,
                  count: bool = False) -> pa.Table:
    """Function form of ``AugmentBatch`` (for Ray tasks: construction is cheap)."""
    return AugmentBatch(cfg, resources, seed, count)(batch)


def replay(row: dict[str, Any], op_name: str, seed: int, cfg: AugmentConfig, resources: AugmentResources,
           copy: int = 0) -> dict[str, Any] | None:
    """Regenerate the row that ``op_name`` made from parent ``row`` with row seed ``seed``.

    ``seed`` and ``copy`` are the generated row's ``seed`` column and the last part of its id;
    the result equals the generated row (None if the op made nothing from that seed)."""
    return make_op(op_name, cfg, resources, 0).make(row, seed, copy)
