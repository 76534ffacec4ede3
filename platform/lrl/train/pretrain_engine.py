"""Two interchangeable training engines behind one small interface: DeepSpeed and plain PyTorch.

Both take micro batches, accumulate ``grad_accum`` of them per optimizer step, clip, step the
optimizer and the ``lrl.train.schedules`` LR schedule, and save/restore everything a resume
needs. The plain engine (DDP + autocast) is the baseline the benchmarks compare against.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
from typing import Any

from lrl.config import ConfigError
from lrl.train.pretrain_config import PretrainConfig
from lrl.train.pretrain_ds_file import check_keys, normal_sections, optimizer_replaces
from lrl.train.schedules import build_scheduler

log = logging.getLogger(__name__)


def deepspeed_config(cfg: PretrainConfig, world_size: int, on_gpu: bool, warn: bool = False) -> dict[str, Any]:
    """The ds_config for ``cfg``: generated from the config, with a user JSON merged over it and
    checked against the batch settings (a mismatch is an error naming the file and key; so is a
    top-level key DeepSpeed does not read). ``warn``: log what the file overrides; the driver's
    check before Ray starts does, the later calls (driver, every worker) do not, so the warning
    is said once per run, not three times."""
    if cfg.precision == "fp16" and not on_gpu:
        raise ConfigError("pretrain.precision=fp16: DeepSpeed refuses fp16 on CPU; use bf16 or fp32")
    ds: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "train_batch_size": cfg.batch_size * cfg.grad_accum * world_size,
        "gradient_clipping": cfg.clip_norm or 0.0,
        "zero_optimization": {"stage": cfg.deepspeed.zero_stage},
        "bf16": {"enabled": cfg.precision == "bf16"},
        "fp16": {"enabled": cfg.precision == "fp16"},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if not cfg.deepspeed.client_optimizer:
        ds["optimizer"] = {"type": "AdamW", "params": {"lr": cfg.lr, "weight_decay": cfg.weight_decay}}
    path = cfg.deepspeed.config_file
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                user = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read DeepSpeed config: {exc}") from exc
        if not isinstance(user, dict):
            raise ConfigError(f"{path}: a DeepSpeed config must be a JSON object")
        if "scheduler" in user:
            raise ConfigError(f"{path}: 'scheduler' is set; the LR schedule comes from pretrain.schedule")
        check_keys(user, path)
        user = normal_sections(user, ds, path)
        generated = ds
        ds = _merge(ds, user)
        # The loop gathers ZeRO-3's partitioned parameters to save the model only when
        # pretrain.deepspeed.zero_stage says 3: stage 3 from the file alone saved every fp32
        # weight as an empty tensor. Like the precision, the stage is set in one place.
        zero = ds.get("zero_optimization")
        stage = zero.get("stage", cfg.deepspeed.zero_stage) if isinstance(zero, dict) else zero
        if stage != cfg.deepspeed.zero_stage:
            raise ConfigError(f"{path}: zero_optimization.stage={stage} but pretrain.deepspeed.zero_stage="
                              f"{cfg.deepspeed.zero_stage}; set the ZeRO stage in one place")
        for key, want in (("train_micro_batch_size_per_gpu", cfg.batch_size),
                          ("gradient_accumulation_steps", cfg.grad_accum)):
            if ds[key] != want:
                raise ConfigError(f"{path}: {key}={ds[key]} differs from pretrain's {want}; set it in one place")
        if ds["train_batch_size"] != cfg.batch_size * cfg.grad_accum * world_size:
            raise ConfigError(f"{path}: train_batch_size={ds['train_batch_size']} != micro batch x accumulation "
                              f"x workers = {cfg.batch_size * cfg.grad_accum * world_size}")
        if ds.get("fp16", {}).get("enabled") and not on_gpu:
            raise ConfigError(f"{path}: fp16 is enabled but DeepSpeed refuses fp16 on CPU")
        # The precision decides more than DeepSpeed's mode (the MFU peak, the attention kernel,
        # what metrics.json records), so the file may not switch it behind pretrain.precision.
        for mode in ("bf16", "fp16"):
            enabled = bool(ds.get(mode, {}).get("enabled"))
            if enabled != (cfg.precision == mode):
                raise ConfigError(f"{path}: {mode}.enabled={enabled} but pretrain.precision={cfg.precision}; "
                                  "set the precision in one place")
        changed = _overridden(generated, ds)
        replaced = optimizer_replaces(cfg, user, ds)
        if replaced:
            changed.append(replaced)
        if changed and warn:  # the file's keys win, as documented; said, so that a forgotten one is noticed
            log.warning("%s overrides pretrain's DeepSpeed settings: %s", path, "; ".join(changed))
    return ds


def _overridden(generated: dict[str, Any], merged: dict[str, Any], prefix: str = "") -> list[str]:
    """``key: generated -> merged`` for every value of the generated config the file changed."""
    out = []
    for k, v in generated.items():
        got = merged.get(k)
        if isinstance(v, dict) and isinstance(got, dict):
            out += _overridden(v, got, f"{prefix}{k}.")
        elif got != v:
            out.append(f"{prefix}{k}: {v!r} -> {got!r}")
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _adamw(params, cfg: PretrainConfig):
    import torch

    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _known_optimizers_first() -> None:
    """Answer DeepSpeed's ZeRO optimizer check from its list of supported optimizers before it
    imports its Muon optimizer (no public setting; left alone if DeepSpeed moves the check).

    DeepSpeed 0.19's ``is_zero_supported_optimizer`` imports ``zero.muon`` on every call to add
    Muon to that list; the import compiles Muon's kernels with ``torch.compile``, which loads
    TorchInductor: ~1.5-3 s of ``deepspeed.initialize`` on 2 CPUs, in every worker and attempt
    (docs/benchmarks.md, pretraining, session 9). For an optimizer already on the list (AdamW)
    the answer is True either way; any other type still goes through DeepSpeed's own check."""
    try:
        from deepspeed.runtime import engine as ds_engine
        from deepspeed.runtime.zero.utils import ZERO_SUPPORTED_OPTIMIZERS
    except ImportError:
        return
    original = getattr(ds_engine, "is_zero_supported_optimizer", None)
    if original is None or getattr(original, "lrl_known_first", False):
        return

    @functools.wraps(original)
    def is_zero_supported_optimizer(optimizer):
        return type(optimizer) in ZERO_SUPPORTED_OPTIMIZERS or original(optimizer)

    is_zero_supported_optimizer.lrl_known_first = True
    ds_engine.is_zero_supported_optimizer = is_zero_supported_optimizer


