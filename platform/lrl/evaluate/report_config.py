"""Config section for the HTML report and the model cards."""

from __future__ import annotations

from pydantic import Field, field_validator

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
    references: dict[str, dict[str, float]] = {}
    """Scores to show beside the run's own, per language, in percent (span F1, or token F1 for a
    tagger): ``{ug: {"MicroBERT MLM+XPOS, test split (Gessler & Zeldes 2022)": 85.45}}``. Shown as
    given, in a table of their own next to the run's dev F1 per language. Name the source and the
    split in the key: published figures are often on another split (WikiANN ug and wo: test)."""

    @field_validator("references")
    @classmethod
    def _percent(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        # 0 < x <= 1 is a fraction given for a percentage (0.8545 for 85.45), not a 0.85% F1
        bad = [f"{lang}: {name} = {x}" for lang, refs in v.items() for name, x in refs.items()
               if not 0 <= x <= 100 or 0 < x <= 1]
        if bad:
            raise ValueError(f"scores are in percent, 85.45 not 0.8545: {'; '.join(bad)}")
        return v
