"""``lrl report CONFIG [overrides] [--finetune DIR ...]``: write the run's self-contained HTML report.

Stage folders come from ``report.<stage>`` in the config (or the flags below, which set them);
a stage without a folder appears as "not run".
"""

from __future__ import annotations

import argparse

from lrl.cli import add_job_arguments, load_job_args

_STAGES = ("finetune", "evaluate", "tune", "pretrain", "generate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)
    for stage in _STAGES:
        parser.add_argument(f"--{stage}", metavar="DIR", help=f"{stage} stage output folder (sets report.{stage})")


def run(args: argparse.Namespace) -> int:
    args.overrides = list(args.overrides) + [f"report.{s}={getattr(args, s)}" for s in _STAGES if getattr(args, s)]
    cfg = load_job_args(args)
    from lrl.evaluate.report import run_report
    from lrl.pipeline.stage import StageContext

    path = run_report(StageContext(cfg))
    print(f"report: {path}/report.html")
    return 0
