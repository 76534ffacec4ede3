"""Config section for the HTML report."""

from __future__ import annotations

from lrl.config import StrictModel


class ReportConfig(StrictModel):
    """The HTML report."""

    title: str = "lrl report"
    """Title of the report."""
