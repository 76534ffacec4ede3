"""Augmentation of labelled rows: EDA restricted to O tokens, and NER-aware operations.

Public entry points:
- ``augment_steps(cfg, train, texts) -> list[Step]`` for the generate runner;
- ``AugmentBatch(cfg, resources, seed)`` / ``augment_batch(batch, cfg, resources, seed)``: the
  same work on one pyarrow batch (originals + generated rows), for plain loops and Pools;
- one class per op (``OP_CLASSES``), each callable on a batch (generated rows only);
- ``build_resources`` and ``replay`` (regenerate a row from its parent, op and seed; the
  resources a generate stage drew from: ``lrl.generate.replay.stage_resources``).
"""

from lrl.generate.augment.batch import OP_CLASSES, AugmentBatch, augment_batch, make_op, replay
from lrl.generate.augment.eda import DeleteOp, InsertOp, SwapOp, SynonymOp
from lrl.generate.augment.ner_ops import LabelwiseOp, MentionOp, ShuffleOp
from lrl.generate.augment.op import AugmentOp
from lrl.generate.augment.resources import AugmentResources, build_resources
from lrl.generate.augment.seeds import child_id, row_seed, stable_hash
from lrl.generate.augment.steps import AugmentStep, augment_steps
from lrl.generate.augment.synonyms import corpus_neighbours, read_lexicon

__all__ = [
    "OP_CLASSES", "AugmentBatch", "AugmentOp", "AugmentResources", "AugmentStep", "DeleteOp", "InsertOp",
    "LabelwiseOp", "MentionOp", "ShuffleOp", "SwapOp", "SynonymOp", "augment_batch", "augment_steps",
    "build_resources", "child_id", "corpus_neighbours", "make_op", "read_lexicon", "replay", "row_seed",
    "stable_hash",
]
