"""``lrl <stage> JOB --dry-run``: the plan of one stage command, worded like ``lrl run --dry-run``'s.

A stage command runs its stage alone (no upstream outputs are passed), so the plan names what it
would read from the config, where its output folder goes and, when the folder can be named without
running anything, whether it is already finished (then the command reuses it and does no work).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from lrl.config import ConfigError
from lrl.data.files import InputError, resolve
from lrl.data.output import StageOutput
from lrl.job import JobConfig, encoder_setting
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


def planned_output(cfg: JobConfig, stage: str, known: dict[str, str],
                   stages: list[str]) -> tuple[StageOutput | None, str]:
    """(The folder ``stage`` would write or reuse under ``lrl run``, or None; why it is None, as
    the dry run's line says it). A folder is named once every stage before it in ``stages`` is in
    ``known`` (finished outputs), where reading input fingerprints names it: generate and
    tokenizer, and pretraining once its tokenizer is known (without one it trains one first). A
    dry run said "run" for every stage after the first, also for a pretraining that the run then
    reused at once; and a bare "run" for the others, not saying that their folders wait on an
    upstream stage. For the first stage this reads every input file, so a missing or unreadable one
    is the same error here as when the run starts, and a generate stage to run makes the checks it
    makes before any work (``pre_work_checks``); for a later stage such an error leaves it unnamed
    (the run says it when the stage starts)."""
    waits = [s for s in stages[: stages.index(stage)] if s not in known]
    if waits:  # the last of them: once it has run, every stage before this one has
        return None, f"folder named once {waits[-1]} has run"
    try:
        out = _named_output(StageContext(cfg, dict(known)), stage)
        if out is not None and not is_finished(out.path):
            pre_work_checks(cfg, stage)
    except (InputError, ConfigError, OSError) as exc:
        if stage == stages[0]:
            raise
        return None, f"folder named when the stage runs; its inputs cannot be read here: {exc}"
    return out, "" if out is not None else "folder named when the stage runs"


def pre_work_checks(cfg: JobConfig, stage: str) -> None:
    """The checks a stage whose folder is not finished makes on the driver before any work, that
    its dry run makes too: generate's filter settings and translation models and language codes
    (``lrl.generate.translate.preflight``: a model's config and tokenizer, never its weights). A
    dry run of a job with a misspelt model folder said nothing; the run stopped on it."""
    if stage == "generate":
        from lrl.generate.stage import check_filters, check_translation

        check_filters(cfg)
        check_translation(cfg)


def _named_output(ctx: StageContext, stage: str) -> StageOutput | None:
    if stage == "generate":
        return _generate_output(ctx.cfg)
    if stage == "tokenizer":
        from lrl.model.command import stage_output

        return stage_output(ctx)
    if stage == "pretrain" and (ctx.cfg.pretrain.tokenizer_path or "tokenizer" in ctx.upstream):
        from lrl.train.pretrain import stage_output as pretrain_output

        return pretrain_output(ctx)[0]
    return None


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
        if key == "data.ner" and stage in ("finetune", "tune", "evaluate"):
            # The sources the command reads: evaluate's dry run listed the train files it never opens.
            from lrl.pipeline.preflight_inputs import source_readers

            read = source_readers(cfg, [stage], alone=True)
            value = [src for i, src in enumerate(value) if i in read]
        if value not in (None, [], {}):
            root = cfg.data.root if key.startswith(("data.", "augment.lexicons")) else None
            lines.append(f"#   {key}: {_show(value, root)}")
        elif upstream:
            lines.append(f"#   {key}: unset (under lrl run: the {' or '.join(upstream)} stage's output)")
    if (missing := _missing_model(cfg, stage)) is not None:
        lines.append(f"# {missing}")
    lines += [f"# {line}" for line in _checks(cfg, stage)]
    out = NAMED_BY_CONFIG[stage](cfg) if stage in NAMED_BY_CONFIG else None
    if stage == "pretrain":
        out = _standalone_pretrain(cfg, lines)
    if out is not None and not is_finished(out.path):
        pre_work_checks(cfg, stage)  # a finished folder is reused without them
    if out is not None:
        state = ("finished: reused at once, nothing recomputed" if is_finished(out.path)
                 else "not written yet: the stage would write it")
        lines.append(f"# output: {out.path} ({state})")
    else:
        lines.append(output_line(cfg, stage))
    return "\n".join(lines) + "\n"


def _missing_model(cfg: JobConfig, stage: str) -> str | None:
    """A warning when ``lrl finetune|tune|evaluate`` alone has no model to read: the command gets no
    upstream output and stops on it (``lrl.tune.splits.resolve_model``, ``run_evaluate``), while its
    dry run said only "unset (under lrl run: ...)" and exited 0."""
    if stage in ("finetune", "tune"):
        unset = not encoder_setting(cfg, stage)[1]
        key, what = ("tune.model_path or finetune.model" if stage == "tune" else "finetune.model",
                     "a pretrain-<hash> output folder, a Hugging Face model folder, or preset:micro")
    elif stage == "evaluate":
        unset, key, what = not cfg.evaluate.model, "evaluate.model", "a finetune-<hash> or tune-<hash> output folder"
    else:
        return None
    if not unset:
        return None
    return (f"warning: lrl {stage} runs the stage alone and reads no earlier run's output: it would stop "
            f"because {key} is unset; set it ({what}), or run the job with lrl run")


def _standalone_pretrain(cfg: JobConfig, lines: list[str]) -> StageOutput | None:
    """``lrl pretrain``'s folder when its tokenizer is known (``pretrain.tokenizer_path``, or the
    tokenizer stage's folder for this config, finished), else None; a line in ``lines`` says which
    tokenizer it uses. Its dry run said the tokenizer came from ``lrl run``'s tokenizer stage, and
    named no folder, while the command trained that tokenizer itself first."""
    from lrl.train.pretrain import stage_output

    upstream: dict[str, str] = {}
    if not cfg.pretrain.tokenizer_path:
        tok = _tokenizer_output(cfg)
        done = is_finished(tok.path)
        lines.append(f"# tokenizer: {tok.path} (the tokenizer stage's folder for this config, tokenizer.*: "
                     + ("finished, reused)" if done else "not written yet: lrl pretrain trains it first)"))
        if not done:
            return None
        upstream["tokenizer"] = tok.path
    return stage_output(StageContext(cfg, upstream=upstream))[0]


def _checks(cfg: JobConfig, stage: str) -> list[str]:
    """The checks ``lrl run --dry-run`` makes for this stage: model settings naming no folder and
    languages finetune or tune would stop on (errors, as the stage stops on them at once) or leave
    out, whether pretraining's workers fit on the embedded Ray, and whether generate's translation
    actors can run. The stage commands ran them only when not a dry run (the languages) or once
    Ray ran (the workers, the actors), so a dry run said nothing of them. Also the ``data.ner``
    sources finetune, tune and evaluate read and ``evaluate.splits`` (``check_sources``, as the
    command reads them: ``alone``): ``lrl evaluate --dry-run evaluate.splits=[tst]`` or a missing
    dev file passed, and the command stopped on it."""
    from lrl.pipeline.preflight import (
        PreflightError,
        check_languages,
        check_model_folders,
        check_pretrain_positions,
        check_pretrain_resources,
        check_task_resources,
    )
    from lrl.pipeline.preflight_inputs import check_sources

    try:
        return (check_model_folders(cfg, [stage]) + check_pretrain_positions(cfg, [stage])
                + check_languages(cfg, [stage]) + check_pretrain_resources(cfg, [stage])
                + check_task_resources(cfg, [stage]) + check_translate_resources(cfg, [stage])
                + check_sources(cfg, [stage], alone=True))
    except PreflightError as exc:
        raise ConfigError(str(exc)) from None


def check_translate_resources(cfg: JobConfig, todo: list[str]) -> list[str]:
    """Plan lines (for a dry run: nothing is started) on the generate stage's translation actor
    pools: ``lrl.generate.translate.ops.check_pool``, which the stage calls once Ray runs, asked
    of the embedded local Ray it would start (its resources as ``check_pretrain_resources`` finds
    them, without starting it). What would stop the stage is a warning here, as pretraining's
    workers are: a finished output of the same config would be reused without the check. A
    cluster (``ray.address``, ``RAY_ADDRESS``) is not joined: only the settings are checked."""
    if "generate" not in todo or not cfg.translate.enabled:
        return []
    from lrl.generate.translate.ops import check_pool
    from lrl.pipeline.preflight import embedded_resources

    t = cfg.translate
    pools = [("translate.train.model", t.train.model)] if t.train is not None else []
    b = t.backtranslate
    if b is not None and (b.labelled or (b.text and cfg.data.text)):  # text rows: only when there are some
        pools += [("translate.backtranslate.to_pivot", b.to_pivot), ("translate.backtranslate.from_pivot", b.from_pivot)]
    pools = [(setting, m) for setting, m in pools if m.backend != "fake"]  # the fake one runs in tasks
    if not pools:
        return []
    address = cfg.ray.address or os.environ.get("RAY_ADDRESS")
    lines, nodes, has = [], None, ""
    if address:
        lines.append(f"translate: actors not checked against the Ray cluster at {address} (a dry run does not "
                     "join it); the stage checks them when it starts")
    else:
        cpus, gpus = embedded_resources(cfg.ray)
        nodes, has = [{"CPU": cpus, "GPU": gpus}], f"the embedded local Ray would have {cpus} CPUs and {gpus} GPUs"
    for setting, m in pools:
        try:
            found = check_pool(m, setting, nodes, embedded=True)
        except ConfigError as exc:
            lines.append(f"warning: {exc}. The generate stage would stop with this error when it starts (unless "
                         "a finished output of it is reused)")
            continue
        lines += [f"warning: {w}" for w in found]
        if not found and m.num_gpus and nodes is not None:
            lines.append(f"{setting}: {m.num_actors} actor(s) of {m.num_gpus:g} GPU and {m.cpus_per_actor:g} CPU; "
                         f"{has}: they fit")
    return lines


__all__ = ["INPUTS", "NAMED_BY_CONFIG", "check_translate_resources", "config_value", "planned_output", "pre_work_checks",
           "stage_plan"]
