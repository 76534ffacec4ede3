"""``lrl run PIPELINE.yaml [overrides] [--from STAGE | --only STAGE]``: thin entry point."""

from __future__ import annotations

import argparse
import sys
import time

from lrl.cli import add_job_arguments, load_job_args
from lrl.pipeline.config import ORDER


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--from", dest="start", choices=ORDER, metavar="STAGE",
                       help="start at STAGE, reusing the recorded outputs of earlier stages")
    group.add_argument("--only", choices=ORDER, metavar="STAGE",
                       help="run only STAGE, reusing the recorded outputs of earlier stages")


def run(args: argparse.Namespace) -> int:
    from lrl.pipeline.runner import PipelineError, run_pipeline

    t0 = time.perf_counter()
    cfg = load_job_args(args)
    try:
        run_pipeline(cfg, start=args.start, only=args.only, started=t0)
    except PipelineError as exc:
        print(f"lrl run: error: {exc}", file=sys.stderr)
        return 2
    return 0
