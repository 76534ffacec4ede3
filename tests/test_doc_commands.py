"""Every ``lrl ...`` command the README, the job files and the cluster files show parses with the
real CLI (subcommand, options, overrides), and a recipe run names its data root.

A user copies these lines verbatim; a renamed option or a stale key must fail here, not there."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path

import pytest

from lrl.cli import COMMANDS
from lrl.job import load_job

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "README.md", *sorted((REPO / "jobs").glob("*.yaml")),
           *sorted(p for p in (REPO / "cluster").rglob("*") if p.is_file())]
_SUB = "|".join([*COMMANDS, "config"])
# `lrl CMD ...` (not the `[lrl run]` of sample output) up to the end of the code span, quote or line;
# CMD may list alternatives (a|b|c).
_COMMAND = re.compile(rf"(?<![\[\w-])lrl ((?:{_SUB})(?:\|(?:{_SUB}))*)\b([^`\"'\n]*)")
# Shell expansions in the scripts' example lines: $(...) (one level of nesting) and $VAR.
_SHELL_SUBST = re.compile(r"\$\((?:[^()]|\$?\([^()]*\))*\)")
_SHELL_VAR = re.compile(r"\$\{?(\w+)\}?")


def _commands() -> list[tuple[str, list[str]]]:
    """(where, argv) for every lrl command with arguments (bare `lrl run` in prose names, not runs)."""
    found = []
    for path in SOURCES:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if path.suffix == ".sh":
                line = _SHELL_VAR.sub(r"\1", _SHELL_SUBST.sub("/ABS", line))
            for m in _COMMAND.finditer(line):
                rest = shlex.split(m.group(2).replace("JOB.yaml", "jobs/wikiann_ug.yaml").rstrip(" \\"))
                for sub in m.group(1).split("|"):
                    if rest or sub in ("quickstart", "config"):
                        found.append((f"{path.relative_to(REPO)}:{n}", [sub, *rest]))
    return found


COMMAND_LINES = _commands()


def test_the_docs_show_commands():
    subs = {argv[0] for _, argv in COMMAND_LINES}
    assert {"run", "submit", "quickstart", "config"} <= subs, subs
    assert any(w.startswith("cluster/") for w, _ in COMMAND_LINES)


@pytest.mark.parametrize("where,argv", COMMAND_LINES, ids=[f"{w} lrl {' '.join(a)}" for w, a in COMMAND_LINES])
def test_command_parses_and_its_job_loads(where, argv):
    name, rest = argv[0], argv[1:]
    if name == "config":  # `lrl config [SECTION ...]`
        from lrl.job import JobConfig

        assert set(rest) <= set(JobConfig.model_fields), f"{where}: `lrl config {' '.join(rest)}`: no such section"
        return
    parser = argparse.ArgumentParser(prog=f"lrl {name}")
    importlib.import_module(COMMANDS[name][0]).add_arguments(parser)
    try:
        args = parser.parse_intermixed_args(rest)  # as lrl.cli does
    except SystemExit:
        pytest.fail(f"{where}: `lrl {' '.join(argv)}` does not parse")
    if name == "quickstart":
        from lrl.pipeline.quickstart import load

        load(args.overrides)
        return
    config = getattr(args, "config", None)
    if config is None and name == "report":  # `lrl report --evaluate DIR`: no job file needed
        assert any(getattr(args, s, None) for s in ("finetune", "evaluate", "tune", "pretrain", "generate")), (
            f"{where}: `lrl {' '.join(argv)}` names neither a job file nor a stage folder")
        load_job(None, args.overrides)
        return
    assert config and (REPO / config).is_file(), f"{where}: job file {config} does not exist"
    load_job(REPO / config, args.overrides)  # every override names a real key with a valid value
    if name in ("run", "submit") and config.startswith("jobs/"):
        # A recipe's inputs are not next to its file: without data.root they resolve inside jobs/.
        assert any(o.startswith("data.root=") for o in args.overrides), (
            f"{where}: `lrl {' '.join(argv)}` runs a recipe without data.root")


_KEY = re.compile(r"(?<![\w./-])([a-z_]+(?:\[\])?(?:\.(?:[a-z_]+|\*)(?:\[\])?)+)(=[^\s`]*)?(?![\w(.])")


def test_every_config_key_the_readme_names_exists():
    """The README names config keys in prose (`pretrain.cpus_per_worker=0.5`, `evaluate.model`,
    `translate.*.num_gpus`); a renamed field left them pointing at nothing, and only commands were
    checked. A `key=value` must also load: a wrong value there misleads as much as a wrong key."""
    import fnmatch

    from lrl.job import JobConfig, packaged_job
    from lrl.pipeline.reference import annotations

    keys = set(annotations(JobConfig))
    sections = {k.split(".")[0].split("[")[0] for k in keys}
    named = []
    for span in re.findall(r"`([^`\n]+)`", (REPO / "README.md").read_text(encoding="utf-8")):
        if span.startswith("lrl "):
            continue  # whole commands: test_command_parses_and_its_job_loads
        for key, value in _KEY.findall(span):
            if key.split(".")[0] in sections and not key.endswith(".html"):
                named.append(key)
                assert key in keys or any(fnmatch.fnmatchcase(k, key) for k in keys), f"README: `{key}` is no config key"
                if value and "*" not in key and "[]" not in key:
                    load_job(packaged_job("quickstart"), [key + value])
    assert len(named) > 20, named  # the pattern still finds the keys the README names
