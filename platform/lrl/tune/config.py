"""Config section for hyperparameter search."""

from __future__ import annotations

from lrl.config import StrictModel


class TuneConfig(StrictModel):
    """Per-language hyperparameter search with Ray Tune."""

    num_samples: int = 4
    """Trials per language."""
