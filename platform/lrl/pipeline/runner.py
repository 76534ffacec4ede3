"""``lrl run``: chain stages, pass each one the output folders of the earlier ones, time them.

Skipping and resuming rest on the stages themselves: every stage names its ``StageOutput`` folder
by a hash of its config and of the upstream folders it reads, and returns at once when that folder
is finished. The runner therefore always calls each selected stage (so a changed input file is
never mistaken for a finished stage) and records what each returned in a state file, which is
what ``--from`` and ``--only`` read to find the outputs of stages they do not run. The state also
keeps the settings and input prints each output was built under, so that ``--from``/``--only`` say
which changed settings and inputs the reused outputs do not have (``lrl.pipeline.input_drift``).
A crash in a stage leaves every earlier folder finished and recorded; the next run passes through
them quickly.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from lrl.config import config_hash
from lrl.data.files import filesystem, is_uri
from lrl.data.output import MANIFEST
from lrl.data.remote import absolute  # paths in the state file: read from other working directories
from lrl.data.root_lock import root_lock
from lrl.job import JobConfig
from lrl.pipeline.input_drift import Prints, drift
from lrl.pipeline.settings_drift import flat_config
from lrl.pipeline.stage import StageContext
from lrl.signals import begin_stop

#: stage name -> "module:function"; imported only when the stage runs, so a pipeline without
#: pretraining never imports DeepSpeed and a broken optional stage cannot break the others.
REGISTRY: dict[str, str] = {
    "generate": "lrl.generate.stage:run_generate",
    "tokenizer": "lrl.model.command:run_tokenizer",
    "pretrain": "lrl.train.pretrain:run_pretrain",
    "finetune": "lrl.train.finetune:run_finetune",
    "tune": "lrl.tune.stage:run_tune",
    "evaluate": "lrl.evaluate.command:run_evaluate",
    "report": "lrl.evaluate.report:run_report",
}

StageFn = Callable[[StageContext], str]


class PipelineError(RuntimeError):
    """A pipeline that cannot run as asked (unknown stage, missing upstream output)."""


def resolve_stage(target: str | StageFn) -> StageFn:
    """A stage function from a ``module:function`` string (or the function itself)."""
    if callable(target):
        return target
    module, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise PipelineError(f"stage function {target} cannot be imported: {exc}") from exc


def state_path(cfg: JobConfig) -> str:
    """Where the pipeline state of this job lives (``pipeline.state`` or one per name + stages)."""
    if cfg.pipeline.state:
        return cfg.pipeline.state
    return f"{cfg.output.root.rstrip('/')}/pipeline-{config_hash(cfg.name, list(cfg.pipeline.stages))}.json"


def load_state(path: str) -> dict[str, Any]:
    """The recorded state, or an empty one when the file does not exist yet."""
    fs, inner = filesystem(path)
    if fs.get_file_info(inner).type != pafs.FileType.File:
        return {"stages": {}}
    with fs.open_input_stream(inner) as f:
        raw = f.read().decode()
    try:
        state = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{path}: pipeline state is not valid JSON ({exc}); delete it to start over") from None
    state.setdefault("stages", {})
    return state


def save_state(path: str, state: dict[str, Any]) -> None:
    """Write the state atomically: a reader sees the old file or the new one, never half of one."""
    blob = json.dumps(state, indent=2, ensure_ascii=False, default=str).encode()
    if is_uri(path):  # one PUT is atomic on object stores
        fs, inner = filesystem(path)
        with fs.open_output_stream(inner) as f:
            f.write(blob)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, target)


def is_finished(path: str) -> bool:
    """True when ``path`` is a finished stage output (its manifest exists)."""
    fs, inner = filesystem(path)
    return fs.get_file_info(f"{inner}/{MANIFEST}").type == pafs.FileType.File


def finished_before(path: str, wall: float) -> str | None:
    """When ``path`` was finished (its manifest written), as local time, if that was before the
    wall-clock time ``wall``: the stage found its output done and reused it. None otherwise."""
    fs, inner = filesystem(path)
    mtime = fs.get_file_info(f"{inner}/{MANIFEST}").mtime
    if mtime is None or mtime.timestamp() >= wall:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(mtime.timestamp()))


def select(stages: list[str], start: str | None = None, only: str | None = None) -> list[str]:
    """The stages to execute for ``--from``/``--only`` (each must be in the pipeline)."""
    if start and only:
        raise PipelineError("use --from or --only, not both")
    name = start or only
    if name is None:
        return list(stages)
    if name not in stages:
        raise PipelineError(f"stage {name!r} is not in pipeline.stages {stages}")
    i = stages.index(name)
    return [name] if only else stages[i:]


def record(state: dict[str, Any], name: str, path: str, seconds: float, cfg: JobConfig,
           not_applied: dict[str, tuple[Any, Any]], inputs: dict[str, Any] | None = None) -> None:
    """Record a finished stage with the settings its output was built under: this config, except
    the changed settings that reused upstream outputs carry in their recorded form; and with the
    content prints of the data files it read (``lrl.pipeline.input_drift``)."""
    flat = flat_config(cfg)
    for key, (old, _) in not_applied.items():
        if old is None:
            flat.pop(key, None)
        else:
            flat[key] = old
    key = config_hash(flat)
    configs = state.setdefault("configs", {})
    configs[key] = flat
    state["stages"][name] = {"path": path, "seconds": round(seconds, 3),
                             "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "config": key,
                             **({"inputs": inputs} if inputs is not None else {})}
    used = {rec.get("config") for rec in state["stages"].values()}
    for old_key in [k for k in configs if k not in used]:  # keep only configs a stage still refers to
        del configs[old_key]


@dataclass
class StageTiming:
    """One executed stage: its output folder and wall time."""

    stage: str
    path: str
    seconds: float


@dataclass
class RunResult:
    """What a pipeline run did: outputs by stage, per-stage timings and the total wall time."""

    outputs: dict[str, str]
    timings: list[StageTiming] = field(default_factory=list)
    total_s: float = 0.0
    state_file: str = ""

    @property
    def stage_s(self) -> float:
        return sum(t.seconds for t in self.timings)

    @property
    def overhead_s(self) -> float:
        """Wall time spent outside stage functions (config, state file, imports of the runner)."""
        return max(self.total_s - self.stage_s, 0.0)

    def table(self) -> str:
        lines = [f"{'stage':<10} {'seconds':>9}  output"]
        lines += [f"{t.stage:<10} {t.seconds:>9.2f}  {t.path}" for t in self.timings]
        share = self.overhead_s / self.total_s * 100 if self.total_s else 0.0
        lines.append(f"{'stages':<10} {self.stage_s:>9.2f}")
        lines.append(f"{'overhead':<10} {self.overhead_s:>9.2f}  ({share:.1f}% of {self.total_s:.2f} s total)")
        return "\n".join(lines)


def recorded_upstream(state: dict[str, Any], stages: list[str], before: str, root: str) -> dict[str, str]:
    """Finished outputs recorded for the stages before ``before`` (what --from/--only reuse).

    A recorded folder is taken from ``root`` (the output root) by its name when a finished one of
    that name is there: a runs folder moved or copied elsewhere carries its state file and stage
    folders, and a copy on the same machine used the original's folders (absolute paths)."""
    upstream: dict[str, str] = {}
    for name in stages[: stages.index(before)]:
        rec = state["stages"].get(name)
        path = rec["path"] if rec else None
        if path:
            here = f"{absolute(root).rstrip('/')}/{path.rstrip('/').rsplit('/', 1)[-1]}"
            path = here if is_finished(here) else path
        if not path or not is_finished(path):
            raise PipelineError(
                f"--from/--only {before}: no finished output of '{name}' is recorded in the pipeline state; "
                f"run the pipeline up to {name} first")
        upstream[name] = path
    return upstream


