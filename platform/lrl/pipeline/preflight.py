"""What ``lrl run`` checks in the config before its first stage: mistakes that would otherwise
stop a late stage only after the earlier ones ran (hours of pretraining before tune says a
language has no dev data), or make it leave a language out without a word."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from lrl.data.config import HELDOUT
from lrl.data.files import is_uri
from lrl.job import JobConfig, encoder_setting
from lrl.runtime import RayConfig


class PreflightError(ValueError):
    """A config the run would certainly fail on, found before any stage ran."""


def check_languages(cfg: JobConfig, todo: list[str], generated: bool = False) -> list[str]:
    """Check the languages finetune or tune would train against the ``data.ner`` splits.

    Both select models on dev sentences, which come only from ``data.ner`` sources with
    ``split: dev`` (``lrl.tune.splits.language_splits``): a language asked for without one stops
    that stage, and a language with training sentences but no dev ones is left out of training,
    evaluation and the report. Raises ``PreflightError`` for the first, returns warning lines for
    the second, and for languages with dev or test sentences but no training ones
    (``_heldout_only``). ``generated``: the stage reads the generate stage's rows (``lrl run`` with
    generate in ``pipeline.stages``), so translation targets have training rows."""
    stage = next((s for s in ("finetune", "tune") if s in todo), None)
    if stage is None:
        return []
    dev = sorted({s.lang for s in cfg.data.ner if s.split == "dev"})
    if not dev:
        # With no data.ner at all the stage stopped too, after generate, tokenizer and pretrain
        # (hours on a real job), and a dry run listed every stage as one that would run.
        lacking = "data.ner is empty" if not cfg.data.ner else "data.ner has no source with split: dev"
        before = list(cfg.pipeline.stages)[: list(cfg.pipeline.stages).index(stage)]
        stop = f", or stop the pipeline before it: pipeline.stages=[{','.join(before)}]" if before else ""
        raise PreflightError(f"{stage} selects models on dev sentences, and {lacking}; add one per language "
                             "(e.g. {path: ..., lang: ug, split: dev})" + stop)
    train = None if cfg.finetune.data else _train_languages(cfg, generated)  # None: from that folder, unknown here
    asked, setting = cfg.finetune.languages, "finetune.languages"
    if stage == "tune" and cfg.tune.languages:
        asked, setting = cfg.tune.languages, "tune.languages"
    if asked:
        lacking = [f"{lang} (no {' and no '.join(what)})" for lang in asked
                   if (what := [w for w, have in (("train", train), ("dev", dev)) if have is not None
                                and lang not in have])]
        if lacking:
            raise PreflightError(f"{setting}: {', '.join(lacking)} in data.ner, so {stage} would stop once the "
                                 f"stages before it ran (train languages: {sorted(train or [])}, dev languages: "
                                 f"{dev}); add a split: train and a split: dev source for each, or leave them out")
        return []
    no_dev = sorted((train or set()) - set(dev))
    lines = [f"warning: data.ner has training sentences but no split: dev source for {no_dev}: {stage} "
             f"trains, evaluates and reports only the languages with dev sentences ({dev}). Add a dev "
             "source for each (or check the lang codes of data.ner match)."] if no_dev else []
    return lines + _heldout_only(cfg, stage, train)


def _heldout_only(cfg: JobConfig, stage: str, train: set[str] | None) -> list[str]:
    """A warning naming the languages with dev or test sentences but no training ones (``data.ner``
    train sources, translate-train targets): no model is trained for them, so evaluate scores no
    per-language model on their rows and the report leaves them out. ``data.ner`` with
    ``lang: yo, split: dev`` beside ug and wo train+dev ran through without a word of yo. None
    for a joint finetune (evaluate scores the joint model on every language's rows: zero-shot) or
    when the training rows come from a ``finetune.data`` folder (their languages are unknown)."""
    if train is None or (stage == "finetune" and cfg.finetune.mode == "joint"):
        return []
    only = sorted({s.lang for s in cfg.data.ner if s.split in HELDOUT} - train)
    if not only:
        return []
    splits = sorted({s.split for s in cfg.data.ner if s.lang in only and s.split in HELDOUT})
    return [f"warning: data.ner has {'/'.join(splits)} sentences but no training sentences for {only}: {stage} "
            f"trains no model for them, so their {'/'.join(splits)} data is not used (evaluate and the report "
            f"leave them out). Add a split: train source for each (languages with training sentences: "
            f"{sorted(train)}), or check the lang codes of data.ner match."]


def check_pretrain_positions(cfg: JobConfig, todo: list[str]) -> list[str]:
    """A ``PreflightError`` when pretraining builds a preset (no ``model.checkpoint``, no
    ``pretrain.model_path``) with fewer positions (``model.max_length``) than its sequences
    (``pretrain.seq_len``): the stage stopped on it only once Ray ran, after the stages before it
    (generate, tokenizer). A checkpoint's own positions are known only when it loads."""
    p = cfg.pretrain
    if "pretrain" not in todo or cfg.model.checkpoint or p.model_path or p.seq_len <= cfg.model.max_length:
        return []
    raise PreflightError(f"pretrain.seq_len={p.seq_len} exceeds model.max_length={cfg.model.max_length}, the "
                         f"positions of the {cfg.model.preset} preset it builds: lower pretrain.seq_len or "
                         "raise model.max_length")


def check_tokenizer_base(cfg: JobConfig, todo: list[str]) -> list[str]:
    """A ``PreflightError`` for a ``tokenizer.base`` that looks like a local path and is no folder
    (``lrl.data.local_or_hub.missing_folder``), when a stage to run reads it: the tokenizer stage,
    or pretraining that trains its tokenizer itself (no tokenizer stage, no
    ``pretrain.tokenizer_path``). The tokenizer stage said it only after generate had run, and a
    dry run not at all (its folder is named once generate has run)."""
    from lrl.data.local_or_hub import missing_folder

    reads = "tokenizer" in todo or ("pretrain" in todo and "tokenizer" not in cfg.pipeline.stages
                                    and not cfg.pretrain.tokenizer_path)
    if reads and (problem := missing_folder("tokenizer.base", cfg.tokenizer.base)) is not None:
        raise PreflightError(problem)
    return []


def check_folders(cfg: JobConfig, todo: list[str]) -> list[str]:
    """``lrl run``'s checks of the settings naming a local folder (or a hub id) that the stages to
    run read: ``check_tokenizer_base`` and ``check_model_folders``."""
    return check_tokenizer_base(cfg, todo) + check_model_folders(cfg, todo)


def check_model_folders(cfg: JobConfig, todo: list[str]) -> list[str]:
    """A ``PreflightError`` for a model setting of a stage to run that names no folder, worded by
    ``lrl.data.local_or_hub``: the local folders ``pretrain.tokenizer_path``/``model_path``,
    ``finetune.model``, ``tune.model_path`` and ``evaluate.model`` (their stages name their output
    by the folder's content, so they stop on a missing one even where a finished output would be
    reused), and ``model.checkpoint`` (a folder or a hub id) when it looks like a local path and
    pretraining would load it. Each stopped its stage only once the stages before it had run (hours
    of pretraining before finetune), ``model.checkpoint=models/x`` with transformers' hub error.

    A finished pretrain folder is reused without its checkpoint: when one under ``output.root``
    may have started from it, a warning instead (the stage checks it when it starts)."""
    from lrl.data.local_or_hub import missing_folder

    for stage in todo:
        if (problem := local_folder_problem(cfg, stage)) is not None:
            raise PreflightError(problem)
    ckpt = cfg.model.checkpoint
    if "pretrain" not in todo or cfg.pretrain.model_path or (problem := missing_folder("model.checkpoint", ckpt)) is None:
        return []
    assert ckpt is not None
    finished = _started_from(cfg.output.root, ckpt)
    if finished == 0:
        raise PreflightError(problem)
    where = f"{finished} under output.root" if finished is not None else "output.root could not be listed"
    return [f"warning: {problem}; a finished pretrain output started from it is reused without it ({where}), "
            "otherwise pretrain stops on it when it starts"]


def local_folder_problem(cfg: JobConfig, stage: str) -> str | None:
    """The one-line error (``missing_local_folder``) for the first setting of ``stage`` that takes
    a local folder only and names none: ``pretrain.tokenizer_path``, ``pretrain.model_path``; the
    encoder of finetune (``finetune.model``) or tune (``tune.model_path``, else ``finetune.model``)
    unless a ``preset:``, and their ``finetune.data``; ``evaluate.model``. None when every one is a
    folder, a URI or unset."""
    from lrl.data.local_or_hub import missing_local_folder

    settings: list[tuple[str, str | None]] = []
    if stage == "pretrain":
        settings = [("pretrain.tokenizer_path", cfg.pretrain.tokenizer_path),
                    ("pretrain.model_path", cfg.pretrain.model_path)]
    elif stage in ("finetune", "tune"):
        key, model = encoder_setting(cfg, stage)
        if not (model or "").startswith("preset:"):
            settings = [(key, model)]
        settings.append(("finetune.data", cfg.finetune.data))  # a missing one was a pyarrow traceback
    elif stage == "evaluate":
        settings = [("evaluate.model", cfg.evaluate.model)]
    return next((p for setting, value in settings if (p := missing_local_folder(setting, value)) is not None), None)


def check_stage_folders(cfg: JobConfig, stage: str) -> None:
    """``local_folder_problem`` as an ``InputError``, for a stage to raise before it reads its data."""
    from lrl.data.files import InputError

    if (problem := local_folder_problem(cfg, stage)) is not None:
        raise InputError(problem)


def _started_from(root: str, checkpoint: str) -> int | None:
    """How many finished pretrain folders under ``root`` may have started from ``checkpoint``: their
    manifest's ``started_from`` names it, or they predate that record. None when ``root`` cannot be
    listed (an object store out of reach)."""
    import pyarrow.fs as pafs

    from lrl.data.files import filesystem, read_json

    names = {checkpoint, os.path.expanduser(checkpoint)}
    try:
        fs, inner = filesystem(root)
        found = fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
        count = 0
        for info in found:
            if info.type != pafs.FileType.Directory or not re.fullmatch(r"pretrain-[0-9a-f]{12}", info.base_name):
                continue
            try:
                manifest = read_json(f"{root.rstrip('/')}/{info.base_name}/manifest.json")
            except FileNotFoundError:  # not finished
                continue
            except ValueError:  # unreadable: it may be one
                manifest = {}
            start = manifest.get("started_from", {"checkpoint": checkpoint}) or {}
            count += start.get("checkpoint") in names
        return count
    except OSError:
        return None


def check_encoder(cfg: JobConfig, todo: list[str]) -> list[str]:
    """Which encoder finetune or tune would train, against ``pipeline.stages``.

    A ``PreflightError`` when none is set (``finetune.model``, for tune also ``tune.model_path``)
    and no pretrain stage gives one: the transfer job run as ``[tokenizer,finetune,...]`` stopped at
    finetune only after the tokenizer stage ran, and its dry run said nothing. Warning lines when an
    earlier stage's output would go unused: a set encoder is fine-tuned in place of the pretrain
    stage's output (only a report stage reads that: the warning said "which no stage reads" there
    too), and without a pretrain stage the tokenizer stage's output (finetune reads the encoder's
    own tokenizer: MiniLM without the extension's pieces read 46% of WikiANN ug words as [UNK],
    and the warning then said to extend the tokenizer, as the job had)."""
    stage = next((s for s in ("finetune", "tune") if s in todo), None)
    if stage is None:
        return []
    stages = list(cfg.pipeline.stages)
    settings = "tune.model_path or finetune.model" if stage == "tune" else "finetune.model"
    model = encoder_setting(cfg, stage)[1]
    if model is None:
        if "pretrain" in stages:
            return []
        raise PreflightError(f"{stage} needs an encoder and pipeline.stages has no pretrain stage to give it one: "
                             f"set {settings} (a pretrain-<hash> output folder, a Hugging Face model folder, or "
                             "preset:micro to train one from scratch), or add pretrain to pipeline.stages")
    if "pretrain" in stages:
        only = " (only the report reads it, for its Pretraining section)" if "report" in stages else ""
        return [f"warning: {stage} trains {settings}={model}, not the pretrain stage's output, which no later stage "
                f"trains from{only}; leave {settings} unset to fine-tune the pretrained encoder"]
    if "tokenizer" in stages:
        return [f"warning: the tokenizer stage's output is read by no stage (only pretrain reads it, and "
                f"pipeline.stages has none): {stage} uses the tokenizer of {settings}={model}; add pretrain to "
                "pipeline.stages to train an encoder with the new tokenizer"]
    return []


def _train_languages(cfg: JobConfig, generated: bool) -> set[str]:
    """Languages with training sentences: ``data.ner`` train sources, and, when the stage reads the
    generate stage's rows (``generated``), the target languages it translates into (their rows are
    training rows too). Without a generate stage the stage reads ``data.ner`` alone, so a
    translate-train target with only a dev source is a language with no training sentences."""
    langs = {s.lang for s in cfg.data.ner if s.split not in HELDOUT}
    if generated and cfg.translate.enabled:
        if cfg.translate.train is not None:
            langs.add(cfg.translate.train.target)
        if cfg.translate.backtranslate is not None:
            langs.add(cfg.translate.backtranslate.lang)
    return langs


def check_pretrain_resources(cfg: JobConfig, todo: list[str]) -> list[str]:
    """Plan lines (for a dry run: nothing is started) on where the pretrain stage's workers would go.

    On the embedded local Ray the stage asks ``lrl.train.pretrain_resources.check_resources``
    once Ray runs, after the stages before it (hours on a recipe), and fails when the workers can
    never be placed: the embedded Ray never grows. Its resources are known beforehand (the
    ``ray.num_cpus`` setting, else the CPUs and GPUs Ray's own detection finds on this machine), so
    the same verdict is given here, as a warning: a finished pretrain output of the same config
    would be reused without the check. A cluster (``ray.address``, ``RAY_ADDRESS``) is not asked:
    a line says so, and the stage checks it when it starts. ``pretrain.steps: 0`` starts no worker
    (``lrl.train.pretrain_init_only``): nothing to place."""
    if "pretrain" not in todo:
        return []
    p = cfg.pretrain
    if p.steps == 0:  # "can never be placed ... would stop with an error" was said of workers that never start
        return ["pretrain: steps 0: no workers start (the starting model is written as built)"]
    address = cfg.ray.address or os.environ.get("RAY_ADDRESS")
    if address:
        return [f"pretrain: workers not checked against the Ray cluster at {address} (a dry run does not "
                "join it); the stage checks them when it starts"]
    from lrl.capacity import workers_that_fit

    cpus, gpus = embedded_resources(cfg.ray)
    if p.use_gpu is not None:
        gpu, why = p.use_gpu, f"pretrain.use_gpu={str(p.use_gpu).lower()}"
    else:  # choose_device's rule on an embedded Ray: no autoscaler can add GPUs
        gpu = gpus >= p.num_workers
        why = f"auto: {gpus} GPU(s) for {p.num_workers} worker(s)"
    has = f"the embedded local Ray would have {cpus} CPUs and {gpus} GPUs"
    what = (f"{p.num_workers} worker(s) of {p.cpus_per_worker:g} CPU(s)" + (" and 1 GPU" if gpu else "")
            + f", training on {'GPU' if gpu else 'CPU'} ({why})")
    if workers_that_fit([{"CPU": cpus, "GPU": gpus}], p.cpus_per_worker, 1.0 if gpu else 0.0) >= p.num_workers:
        return [f"pretrain: {what}; {has}: they fit"]
    fix = "lower pretrain.num_workers or cpus_per_worker" + (", or set pretrain.use_gpu=false" if gpu else "")
    return [f"warning: pretrain: {what} can never be placed: {has} (ray.num_cpus sets its CPUs). The "
            "stage would stop with an error when it starts (unless a finished output of it is reused): "
            f"{fix}, or join a cluster (ray.address)"]


def check_task_resources(cfg: JobConfig, todo: list[str]) -> list[str]:
    """Warnings when one fine-tuning task (``finetune.num_cpus``, ``num_gpus``) or one Tune trial
    (``tune.cpus_per_trial``, ``gpus_per_trial``) can never be placed on the embedded local Ray
    this run would start. The stages stop on it once Ray runs (``lrl.train.placement``), but only
    after the stages before them (hours of pretraining on a recipe); a finished output of the same
    config would be reused without the check, so it is a warning here. A cluster is not asked."""
    asks = []
    if "finetune" in todo:
        asks.append(("finetune", "num_cpus", cfg.finetune.num_cpus, "num_gpus", cfg.finetune.num_gpus))
    if "tune" in todo:
        asks.append(("tune", "cpus_per_trial", cfg.tune.cpus_per_trial, "gpus_per_trial", cfg.tune.gpus_per_trial))
    if not asks or cfg.ray.address or os.environ.get("RAY_ADDRESS"):
        return []
    from lrl.capacity import workers_that_fit

    cpus, gpus = embedded_resources(cfg.ray)
    return [f"warning: {stage}: {stage}.{c_key}={c:g}" + (f" and {g_key}={g:g}" if g else "")
            + f" can never be placed: the embedded local Ray would have {cpus} CPUs and {gpus} GPUs (ray.num_cpus "
            "sets its CPUs); the stage would stop with an error when it starts: lower them, or join a cluster"
            for stage, c_key, c, g_key, g in asks if workers_that_fit([{"CPU": cpus, "GPU": gpus}], c, g) < 1]


def embedded_resources(ray_cfg: RayConfig) -> tuple[int, int]:
    """(CPUs, GPUs) the embedded local Ray would start with (``lrl.runtime.init_ray``): ``num_cpus``
    or what Ray detects, and the GPUs Ray detects (the embedded Ray takes them all). Ray's own
    detection (private functions, no Ray started); 0 GPUs when it cannot tell, as Ray then has."""
    import ray._private.utils

    cpus = ray_cfg.num_cpus or int(ray._private.utils.get_num_cpus())
    try:
        from ray._private.accelerators import get_accelerator_manager_for_resource

        manager = get_accelerator_manager_for_resource("GPU")
        gpus = manager.get_current_node_num_accelerators()
        visible = manager.get_current_process_visible_accelerator_ids()
        if visible is not None:  # CUDA_VISIBLE_DEVICES and the like
            gpus = min(gpus, len(visible))
    except Exception:
        gpus = 0
    return cpus, int(gpus)


def unshared_nodes(path: str, timeout_s: float = 60.0) -> list[str]:
    """The alive nodes of the Ray this process joined that do not see the local folder ``path``
    (a probe file written here, looked for by a 0-CPU task pinned to each node); [] for a URI, a
    single node, or nodes that did not answer within ``timeout_s`` (nodes an autoscaler adds
    later are not probed: the generate stage's writer tasks check the folder themselves,
    ``PartWriter``). Ray must be running."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if is_uri(path) or len(nodes) < 2:
        return []
    os.makedirs(path, exist_ok=True)
    probe = os.path.join(os.path.abspath(path), f".lrl-shared-probe-{uuid.uuid4().hex[:8]}")
    Path(probe).touch()
    try:
        sees = ray.remote(num_cpus=0, max_retries=0)(os.path.exists)
        refs = {f"{n['NodeManagerAddress']} (node {n['NodeID'][:8]})": sees.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(probe)
            for n in nodes}
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s)
        blind = []
        for name, ref in refs.items():
            try:
                if ref in ready and not ray.get(ref):
                    blind.append(name)
            except Exception:  # the node died meanwhile: nothing to say about it
                pass
        return blind
    finally:
        Path(probe).unlink(missing_ok=True)


def check_shared_output(cfg: JobConfig) -> None:
    """On a Ray cluster (joined, not embedded), a ``PreflightError`` before any stage runs when a
    local ``output.root`` is not the same folder on every node. Stages write from the nodes their
    tasks run on: with a folder each node has for itself (a laptop path, a pod without the shared
    volume) the generate stage failed after its whole run with "generate lost or invented rows
    (read 1603, written 598)" (measured: two nodes, the worker's folder a private tmpfs)."""
    if not (cfg.ray.address or os.environ.get("RAY_ADDRESS")) or is_uri(cfg.output.root):
        return
    from lrl.runtime import init_ray

    init_ray(cfg.ray)
    blind = unshared_nodes(cfg.output.root)
    if blind:
        raise PreflightError(f"output.root={cfg.output.root} is not shared by every node of the cluster: "
                            f"{', '.join(blind)} cannot see what this node writes there; put it on a volume "
                            "every node mounts (KubeRay: /data, cluster/kuberay/pvc.yaml) or object storage (s3://...)")


__all__ = ["PreflightError", "check_languages", "check_pretrain_positions", "check_pretrain_resources", "check_shared_output", "check_task_resources",
           "check_folders", "check_model_folders", "check_stage_folders", "check_tokenizer_base", "local_folder_problem",
           "embedded_resources", "unshared_nodes"]
