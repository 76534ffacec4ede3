"""Config section for token-classification fine-tuning."""

from __future__ import annotations

from lrl.config import StrictModel


class FinetuneConfig(StrictModel):
    """Token-classification fine-tuning."""

    epochs: int = 3
    """Training epochs."""