def plan(cfg: JobConfig, start: str | None = None, only: str | None = None) -> str:
    """What ``lrl run --dry-run`` adds to the resolved config: where the state file and the stage
    outputs go, which recorded outputs ``--from``/``--only`` would reuse and which stages would run.

    It checks the selection as the run does (a ``PipelineError`` when the run would stop at once)
    and runs nothing. Lines are YAML comments, so the printed config stays loadable."""
    stages = list(cfg.pipeline.stages)
    todo = select(stages, start, only)
    spath = state_path(cfg)
    try:
        state = load_state(spath)
        exists = "exists" if _is_file(spath) else "not written yet"
    except OSError as exc:  # an object store out of reach (offline, no credentials)
        if todo[0] != stages[0]:
            raise PipelineError(f"--from/--only {todo[0]}: cannot read the pipeline state {spath}: "
                                f"{exc}") from None
        state, exists = {"stages": {}}, f"cannot be read from here: {exc}"
    upstream = recorded_upstream(state, stages, todo[0], cfg.output.root) if todo[0] != stages[0] else {}
    lines = ["# lrl run --dry-run: nothing was run", f"# state file: {absolute(spath)} ({exists})",
             output_line(cfg), *(f"# {line}" for line in _preflight(cfg, todo) + _workers_check(cfg, todo))]
    from lrl.pipeline.plan import planned_output  # it imports this module

    known = dict(upstream)  # and the stages this plan finds finished: what their successors read
    for name in stages:
        if name in upstream:
            lines.append(f"#   {name:<10} reuse  {upstream[name]}")
        elif name in todo:
            rec = state["stages"].get(name)
            out, why = planned_output(cfg, name, known, stages)  # why: what its unnamed folder waits on
            last = f"  ({why}" + (f"; last recorded: {rec['path']})" if rec else ")")
            if out is not None:
                done = is_finished(out.path)
                known.update({name: out.path} if done else {})
                last = f"  -> {out.path} ({'finished: reused at once' if done else 'not written yet'})"
            lines.append(f"#   {name:<10} run{last}")
    lines += [f"# {warning}" for warning in drift(state, cfg, list(upstream), Prints(state))[1]]
    return "\n".join(lines) + "\n"


