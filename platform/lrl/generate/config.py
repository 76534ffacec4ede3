"""Config sections of the generate stage: augmentation and oversampling.

(Translation and quality filters have their own sections in ``translate``/``filter``.)
"""

from __future__ import annotations

from lrl.config import StrictModel


class AugmentConfig(StrictModel):
    """Augmentation operations applied to labelled rows."""

    ops: list[str] = []
    """Operations to apply, by name (e.g. ``[swap, mention]``)."""


class OversampleConfig(StrictModel):
    """Oversampling to target counts by language and by rare entity type."""

    enabled: bool = False
    """Oversample after augmentation."""
