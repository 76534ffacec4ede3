"""The one typed config of every lrl job: a section per stage, each owned by its stage's package.

``lrl generate jobs/x.yaml augment.ops=[swap]`` and ``lrl run jobs/x.yaml`` read the same file;
each command uses the sections it needs and ignores (but still validates) the others.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from lrl.config import ConfigError, StrictModel, load_tree, validate, yaml_lines
from lrl.data.config import DataConfig, OutputConfig
from lrl.evaluate.config import EvaluateConfig
from lrl.evaluate.report_config import ReportConfig
from lrl.generate.config import AugmentConfig, OversampleConfig
from lrl.generate.mt_config import FilterConfig, TranslateConfig
from lrl.model.config import MAX_POSITIONS, ModelConfig, TokenizerConfig
from lrl.pipeline.config import PipelineConfig
from lrl.runtime import RayConfig
from lrl.train.finetune_config import FinetuneConfig, check_freeze_depth
from lrl.train.pretrain_config import PretrainConfig
from lrl.tune.config import TuneConfig


class JobConfig(StrictModel):
    """A whole lrl job. Every section has defaults; a file only states what differs."""

    name: str = "job"
    """Name of the job (used in reports and model cards). One run of a job at a time uses an
    ``output.root`` (local, or an object store through a lease object): a second one stops at once
    (``lrl.data.root_lock.root_lock``)."""
    seed: int = 0
    """Base random seed of generation (augmentation, oversampling, translation steps), of
    pretraining and of a ``preset:`` encoder, and of tune's search. Fine-tuning runs once per seed
    of ``evaluate.seeds`` instead, so this one does not change a fine-tuned model."""
    ray: RayConfig = Field(default_factory=RayConfig)
    """How to reach Ray."""
    data: DataConfig = Field(default_factory=DataConfig)
    """Inputs."""
    output: OutputConfig = Field(default_factory=OutputConfig)
    """Where stage outputs are written."""
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    """Augmentation operations (generate stage)."""
    translate: TranslateConfig = Field(default_factory=TranslateConfig)
    """Machine translation (generate stage)."""
    filter: FilterConfig = Field(default_factory=FilterConfig)
    """Quality filters (generate stage)."""
    oversample: OversampleConfig = Field(default_factory=OversampleConfig)
    """Oversampling (generate stage)."""
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    """Tokenizer training or extension."""
    model: ModelConfig = Field(default_factory=ModelConfig)
    """Model preset or checkpoint."""
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    """Multilingual masked-LM pretraining."""
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    """Token-classification fine-tuning."""
    tune: TuneConfig = Field(default_factory=TuneConfig)
    """Hyperparameter search."""
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    """Evaluation."""
    report: ReportConfig = Field(default_factory=ReportConfig)
    """HTML report."""
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    """Stages chained by ``lrl run``."""


def load_job(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> JobConfig:
    """Load and validate a job file plus overrides. ``data.root`` defaults to the file's folder."""
    tree = load_tree(path, overrides)
    if path is not None:
        data = tree.setdefault("data", {}) if isinstance(tree.get("data", {}), dict) else tree.get("data")
        if isinstance(data, dict) and data.get("root") is None:
            data["root"] = str(Path(path).resolve().parent)
    origin = str(path or "config")
    lines = yaml_lines(Path(path).read_text(encoding="utf-8")) if path is not None else None
    cfg = validate(JobConfig, tree, origin=origin, lines=lines, overrides=overrides)
    assert isinstance(cfg, JobConfig)
    if cfg.translate.enabled:
        # Translate's languages against data's inputs, across sections. The generate stage checked
        # them only when it built its steps: --dry-run, every other command, and the stages before
        # generate passed a ``sources: [eng_Latn]`` over ``en`` inputs that would translate nothing.
        from lrl.generate.translate import check_langs

        try:
            check_langs(cfg)
        except ConfigError as exc:
            raise ConfigError(f"{origin}: invalid configuration\n  {exc}") from None
    if (cfg.tune.model_path or "").startswith("preset:") and cfg.finetune.max_length > MAX_POSITIONS:
        # finetune's own check sees finetune.model only; tune builds its preset with the same positions.
        raise ConfigError(f"{origin}: invalid configuration\n  finetune.max_length={cfg.finetune.max_length}: "
                          f"tune.model_path={cfg.tune.model_path} builds a preset: encoder of at most "
                          f"{MAX_POSITIONS} positions")
    if (problem := check_freeze_depth(cfg)) is not None:
        raise ConfigError(f"{origin}: invalid configuration\n  {problem}")
    return cfg


def encoder_setting(cfg: JobConfig, stage: str) -> tuple[str, str | None]:
    """(The setting that names the encoder ``stage`` fine-tunes, its value): ``tune.model_path`` for
    the tune stage when set, else ``finetune.model`` (None: the pretrain stage's output). One place
    for the choice that the stages, ``lrl run``'s preflight and the dry runs each made."""
    if stage == "tune" and cfg.tune.model_path:
        return "tune.model_path", cfg.tune.model_path
    return "finetune.model", cfg.finetune.model


def packaged_job(name: str) -> Path:
    """Path of a job file that ships inside the package (``lrl/resources/<name>.yaml``)."""
    return Path(__file__).parent / "resources" / f"{name}.yaml"
