"""Config section for the per-language hyperparameter search (Ray Tune).

The search space is typed: every hyperparameter the fine-tuning loop exposes to search has its own
field (learning-rate bounds, lists of choices for the rest), so a typo is an error at load time
rather than a silently ignored key. The learning rate is always searched; a list left unset is not
searched, and every trial takes that hyperparameter from the ``finetune`` section (a tune-side
default would silently override what the user configured there). ``search=random`` samples the
learning rate log-uniformly and picks the others from their lists; ``search=grid`` crosses every
list with ``lr_grid_points`` log-spaced learning rates.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lrl.config import StrictModel, home
from lrl.train.finetune_config import check_model, unique_langs
from lrl.train.schedules import ScheduleName


class SearchSpace(StrictModel):
    """Hyperparameters searched per language. The learning rate is always searched; a list left
    unset (None) is not searched: every trial uses the ``finetune`` section's value."""

    lr_min: float = Field(default=1e-5, gt=0.0)
    """Lower bound of the learning rate (sampled log-uniformly between ``lr_min`` and ``lr_max``)."""
    lr_max: float = Field(default=1e-3, gt=0.0)
    """Upper bound of the learning rate."""
    lr_grid_points: int = Field(default=3, ge=1)
    """search=grid: number of log-spaced learning rates between the bounds (1 takes their
    geometric mean)."""
    batch_size: list[int] | None = None
    """Batch sizes to choose from; None uses ``finetune.batch_size``."""
    epochs: list[float] | None = None
    """Training epochs to choose from (ASHA may stop a trial before its last epoch); None uses
    ``finetune.epochs`` (``finetune.max_steps``, when set, caps every trial either way)."""
    warmup_ratio: list[float] | None = None
    """Warmup fractions to choose from; None uses ``finetune.schedule.warmup_ratio``. one_cycle
    and triangular have their own rise: their trials train with warmup 0 whatever the choice."""
    freeze_layers: list[int] | None = None
    """Numbers of bottom encoder layers to freeze; None uses ``finetune.freeze_layers``. Checked
    against the encoder's depth before any trial starts."""
    dropout: list[float] | None = None
    """Dropout probabilities (hidden and attention) to choose from; None uses ``finetune.dropout``."""
    schedule: list[ScheduleName] | None = None
    """Learning-rate schedule types to choose from; None uses ``finetune.schedule.type``."""

    @field_validator("batch_size", "epochs", "warmup_ratio", "freeze_layers", "dropout", "schedule")
    @classmethod
    def _choices(cls, v: list | None) -> list | None:
        if v is None:
            return v
        if not v:
            raise ValueError("needs at least one choice (leave it unset to use the finetune section's value)")
        # Rejected rather than de-duplicated with a warning: every trial of a language trains with
        # the same seed, so a repeated choice buys an identical trial in a grid (and doubles that
        # choice's odds under search=random, where Tune's choice() weights by count). A repeat is
        # far more often a typo ([16, 16] meant as [16, 32]) than an intent, and a warning would be
        # lost among Ray Tune's log lines while the search the user wrote silently differs.
        seen = [x for i, x in enumerate(v) if x in v[:i]]
        if seen:
            raise ValueError(f"choice {seen[0]!r} is listed more than once; list each choice once")
        return v

    @field_validator("batch_size", "epochs")
    @classmethod
    def _positive(cls, v: list | None) -> list | None:
        if v is not None and any(x <= 0 for x in v):
            raise ValueError(f"choices must be > 0, got {v}")
        return v

    @field_validator("warmup_ratio", "dropout")
    @classmethod
    def _fraction(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and any(not 0.0 <= x < 1.0 for x in v):
            raise ValueError(f"choices must be in [0, 1), got {v}")
        return v

    @field_validator("freeze_layers")
    @classmethod
    def _non_negative(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(x < 0 for x in v):
            raise ValueError(f"choices must be >= 0, got {v}")
        return v

    @model_validator(mode="after")
    def _bounds(self) -> SearchSpace:
        if self.lr_min > self.lr_max:
            raise ValueError(f"lr_min {self.lr_min} is above lr_max {self.lr_max}")
        return self

    def lists(self) -> dict[str, list]:
        """The searched lists (set fields only) by name, in a fixed order."""
        names = ("batch_size", "epochs", "warmup_ratio", "freeze_layers", "dropout", "schedule")
        return {n: list(getattr(self, n)) for n in names if getattr(self, n) is not None}


class TuneConfig(StrictModel):
    """Per-language hyperparameter search with Ray Tune (function trainables, ASHA by default)."""

    languages: list[str] | None = None
    """Languages to search, each once, one independent search (and ASHA scheduler) each. None (or
    an empty list) falls back to ``finetune.languages``, and when that is unset too, to every
    language that has both train and dev rows. A listed language without both is an error before
    any trial."""
    space: SearchSpace = Field(default_factory=SearchSpace)
    """The search space."""
    search: Literal["random", "grid"] = "random"
    """``random``: ``num_samples`` random draws; ``grid``: every combination of the space once."""
    num_samples: int = Field(default=4, ge=1)
    """Trials per language for search=random (search=grid runs the full grid once)."""
    scheduler: Literal["asha", "fifo"] = "asha"
    """``asha`` stops weak trials early at rungs of dev evaluations; ``fifo`` runs every trial to
    its end. Every trial is seeded, but with several trials at once ASHA's decisions depend on the
    order their reports arrive, so a rerun of the search may stop other trials and choose another
    configuration; ``fifo`` or ``max_concurrent: 1`` make the search repeatable."""
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
    """Encoder folder to fine-tune (read as ``finetune.model`` is); None uses the pretrain stage's
    output or the finetune section's model."""
    save_best: bool = True
    """Retrain the best configuration of each language once and save it as a Hugging Face folder
    with a model card (see ``lrl.tune.search`` for why it retrains rather than copies)."""
    storage_path: str | None = None
    """Where Ray Tune keeps its trial folders (local path or URI reachable by every node), one
    folder per search and language (``tune-<hash>-<lang>``, the hash of the stage's output; each
    trial's folder is ``trial_dir`` in trials.json); None uses a temporary local folder that is
    removed after the search. Not part of the output's hash:
    the results are the same wherever the trial folders live."""

    _v_storage = field_validator("storage_path")(classmethod(lambda cls, v: home(v)))

    @model_validator(mode="after")
    def _rungs(self) -> TuneConfig:
        # Ray's ASHAScheduler asserts this when the search starts: after the stages before tune
        # (pretraining: hours) had run, the stage failed with a bare "grace_period must be <= max_t!".
        if self.scheduler == "asha" and self.grace_period > self.max_t:
            raise ValueError(f"grace_period {self.grace_period} is above max_t {self.max_t}: ASHA's first rung "
                             "would come after its last (set grace_period <= max_t)")
        return self

    _v_model = field_validator("model_path")(classmethod(lambda cls, v: check_model(v)))  # as finetune.model

    @field_validator("languages")
    @classmethod
    def _langs(cls, v: list[str] | None) -> list[str] | None:
        # [] means the same as None (see above): one spelling, so both find the same output folder.
        return unique_langs(v) if v else None
