"""The ``lrl`` command. Thin: each subcommand parses a job config, builds library objects, runs.

Subcommands live in their stage's package as ``cli_<name>.py``-style modules exposing
``add_arguments(parser)`` and ``run(args) -> int``; they are imported only when chosen so that
``lrl --help`` stays fast and a broken optional stage cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

from lrl.config import ConfigError, command_warnings, dump, help_text
from lrl.data.files import InputError
from lrl.signals import SIGINT_EXIT, SIGTERM_EXIT, handle_sigterm, reset_sigterm, sigterm_received

#: name -> (module, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("lrl.generate.command", "read, augment, translate, filter and oversample data into Parquet"),
    "tokenizer": ("lrl.model.command", "train or extend a tokenizer with language tags"),
    "pretrain": ("lrl.train.pretrain_command", "multilingual masked-LM pretraining on Ray Train + DeepSpeed"),
    "finetune": ("lrl.train.finetune_command", "fine-tune a token classifier (NER) per language or jointly"),
    "tune": ("lrl.tune.command", "per-language hyperparameter search with Ray Tune"),
    "evaluate": ("lrl.evaluate.command", "seqeval span F1 of a model on labelled data, with predictions"),
    "report": ("lrl.evaluate.report_command", "self-contained HTML report of a run"),
    "run": ("lrl.pipeline.command", "run a whole pipeline, skipping finished stages"),
    "quickstart": ("lrl.pipeline.quickstart", "run the whole pipeline on the packaged sample"),
    "submit": ("lrl.pipeline.submit", "submit a pipeline to a Ray cluster through the Jobs API"),
}


def add_job_arguments(parser: argparse.ArgumentParser, config_required: bool = True) -> None:
    """The arguments every config-driven command shares: CONFIG, overrides, --dry-run."""
    parser.add_argument("config", nargs=None if config_required else "?", help="job YAML file")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. augment.ops=[swap,mention]")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved config and the plan (inputs, output folder) and exit")


def load_job_args(args: argparse.Namespace):
    """Load the job named by ``args.config`` with ``args.overrides``; honour ``--dry-run``: the
    resolved config, then (for a stage command) the stage's plan, as ``lrl run --dry-run`` does."""
    from lrl.job import load_job

    cfg = load_job(args.config, args.overrides)
    if getattr(args, "dry_run", False):
        print(dump(cfg), end="")
        stage = getattr(args, "command", None)
        from lrl.pipeline.plan import INPUTS, stage_plan

        if stage in INPUTS:
            print(stage_plan(cfg, stage), end="")
        raise SystemExit(0)
    return cfg


class _HelpWithConfig(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lrl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, summary) in COMMANDS.items():
        sub.add_parser(name, help=summary, add_help=False)
    sub.add_parser("config", help="print the reference of every config field")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Restored on the way out: a caller that runs ``main`` in its own process (tests) keeps its own.
    previous = signal.getsignal(signal.SIGTERM)
    reset_sigterm()
    handle_sigterm()
    try:
        with command_warnings():
            return _main(argv)
    except KeyboardInterrupt:
        # The stage's cleanup ran on the way here: its temporary folder is gone. Ctrl-C returns
        # 130 itself: re-raised, the exit status was 1 once Ray had started (a shell or scheduler
        # then reads a stop as a crash).
        how, code = ("SIGTERM", SIGTERM_EXIT) if sigterm_received() else ("Ctrl-C", SIGINT_EXIT)
        print(f"lrl {argv[0] if argv else ''}: stopped by {how}; unfinished output removed, "
              "finished stages kept (run the same command again to go on)", file=sys.stderr)
        return code
    finally:
        if threading.current_thread() is threading.main_thread() and previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str]) -> int:
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    name, rest = argv[0], argv[1:]
    if name == "config":
        from lrl.job import JobConfig

        print(help_text(JobConfig))
        return 0
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; choose from {', '.join(COMMANDS)}")
    module = importlib.import_module(COMMANDS[name][0])
    from lrl.job import JobConfig

    sp = argparse.ArgumentParser(
        prog=f"lrl {name}", description=COMMANDS[name][1], formatter_class=_HelpWithConfig,
        epilog="config fields (set in the YAML or as dotted overrides):\n" + help_text(JobConfig),
    )
    module.add_arguments(sp)
    # Intermixed: overrides may come after options (`lrl run JOB --only finetune finetune.lr=1e-4`);
    # the plain parser ends the overrides at the first option and rejects the ones after it.
    args = sp.parse_intermixed_args(rest)
    args.command = name  # which stage's plan a --dry-run prints
    try:
        return int(module.run(args) or 0)
    except (ConfigError, InputError) as exc:
        print(f"lrl {name}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
