"""Config section for evaluation: seeds to aggregate over, which splits to score, what to write."""

from __future__ import annotations

from pydantic import Field, field_validator

from lrl.config import StrictModel


class EvaluateConfig(StrictModel):
    """Evaluation of tagging models."""

    seeds: list[int] = [0]
    """Seeds to run and aggregate (mean and sd): the finetune stage trains one model per seed, and
    the tune stage retrains its best configuration once per seed (the best seed's model is saved)."""
    model: str | None = None
    """Model(s) to evaluate: a tagger folder (HF token-classification), or a finetune/tune output
    folder (every ``models/<name>/`` in it); None uses the pipeline's finetune (or tune) output.
    A relative folder is read from the working folder; one that is no folder is an error before
    any stage runs."""
    splits: list[str] = ["dev", "test"]
    """``data.ner`` splits to evaluate on (those absent from the config are skipped; when none is
    there, ``lrl run`` and ``lrl evaluate`` stop before the first stage or model, as their
    ``--dry-run`` do)."""
    batch_size: int = Field(default=64, gt=0)
    """Chunks per forward pass when predicting."""
    device: str = "cpu"
    """Device to predict on: ``cpu``, or ``cuda`` (``cuda:N``), a GPU of the process that runs the
    stage: ``lrl run`` itself, not a Ray worker (on the shipped clusters the head, which has none)."""

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("at least one seed")
        if len(set(v)) != len(v):
            raise ValueError(f"seeds repeat: {v}")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        # Checked at load: ``auto`` (finetune's default) or ``gpu`` failed only when the stage
        # started predicting, after the stages before it had run.
        import re

        if v != "cpu" and not re.fullmatch(r"cuda(:\d+)?", v):
            raise ValueError(f"{v!r}: use cpu, cuda or cuda:N")
        return v
