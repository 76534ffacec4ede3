"""Config sections for tokenizers and models."""

from __future__ import annotations

from lrl.config import StrictModel


class TokenizerConfig(StrictModel):
    """Train a tokenizer or extend an existing one."""

    vocab_size: int = 8000
    """Vocabulary size of a newly trained tokenizer."""


class ModelConfig(StrictModel):
    """Which encoder to build or load."""

    preset: str = "micro"
    """Named size preset, or ignored when ``checkpoint`` is set."""
