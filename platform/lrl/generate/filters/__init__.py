"""Quality filters for generated data: language ID, length ratio, exact and near-duplicate
removal, projection consistency. Each marks rows with a ``reject`` reason instead of dropping
them, so the generate runner can move them to the rejects dataset and count the reasons.

``steps(cfg)`` gives the configured filters for labelled rows, ``text_steps(cfg)`` those that
apply to text rows (all but ``projection``); both follow ``lrl.generate.base.Step``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lrl.generate.filters.consistency import ProjectionFilter
from lrl.generate.filters.dedup import ExactDedup, NearDedup
from lrl.generate.filters.length import LengthRatioFilter
from lrl.generate.filters.lid import LangIdFilter
from lrl.generate.mt_config import FilterConfig

if TYPE_CHECKING:
    from lrl.generate.base import Step
    from lrl.job import JobConfig

__all__ = ["ExactDedup", "LangIdFilter", "LengthRatioFilter", "NearDedup", "ProjectionFilter",
           "build", "steps", "text_steps"]


def build(f: FilterConfig, name: str) -> Step:
    """The filter called ``name`` (one of ``FilterConfig.ops``) with its settings."""
    if name == "lid":
        return LangIdFilter(f.lid_langs, f.lid_candidates, f.lid_min_prob, f.scope, f.lid_min_chars)
    if name == "length_ratio":
        return LengthRatioFilter(f.min_ratio, f.max_ratio, f.scope)
    if name == "dedup":
        return ExactDedup(f.dedup_case, f.dedup_scope)
    if name == "near_dedup":
        return NearDedup(f.near_threshold, f.shingle, f.num_perm, f.bands, f.dedup_scope)
    if name == "projection":
        return ProjectionFilter()
    raise ValueError(f"unknown filter {name!r}")


def steps(cfg: JobConfig) -> list[Step]:
    """The filters of ``cfg.filter.ops`` in order, for labelled rows."""
    return [build(cfg.filter, name) for name in cfg.filter.ops]


def text_steps(cfg: JobConfig, generated: bool = True) -> list[Step]:
    """The filters of ``cfg.filter.ops`` that apply to text rows (projection needs tags).

    ``generated=False``: no step makes text rows (no back-translation), so only the filters that
    may reject a row as read are kept (``rejects_originals``). The others judged every text line
    and rejected none: with ``lid, dedup, near_dedup`` and the ``generated`` scopes, 9,000 lines of
    mono text cost ~10 of a 24 s generate run on 2 CPUs, for nothing."""
    return [build(cfg.filter, name) for name in cfg.filter.ops
            if name != "projection" and (generated or rejects_originals(cfg.filter, name))]


def rejects_originals(f: FilterConfig, name: str) -> bool:
    """Whether filter ``name`` may reject a row read from the inputs (op ``orig``): ``lid`` with
    ``scope: all``, the dedup filters with ``dedup_scope: all``; never ``length_ratio`` nor
    ``projection``, which compare a translation with its source."""
    if name in ("dedup", "near_dedup"):
        return f.dedup_scope == "all"
    return name == "lid" and f.scope == "all"
