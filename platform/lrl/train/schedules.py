"""Learning-rate schedules shared by pretraining and fine-tuning, chosen by a typed name.

All are multipliers of the optimizer's base LR per step, so one ``LambdaLR`` serves every kind
and the shape is easy to test: ``schedule_factor(cfg, step, total)``.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

from pydantic import Field, model_validator

from lrl.config import StrictModel

ScheduleName = Literal["constant", "linear", "cosine", "one_cycle", "triangular"]


class ScheduleConfig(StrictModel):
    """Learning-rate schedule (multiplier of the base learning rate over the run)."""

    type: ScheduleName = "linear"
    """``constant``; ``linear`` or ``cosine`` decay after warmup; ``one_cycle`` (rise to the
    peak over ``pct_start`` of the run, then cosine down to ``final_div``); ``triangular``
    (cyclical: between base/``cycle_div`` and base, ``cycle_steps`` per full cycle)."""
    warmup_ratio: float = Field(default=0.06, ge=0.0, lt=1.0)
    """Fraction of steps with linear warmup from 0 (linear, cosine, constant)."""
    pct_start: float = Field(default=0.3, gt=0.0, lt=1.0)
    """one_cycle: fraction of the run spent rising to the peak."""
    div_factor: float = Field(default=25.0, ge=1.0)
    """one_cycle: the run starts at base/div_factor."""
    final_div: float = Field(default=1e4, ge=1.0)
    """one_cycle: the run ends at base/final_div."""
    cycle_steps: int | None = Field(default=None, gt=1)
    """triangular: steps per full cycle (up and down); None uses a quarter of the run."""
    cycle_div: float = Field(default=10.0, ge=1.0)
    """triangular: the low point is base/cycle_div."""
    min_ratio: float = Field(default=0.0, ge=0.0, le=1.0)
    """linear/cosine: the multiplier never falls below this."""

    @model_validator(mode="after")
    def _check(self) -> ScheduleConfig:
        # Both have their own rise, and ``schedule_factor`` reads no warmup for them: a triangular
        # schedule with warmup_ratio 0.2 trained without any warmup and said nothing.
        own_rise = {"one_cycle": "pct_start", "triangular": "cycle_steps"}
        if self.type in own_rise and self.warmup_ratio not in (0.0, 0.06):
            raise ValueError(f"{self.type} has its own rise ({own_rise[self.type]}) and no warmup; "
                             f"leave warmup_ratio unset (got {self.warmup_ratio})")
        return self


def schedule_factor(cfg: ScheduleConfig, step: int, total: int) -> float:
    """Multiplier of the base LR at ``step`` (0-based) of ``total`` optimizer steps."""
    total = max(total, 1)
    t = min(step, total) / total
    if cfg.type == "one_cycle":
        # Over the steps taken (0 .. total-1), as torch's OneCycleLR: on step / total the last step
        # trained at base/80 of a 20-step run instead of the documented base/final_div.
        t = min(step, total - 1) / max(total - 1, 1)
        lo, end = 1.0 / cfg.div_factor, 1.0 / cfg.final_div
        if t <= cfg.pct_start:
            return lo + (1.0 - lo) * (1 - math.cos(math.pi * t / cfg.pct_start)) / 2
        u = (t - cfg.pct_start) / (1 - cfg.pct_start)
        return end + (1.0 - end) * (1 + math.cos(math.pi * u)) / 2
    if cfg.type == "triangular":
        period = cfg.cycle_steps or max(2, total // 4)
        # 0 -> 1 over ``up`` steps, then back down. On a whole step: with 1 - |2 phase - 1| an odd
        # period never reached the peak (a 20-step run's default 5-step cycle topped out at 0.82).
        up, k = period // 2, step % period
        tri = k / up if k <= up else (period - k) / (period - up)
        lo = 1.0 / cfg.cycle_div
        return lo + (1.0 - lo) * tri
    warm = int(cfg.warmup_ratio * total)
    if step < warm:
        return (step + 1) / warm
    if cfg.type == "constant":
        return 1.0
    u = (step - warm) / max(1, total - warm)
    u = min(max(u, 0.0), 1.0)
    value = 1 - u if cfg.type == "linear" else (1 + math.cos(math.pi * u)) / 2
    return max(cfg.min_ratio, value)


def build_scheduler(optimizer, cfg: ScheduleConfig, total_steps: int):
    """A ``torch.optim.lr_scheduler.LambdaLR`` following ``cfg`` over ``total_steps``; warns when
    the run ends before the schedule reaches the base LR (a triangular ``cycle_steps`` longer than
    twice the run: 12 steps of a 100-step cycle peaked at 0.30x ``lr``, and nothing said so)."""
    import torch

    if cfg.type == "triangular" and cfg.cycle_steps:  # unset: a quarter of the run, which fits
        peak = max(schedule_factor(cfg, s, total_steps) for s in range(max(total_steps, 1)))
        if peak < 0.999:
            logging.getLogger(__name__).warning(
                "schedule triangular: cycle_steps=%s rises for %d steps but the run has %d: the learning rate "
                "peaks at %.2fx lr; lower cycle_steps (None: a quarter of the run)",
                cfg.cycle_steps, cfg.cycle_steps // 2, total_steps, peak)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: schedule_factor(cfg, s, total_steps))
