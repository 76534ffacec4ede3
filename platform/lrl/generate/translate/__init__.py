"""Machine translation for data generation: translate-train with label projection by markers,
back-translation, on Hugging Face seq2seq models in a Ray actor pool (or a fake translator).

``steps(cfg)`` gives the steps for labelled (NER) rows, ``text_steps(cfg)`` those for text rows;
both follow ``lrl.generate.base.Step``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lrl.generate.translate.columns import EXTRA_COLUMNS, SRC_ENTS, SRC_TEXT
from lrl.generate.translate.markers import Entity, MarkerStyle
from lrl.generate.translate.project import Projection, Projector
from lrl.generate.translate.steps import BackTranslate, TranslateTrain

if TYPE_CHECKING:
    from lrl.generate.base import Step
    from lrl.job import JobConfig

__all__ = ["EXTRA_COLUMNS", "SRC_ENTS", "SRC_TEXT", "BackTranslate", "Entity", "MarkerStyle",
           "Projection", "Projector", "TranslateTrain", "steps", "text_steps"]


def steps(cfg: JobConfig) -> list[Step]:
    """Translate-train then labelled back-translation, as ``cfg.translate`` configures them."""
    t = cfg.translate
    if not t.enabled:
        return []
    out: list[Step] = []
    if t.train is not None:
        out.append(TranslateTrain(t.train, t.projection, cfg.seed))
    if t.backtranslate is not None and t.backtranslate.labelled:
        out.append(BackTranslate(t.backtranslate, t.projection, cfg.seed))
    return out


def text_steps(cfg: JobConfig) -> list[Step]:
    """Back-translation of unlabelled text rows (``TEXT_SCHEMA``), when configured."""
    t = cfg.translate
    if not t.enabled or t.backtranslate is None or not t.backtranslate.text:
        return []
    return [BackTranslate(t.backtranslate, t.projection, cfg.seed)]
