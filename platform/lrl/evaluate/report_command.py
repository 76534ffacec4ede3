"""``lrl report [CONFIG] [overrides] [--evaluate DIR ...]``: write the run's self-contained HTML report.

Stage folders come from ``report.<stage>`` in the config (or the flags below, which set them);
the report is made of those folders alone (it does not search ``output.root``): the sections of
the stages not named are left out, and the page says which and how to add them. CONFIG is
optional (an evaluate output holds its scores and predictions).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lrl.cli import add_job_arguments, load_job_args
from lrl.config import ConfigError

_STAGES = ("finetune", "evaluate", "tune", "pretrain", "generate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("self-contained HTML report of a run: of the stage folders named by a job file "
                          "(report.<stage>) and the flags below, or without CONFIG of the flags' folders alone "
                          "(lrl report --evaluate DIR: its scores, per language, and confusions)")
    add_job_arguments(parser, config_required=False)
    for stage in _STAGES:
        parser.add_argument(f"--{stage}", metavar="DIR", help=f"{stage} stage output folder (sets report.{stage})")
    parser.add_argument("--out", metavar="DIR", help="folder under which report-<hash>/ is written (sets output.root; "
                                                     "default: the job's output.root, runs without CONFIG)")


def _config_or_override(args: argparse.Namespace) -> None:
    """An override given first without CONFIG (``lrl report --evaluate DIR title=x``) fills the
    optional CONFIG slot: it is an override when it holds ``=``, names no file and reads as no
    job file's path (``jobs/a=b.yaml`` missing: "config file not found", not "unknown key jobs/a")."""
    key = (args.config or "").partition("=")[0]
    # A key is dotted and has no "/" (report.title=x.yaml stays an override).
    looks_like_file = "/" in key or "." not in key and (args.config or "").endswith((".yaml", ".yml"))
    if args.config is not None and "=" in args.config and not Path(args.config).is_file() and not looks_like_file:
        args.overrides = [args.config, *args.overrides]
        args.config = None


def run(args: argparse.Namespace) -> int:
    _config_or_override(args)
    named = [f"report.{s}={getattr(args, s)}" for s in _STAGES if getattr(args, s)]
    dotted = any(o.partition("=")[0] in {f"report.{s}" for s in _STAGES} for o in args.overrides)
    if args.config is None and not named and not dotted:
        raise ConfigError("give a job file (lrl report JOB) or the stage output folders to report "
                          "(lrl report --evaluate DIR, --finetune DIR, ...)")
    args.overrides = list(args.overrides) + named + ([f"output.root={args.out}"] if args.out else [])
    cfg = load_job_args(args)
    from lrl.evaluate.report import run_report
    from lrl.pipeline.stage import StageContext

    # Run alone, the report knows only the folders it was given (it does not search output.root):
    # the sections of other stages are left out and said, not claimed "not run".
    path = run_report(StageContext(cfg), job_file=args.config is not None, named_only=True)
    print(f"report: {path}/report.html")
    return 0
