"""Config section for the per-language hyperparameter search (Ray Tune).

The search space is typed: every hyperparameter the fine-tuning loop exposes to search has its own
field (learning-rate bounds, lists of choices for the rest), so a typo is an error at load time
rather than a silently ignored key. ``search=random`` samples the learning rate log-uniformly and
picks the others from their lists; ``search=grid`` crosses every list with ``lr_grid_points``
log-spaced learning rates.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lrl.config import StrictModel
from lrl.train.schedules import ScheduleName


class SearchSpace(StrictModel):
    """Hyperparameters searched per language (the rest come from the ``finetune`` section)."""

    lr_min: float = Field(default=1e-5, gt=0.0)
    """Lower bound of the learning rate (sampled log-uniformly between ``lr_min`` and ``lr_max``)."""
    lr_max: float = Field(default=1e-3, gt=0.0)
    """Upper bound of the learning rate."""
    lr_grid_points: int = Field(default=3, ge=1)
    """search=grid: number of log-spaced learning rates between the bounds (1 takes their
    geometric mean)."""
    batch_size: list[int] = [16, 32]
    """Batch sizes to choose from."""
    epochs: list[float] = [3.0]
    """Training epochs to choose from (ASHA may stop a trial before its last epoch)."""
    warmup_ratio: list[float] = [0.0, 0.1]
    """Warmup fractions to choose from (set to 0 for one_cycle and triangular, which have their
    own shape)."""
    freeze_layers: list[int] = [0]
    """Numbers of bottom encoder layers to freeze (``finetune.freeze_layers``)."""
    dropout: list[float] = [0.1]
    """Dropout probabilities (hidden and attention) to choose from."""
    schedule: list[ScheduleName] = ["linear"]
    """Learning-rate schedule types to choose from."""

    @field_validator("batch_size", "epochs", "warmup_ratio", "freeze_layers", "dropout", "schedule")
    @classmethod
    def _non_empty(cls, v: list) -> list:
        if not v:
            raise ValueError("needs at least one choice")
        return v

    @field_validator("batch_size", "epochs")
    @classmethod
    def _positive(cls, v: list) -> list:
        if any(x <= 0 for x in v):
            raise ValueError(f"choices must be > 0, got {v}")
        return v

    @field_validator("warmup_ratio", "dropout")
    @classmethod
    def _fraction(cls, v: list[float]) -> list[float]:
        if any(not 0.0 <= x < 1.0 for x in v):
            raise ValueError(f"choices must be in [0, 1), got {v}")
        return v

    @field_validator("freeze_layers")
    @classmethod
    def _non_negative(cls, v: list[int]) -> list[int]:
        if any(x < 0 for x in v):
            raise ValueError(f"choices must be >= 0, got {v}")
        return v

    @model_validator(mode="after")
    def _bounds(self) -> SearchSpace:
        if self.lr_min > self.lr_max:
            raise ValueError(f"lr_min {self.lr_min} is above lr_max {self.lr_max}")
        return self


class TuneConfig(StrictModel):
    """Per-language hyperparameter search with Ray Tune (function trainables, ASHA by default)."""

    languages: list[str] | None = None
    """Languages to search (one independent search each); None takes every language that has
    both train and dev data."""
    space: SearchSpace = Field(default_factory=SearchSpace)
    """The search space."""
    search: Literal["random", "grid"] = "random"
    """``random``: ``num_samples`` random draws; ``grid``: every combination of the space once."""
    num_samples: int = Field(default=4, ge=1)
    """Trials per language for search=random (search=grid runs the full grid once)."""
    scheduler: Literal["asha", "fifo"] = "asha"
    """``asha`` stops weak trials early at rungs of dev evaluations; ``fifo`` runs every trial to
    its end."""
    grace_period: int = Field(default=1, ge=1)
    """ASHA: dev evaluations every trial gets before it may be stopped."""
    reduction_factor: float = Field(default=2.0, gt=1.0)
    """ASHA: only the top 1/reduction_factor of trials at a rung continue."""
    max_t: int = Field(default=100, ge=1)
    """ASHA: most dev evaluations any trial runs (the last rung)."""
    cpus_per_trial: float = Field(default=1.0, gt=0.0)
    """CPUs reserved per trial (also the torch thread count of the trial, at least 1)."""
    gpus_per_trial: float = Field(default=0.0, ge=0.0)
    """GPUs reserved per trial (set with ``finetune.device`` auto or cuda to train on them)."""
    max_concurrent: int | None = Field(default=None, ge=1)
    """Most trials running at once; None lets the cluster's CPUs / cpus_per_trial decide."""
    model_path: str | None = None
    """Encoder folder to fine-tune; None uses the pretrain stage's output or the finetune
    section's model."""
    save_best: bool = True
    """Retrain the best configuration of each language once and save it as a Hugging Face folder
    with a model card (see ``lrl.tune.search`` for why it retrains rather than copies)."""
    storage_path: str | None = None
    """Where Ray Tune keeps its trial folders (local path or URI reachable by every node); None
    uses a temporary local folder that is removed after the search. Not part of the output's hash:
    the results are the same wherever the trial folders live."""

    @field_validator("languages")
    @classmethod
    def _langs(cls, v: list[str] | None) -> list[str] | None:
        from lrl.data.config import check_lang

        return None if v is None else [check_lang(x) for x in v]
