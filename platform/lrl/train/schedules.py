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
#: Schedules with their own rise (and the setting that shapes it): ``schedule_factor`` reads no
#: warmup for them.
OWN_RISE = {"one_cycle": "pct_start", "triangular": "cycle_steps"}
#: ``build_scheduler`` warns when no step of the run trains at this fraction of the base LR or more.
PEAK_WARN = 0.99


class ScheduleConfig(StrictModel):
    """Learning-rate schedule (multiplier of the base learning rate over the run)."""

    type: ScheduleName = "linear"
    """``constant``; ``linear`` or ``cosine`` decay after warmup; ``one_cycle`` (rise to the
    peak over ``pct_start`` of the run, then cosine down to ``final_div``); ``triangular``
    (cyclical: between base/``cycle_div`` and base, ``cycle_steps`` per full cycle)."""
    warmup_ratio: float = Field(default=0.06, ge=0.0, lt=1.0)
    """Fraction of the steps with linear warmup (linear, cosine, constant): ``int(ratio * steps)``
    warmup steps w, step i of them at (i + 1) / w x the base LR, so fewer than 2 is no warmup (a
    warning says so: 0.06 of a 10-step run is 0 steps). one_cycle and triangular have their own
    rise: setting it with them is an error, except 0 (and the default, which a printed config holds)."""
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
        # schedule with warmup_ratio 0.2 trained without any warmup and said nothing. The default
        # (0.06) passes even when written out: ``--dry-run`` prints every field, and its output
        # must load again as the same job (a refused 0.06 made a printed one_cycle job unloadable).
        if self.type in OWN_RISE and self.warmup_ratio not in (0.0, type(self).model_fields["warmup_ratio"].default):
            raise ValueError(f"{self.type} has its own rise ({OWN_RISE[self.type]}) and no warmup; "
                             f"leave warmup_ratio unset or 0 (got {self.warmup_ratio})")
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
    no step of the run reaches the base LR (``PEAK_WARN``), for any schedule: a triangular
    ``cycle_steps`` longer than twice the run (12 steps of a 100-step cycle peaked at 0.30x ``lr``),
    a one_cycle run of 2 steps (0.04x, then 0.0001x) or 3 (0.81x); and when a warmup_ratio > 0
    gives fewer than 2 warmup steps (no warmup). The learning rates stay as they are."""
    import torch

    for line in schedule_warnings(cfg, total_steps):
        logging.getLogger(__name__).warning(line)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: schedule_factor(cfg, s, total_steps))


def schedule_warnings(cfg: ScheduleConfig, total_steps: int) -> list[str]:
    """What ``build_scheduler`` warns about ``cfg`` over ``total_steps`` (nothing for a 1-step run:
    nothing to climb)."""
    out = []
    steps = range(max(total_steps, 1))
    # Stops at the first step that reaches it (step warmup-1 of linear): a long run costs little.
    if total_steps > 1 and not any(schedule_factor(cfg, s, total_steps) >= PEAK_WARN for s in steps):
        peak = max(schedule_factor(cfg, s, total_steps) for s in steps)
        if cfg.type == "triangular" and cfg.cycle_steps:
            out.append(f"schedule triangular: cycle_steps={cfg.cycle_steps} rises for {cfg.cycle_steps // 2} steps "
                       f"but the run has {total_steps}: the learning rate peaks at {peak:.2f}x lr; lower "
                       "cycle_steps (None: a quarter of the run)")
        elif cfg.type == "one_cycle":  # step k trains at k / (steps - 1) of the curve
            out.append(f"schedule one_cycle: no step of the run's {total_steps} falls on the peak (pct_start="
                       f"{cfg.pct_start:g}): the learning rate peaks at {peak:.2f}x lr; run more steps"
                       + (f" (or set pct_start to k/{total_steps - 1})" if total_steps > 2 else ""))
        else:  # none known: linear, cosine and constant reach 1.0 (step warmup-1), triangular's default too
            out.append(f"schedule {cfg.type}: the learning rate peaks at {peak:.2f}x lr over {total_steps} steps")
    warm = int(cfg.warmup_ratio * total_steps)
    if cfg.type not in OWN_RISE and cfg.warmup_ratio > 0 and total_steps > 1 and warm < 2:
        # int() rounds down, and a 1-step warmup trains at (0 + 1) / 1 = the full lr. Not rounded
        # up here: that would change the learning rates of every run whose configs exist.
        out.append(f"schedule {cfg.type}: warmup_ratio={cfg.warmup_ratio:g} of {total_steps} steps is {warm} warmup "
                   f"step{'s' * (warm != 1)}: the run starts at the full lr (no warmup); a warmup needs warmup_ratio "
                   f">= 2/{total_steps} (or set it to 0)")
    return out
