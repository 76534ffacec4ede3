"""Config section for the HTML report and the model cards."""

from __future__ import annotations

from pydantic import Field

from lrl.config import StrictModel


class ReportConfig(StrictModel):
    """The self-contained HTML report of a run (``lrl report``) and what model cards state."""

    title: str = "lrl report"
    """Title of the report."""
    finetune: str | None = None
    """Finetune stage output folder to report; None uses the pipeline's upstream ``finetune``."""
    evaluate: str | None = None
    """Evaluate stage output folder; None uses the pipeline's upstream ``evaluate``."""
    tune: str | None = None
    """Tune stage output folder; None uses the pipeline's upstream ``tune``."""
    pretrain: str | None = None
    """Pretrain stage output folder (loss and perplexity curves); None uses the upstream ``pretrain``."""
    generate: str | None = None
    """Generate stage output folder (rows per operation, rejects); None uses the upstream ``generate``."""
    max_prediction_rows: int = Field(default=200_000, gt=0)
    """Read at most this many predicted sentences for the confusion matrix (bounds memory)."""
    license: str = "other"
    """License written into model cards (a Hugging Face Hub identifier such as ``apache-2.0`` or
    ``cc-by-sa-4.0``); ``other`` until the data's licenses are settled (WikiANN states none).
    The finetune and tune stages write the cards, so it is part of their output hashes."""