def _preflight(cfg: JobConfig, todo: list[str]) -> list[str]:
    """Warnings about the config for the stages to run; a ``PipelineError`` (before any stage
    ran) for what would stop one of them later."""
    from lrl.pipeline.preflight import (
        PreflightError,
        check_encoder,
        check_folders,
        check_languages,
        check_pretrain_positions,
    )
    from lrl.pipeline.preflight_inputs import check_sources

    try:
        return (check_folders(cfg, todo) + check_pretrain_positions(cfg, todo)
                + check_languages(cfg, todo, generated="generate" in cfg.pipeline.stages)
                + check_encoder(cfg, todo) + check_sources(cfg, todo))
    except PreflightError as exc:
        raise PipelineError(str(exc)) from None


def _shared_output(cfg: JobConfig) -> None:
    """On a joined cluster, a ``PipelineError`` before any stage when a local ``output.root`` is
    not the same folder on every node (``preflight.check_shared_output``)."""
    from lrl.pipeline.preflight import PreflightError, check_shared_output

    try:
        check_shared_output(cfg)
    except PreflightError as exc:
        raise PipelineError(str(exc)) from None


def _workers_check(cfg: JobConfig, todo: list[str]) -> list[str]:
    """Whether pretraining's workers, a fine-tuning task, a Tune trial and generate's translation
    actors fit on the embedded Ray: all of it in a dry run, the warnings in a run (the stages check
    again with Ray running, when they start)."""
    from lrl.pipeline.plan import check_translate_resources
    from lrl.pipeline.preflight import check_pretrain_resources, check_task_resources

    return check_pretrain_resources(cfg, todo) + check_task_resources(cfg, todo) + check_translate_resources(cfg, todo)


def output_line(cfg: JobConfig, stage: str | None = None) -> str:
    """Where stage outputs go, as a plan line (``lrl run --dry-run`` and the stage commands')."""
    what = "stage outputs" if stage is None else "output"
    return (f"# {what}: {absolute(cfg.output.root.rstrip('/'))}/{stage or '<stage>'}-<hash of its config and "
            "inputs> (a finished folder of the same hash is reused at once)")


def _is_file(path: str) -> bool:
    """True when ``path`` is an existing file (local or on an object store)."""
    fs, inner = filesystem(path)
    return fs.get_file_info(inner).type == pafs.FileType.File


