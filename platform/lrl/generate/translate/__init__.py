"""Machine translation for data generation: translate-train with label projection by markers,
back-translation, on Hugging Face seq2seq models in a Ray actor pool (or a fake translator).

``steps(cfg)`` gives the steps for labelled (NER) rows, ``text_steps(cfg)`` those for text rows;
both follow ``lrl.generate.base.Step``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from lrl.data.files import is_uri, resolve
from lrl.generate.mt_config import BackTranslateConfig, MTModelConfig, TranslateConfig
from lrl.generate.translate.columns import EXTRA_COLUMNS, SRC_ENTS, SRC_TEXT
from lrl.generate.translate.markers import Entity, MarkerStyle
from lrl.generate.translate.project import Projection, Projector
from lrl.generate.translate.steps import BackTranslate, TranslateTrain

if TYPE_CHECKING:
    from lrl.generate.base import Step
    from lrl.job import JobConfig

__all__ = ["EXTRA_COLUMNS", "SRC_ENTS", "SRC_TEXT", "BackTranslate", "Entity", "MarkerStyle",
           "Projection", "Projector", "TranslateTrain", "check_langs", "local_model", "local_models", "steps", "text_steps"]


def local_model(m: MTModelConfig, root: str | None) -> MTModelConfig:
    """``m`` with a relative local ``model`` folder made absolute, found against ``data.root``
    like the other inputs or else against the driver's folder: the actors that load it run in
    their own working directory (a cluster job's is its unpacked ``working_dir``), where the
    relative path named nothing. Anything not found locally is left as is (a hub id)."""
    if not m.model or is_uri(m.model):
        return m
    path = os.path.expanduser(m.model)
    for found in (path,) if os.path.isabs(path) else (resolve(path, root), path):
        if os.path.isdir(found):
            return m.model_copy(update={"model": os.path.abspath(found)})
    return m


def local_models(t: TranslateConfig, root: str | None) -> TranslateConfig:
    """``t`` with every model folder absolute (``local_model``), resolved on the driver."""
    update: dict = {}
    if t.train is not None:
        update["train"] = t.train.model_copy(update={"model": local_model(t.train.model, root)})
    if t.backtranslate is not None:
        bt: BackTranslateConfig = t.backtranslate
        update["backtranslate"] = bt.model_copy(update={"to_pivot": local_model(bt.to_pivot, root),
                                                        "from_pivot": local_model(bt.from_pivot, root)})
    return t.model_copy(update=update)


def check_langs(cfg: JobConfig) -> None:
    """Fail when a language that translation selects rows by is the ``lang`` of no input: rows are
    picked by exact code, so ``sources: [eng_Latn]`` (FLORES style) over WikiANN-style ``en``
    inputs translated nothing, without a word. Only checked when inputs are configured."""
    from lrl.config import ConfigError

    t = cfg.translate
    ner = sorted({s.lang for s in cfg.data.ner})
    every = sorted(set(ner) | {s.lang for s in cfg.data.text})
    wanted: list[tuple[str, str, list[str]]] = []
    if t.train is not None and ner:
        wanted += [("translate.train.sources", lang, ner) for lang in t.train.sources]
    if t.backtranslate is not None and every:
        wanted.append(("translate.backtranslate.lang", t.backtranslate.lang, every))
    for setting, lang, have in wanted:
        if lang not in have:
            raise ConfigError(f"{setting}: {lang!r} is the lang of no input (inputs: {', '.join(have)}); "
                              "rows are selected by the exact code their input gives")


def steps(cfg: JobConfig) -> list[Step]:
    """Translate-train then labelled back-translation, as ``cfg.translate`` configures them."""
    t = local_models(cfg.translate, cfg.data.root)
    if not t.enabled:
        return []
    check_langs(cfg)
    out: list[Step] = []
    if t.train is not None:
        out.append(TranslateTrain(t.train, t.projection, cfg.seed))
    if t.backtranslate is not None and t.backtranslate.labelled:
        out.append(BackTranslate(t.backtranslate, t.projection, cfg.seed))
    return out


def text_steps(cfg: JobConfig) -> list[Step]:
    """Back-translation of unlabelled text rows (``TEXT_SCHEMA``), when configured."""
    t = local_models(cfg.translate, cfg.data.root)
    if not t.enabled or t.backtranslate is None or not t.backtranslate.text:
        return []
    return [BackTranslate(t.backtranslate, t.projection, cfg.seed)]
