"""Config sections for machine translation (translate-train, back-translation) and quality filters."""

from __future__ import annotations

from lrl.config import StrictModel


class TranslateConfig(StrictModel):
    """Machine translation for data generation."""

    enabled: bool = False
    """Run translate-train / back-translation in the generate stage."""


class FilterConfig(StrictModel):
    """Quality filters applied after generation."""

    ops: list[str] = []
    """Filters to apply, by name."""
