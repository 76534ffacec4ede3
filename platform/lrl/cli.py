"""The ``lrl`` command. Thin: each subcommand parses a job config, builds library objects, runs.

Subcommands live in their stage's package (``COMMANDS``: ``lrl.generate.command``, ...) and expose
``add_arguments(parser)`` and ``run(args) -> int``; they are imported only when chosen so that
``lrl --help`` stays fast and a broken optional stage cannot break the others.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
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
    # default=[]: without it argparse named the optional overrides as missing too ("the following
    # arguments are required: config, overrides") when CONFIG was left out.
    parser.add_argument("overrides", nargs="*", default=[],
                        help="dotted overrides section.key=value, e.g. augment.ops=[swap,mention]; "
                             "a list element by its index: data.ner[0].lang=yo")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved config and the plan (inputs, output folder) and exit")


#: Stage commands that keep hidden folders on the output root between runs (pretraining's
#: ``.pretrain-<hash>.ray``, the finished parts of finetune and tune), or whose second run of the
#: same job could only compute the same folder again (generate: two runs 2 s apart each read,
#: augmented and wrote all 25,641 rows, and the second then printed the first's summary): they
#: hold its lock as ``lrl run`` does (``lrl.data.root_lock.root_lock``). Two ``lrl pretrain`` on
#: one root raced on the same initial model folder and one crashed with a 30-line traceback.
LOCKING = {"generate", "pretrain", "finetune", "tune"}
#: Stage commands that start or join Ray: a cluster address they are given is checked for a
#: listener as the command starts (``lrl.ray_join.check_reachable``). `lrl run` checks it in its
#: preflight (``check_shared_output`` joins the cluster before any stage).
RAY_COMMANDS = {"generate", "pretrain", "finetune", "tune"}
#: The running command's exit stack (``_main``): what it holds until it returns.
_held: list[contextlib.ExitStack] = []


def load_job_args(args: argparse.Namespace):
    """Load the job named by ``args.config`` with ``args.overrides``; honour ``--dry-run``: the
    resolved config, then (for a stage command) the stage's plan, as ``lrl run --dry-run`` does.
    A ``LOCKING`` command takes the output root's lock until it returns."""
    from lrl.job import load_job

    cfg = load_job(args.config, args.overrides)
    stage = getattr(args, "command", None)
    if getattr(args, "dry_run", False):
        from lrl.pipeline.plan import INPUTS, stage_plan

        # The plan first, as lrl run --dry-run does: a dry run that stops on its checks
        # (evaluate.splits=[tst], a missing dev file) printed the whole resolved config before
        # its one-line error, as if it had passed.
        steps = stage_plan(cfg, stage) if stage in INPUTS else ""
        print(dump(cfg), end="")
        print(steps, end="")
        raise SystemExit(0)
    if stage in RAY_COMMANDS:
        from lrl.ray_join import check_reachable

        # Before the stage reads its inputs (~20 s for the WikiANN ug job), not at its ray.init.
        address = cfg.ray.address or os.environ.get("RAY_ADDRESS")
        if address:
            check_reachable(address, "ray.address" if cfg.ray.address else "RAY_ADDRESS")
    if stage in LOCKING and _held:
        from lrl.data.root_lock import root_lock

        _held[-1].enter_context(root_lock(cfg.output.root, cfg.name, f"lrl {stage}"))
    return cfg


def reused_line(path: str, started: float) -> str | None:
    """The line a stage command ends with when its output folder ``path`` was already finished
    before ``started`` (the command's start, ``time.time()``): a rerun found it and recomputed
    nothing. None when the command made it. `lrl run` says the same per stage ("reused")."""
    from lrl.pipeline.runner import finished_before

    when = finished_before(path, started)
    return f"  (reused: finished {when}, nothing recomputed)" if when else None


class _HelpWithConfig(argparse.RawDescriptionHelpFormatter):
    pass


DESCRIPTION = ("NLP for low-resource languages on Ray: generate training data, train a tokenizer,\n"
               "pretrain a masked LM, fine-tune and tune NER, evaluate (seqeval span F1), report.")
EPILOG = ("start with `lrl quickstart` (the whole pipeline on a packaged sample, ~1.5 min on 2 CPUs);\n"
          "`lrl COMMAND --help` shows a command's options and config fields, `lrl config` every field.")


def fields_text(sections: set[str] | None = None) -> str:
    """The reference of the config fields of ``sections`` (all with None), for ``lrl config`` and
    ``--help``."""
    from lrl.job import JobConfig

    return help_text(JobConfig, sections)


