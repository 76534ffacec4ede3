"""``lrl <stage> JOB --dry-run``: the plan of one stage command, worded like ``lrl run --dry-run``'s.

A stage command runs its stage alone (no upstream outputs are passed), so the plan names what it
would read from the config, where its output folder goes and, when the folder can be named without
running anything, whether it is already finished (then the command reuses it and does no work).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lrl.data.files import resolve
from lrl.data.output import StageOutput
from lrl.job import JobConfig
from lrl.pipeline.runner import is_finished, output_line
from lrl.pipeline.stage import StageContext

#: Config keys naming each stage's inputs, with the stages whose output ``lrl run`` passes when the
#: key is unset (a stage command alone gets none: the stage falls back on its own default).
INPUTS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "generate": [("data.ner", ()), ("data.text", ()), ("augment.lexicons", ())],
    "tokenizer": [("data.text", ("generate",)), ("tokenizer.base", ())],
    "pretrain": [("pretrain.tokenizer_path", ("tokenizer",)), ("data.text", ("generate",)),
                 ("pretrain.aux.conllu", ()), ("pretrain.model_path", ())],
    "finetune": [("finetune.data", ("generate",)), ("data.ner", ()), ("finetune.model", ("pretrain",))],
    "tune": [("finetune.data", ("generate",)), ("data.ner", ()), ("tune.model_path", ()),
             ("finetune.model", ("pretrain",))],
    "evaluate": [("evaluate.model", ("finetune", "tune")), ("data.ner", ())],
    "report": [(f"report.{s}", (s,)) for s in ("generate", "pretrain", "finetune", "tune", "evaluate")],
}


def _generate_output(cfg: JobConfig) -> StageOutput:
    from lrl.generate.stage import stage_output

    return stage_output(cfg)


def _tokenizer_output(cfg: JobConfig) -> StageOutput:
    from lrl.model.command import stage_output

    return stage_output(StageContext(cfg))


#: Stages whose output folder is named by reading their inputs' fingerprints, without running
#: anything (their commands name it so before they start). The others learn their hash while
#: they run: pretrain may train a tokenizer first, finetune and tune may build an encoder.
NAMED_BY_CONFIG: dict[str, Callable[[JobConfig], StageOutput]] = {
    "generate": _generate_output, "tokenizer": _tokenizer_output}


def config_value(cfg: JobConfig, key: str) -> Any:
    """The value at a dotted key (``pretrain.aux.conllu``) of the job config."""
    node: Any = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def _show(value: Any, root: str | None) -> str:
    """A config value as plan text; input paths resolved against ``data.root`` as the stages do."""
    if isinstance(value, list):
        return ", ".join(resolve(v.path, root) + (f" ({v.split})" if getattr(v, "split", None) else "")
                         if hasattr(v, "path") else str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {resolve(v, root)}" for k, v in value.items())
    return str(value)


def stage_plan(cfg: JobConfig, stage: str) -> str:
    """What ``lrl <stage> --dry-run`` adds to the resolved config. It reads input fingerprints
    where that names the output folder, and runs nothing. Lines are YAML comments."""
    lines = [f"# lrl {stage} --dry-run: nothing was run", "# reads:"]
    for key, upstream in INPUTS[stage]:
        value = config_value(cfg, key)
        if value not in (None, [], {}):
            root = cfg.data.root if key.startswith(("data.", "augment.lexicons")) else None
            lines.append(f"#   {key}: {_show(value, root)}")
        elif upstream:
            lines.append(f"#   {key}: unset (under lrl run: the {' or '.join(upstream)} stage's output)")
    lines += [f"# {line}" for line in _checks(cfg, stage)]
    if stage in NAMED_BY_CONFIG:
        out = NAMED_BY_CONFIG[stage](cfg)
        state = ("finished: reused at once, nothing recomputed" if is_finished(out.path)
                 else "not written yet: the stage would write it")
        lines.append(f"# output: {out.path} ({state})")
    else:
        lines.append(output_line(cfg, stage))
    return "\n".join(lines) + "\n"


def _checks(cfg: JobConfig, stage: str) -> list[str]:
    """The checks ``lrl run --dry-run`` makes for this stage: languages finetune or tune would stop
    on (an error, as the stage stops on them at once) or leave out, and whether pretraining's
    workers fit on the embedded Ray. The stage commands ran them only when not a dry run (the
    languages) or once Ray ran (the workers), so a dry run said nothing of either."""
    from lrl.config import ConfigError
    from lrl.pipeline.preflight import PreflightError, check_languages, check_pretrain_resources

    try:
        return check_languages(cfg, [stage]) + check_pretrain_resources(cfg, [stage])
    except PreflightError as exc:
        raise ConfigError(str(exc)) from None


__all__ = ["INPUTS", "NAMED_BY_CONFIG", "config_value", "stage_plan"]