class DeepSpeedEngine:
    """``deepspeed.initialize`` around the module; DeepSpeed handles accumulation and clipping."""

    def __init__(self, module, cfg: PretrainConfig, world_size: int, device, total_steps: int):
        import deepspeed

        _known_optimizers_first()
        on_gpu = getattr(device, "type", str(device)) == "cuda"
        self.ds_config = deepspeed_config(cfg, world_size, on_gpu)
        optimizer = _adamw(module.parameters(), cfg) if "optimizer" not in self.ds_config else None
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=module, optimizer=optimizer, config=self.ds_config,
            lr_scheduler=lambda opt: build_scheduler(opt, cfg.schedule, total_steps))
        self.module = self.engine.module
        self.device = self.engine.device
        self.autocast = False  # DeepSpeed's bf16 mode casts the module itself
        self._used_lr: float | None = None
        # from_pretrained returns a model in eval mode: without this, dropout stayed off until the
        # first held-out evaluation switched the whole module to training mode.
        self.engine.train()

    def micro_step(self, batch: dict[str, Any]) -> float:
        loss = self.engine(**batch)
        self.engine.backward(loss)
        if self.engine.is_gradient_accumulation_boundary():  # asked before step() counts this one
            self._used_lr = float(self.scheduler.get_last_lr()[0])
        self.engine.step()  # applies the optimizer only at accumulation boundaries
        return float(loss.detach().float())

    def lr(self) -> float:
        """The rate the last optimizer step used (after ``scheduler.step()`` the scheduler already
        holds the next step's, which the reports showed before); before any step, the first's."""
        return self._used_lr if self._used_lr is not None else float(self.scheduler.get_last_lr()[0])

    def save(self, path: str, state: dict[str, Any]) -> None:
        """Collective: every rank writes its shard of the ZeRO state."""
        self.engine.save_checkpoint(path, tag="ckpt", client_state={"lrl": state})

    def load(self, path: str) -> dict[str, Any]:
        _, client = self.engine.load_checkpoint(path, tag="ckpt")
        return (client or {}).get("lrl", {})

    def train(self, mode: bool = True) -> None:
        self.engine.train(mode)


