"""Config section for evaluation."""

from __future__ import annotations

from lrl.config import StrictModel


class EvaluateConfig(StrictModel):
    """Evaluation of tagging models."""

    seeds: list[int] = [0]
    """Seeds to run and aggregate (mean and sd)."""
