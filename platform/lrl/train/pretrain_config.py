"""Config section for multilingual masked-LM pretraining (Ray Train + DeepSpeed or plain DDP)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lrl.config import StrictModel
from lrl.train.schedules import ScheduleConfig


class MaskingConfig(StrictModel):
    """Masked-LM corruption: which tokens are predicted and how their inputs are replaced."""

    rate: float = Field(default=0.15, gt=0.0, lt=1.0)
    """Fraction of maskable tokens (or words, with whole_word) selected for prediction."""
    mask_fraction: float = Field(default=0.8, ge=0.0, le=1.0)
    """Of the selected tokens, the fraction replaced by the mask token (BERT: 0.8)."""
    random_fraction: float = Field(default=0.1, ge=0.0, le=1.0)
    """Of the selected tokens, the fraction replaced by a random ordinary token (BERT: 0.1);
    the rest keep their input."""
    whole_word: bool = False
    """Select whole words (all sub-word pieces of a word together) instead of single pieces."""

    @model_validator(mode="after")
    def _check(self) -> MaskingConfig:
        if self.mask_fraction + self.random_fraction > 1.0:
            raise ValueError("mask_fraction + random_fraction must be <= 1")
        return self


class AuxTaskConfig(StrictModel):
    """Optional auxiliary token tagging (UPOS/XPOS from CoNLL-U) on the same encoder."""

    conllu: list[str] = []
    """CoNLL-U files (resolved against data.root); empty turns the auxiliary task off."""
    lang: str = "ug"
    """Language of the CoNLL-U sentences (its tag token is prepended like in MLM)."""
    column: Literal["upos", "xpos"] = "xpos"
    """Which tag column to predict (MicroBERT's best Uyghur NER variant used XPOS)."""
    every: int = Field(default=4, ge=2)
    """Every k-th optimizer step is an auxiliary tagging step instead of an MLM step."""
    weight: float = Field(default=1.0, gt=0.0)
    """Multiplier of the tagging loss on auxiliary steps."""


class DeepSpeedSection(StrictModel):
    """DeepSpeed settings used when ``engine: deepspeed``."""

    zero_stage: Literal[0, 1, 2, 3] = 2
    """ZeRO stage (0 off, 1 optimizer state, 2 + gradients, 3 + parameters partitioned)."""
    config_file: str | None = None
    """A full user ds_config JSON (resolved against data.root when relative); merged over the
    generated one (its keys win, and the ones it changes are logged as a warning, once per run),
    then checked against the batch, precision and ``zero_stage`` settings here (a mismatch is an
    error). A top-level key the installed DeepSpeed does not read (which it would ignore, e.g. a
    typo) is an error naming the nearest key it knows, and what DeepSpeed's own config check refuses
    (an unknown key inside a section) is an error before Ray starts. An ``optimizer`` section replaces
    ``pretrain.lr``, ``weight_decay`` and, with ``client_optimizer``, torch's AdamW (said in the
    warning); the schedule stays ``pretrain.schedule``, and a ``scheduler`` section is an error."""
    client_optimizer: bool = True
    """Pass ``torch.optim.AdamW`` to ``deepspeed.initialize`` instead of DeepSpeed's own Adam,
    whose fused/CPU kernel compiles for 30-40 s on first use on CPU."""


class PretrainConfig(StrictModel):
    """Multilingual masked-LM pretraining on Ray Train with DeepSpeed."""

    engine: Literal["deepspeed", "torch"] = "deepspeed"
    """Training engine: DeepSpeed (ZeRO, its mixed precision) or plain PyTorch (DDP, autocast)."""
    tokenizer_path: str | None = None
    """Tokenizer folder; None uses the tokenizer stage's output (running it when needed)."""
    model_path: str | None = None
    """Start from this HF MLM folder instead of building ``model`` fresh."""
    steps: int = Field(default=100, ge=0)
    """Optimizer steps. 0 trains nothing: the stage's folder holds the starting model as built
    (``model.checkpoint`` with its embeddings grown for an extended tokenizer, or a fresh
    ``model``) and its held-out perplexity, for fine-tuning an extended checkpoint without
    masked-LM training (on WikiANN yo that beat 927 steps of it: jobs/minilm_yo.yaml). The other
    training settings then do nothing; ``model_path`` and ``aux`` are errors with it."""
    batch_size: int = Field(default=16, gt=0)
    """Sequences per micro batch per worker."""
    seq_len: int = Field(default=128, ge=8)
    """Length of the packed sequences (tokens, including [CLS], language tag and [SEP])."""
    grad_accum: int = Field(default=1, gt=0)
    """Micro batches per optimizer step (gradient accumulation)."""
    lr: float = Field(default=5e-4, gt=0.0)
    """Peak learning rate."""
    weight_decay: float = Field(default=0.01, ge=0.0)
    """AdamW weight decay."""
    clip_norm: float | None = Field(default=1.0, gt=0.0)
    """Clip the gradient norm to this value; None disables clipping."""
    precision: Literal["bf16", "fp32", "fp16"] = "bf16"
    """Numeric precision: DeepSpeed's bf16 mode or torch bf16 autocast; fp16 needs a GPU."""
    attention: Literal["auto", "eager", "sdpa"] = "auto"
    """Attention kernel while training: ``auto`` takes ``eager`` (plain matmuls) for bf16 on CPU and
    ``sdpa`` otherwise. On this machine's CPU, torch 2.13's fused bf16 attention backward took a
    third of a micro-preset step; eager made the step 1.8x faster (docs/benchmarks.md, MFU). On CPU
    eager runs as ``lrl_eager``: the same computation with dropout drawn 3 elements per random
    number (``lrl.train.fast_dropout``; the dropout layers too). Saved models do not record the
    choice."""
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    """Learning-rate schedule (warmup + decay, one_cycle, ...)."""
    deepspeed: DeepSpeedSection = Field(default_factory=DeepSpeedSection)
    """DeepSpeed settings; with ``engine: torch`` they do nothing (a changed one is warned about, and
    the output's hash leaves them out)."""
    masking: MaskingConfig = Field(default_factory=MaskingConfig)
    """Masked-LM corruption."""
    aux: AuxTaskConfig = Field(default_factory=AuxTaskConfig)
    """Optional auxiliary tagging task."""
    alpha: float = Field(default=0.3, gt=0.0, le=1.0)
    """Sampling temperature exponent: p(lang) is proportional to n_lang**alpha, n_lang being the
    language's training rows (text lines, not tokens; 0.3 XLM-R, 0.7 mBERT, 1.0 keeps the natural
    mixture). A language of short lines gets a smaller share of the tokens than of the rows
    (``stream_mixture`` in metrics.json: mono/am's 14 words a line against wo's 58). A small
    language's share is reached by repeating its rows; a stream that repeats a language's rows
    more than 10 times per epoch is warned about."""
    sample_rows: int | None = Field(default=None, gt=0)
    """Rows in the resampled training stream; None: the fewest in which every training row of every
    language appears at least once at its alpha share (the training rows themselves at alpha 1).
    A smaller stream leaves out the same rows of the largest languages in every epoch."""
    driver_pack_rows: int = Field(default=20_000, ge=0)
    """Text rows up to which the training stream is tokenized and packed in the driver instead of
    in Ray Data tasks (same sequences, same order). Ray Data's workers first import transformers:
    7.5k lines took ~10 s through Ray Data on 2 CPUs and ~1 s in the driver. 0 always uses Ray Data.
    The two paths cut the stream into different blocks, and the loop's local shuffle buffer fills
    block by block, so the trained weights differ between them (hence part of the output's hash)."""
    heldout_fraction: float = Field(default=0.05, ge=0.0, lt=0.5)
    """Fraction of each language's rows held out (whole documents where ``# doc`` marks them), the
    same rows whatever the seed. The tokenizer stage does not train on them either."""
    heldout_max_seqs: int = Field(default=64, gt=0)
    """At most this many packed held-out sequences per language are evaluated."""
    num_workers: int = Field(default=1, gt=0)
    """Ray Train workers."""
    cpus_per_worker: float = Field(default=1.0, gt=0.0)
    """CPUs reserved per worker; fractions allowed (2 workers of 0.5 on 2 CPUs leave room for Ray
    Data's tasks). Workers that ask for more CPUs than the embedded Ray has are an error before
    training (they could never be placed)."""
    threads_per_worker: int | None = Field(default=None, gt=0)
    """torch threads per worker; None uses max(1, round(cpus_per_worker))."""
    use_gpu: bool | None = None
    """Train on GPUs (nccl, one per worker). None: when the Ray cluster has, or its autoscaler can
    add, a GPU per worker; decided from the cluster, not the driver (on a cluster the driver often
    runs on a head without GPUs). metrics.json says which device trained and why."""
    report_every: int = Field(default=20, gt=0)
    """Steps between ``ray.train.report`` calls (each costs a synchronisation). Not part of the
    output's hash: it samples the loss curve, the weights are the same."""
    eval_every: int = Field(default=0, ge=0)
    """Steps between held-out evaluations; 0 evaluates only at the end. Not part of the output's
    hash: evaluation draws no training randomness, the weights are the same."""
    checkpoint_every: int = Field(default=100, gt=0)
    """Steps between checkpoints (model, optimizer, scheduler, step, data position). Not part of
    the output's hash: a crashed run resumes from its checkpoints after a change."""
    max_failures: int = Field(default=1, ge=-1)
    """Worker-group restarts from the last checkpoint before the run fails (-1: unlimited). Not
    part of the output's hash."""
    keep_checkpoints: bool = False
    """Keep the run's checkpoint folder ``<output.root>/.pretrain-<hash>.ray/`` after the stage
    committed its output. It exists so that a failed or stopped run resumes (it is always kept
    then); after success it only held two full engine states (optimizer included) and the initial
    model, one folder per config hash, never read again. Keep it to inspect Ray Train's run. Not
    part of the output's hash."""
    time_limit_s: float | None = Field(default=None, gt=0)
    """Stop (and save) after this many seconds of training even if ``steps`` is not reached; the
    output then says so (``stopped_early``, ``step`` next to ``steps_planned``). The LR schedule
    still spans ``steps``: a stopped run ends before the schedule's end (at a higher LR). The
    seconds are the whole run's: after a failure the resumed attempt goes on from the training
    time saved in the checkpoint (the failed attempt's time after that checkpoint is not counted;
    its steps are trained, and counted, again). A run trains at least one step, however short the
    limit (its first batch can come after a short budget)."""
    fail_at_step: int | None = Field(default=None, gt=0)
    """Testing aid: raise once in rank 0 before this step (a marker file makes the retry pass)."""

    @model_validator(mode="after")
    def _check(self) -> PretrainConfig:
        if self.steps == 0 and self.model_path:
            raise ValueError("steps=0 writes the model built from `model` (nothing is trained) and model_path is a "
                             "finished model: fine-tune model_path directly (finetune.model) instead")
        if self.steps == 0 and (self.aux.conllu or self.fail_at_step):
            raise ValueError(f"steps=0 trains nothing, so {'aux.conllu' if self.aux.conllu else 'fail_at_step'} "
                             "has nothing to do: set steps > 0 or remove it")
        if self.engine == "torch" and self.deepspeed.config_file:
            raise ValueError("deepspeed.config_file is set but engine is 'torch'")
        if self.engine == "torch" and self.precision == "fp16":
            # At load: found in the Ray Train workers, it cost a worker group per retry first.
            raise ValueError("precision=fp16 is only supported with engine=deepspeed on GPU")
        return self
