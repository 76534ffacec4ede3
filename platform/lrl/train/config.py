"""Config sections for pretraining and fine-tuning."""

from __future__ import annotations

from lrl.config import StrictModel


class PretrainConfig(StrictModel):
    """Multilingual masked-LM pretraining on Ray Train with DeepSpeed."""

    steps: int = 100
    """Optimizer steps."""


class FinetuneConfig(StrictModel):
    """Token-classification fine-tuning."""

    epochs: int = 3
    """Training epochs."""
