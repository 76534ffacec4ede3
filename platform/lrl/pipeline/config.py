"""Config section for a pipeline run: which stages ``lrl run`` chains, and how ``lrl submit``
sends the run to a Ray cluster."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lrl.config import StrictModel, home

StageName = Literal["generate", "tokenizer", "pretrain", "finetune", "tune", "evaluate", "report"]

#: The order stages always run in; a pipeline lists a subsequence of it.
ORDER: tuple[str, ...] = ("generate", "tokenizer", "pretrain", "finetune", "tune", "evaluate", "report")


class SubmitConfig(StrictModel):
    """How ``lrl submit`` sends ``lrl run`` to a cluster through the Ray Jobs API."""

    address: str = "http://127.0.0.1:8265"
    """Dashboard (job server) address of the cluster; reach remote clusters through an SSH tunnel or
    ``kubectl port-forward`` rather than exposing the dashboard."""
    working_dir: str = "."
    """Folder uploaded as the job's working directory (job files, configs); the ``lrl`` package
    itself travels separately as a py_module."""
    excludes: list[str] = [".git", "runs", "**/__pycache__", "*.egg-info", ".venv", "docs", ".hypothesis",
                           ".pytest_cache", "benchmarks/out"]
    """Patterns left out of the uploaded working directory, besides what .gitignore excludes (Ray
    2.60's job server takes uploads of at most 100 MiB: a 506 MiB working directory was refused)."""
    pip: list[str] = []
    """Extra pip requirements installed for the job (e.g. ``[seqeval, langid]``); empty installs
    nothing and relies on the cluster image."""
    image_uri: str | None = None
    """Container image to run the job in instead of installing pip packages (Ray ``image_uri``)."""
    forward_env: list[str] = ["HF_TOKEN", "WANDB_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    """Environment variables copied from the submitting shell into the job when set there, so secrets
    come from the environment and never from committed configs (``AWS_SESSION_TOKEN`` goes along
    with forwarded AWS keys; ``--dry-run`` shows the values as ``***``)."""
    entrypoint_num_cpus: float = Field(default=0, ge=0)
    """CPUs reserved for the driver (``lrl run``) itself; 0 lets it run beside the stages."""

    @model_validator(mode="after")
    def _pip_or_image(self) -> SubmitConfig:
        if self.image_uri and self.pip:
            raise ValueError("set either pipeline.submit.pip or pipeline.submit.image_uri, not both "
                             "(Ray cannot install pip packages into an image_uri job)")
        return self


class PipelineConfig(StrictModel):
    """Which stages ``lrl run`` chains, in order; each stage's output folder is named by a hash of
    its config and of its upstream outputs, so a re-run skips what is finished."""

    stages: list[StageName] = ["generate", "tokenizer", "pretrain", "finetune", "evaluate", "report"]
    """Stages to run, in this order: generate, tokenizer, pretrain, finetune or tune, evaluate,
    report (any subsequence)."""
    state: str | None = None
    """File recording each stage's output folder and timings (what ``--from``/``--only`` reuse);
    None writes ``<output.root>/pipeline-<hash of name and stages>.json``."""

    _v_state = field_validator("state")(classmethod(lambda cls, v: home(v)))
    submit: SubmitConfig = Field(default_factory=SubmitConfig)
    """Cluster submission (``lrl submit``)."""

    @field_validator("stages")
    @classmethod
    def _ordered(cls, stages: list[str]) -> list[str]:
        if not stages:
            raise ValueError("pipeline.stages is empty: list at least one stage")
        if len(set(stages)) != len(stages):
            raise ValueError(f"a stage is listed twice in {stages}")
        positions = [ORDER.index(s) for s in stages]
        if positions != sorted(positions):
            raise ValueError(f"stages {stages} are out of order; they run as {' -> '.join(ORDER)}")
        if "finetune" in stages and "tune" in stages:
            raise ValueError("choose finetune or tune (tune already trains the best model per language)")
        return stages