class TorchEngine:
    """Plain PyTorch: DDP when there are several workers, bf16 autocast, manual accumulation."""

    def __init__(self, module, cfg: PretrainConfig, world_size: int, device, total_steps: int):
        import torch

        if cfg.precision == "fp16":
            raise ConfigError("pretrain.precision=fp16 is only supported with engine=deepspeed on GPU")
        self.cfg = cfg
        self.device = device
        self.module = module.to(device).train()  # from_pretrained models come in eval mode
        self.model = module
        if world_size > 1:
            import ray.train.torch

            self.model = ray.train.torch.prepare_model(module, move_to_device=False)
        self.optimizer = _adamw(self.module.parameters(), cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule, total_steps)
        self.autocast = cfg.precision == "bf16"
        self._micro = 0
        self._dtype = torch.bfloat16
        self._used_lr: float | None = None

    def micro_step(self, batch: dict[str, Any]) -> float:
        import contextlib

        import torch

        self._micro += 1
        boundary = self._micro % self.cfg.grad_accum == 0
        sync = contextlib.nullcontext() if boundary or not hasattr(self.model, "no_sync") else self.model.no_sync()
        dev = getattr(self.device, "type", str(self.device))
        with sync:
            with torch.autocast(dev, dtype=self._dtype, enabled=self.autocast):
                loss = self.model(**batch)
            (loss / self.cfg.grad_accum).backward()
        if boundary:
            if self.cfg.clip_norm:
                torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.cfg.clip_norm)
            self._used_lr = float(self.scheduler.get_last_lr()[0])
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach().float())

    def lr(self) -> float:
        """The rate the last optimizer step used (see ``DeepSpeedEngine.lr``)."""
        return self._used_lr if self._used_lr is not None else float(self.scheduler.get_last_lr()[0])

    def save(self, path: str, state: dict[str, Any]) -> None:
        """Rank 0 only (the caller decides): model, optimizer and scheduler in one file."""
        import torch

        os.makedirs(path, exist_ok=True)
        torch.save({"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(), "micro": self._micro},
                   os.path.join(path, "state.pt"))
        with open(os.path.join(path, "client_state.json"), "w") as f:
            json.dump(state, f)

    def load(self, path: str) -> dict[str, Any]:
        import torch

        blob = torch.load(os.path.join(path, "state.pt"), map_location="cpu", weights_only=True)
        self.module.load_state_dict(blob["model"])
        self.optimizer.load_state_dict(blob["optimizer"])
        self.scheduler.load_state_dict(blob["scheduler"])
        self._micro = int(blob["micro"])
        with open(os.path.join(path, "client_state.json")) as f:
            return json.load(f)

    def train(self, mode: bool = True) -> None:
        self.model.train(mode)


def emulated_bf16(precision: str, device) -> str | None:
    """A warning when ``precision`` bf16 would train on a CUDA GPU older than Ampere (compute
    capability < 8: V100, T4), whose tensor cores have no bf16, or on a CPU without bf16 kernels
    (``_cpu_bf16``); None otherwise.

    Neither torch's autocast nor DeepSpeed refuses bf16 there (``torch.cuda.is_bf16_supported()``
    counts emulation as support), so a run with the default precision would start and train
    without tensor cores, and its MFU, measured against a bf16 peak of the same chip, would look
    normal (reasoned from the torch and DeepSpeed checks; no such GPU was at hand to measure)."""
    import torch

    kind = getattr(device, "type", str(device))
    if precision == "bf16" and kind == "cpu":
        return _cpu_bf16(torch)
    if precision != "bf16" or kind != "cuda":
        return None
    major, minor = torch.cuda.get_device_capability(device)
    if major >= 8:
        return None
    return (f"pretrain.precision=bf16 on {torch.cuda.get_device_name(device)} (compute capability {major}.{minor}): "
            "GPUs before Ampere (8.0) have no bf16 tensor cores and run bf16 without them, far below their "
            "fp16 rate; set pretrain.precision=fp16 (engine deepspeed) or fp32")


def _cpu_bf16(torch) -> str | None:
    """A warning when this CPU has no bf16 matmul kernels (oneDNN's check: AVX-512 or AMX on x86,
    e.g. none on AVX2-only Ryzen and Core laptops), None when it has them or cannot tell.

    torch then runs bf16 matmuls in a generic loop: with oneDNN held to AVX2
    (``ONEDNN_MAX_CPU_ISA=AVX2``) on this project's EPYC, a micro-preset run trained at 1.3k
    tokens/s in bf16 against 9.4k in fp32, and measuring the MFU peak in bf16 took ~55 s of setup."""
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the check: say nothing
        return None
    if native:
        return None
    return ("pretrain.precision=bf16 on a CPU without bf16 matmul kernels (no AVX-512 or AMX): torch emulates "
            "them, ~7x slower than fp32; set pretrain.precision=fp32")


def build_engine(module, cfg: PretrainConfig, world_size: int, device, total_steps: int):
    """The engine named by ``cfg.engine``."""
    note = emulated_bf16(cfg.precision, device)
    if note:
        log.warning("%s", note)
    kind = DeepSpeedEngine if cfg.engine == "deepspeed" else TorchEngine
    return kind(module, cfg, world_size, device, total_steps)


__all__ = ["deepspeed_config", "DeepSpeedEngine", "TorchEngine", "build_engine", "emulated_bf16"]
