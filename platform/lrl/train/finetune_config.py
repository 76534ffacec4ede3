"""Config section for token-classification fine-tuning (NER and other IOB2 tagging).

Everything the seed's recipes varied is a typed field here: freezing, layer-wise LR decay,
precision, LR schedule, few-shot, early stopping, CRF head, balanced multilingual sampling and
the original : augmented mix. Checks that need no data run at load: fp16 on CPU, and the freeze
depth of a preset encoder (``check_freeze_depth``); a folder's depth is checked when the stage starts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from lrl.config import StrictModel
from lrl.data.config import check_lang
from lrl.train.schedules import ScheduleConfig


class FinetuneConfig(StrictModel):
    """Token-classification fine-tuning."""

    model: str | None = None
    """Encoder to fine-tune: a Hugging Face folder (safetensors), ``preset:<name>`` for a
    from-scratch model of a ``model.preset`` size (``tiny``, ``micro``, ``small``, ``base``), or
    None to use the pretrain stage's output. A relative folder is read from the working folder;
    hub ids are not downloaded. One that is no folder is an error before any stage runs."""
    data: str | None = None
    """Generated dataset folder (the generate stage's output) to train on; None uses the generate
    stage's output when the pipeline has one, else the ``data.ner`` sources with split=train."""
    mode: Literal["per_language", "joint"] = "per_language"
    """``per_language``: one model per language; ``joint``: one multilingual model for all."""
    languages: list[str] | None = None
    """Languages to fine-tune (ISO 639), each once; None takes every language found in the
    training data (an empty list is an error: use None)."""
    epochs: float = Field(default=3.0, gt=0)
    """Passes over the training data (fractions allowed); ignored when ``max_steps`` is set."""
    max_steps: int | None = Field(default=None, gt=0)
    """Stop after this many optimizer steps (overrides ``epochs``)."""
    batch_size: int = Field(default=16, gt=0)
    """Sentences (chunks) per optimizer step."""
    lr: float = Field(default=5e-5, gt=0)
    """Peak learning rate of the encoder's top layer (and the head)."""
    head_lr: float | None = Field(default=None, gt=0)
    """Learning rate of the classification (and CRF) head; None uses ``lr``."""
    weight_decay: float = Field(default=0.01, ge=0)
    """AdamW weight decay (not applied to biases and LayerNorm weights)."""
    layer_lr_decay: float = Field(default=1.0, gt=0, le=1.0)
    """Layer-wise LR decay: layer i from the top trains at ``lr * decay**i``, embeddings at the
    lowest rate; 1.0 turns it off."""
    freeze_embeddings: bool = False
    """Keep the embedding layer's weights fixed."""
    freeze_layers: int = Field(default=0, ge=0)
    """Keep the bottom k encoder layers fixed (layer-wise tuning); 0 trains all."""
    dropout: float | None = Field(default=None, ge=0, lt=1)
    """Hidden and attention dropout of the encoder and head; None keeps the checkpoint's."""
    grad_clip: float | None = Field(default=1.0, gt=0)
    """Clip the gradient norm to this value; None does not clip."""
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    """Learning-rate schedule (linear, cosine, one_cycle, triangular, constant)."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """``bf16``: autocast on CPU and GPU; ``fp16``: autocast with a GradScaler, GPU only."""
    attention: Literal["auto", "eager", "sdpa"] = "auto"
    """Attention kernel while training, as ``pretrain.attention``: ``auto`` takes ``eager`` for
    bf16 on CPU (a MiniLM bf16 step 1.25x as fast with it and lrl's CPU dropout, docs/benchmarks.md)
    and ``sdpa`` otherwise; on CPU the dropout layers draw 3 elements per random number. Saved
    models do not record the choice."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train: ``auto`` picks CUDA when present. Set ``cuda`` explicitly for fp16 when the
    config is loaded on a CPU-only driver of a GPU cluster."""
    max_length: int = Field(default=128, ge=8)
    """Sub-word pieces per model input. Longer sentences are cut at word boundaries into several
    chunks, so every original token still gets exactly one prediction. At most the encoder's
    position limit (checked when it loads); a ``preset:`` encoder is built with this many."""
    head: Literal["linear", "crf"] = "linear"
    """Tagging head: a linear layer (per-token argmax) or linear + CRF (Viterbi decoding; with BIO
    labels only valid BIO sequences are scored and decoded: no ``I-X`` after ``O``)."""
    lang_tag: bool = True
    """Prepend the language tag token (``[ug]``) when the tokenizer has it, as in pretraining."""
    few_shot: int | dict[str, int] | None = None
    """Train on only k original sentences per language (chosen with the run's seed: a sentence with
    each entity type first when k allows, the rest at random) and the rows generated from them;
    None uses all. A mapping language -> k limits only the languages it names, and the others train
    on all their rows: ``{ug: 10}`` in joint mode is the cross-lingual setting (every sentence of the
    other languages, 10 of ug; rows generated from the ug sentences left out are left out too, their
    translations included); per language, each model's rows are cut by its own language's k only
    (translations into it from other languages kept), or not at all. A key must be a language the
    job fine-tunes (``languages``, else those with train and dev rows)."""
    aug_ratio: float | None = Field(default=None, ge=0)
    """Augmented rows (op != "orig") per original row of the same language in the training mix;
    None keeps every augmented row, 0 uses originals only."""
    sampling_alpha: float = Field(default=1.0, gt=0, le=1.0)
    """Joint mode: sample languages with probability proportional to size**alpha (1.0 is plain
    proportional, smaller values favour small languages, as in pretraining)."""
    eval_every: int | None = Field(default=None, gt=0)
    """Evaluate on dev every N optimizer steps; None evaluates at the end of every epoch."""
    patience: int | None = Field(default=None, gt=0)
    """Early stopping: stop after this many evaluations without a better dev F1 (the ``select_by``
    figure); None never stops early."""
    select_by: Literal["pooled", "language_mean"] = "pooled"
    """The dev figure that early stopping, the kept evaluation and the kept seed follow. ``pooled``:
    span F1 over all dev sentences (the report's ``all`` row of a joint model), where each language
    weighs by its dev entities (WikiANN sw holds 1209 of the 1994 dev entities of the 7 languages,
    so a joint model is chosen mostly for sw); ``language_mean``: the mean of the per-language span
    F1s, every language counting once (selection that favours small languages, as
    ``sampling_alpha < 1`` does in training). With one dev language (``per_language`` mode, every
    Tune search) both are the same figure. The default stays ``pooled``: it is the figure results
    and manifests have always reported as a joint model's dev F1."""
    eval_batch_size: int = Field(default=64, gt=0)
    """Chunks per forward pass when predicting."""
    threads: int | None = Field(default=None, gt=0)
    """torch CPU threads per training run; None keeps torch's default (Ray sets it per task)."""
    num_cpus: float = Field(default=1.0, gt=0)
    """CPUs reserved by each Ray fine-tuning task (seeds and languages run in parallel when the
    cluster has room)."""
    num_gpus: float = Field(default=0.0, ge=0)
    """GPUs reserved by each Ray fine-tuning task."""
    save_model: bool = True
    """Save the best model per language as a Hugging Face folder (with tokenizer and id2label)."""

    @field_validator("languages")
    @classmethod
    def _langs(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        if not v:  # it fine-tuned every language, as None, in a folder of its own (another hash)
            raise ValueError("an empty list selects no language; use null (leave it unset) for every language "
                             "in the training data")
        return unique_langs(v)

    _v_model = field_validator("model")(classmethod(lambda cls, v: check_model(v)))

    @field_validator("few_shot", mode="wrap")
    @classmethod
    def _few_shot(cls, v: Any, handler: ValidatorFunctionWrapHandler) -> int | dict[str, int] | None:
        try:
            out = handler(v)
        except ValidationError:  # one line, not one per member of the union
            raise ValueError("expected k > 0 (original sentences per language), a mapping language -> k "
                             "such as {ug: 10}, or null") from None
        return check_few_shot(out)

    @model_validator(mode="after")
    def _check(self) -> FinetuneConfig:
        if self.precision == "fp16":
            if self.device == "cpu":
                raise ValueError("precision fp16 needs a GPU (GradScaler); on CPU use bf16")
            if self.device == "auto" and not _cuda_available():
                raise ValueError("precision fp16 needs a GPU and none is visible; use bf16 "
                                 "(or set device: cuda when only the workers have GPUs)")
        from lrl.model.config import MAX_POSITIONS

        if (self.model or "").startswith("preset:") and self.max_length > MAX_POSITIONS:
            # A preset is built with max_length positions (model.max_length's limit): found in the
            # stage, after its data was read, the error named model.max_length, unset by the user.
            raise ValueError(f"max_length={self.max_length}: a preset: encoder has at most {MAX_POSITIONS} "
                             "positions")
        if self.languages is not None and (problem := few_shot_outside(self.few_shot, self.languages)):
            raise ValueError(problem + " (finetune.languages)")
        return self


def unique_langs(langs: list[str]) -> list[str]:
    """``langs``, each an ISO 639 code (``check_lang``) listed once: ``[wo, wo]`` trained wo once,
    as ``[wo]`` did, in a folder of its own (the list is part of the output's hash)."""
    out = [check_lang(x) for x in langs]
    seen = [x for i, x in enumerate(out) if x in out[:i]]
    if seen:
        raise ValueError(f"language {seen[0]!r} is listed more than once; list each language once")
    return out


def check_few_shot(value: int | dict[str, int] | None) -> int | dict[str, int] | None:
    """``finetune.few_shot`` after its type: k > 0, or a non-empty mapping of ISO 639 codes to k > 0
    (sorted by language: the same mapping written in another order is the same job)."""
    if value is None or isinstance(value, int):
        if value is not None and value <= 0:
            raise ValueError("k must be greater than 0 (null uses every sentence)")
        return value
    if not value:  # as an empty finetune.languages: say what the user means instead
        raise ValueError("an empty mapping limits no language; use null (leave it unset) for every sentence")
    for lang, k in value.items():
        check_lang(lang)
        if k <= 0:
            raise ValueError(f"{lang}: k must be greater than 0 (leave the language out to use all its sentences)")
    return dict(sorted(value.items()))


def few_shot_outside(value: int | dict[str, int] | None, langs: list[str]) -> str | None:
    """The error line when a ``few_shot`` mapping names a language outside ``langs`` (those the
    job fine-tunes): a typo (``{uq: 10}``) otherwise trained every language on all its sentences."""
    extra = sorted(set(value) - set(langs)) if isinstance(value, dict) else []
    if not extra:
        return None
    return f"finetune.few_shot names {', '.join(extra)}, not among the languages fine-tuned {sorted(langs)}"


def check_model(value: str | None) -> str | None:
    """A ``preset:<name>`` encoder must name a preset (``lrl.model.build.PRESETS``) at load: an
    unknown or empty name (``finetune.model=preset:``) was found only when the stage had read its
    data, and ``--dry-run`` showed it as a plan."""
    if value is None or not value.startswith("preset:"):
        return value
    from lrl.model.build import PRESETS

    name = value.removeprefix("preset:")
    if name not in PRESETS:
        what = f"no model preset {name!r}" if name else "no preset name after 'preset:'"
        raise ValueError(f"{what}; choose " + ", ".join(f"preset:{p}" for p in PRESETS) + ", or a model folder")
    return value


def check_freeze_depth(cfg) -> str | None:
    """The error line (a ``JobConfig`` ``cfg``) when ``finetune.freeze_layers`` exceeds the layers
    of a preset encoder known at load: ``finetune.model=preset:<name>``, or, unset, the preset the
    pretrain stage builds when ``pipeline.stages`` has it and finetune (and tune searches no other
    ``tune.model_path``). The stage found it only once it ran: after building the preset's
    tokenizer, or under ``lrl run`` after pretraining (hours)."""
    from lrl.model.build import PRESETS

    ft = cfg.finetune
    if ft.model is not None:
        name, what = ft.model.removeprefix("preset:"), f"finetune.model={ft.model}"
        if not ft.model.startswith("preset:"):
            return None
    elif ({"pretrain", "finetune"} <= set(cfg.pipeline.stages) and not cfg.tune.model_path
          and not cfg.model.checkpoint and not cfg.pretrain.model_path):
        name, what = cfg.model.preset, f"the pretrain stage's encoder (model.preset={cfg.model.preset})"
    else:
        return None
    layers = PRESETS[name][1]
    if ft.freeze_layers <= layers:
        return None
    return f"finetune.freeze_layers={ft.freeze_layers}: {what} has {layers} layers (choose at most {layers})"


def _cuda_available() -> bool:
    import torch  # only for fp16 configs: keeps plain config loading light

    return torch.cuda.is_available()


def in_ray_task(cfg: FinetuneConfig, reserved: str = "finetune.num_gpus") -> FinetuneConfig:
    """``cfg`` for a run inside a Ray task or Tune trial: there ``device: auto`` means the GPUs Ray
    gave the task (``reserved`` names the setting that asks for them), as the README says.

    Ray 2.60 leaves ``CUDA_VISIBLE_DEVICES`` alone for a task that asked for no GPU, so ``auto``
    saw every GPU of the node: with ``finetune.num_gpus: 0`` (or ``tune.gpus_per_trial: 0``) every
    task of a GPU node would train on its first GPU, which Ray reserved for none of them (a node's
    CPUs' worth of runs on one GPU, beside whatever Ray placed there; read from Ray's code, no GPU
    was at hand). ``cuda`` stays as set."""
    if cfg.device != "auto":
        return cfg
    import ray

    if not ray.is_initialized() or ray.get_gpu_ids():
        return cfg
    if cfg.precision == "fp16":
        raise ValueError(f"finetune.precision=fp16 needs a GPU, and this Ray task reserved none: set {reserved} "
                         "(or use bf16)")
    return cfg.model_copy(update={"device": "cpu"})