def _restore_sigint(handler: Any) -> None:
    """Put back the Ctrl-C handler a stage found. Ray Train's ``fit`` installs its own (abort the
    training run) and leaves it in place after returning: a Ctrl-C in a later stage of the same
    ``lrl run`` (finetune after pretrain) then went to that finished run's controller and was
    swallowed, and the pipeline ran on to the end with exit status 0."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return  # installed outside Python, or not settable from this thread
    if signal.getsignal(signal.SIGINT) is not handler:
        signal.signal(signal.SIGINT, handler)


def run_pipeline(
    cfg: JobConfig,
    start: str | None = None,
    only: str | None = None,
    registry: Mapping[str, str | StageFn] | None = None,
    log: Callable[[str], None] = print,
    started: float | None = None,
) -> RunResult:
    """Run the configured stages in order and return their outputs and timings.

    Each stage gets ``StageContext(cfg, upstream)`` with the output folders of every earlier stage.
    The state file is rewritten after each stage, so a crash keeps the record of what finished.
    ``started`` (a ``time.perf_counter()`` value) lets the caller count config loading as overhead.
    One run at a time per local output root (``root_lock``): a second one stops at once.
    """
    t0 = time.perf_counter() if started is None else started
    registry = {**REGISTRY, **(registry or {})}
    todo = select(list(cfg.pipeline.stages), start, only)
    _shared_output(cfg)
    with root_lock(cfg.output.root, cfg.name):
        return _run_stages(cfg, todo, registry, log, t0)


def _run_stages(cfg: JobConfig, todo: list[str], registry: Mapping[str, str | StageFn],
                log: Callable[[str], None], t0: float) -> RunResult:
    """``run_pipeline`` once it holds the output root: the stages ``todo``, in order."""
    stages = list(cfg.pipeline.stages)
    spath = state_path(cfg)
    state = load_state(spath)
    state.update(name=cfg.name, pipeline=stages)
    upstream = recorded_upstream(state, stages, todo[0], cfg.output.root) if todo[0] != stages[0] else {}
    # The workers check's warning now, not only when the pretrain stage starts after hours of the
    # stages before it (that stage still fails then, unless a finished output of it is reused).
    for line in _preflight(cfg, todo) + [x for x in _workers_check(cfg, todo) if x.startswith("warning:")]:
        log(f"[lrl run] {line}")
    for name, path in upstream.items():
        log(f"[lrl run] {name}: reusing recorded output {path}")
    prints = Prints(state)  # content prints of the inputs, kept in the state by their files' stamps
    not_applied, warnings = drift(state, cfg, list(upstream), prints)
    for warning in warnings:
        log(f"[lrl run] {warning}")
    result = RunResult(outputs=dict(upstream), state_file=spath)
    for name in todo:
        fn = resolve_stage(registry[name])
        inputs = prints.stage(cfg, name)  # before it runs: what it names its output by, not an edit since
        log(f"[lrl run] {name}: starting")
        s0, wall0 = time.perf_counter(), time.time()
        sigint = signal.getsignal(signal.SIGINT)
        stopped = False
        try:
            path = str(fn(StageContext(cfg=cfg, upstream=dict(upstream))))
        except BaseException as exc:
            seconds = time.perf_counter() - s0
            # A stop (SIGTERM, ``ray job stop``, Ctrl-C) is not a failure of the stage.
            stopped = isinstance(exc, KeyboardInterrupt)
            log(f"[lrl run] {name}: {'STOPPED' if stopped else 'FAILED'} after {seconds:.1f} s; finished stages "
                f"are kept, re-run the same command to resume here")
            raise
        finally:
            _restore_sigint(sigint)
            if stopped:  # also when another handler (Ray Train's) took the Ctrl-C
                begin_stop()
        seconds = time.perf_counter() - s0
        path = absolute(path)
        if not is_finished(path):
            raise PipelineError(f"stage {name} returned {path}, which has no {MANIFEST}: not a finished output")
        upstream[name] = path
        result.outputs[name] = path
        result.timings.append(StageTiming(name, path, seconds))
        record(state, name, path, seconds, cfg, not_applied, inputs)
        save_state(spath, state)
        # A rerun's stages return at once with the folder an earlier run finished: "done in 0.02 s"
        # read as if the stage had run, on the cluster too, where the user cannot look.
        earlier = finished_before(path, wall0)
        what = f"reused (finished {earlier})" if earlier else "done"
        log(f"[lrl run] {name}: {what} in {seconds:.2f} s -> {path}")
    result.total_s = time.perf_counter() - t0
    log(result.table())
    sys.stdout.flush()
    return result
