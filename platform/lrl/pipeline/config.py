"""Config section for a pipeline run (which stages, in what order)."""

from __future__ import annotations

from lrl.config import StrictModel


class PipelineConfig(StrictModel):
    """Which stages ``lrl run`` chains."""

    stages: list[str] = []
    """Stages to run, in order."""
