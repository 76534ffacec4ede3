"""``lrl generate CONFIG [overrides]``: run the generate stage and print where its output is.

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
    from lrl.generate.stage import run_generate, stage_output, summary
    from lrl.pipeline.stage import StageContext

    out = stage_output(cfg)
    if out.done:
        # Nothing to do: the same config and inputs already produced this folder.
        print(summary(out.path, out.manifest()))
        print(reused_line(out.path, time.time()) or "  (reused: nothing recomputed)")
        return 0
    run_generate(StageContext(cfg))
    return 0
