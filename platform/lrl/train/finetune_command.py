"""``lrl finetune CONFIG [overrides]``: run the finetune stage and print where its output is.

Embedded local Ray by default; joins a cluster when ``RAY_ADDRESS`` (or ``ray.address``) is set.
"""

from __future__ import annotations

import argparse
import time

from lrl.cli import add_job_arguments, load_job_args, reused_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)


def run(args: argparse.Namespace) -> int:
    cfg = load_job_args(args)
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune
    from lrl.tune.splits import warn_left_out

    warn_left_out(cfg, "finetune")  # what `lrl run` checks before its first stage
    started = time.time()
    path = run_finetune(StageContext(cfg))
    if reused := reused_line(path, started):
        print(reused)
    return 0
