"""The augment resources the generate stage drew from, rebuilt from a job's config and inputs: what
``augment.replay`` needs to regenerate a written row from its ``op``, ``parent_id`` and ``seed``.

Its own function because the stage does not build them from all its rows alone: which words are
names comes from the entity-tagged sources only (``stage.bio_rows``). ``build_resources(cfg.augment,
train, texts, root)`` on every row also counted a token tagger's rows (``data.ner[].scheme: tokens``,
UD POS, every word ``B-X``) as names: for a job with WikiANN ug and UD ug, 271 of 400 insert and
label-wise rows of ug parents came out different from the ones the stage wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from lrl.generate.augment.resources import AugmentResources
    from lrl.generate.manifest import Inputs
    from lrl.job import JobConfig


def stage_resources(cfg: JobConfig, inputs: Inputs | None = None) -> AugmentResources:
    """The resources of the generate stage's augment step for ``cfg`` (``inputs``: its
    ``read_inputs``, read here when None), built as ``stage.run_generate`` builds them."""
    from lrl.data.schema import TEXT_SCHEMA
    from lrl.generate.augment.resources import build_resources
    from lrl.generate.augment.steps import translated_langs
    from lrl.generate.stage import bio_rows, read_inputs

    inputs = read_inputs(cfg) if inputs is None else inputs
    train = pa.concat_tables([r.table for r in inputs.ner])
    texts = pa.concat_tables(inputs.texts) if inputs.texts else TEXT_SCHEMA.empty_table()
    return build_resources(cfg.augment, train, texts, cfg.data.root, bio_rows(inputs), translated_langs(cfg))
