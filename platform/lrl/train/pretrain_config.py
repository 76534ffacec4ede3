"""Config section for multilingual masked-LM pretraining."""

from __future__ import annotations

from lrl.config import StrictModel


class PretrainConfig(StrictModel):
    """Multilingual masked-LM pretraining on Ray Train with DeepSpeed."""

    steps: int = 100
    """Optimizer steps."""
