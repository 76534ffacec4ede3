"""Checks of a user ds_config (``pretrain.deepspeed.config_file``) that DeepSpeed itself leaves out.

DeepSpeed reads its top-level settings one by one with ``dict.get`` (``deepspeed.runtime.config``),
so a key it does not read is ignored without a word: ``"gradient_clippin": 0.5`` left the clipping
at pretrain's 1.0 and ``"zero_optimisation"`` the ZeRO settings as generated. The keys it knows
are taken from the installed DeepSpeed: its config class is run once on a dict that records every
key it looks up. Its sections (e.g. ``zero_optimization``) are pydantic models that refuse unknown
keys themselves, as it refuses a few removed top-level blocks, but only inside the Ray Train
workers: ``check_with_deepspeed`` runs the same class in the driver first.
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
from typing import Any

from lrl.config import ConfigError
from lrl.train.pretrain_config import PretrainConfig

log = logging.getLogger(__name__)
#: Read by ``deepspeed.initialize`` and by its config class only once torch.distributed runs
#: (the sequence-parallel mesh), so the recording probe below cannot see them.
MESH_KEYS = frozenset({"sequence_parallel_size", "data_parallel_size"})


class _Recorder(dict):
    """A dict that notes every key looked up in it (also through ``keys()``)."""

    def __init__(self, data: dict[str, Any], seen: set[str]):
        super().__init__(data)
        self.seen = seen

    def get(self, key, default=None):
        self.seen.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.seen.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.seen.add(key)
        return super().__contains__(key)

    def keys(self):
        return _Keys(super().keys(), self.seen)

    def __copy__(self):  # DeepSpeedConfig reads a copy of the dict it was given
        return self


class _Keys(list):
    def __init__(self, keys, seen: set[str]):
        super().__init__(keys)
        self.seen = seen

    def __contains__(self, key):  # ``OPTIMIZER in param_dict.keys()``
        self.seen.add(key)
        return super().__contains__(key)


@functools.lru_cache(maxsize=1)
def deepspeed_keys() -> frozenset[str] | None:
    """The top-level ds_config keys the installed DeepSpeed reads; None when it cannot tell
    (DeepSpeed not importable here, or its config class changed shape): then nothing is checked."""
    try:
        from deepspeed.runtime.config import DeepSpeedConfig
    except Exception as exc:  # noqa: BLE001 - an optional check: a driver without DeepSpeed skips it
        log.debug("no DeepSpeed key check: %s", exc)
        return None
    seen: set[str] = set()
    try:
        DeepSpeedConfig(_Recorder({"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1}, seen))
    except Exception as exc:  # noqa: BLE001
        log.debug("no DeepSpeed key check: %s", exc)
        return None
    if "train_batch_size" not in seen or "zero_optimization" not in seen:
        return None  # the probe saw too little to judge other keys by
    return frozenset(seen) | MESH_KEYS


def check_keys(user: dict[str, Any], path: str) -> None:
    """Refuse top-level keys of the file DeepSpeed would ignore, naming the nearest one it knows."""
    known = deepspeed_keys()
    if known is None:
        return
    unknown = [k for k in user if k not in known and not str(k).startswith("_")]  # "_comment": a note, meant to be ignored
    if not unknown:
        return
    said = []
    for key in unknown:
        near = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
        said.append(f"{key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    import deepspeed

    it = "it" if len(said) == 1 else "them"
    raise ConfigError(f"{path}: {', '.join(said)}: not {'a setting' if it == 'it' else 'settings'} of DeepSpeed "
                      f"{deepspeed.__version__}, which would ignore {it}; fix or remove {it}")


def check_with_deepspeed(ds: dict[str, Any], path: str) -> None:
    """Run the merged config ``ds`` through the installed DeepSpeed's config class in the driver, so
    that what it refuses (an unknown key inside a section, a wrong type, a removed block) stops the
    run before Ray starts: a typo in ``zero_optimization`` was a pydantic traceback from every
    Ray Train worker and retry, 78 s in. Its config class's checks only: those that depend on the
    device or the worker group (the batch product over the workers) stay with DeepSpeed in the workers.

    Driver only: in a worker torch.distributed runs and DeepSpeed counts its world size, which the
    batch size set here for a world of one would not match."""
    try:
        from deepspeed.runtime.config import DeepSpeedConfig, DeepSpeedConfigError
        from pydantic import ValidationError
    except Exception as exc:  # noqa: BLE001 - an optional check
        log.debug("no DeepSpeed config check: %s", exc)
        return
    probe = dict(ds)  # the driver is a world of one: the batch product for one worker
    probe["train_batch_size"] = ds["train_micro_batch_size_per_gpu"] * ds["gradient_accumulation_steps"]
    try:
        DeepSpeedConfig(probe)
    except ValidationError as exc:
        said = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: DeepSpeed refuses it ({exc.title}): {said}") from exc
    except (DeepSpeedConfigError, ValueError, AssertionError) as exc:
        # Its own checks raise ValueError or assert (gradient_allreduce_op "sum" under ZeRO 3): a
        # traceback from the driver where a ConfigError says the file and the reason.
        raise ConfigError(f"{path}: DeepSpeed refuses it: {exc}") from exc


#: DeepSpeed's old name of the ``bf16`` section, read only where ``bf16`` is absent
#: (``deepspeed.runtime.precision_config.get_bfloat16_config``).
BF16_ALIAS = "bfloat16"


def normal_sections(user: dict[str, Any], generated: dict[str, Any], path: str) -> dict[str, Any]:
    """The file's sections as they are merged: ``bfloat16`` under its current name ``bf16``, and
    a section that the generated config writes as an object refused unless it is one.

    The generated config always has ``bf16``, so DeepSpeed never read a file's ``bfloat16``:
    ``{"bfloat16": {"enabled": false}}`` trained in bf16 without a word (its other keys dropped
    too), past the check that a file's precision is pretrain.precision. ``"bf16": true``,
    ``"fp16": null`` or ``"zero_optimization": 1`` ended in a Python traceback (``'bool' object has
    no attribute 'get'``)."""
    alias = BF16_ALIAS in user
    if alias:
        if "bf16" in user:
            raise ConfigError(f"{path}: both 'bf16' and its old name {BF16_ALIAS!r} are set, and DeepSpeed reads "
                              "only 'bf16'; keep one")
        user = {("bf16" if k == BF16_ALIAS else k): v for k, v in user.items()}
    for key, value in user.items():
        if key == "zero_optimization" and isinstance(value, bool):  # DeepSpeed's deprecated form: stage 1 / 0
            continue
        if isinstance(generated.get(key), dict) and not isinstance(value, dict):
            shown = BF16_ALIAS if key == "bf16" and alias else key  # as the file writes it
            raise ConfigError(f"{path}: {shown} must be a JSON object such as {json.dumps(generated[key])}, "
                              f"got {json.dumps(value)}")
    return user


def uses_bf16_alias(path: str) -> bool:
    """Whether the ds_config at ``path`` names its bf16 section ``bfloat16``: such a file trained
    without it before ``normal_sections``, so its runs hash apart (``lrl.train.pretrain``)."""
    try:
        with open(path, encoding="utf-8") as f:
            user = json.load(f)
    except (OSError, ValueError):
        return False  # deepspeed_config says what is wrong with it
    return isinstance(user, dict) and BF16_ALIAS in user


def optimizer_replaces(cfg: PretrainConfig, user: dict[str, Any], merged: dict[str, Any]) -> str | None:
    """What the file's ``optimizer`` section replaces of pretrain's settings, or None without one.

    Only keys the generated config already had were reported as overrides, and with
    ``client_optimizer`` on (the default) it has no optimizer: a file's ``lr: 0.1`` trained at
    0.1 instead of ``pretrain.lr`` and silently swapped torch's AdamW for DeepSpeed's own."""
    opt = merged.get("optimizer")
    if "optimizer" not in user or not isinstance(opt, dict):
        return None
    params = opt.get("params") if isinstance(opt.get("params"), dict) else {}
    parts = []
    for name in ("lr", "weight_decay"):
        ours = getattr(cfg, name)
        theirs = params.get(name, "DeepSpeed's default")
        if theirs != ours:
            parts.append(f"pretrain.{name}={ours} by {theirs!r}")
    if cfg.deepspeed.client_optimizer:
        parts.append(f"torch's AdamW by DeepSpeed's {opt.get('type')!r} optimizer (pretrain.deepspeed.client_optimizer "
                     "is ignored; on CPU DeepSpeed compiles its kernel first)")
    if not parts:
        return None
    return ("its optimizer section replaces " + ", ".join(parts)
            + "; pretrain.schedule still shapes the rate (warmup and decay of the file's lr)")


__all__ = ["deepspeed_keys", "check_keys", "check_with_deepspeed", "optimizer_replaces", "MESH_KEYS", "BF16_ALIAS",
           "normal_sections", "uses_bf16_alias"]