def config_epilog(name: str) -> str:
    """The config fields a command's ``--help`` lists: a stage command's own sections and those
    every stage reads; ``run``/``submit`` their ``pipeline`` section. All ~340 fields (950 lines)
    pushed the command's own options off the screen; ``lrl config`` still prints every one."""
    from lrl.pipeline.settings_drift import ALSO_READ, OWN_SECTIONS, SHARED_SECTIONS

    if name in OWN_SECTIONS:
        sections = (OWN_SECTIONS[name] | SHARED_SECTIONS | {"name", "ray", "output"}
                    | {key.split(".")[0] for key, readers in ALSO_READ.items() if name in readers}
                    # without pretrain.tokenizer_path, `lrl pretrain` trains the tokenizer first
                    | ({"tokenizer"} if name == "pretrain" else set()))
    else:
        sections = {"pipeline"} if name in ("run", "submit") else set()
    fields = fields_text(sections)
    head = ("config fields of this command (set in the YAML or as dotted overrides section.key=value; "
            "a list element's field by its index, data.ner[0].lang=yo):\n" + fields + "\n\n"
            ) if fields else "config: set fields in the YAML or as dotted overrides section.key=value.\n"
    return head + "every config field, of every stage: `lrl config` (the same as docs/config.md)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lrl", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, summary) in COMMANDS.items():
        sub.add_parser(name, help=summary, add_help=False)
    sub.add_parser("config", help="print the reference of every config field, or of SECTION ...")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Restored on the way out: a caller that runs ``main`` in its own process (tests) keeps its own.
    previous = signal.getsignal(signal.SIGTERM)
    previous_int = signal.getsignal(signal.SIGINT)  # handle_sigterm takes Ctrl-C too (one stop at a time)
    reset_sigterm()
    handle_sigterm()
    try:
        try:
            with command_warnings():
                code = _main(argv)
        finally:
            sys.stdout.flush()  # a reader gone early (`lrl config | head`) shows here, not at exit
        return code
    except BrokenPipeError:
        # `lrl config | head` printed a BrokenPipeError traceback once head had its lines; a
        # closed pipe is the reader's choice. stdout goes to /dev/null so the exit flush is quiet.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (AttributeError, OSError, ValueError):  # not a real file (a test's capture)
            pass
        return 141  # 128 + SIGPIPE, as a shell reports a writer whose reader left
    except KeyboardInterrupt:
        # The stage's cleanup ran on the way here: its temporary folder is gone. Ctrl-C returns
        # 130 itself: re-raised, the exit status was 1 once Ray had started (a shell or scheduler
        # then reads a stop as a crash).
        how, code = ("SIGTERM", SIGTERM_EXIT) if sigterm_received() else ("Ctrl-C", SIGINT_EXIT)
        print(f"lrl {argv[0] if argv else ''}: stopped by {how}; unfinished output removed, "
              "finished stages kept (run the same command again to go on)", file=sys.stderr)
        return code
    finally:
        if threading.current_thread() is threading.main_thread():
            # A caller's own handlers (a notebook's, pytest's): left as lrl's "already stopping",
            # its later Ctrl-C were swallowed. The lrl command's exit is covered by the handlers
            # put back at exit after a stop (``lrl.signals``).
            for sig, handler in ((signal.SIGTERM, previous), (signal.SIGINT, previous_int)):
                if handler is not None:
                    signal.signal(sig, handler)


def _config(rest: list[str]) -> int:
    """``lrl config [SECTION ...]``: the reference, whole or of the named top-level sections (it
    ignored its arguments: ``lrl config pretrain`` and ``lrl config --help`` printed all 940 lines)."""
    from lrl.job import JobConfig

    sp = argparse.ArgumentParser(prog="lrl config", description="print the reference of every config field, "
                                 "or of the named sections (lrl config pretrain tune); the same as docs/config.md")
    sections = list(JobConfig.model_fields)
    sp.add_argument("sections", nargs="*", metavar="SECTION", help=f"one of {', '.join(sections)}")
    args = sp.parse_args(rest)
    unknown = [s for s in args.sections if s not in sections]
    if unknown:
        sp.error(f"no config section {', '.join(map(repr, unknown))}; choose from {', '.join(sections)}")
    print(fields_text(set(args.sections) or None).lstrip("\n"))
    return 0


def _main(argv: list[str]) -> int:
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    name, rest = argv[0], argv[1:]
    if name == "config":
        return _config(rest)
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; choose from {', '.join([*COMMANDS, 'config'])}")
    module = importlib.import_module(COMMANDS[name][0])
    sp = argparse.ArgumentParser(prog=f"lrl {name}", description=COMMANDS[name][1],
                                 formatter_class=_HelpWithConfig, epilog=config_epilog(name))
    module.add_arguments(sp)
    # Intermixed: overrides may come after options (`lrl run JOB --only finetune finetune.lr=1e-4`);
    # the plain parser ends the overrides at the first option and rejects the ones after it.
    args = sp.parse_intermixed_args(rest)
    args.command = name  # which stage's plan a --dry-run prints
    with contextlib.ExitStack() as held:
        _held.append(held)
        try:
            return int(module.run(args) or 0)
        except (ConfigError, InputError) as exc:
            print(f"lrl {name}: error: {exc}", file=sys.stderr)
            return 2
        finally:
            _held.pop()


if __name__ == "__main__":
    raise SystemExit(main())
