"""``lrl run PIPELINE.yaml [overrides] [--from STAGE | --only STAGE]``: thin entry point."""

from __future__ import annotations

import argparse
import sys
import time

from lrl.cli import add_job_arguments
from lrl.pipeline.config import ORDER


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--from", dest="start", choices=ORDER, metavar="STAGE",
                       help=f"start at STAGE ({', '.join(ORDER)}), "
                            "reusing the outputs of earlier stages recorded by a previous run")
    group.add_argument("--only", choices=ORDER, metavar="STAGE",
                       help="run only STAGE, reusing the outputs of earlier stages recorded by a previous run")


def run(args: argparse.Namespace) -> int:
    from lrl.config import dump
    from lrl.job import load_job
    from lrl.pipeline.runner import PipelineError, plan, run_pipeline

    t0 = time.perf_counter()
    cfg = load_job(args.config, args.overrides)
    try:
        if args.dry_run:
            # Not the shared load_job_args dry run: that one exited before --from/--only were
            # checked, so it said "fine" to a run that stops at once, and showed no output paths.
            steps = plan(cfg, start=args.start, only=args.only)  # first: it may find a missing input
            print(dump(cfg), end="")
            print(steps, end="")
            return 0
        result = run_pipeline(cfg, start=args.start, only=args.only, started=t0)
    except PipelineError as exc:
        print(f"lrl run: error: {exc}", file=sys.stderr)
        return 2
    if "report" in result.outputs:  # the file to open, not only its folder in the stage table
        from lrl.pipeline.quickstart import report_file

        folder = result.outputs["report"]
        report = f"{folder.rstrip('/')}/report.html" if "://" in folder else report_file(folder)
        if report is not None:
            print(f"[lrl run] report file: {report}")
    return 0
