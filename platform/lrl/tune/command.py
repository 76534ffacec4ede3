"""``lrl tune CONFIG [overrides]``: one Ray Tune search per language, then print the best configs.

Embedded local Ray by default; joins a cluster when ``RAY_ADDRESS`` (or ``ray.address``) is set.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lrl.cli import add_job_arguments, load_job_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)


def run(args: argparse.Namespace) -> int:
    cfg = load_job_args(args)
    from lrl.pipeline.stage import StageContext
    from lrl.tune.splits import warn_left_out
    from lrl.tune.stage import run_tune

    warn_left_out(cfg, "tune")  # what `lrl run` checks before its first stage
    path = run_tune(StageContext(cfg))
    print(f"tune: {path}")
    best = Path(path) / "best.json"
    if best.is_file():
        for row in json.loads(best.read_text()):
            errored = f", {row['errored']} FAILED (see trials.json)" if row.get("errored") else ""
            print(f"  {row['lang']}: dev F1 {100 * row['dev_f1']:.1f} (lr {row['lr']:.3g}, batch {row['batch_size']}, "
                  f"{row['trials']} trials, {row['stopped_early']} stopped early{errored})")
    return 0
