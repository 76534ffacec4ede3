"""The pretraining stage: text -> balanced, packed stream -> Ray Train (DeepSpeed) -> HF MLM folder.

``fit`` is the library call (tables and folders in, a finished model folder out); ``run_pretrain``
is the stage: it finds the text, tokenizer and model, calls ``fit`` and commits a ``StageOutput``
holding the HF model (loadable with ``AutoModelForMaskedLM``/``AutoTokenizer``), ``metrics.json``
(loss, per-language held-out perplexity, tokens/s, MFU and input share over all attempts of a
resumed run, realised mixture next to the target, the sequences an epoch trained on next to the
packed stream's, the device that trained and why (``choose_device``), and ``phases_s``: the
seconds spent outside the training loop, per phase), a model card (``README.md``: how to pass the
language tag) and ``aux_head/`` when the auxiliary tagging task was on. Checkpoints go to
``<output.root>/.pretrain-<hash>.ray/`` so a crashed or stopped run resumes from the last one;
once the stage folder is committed that folder is removed (``pretrain.keep_checkpoints`` keeps it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lrl.config import ConfigError
from lrl.data.files import InputError, fingerprint, read_json, resolve
from lrl.data.local_or_hub import missing_local_folder
from lrl.data.output import StageOutput, ensure_dir, input_print
from lrl.data.remote import absolute, is_remote, local_folder, local_output, remove_folder, upload_folder
from lrl.data.sampling import HELDOUT_SEED, heldout_split, resample
from lrl.job import JobConfig
from lrl.model.extend import INIT_VERSION
from lrl.pipeline.stage import StageContext
from lrl.train.pretrain_checkpoint import checkpoint_output, with_print
from lrl.train.pretrain_config import PretrainConfig
from lrl.train.pretrain_data import load_text, pack_local, packed_dataset, resolve_paths, specials_key, tag_id
from lrl.train.pretrain_init_only import run_initial
from lrl.train.pretrain_preflight import ds_file_inputs, hash_view, preflight, say, stream_notes
from lrl.train.pretrain_resources import autoscaler_gpus, check_resources, choose_device, fit_or_stop
from lrl.train.pretrain_stream import pad_for_workers

log = logging.getLogger(__name__)
STAGE = "pretrain"
#: Pretrain fields that steer the run, not the model it trains: left out of the hash so that
#: changing them after a crash resumes from the checkpoints in ``.pretrain-<hash>.ray`` instead of
#: restarting at step 0. Reports, checkpoints and held-out evaluations draw no training randomness
#: (masks come from per-step generators, evaluation from its own; it runs without dropout), and
#: max_failures only matters after a failure: tests/test_pretrain_resume.py
#: (test_run_control_settings_and_a_resume_keep_the_weights_and_folder) trains with two values of each and
#: compares the weights. They change only how often the curves in metrics are sampled.
#: Kept in the hash because they can change the weights: ``time_limit_s`` (stops early),
#: ``threads_per_worker`` (float sums), ``fail_at_step`` (a resumed attempt), and
#: ``driver_pack_rows``: the driver and Ray Data paths pack the same sequences but cut them into
#: other blocks, and the loop's local shuffle buffer fills block by block (other final weights).
RUN_CONTROL = {"report_every", "eval_every", "checkpoint_every", "max_failures", "keep_checkpoints"}


@dataclass
class FitResult:
    """Where the trained model landed and what the run measured."""

    model_dir: str
    metrics: dict[str, Any]
    mixture: dict[str, Any] = field(default_factory=dict)


def aux_arrays(cfg: PretrainConfig, paths: list[str], tokenizer) -> dict[str, Any] | None:
    """Tagging inputs of the auxiliary task from CoNLL-U files (None when the task is off)."""
    if not paths:
        return None
    from lrl.data.conllu import read_conllu, tag_set
    from lrl.train.pretrain_aux import tagging_arrays

    sents = [s for p in paths for s in read_conllu(p)]
    labels = tag_set(sents, cfg.aux.column)
    arrays = tagging_arrays(sents, cfg.aux.column, labels, tokenizer, tag_id(tokenizer, cfg.aux.lang), cfg.seq_len)
    return {**arrays, "labels_list": labels, "column": cfg.aux.column, "sentences": len(sents)}


def fit(cfg: PretrainConfig, seed: int, table: pa.Table, tokenizer_dir: str, model_dir: str, out_dir: str,
        run_dir: str, aux_paths: list[str] = (), run_name: str = "pretrain") -> FitResult:
    """Pretrain the HF MLM in ``model_dir`` on the text rows of ``table`` and write the result
    (model + tokenizer + metrics.json [+ aux_head/]) into ``out_dir``.

    Needs Ray to be initialised. ``run_dir`` holds Ray Train's checkpoints; calling again with
    the same ``run_dir``/``run_name`` after a crash continues from the last checkpoint."""
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer
    from transformers import AutoTokenizer

    from lrl.model.build import model_flops_per_token, model_langs, read_model_config
    from lrl.train.pretrain_loop import train_loop
    from lrl.train.pretrain_progress import quiet_data_console

    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(local_folder(tokenizer_dir))  # on an object store: a local copy
    mconf = read_model_config(model_dir)  # not the weights: the workers load them
    limit = getattr(mconf, "max_position_embeddings", None)
    if limit is not None and cfg.seq_len > limit:
        raise ConfigError(f"pretrain.seq_len={cfg.seq_len} exceeds the model's {limit} positions (model.max_length)")
    rows = getattr(mconf, "vocab_size", None)
    if rows is not None and len(tok) > rows:
        # model_path is trained as is; only model.checkpoint grows embeddings for an extended
        # tokenizer. Unchecked, the new ids failed as an IndexError inside every worker.
        raise ConfigError(f"the tokenizer has {len(tok)} tokens but the model at {model_dir} has {rows} "
                          "embedding rows: for an extended tokenizer set model.checkpoint (which grows "
                          "the embeddings) instead of pretrain.model_path")
    present = sorted(set(table.column("lang").to_pylist()))
    langs = model_langs(mconf) or present
    missing = [x for x in present if x not in langs]
    if missing:
        raise ConfigError(f"text in {missing} but the model was built for {langs}")
    if aux_paths and getattr(mconf, "lrl_lang_embedding", False) and cfg.aux.lang not in langs:
        # The auxiliary steps feed aux.lang's row of the language embedding: without one, every
        # worker failed at its first auxiliary step (langs.index), once per retry.
        raise ConfigError(f"pretrain.aux.lang={cfg.aux.lang!r} has no row in the model's language embedding "
                          f"(built for {langs}): use one of them, or build the model with that language too")
    gpu, why = choose_device(cfg)
    # Said before the hours of training, not only in metrics.json (device, device_reason) after.
    print(f"pretrain: {cfg.num_workers} worker(s) on {'GPU' if gpu else 'CPU'} ({why})", file=sys.stderr, flush=True)
    warning = check_resources(cfg, gpu)  # before packing: workers that never fit waited for ever
    if warning:
        log.warning("%s", warning)
        print(warning, file=sys.stderr, flush=True)
    if cfg.engine == "deepspeed":
        from lrl.train.pretrain_engine import deepspeed_config

        deepspeed_config(cfg, cfg.num_workers, gpu)  # fp16 on CPU: now that the device is known
    train, heldout = heldout_split(table, cfg.heldout_fraction)
    stream, mixture = resample(train, cfg.alpha, seed, cfg.sample_rows)
    for note in stream_notes(train, heldout, mixture, cfg.heldout_fraction, cfg.sample_rows, cfg.alpha):
        say(note)
    log.info("pretrain mixture (rows per language, target share vs sampled): %s", mixture.as_dict())
    ds = packed_dataset(stream, tokenizer_dir, cfg.seq_len, langs, driver_rows=cfg.driver_pack_rows)
    # Ray Train re-executes the dataset every epoch in its split coordinator, which drew Ray Data's
    # progress bars into the driver's log each time (dozens of lines a minute on a small corpus);
    # the loop reports its own progress. This dataset's context only: other stages keep theirs.
    ds.context.enable_progress_bars = False
    packed = ds.count()
    ds, padding = pad_for_workers(ds, cfg.num_workers, packed)  # else Ray Train's equal split drops the rest
    quiet_data_console(ds)  # its per-epoch INFO lines: Ray Data's log files, not the console
    held = pack_local(heldout, tokenizer_dir, cfg.seq_len, langs, cfg.heldout_max_seqs) if heldout.num_rows else {}
    # The MLM head runs only at predicted positions (pretrain_aux.mlm_head), a masking-rate share.
    flops = model_flops_per_token(mconf, seq_len=cfg.seq_len, lm_head_tokens=cfg.masking.rate)
    marker = f"{absolute(run_dir)}/{run_name}.fail_once" if cfg.fail_at_step else None
    loop_config = {
        "cfg": cfg.model_dump(mode="json"), "seed": seed, "langs": langs, "use_gpu": gpu,
        "tokenizer_dir": absolute(tokenizer_dir), "model_dir": absolute(model_dir),
        "heldout": held, "aux": aux_arrays(cfg, list(aux_paths), tok), "device_reason": why,
        "flops_per_token": flops, "fail_marker": marker,
        # Ray Train's folder of this run's checkpoints: the loop resumes from the newest complete
        # one there, also one Ray had not registered when the run stopped (pretrain_resume)
        "checkpoint_dir": f"{absolute(run_dir)}/{run_name}",
        "lang_embedding": bool(getattr(mconf, "lrl_lang_embedding", False)),
    }
    resources = {"CPU": cfg.cpus_per_worker, **({"GPU": 1} if gpu else {})}
    trainer = TorchTrainer(
        train_loop, train_loop_config=loop_config, datasets={"train": ds},
        torch_config=TorchConfig(backend="nccl" if gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.num_workers, use_gpu=gpu,
                                               resources_per_worker=resources),
        run_config=ray.train.RunConfig(
            name=run_name, storage_path=absolute(run_dir),  # an object store's URI as is
            failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2)),
    )
    t_fit = time.time()
    result = fit_or_stop(trainer)  # a user's Ctrl-C: KeyboardInterrupt, the checkpoints kept
    if result.checkpoint is None:
        raise RuntimeError(f"pretraining finished without a final checkpoint (error: {result.error})")
    os.makedirs(out_dir, exist_ok=True)
    with result.checkpoint.as_directory() as d:
        if not os.path.isdir(os.path.join(d, "model")):
            raise RuntimeError(f"last checkpoint {d} holds no final model (the run did not finish)")
        shutil.copytree(os.path.join(d, "model"), out_dir, dirs_exist_ok=True)
        if os.path.isdir(os.path.join(d, "aux_head")):
            shutil.copytree(os.path.join(d, "aux_head"), os.path.join(out_dir, "aux_head"), dirs_exist_ok=True)
        with open(os.path.join(d, "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
    t_end = time.time()
    metrics.update({
        "phases_s": phases(t0, t_fit, metrics.pop("marks", {}), t_end),
        "target_mixture": mixture.as_dict(), "alpha": cfg.alpha, "languages": langs,
        "heldout_rows": _counts(heldout), "train_rows": _counts(train),
        "packed_sequences": packed, "split_padding_sequences": padding,
        # What an epoch trained on (all workers), against the stream: 0 unless sequences were
        # dropped (None when no epoch finished).
        "sequences_left_out_per_epoch": None if metrics.get("epoch_sequences") is None
        else packed + padding - metrics["epoch_sequences"],
        "flops_per_token": flops,  # the loop adds device, device_reason and peak_flops
        "trainer_fit_s": t_end - t_fit, "end_to_end_s": t_end - t0,
        "engine": cfg.engine, "precision": cfg.precision, "num_workers": cfg.num_workers,
    })
    with open(os.path.join(out_dir, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=1, default=str, ensure_ascii=False)
    return FitResult(out_dir, metrics, mixture.as_dict())


def phases(t0: float, t_fit: float, marks: dict[str, float], t_end: float) -> dict[str, float]:
    """Seconds of each part of a run outside the training loop, from the driver's clock (``t0``:
    ``fit`` called, ``t_fit``: ``trainer.fit`` called, ``t_end``: model copied out) and rank 0's
    marks (``pretrain_loop.train_loop``) of the last attempt, so after a retry ``workers_s`` also
    holds the failed attempts. On one machine the clocks are the same; across nodes they differ
    by the nodes' clock skew."""
    if not {"loop_entered", "engine_ready", "first_step_done", "loop_done"} <= set(marks):
        return {"prepare_s": t_fit - t0, "fit_s": t_end - t_fit}
    return {
        "prepare_s": t_fit - t0,  # split, resample, pack (driver or Ray Data plan)
        "workers_s": marks["loop_entered"] - t_fit,  # Train controller, placement group, worker processes
        "setup_s": marks["engine_ready"] - marks["loop_entered"],  # peak matmul, imports, model load, engine init
        "first_step_s": marks["first_step_done"] - marks["engine_ready"],  # shard start, first batch and step
        "finish_s": t_end - marks["loop_done"],  # held-out eval, final save, report, teardown, copy-out
    }


def _counts(table: pa.Table) -> dict[str, int]:
    return {k: int(v) for k, v in Counter(table.column("lang").to_pylist()).items()}


def stage_output(ctx: StageContext) -> tuple[StageOutput, str, pa.Table]:
    """The stage's output folder (named by config and input fingerprints), tokenizer and text."""
    cfg = ctx.cfg
    p = cfg.pretrain
    from lrl.model.extend import TOKENIZER_FILES

    _check_folder(p.tokenizer_path, "pretrain.tokenizer_path", "tokenizer", TOKENIZER_FILES)
    _check_folder(p.model_path, "pretrain.model_path", "Hugging Face model", ("config.json",))
    tok_dir = p.tokenizer_path or ctx.upstream.get("tokenizer")
    if tok_dir is None:
        from lrl.model.command import tokenizer_first

        tok_dir = tokenizer_first(ctx)  # a finished tokenizer folder is reused, not retrained
    table, text_print = load_text(cfg, ctx.upstream.get("generate"))
    aux = resolve_paths(p.aux.conllu, cfg.data.root)
    inputs = {"tokenizer": input_print(tok_dir), "text": text_print, "aux": [fingerprint(a) for a in aux],
              "model_path": fingerprint(p.model_path) if p.model_path else None}
    ds_file = _with_ds_config(p, cfg.data.root).deepspeed.config_file
    if ds_file:  # only when set, so that the hashes of runs without one stay as they were
        inputs.update(ds_file_inputs(ds_file))  # an edited file must not reuse a finished run
    config = {"pretrain": hash_view(p).model_dump(mode="json", exclude=RUN_CONTROL),  # torch: DeepSpeed defaults
              "model": cfg.model.model_dump(mode="json"), "seed": cfg.seed, **specials_key(tok_dir, table, aux)}
    # Only the streams that changed (every row at least once): several languages at alpha < 1.
    if p.alpha != 1 and p.sample_rows is None and len(pc.unique(table.column("lang"))) > 1:
        config["stream_version"] = 2
    if cfg.model.checkpoint and not p.model_path:  # an extended checkpoint's new rows leave [UNK] out
        config["init_version"] = INIT_VERSION
    if p.heldout_fraction and (cfg.seed != HELDOUT_SEED or cfg.data.unicode != "nfc"):  # other slices until 2:
        config["heldout_version"] = 2  # the seed's, and chosen by titles in data.unicode's form
    return checkpoint_output(cfg, config, inputs, StageOutput), tok_dir, table  # model.checkpoint's content


def _check_folder(path: str | None, field: str, what: str, needs: tuple[str, ...]) -> None:
    """A local ``pretrain.tokenizer_path``/``model_path`` that is no such folder is an error naming
    the field: a missing one said only "<path>: file not found", and a folder of something else
    (the text's folder as tokenizer) ended in transformers' traceback about slow tokenizers."""
    if not path or "://" in path:
        return
    if (problem := missing_local_folder(field, path)) is not None:  # the folder as resolved
        raise InputError(f"{problem}; a {what} folder is expected")
    if not any(os.path.isfile(os.path.join(path, n)) for n in needs):
        raise InputError(f"{field}={path}: not a {what} folder (it holds none of {', '.join(needs)})")


def run_pretrain(ctx: StageContext) -> str:
    """Pretrain and commit the stage folder; returns it (a finished folder is reused as is)."""
    from lrl.evaluate.pretrain_card import write_pretrain_card
    from lrl.runtime import init_ray
    from lrl.train.pretrain_resources import ray_train_v1_value, worker_config_error
    from lrl.train.pretrain_resume import has_checkpoint

    out, tok_dir, table = stage_output(ctx)
    if out.done:
        return out.path
    if ctx.cfg.pretrain.steps == 0:  # the starting model as built, no Ray (Train) at all (pretrain_init_only)
        return run_initial(ctx, out, tok_dir, table)
    v1 = ray_train_v1_value()
    if v1 is not None:
        # Resume, the leftover check and the worker errors read Ray Train V2's run folder and
        # errors; V1 keeps checkpoints a level deeper, where they would be missed (and removed).
        shown = v1 if v1 and v1 == v1.strip() else repr(v1)
        raise ConfigError(f"RAY_TRAIN_V2_ENABLED={shown} selects Ray Train V1, which lrl's pretraining does not "
                          "support (its checkpoints and errors are V2's); unset it")
    cfg, p = ctx.cfg, _with_ds_config(ctx.cfg.pretrain, ctx.cfg.data.root)
    preflight(p, sorted(set(table.column("lang").to_pylist())), tok_dir)  # before Ray: errors, warnings once
    run_dir = f"{out.root}/.{STAGE}-{out.hash}.ray"  # stable: a re-run after a crash resumes here
    try:  # the stage's lease on an object store first: a second run stops before the run folder
        out.tmp  # noqa: B018
        ensure_dir(run_dir)  # on an object store too (os.makedirs made a local folder named "s3:")
        model_dir = p.model_path or _init_model(cfg, tok_dir, sorted(set(table.column("lang").to_pylist())),
                                                f"{run_dir}/init")
        init_ray(cfg.ray)  # also sets Ray Train's health-check interval (lrl.runtime.quiet_env)
        with local_output(out.tmp) as local:  # the model is copied out of Ray's checkpoint locally
            res = fit(p, cfg.seed, table, tok_dir, model_dir, local, run_dir,
                      resolve_paths(p.aux.conllu, cfg.data.root), run_name=STAGE)
            write_pretrain_card(local, cfg, ctx.upstream.get("generate"))  # the tags, the type ids, the scores
        m = res.metrics
        path = out.commit({
            # the built initial model lives in the run folder, removed below unless kept
            "tokenizer": tok_dir, "model_init": p.model_path or (model_dir if p.keep_checkpoints else None),
            "started_from": with_print(_started_from(model_dir), cfg),
            "languages": m["languages"],
            "steps": m["step"], "steps_planned": m.get("steps_planned"), "stopped_early": m.get("stopped_early"),
            "loss": m["loss"], "ppl": {k[4:]: v for k, v in m.items() if k.startswith("ppl_")},
            "tokens_per_s": m["tokens_per_s"], "mfu": m["mfu"], "input_share": m.get("input_share"),
            "mlm_tokens_per_s": m.get("mlm_tokens_per_s"), "aux_tokens_per_s": m.get("aux_tokens_per_s"),
            "aux_time_share": m.get("aux_time_share"),
            "trained_tokens": m.get("trained_tokens"),
            "device": m.get("device"), "device_name": m.get("device_name"), "device_reason": m.get("device_reason"),
            "phases_s": m.get("phases_s"),
            "target_mixture": res.mixture,
            "stream_mixture": m.get("stream_mixture"), "attempt_start_steps": m["attempt_start_steps"],
            "aux_head": "aux_head/" if p.aux.conllu else None,
            "checkpoints": run_dir if p.keep_checkpoints else None,
        })
    except BaseException as exc:
        out.abort()
        error = exc if isinstance(exc, ConfigError) else worker_config_error(exc)
        if error is not None and not has_checkpoint(f"{run_dir}/{STAGE}"):
            # A config error before any checkpoint (found in the driver: fp16 on CPU, workers that
            # cannot be placed, a language without a tag; or in Ray Train's workers, where settings
            # are checked where used): the folder holds only the seeded initial model, under a hash
            # the corrected config no longer has. Kept, each such error left a hidden folder behind
            # for good (6 MB micro, 97 MB MiniLM). After any other failure or stop it stays (a rerun of
            # the same hash resumes or reuses its initial model), as do checkpoints not fitting the config.
            _remove_run_dir(run_dir)
        if error is not None and error is not exc:  # its message (exit 2), not Ray Train's traceback
            raise error from exc
        raise
    if not p.keep_checkpoints:  # committed: the checkpoints have nothing left to resume
        _remove_run_dir(run_dir)
    return path


def _started_from(model_dir: str) -> dict | None:
    """The checkpoint the initial model was loaded from (``model.checkpoint``: path, its card's
    license, whether the MLM head was fresh, new embedding rows; ``lrl.model.build``), or None for
    a model built from scratch. The manifest named only the run-local initial folder, removed after
    the run, so a MiniLM transfer read like any other run."""
    try:
        return read_json(f"{model_dir}/config.json").get("lrl_init")
    except (OSError, ValueError):
        return None


def _remove_run_dir(run_dir: str) -> None:
    """Remove a run folder (checkpoints, or a config error's initial model); failing to is only a warning."""
    try:
        remove_folder(run_dir)
    except OSError:
        log.warning("could not remove the checkpoint folder %s", run_dir)


def _with_ds_config(p: PretrainConfig, root: str | None) -> PretrainConfig:
    """``p`` with ``deepspeed.config_file`` resolved against ``data.root`` like the other inputs: the
    Ray Train workers read it, and they do not run in the driver's folder (a relative path failed)."""
    path = p.deepspeed.config_file
    if not path:
        return p
    path = os.path.abspath(resolve(path, root))  # data.root itself may be relative to the driver
    return p.model_copy(update={"deepspeed": p.deepspeed.model_copy(update={"config_file": path})})


def _init_model(cfg: JobConfig, tok_dir: str, langs: list[str], path: str) -> str:
    """Build ``cfg.model`` for the tokenizer (seeded) and save it once as the run's start point."""
    from lrl.data.remote import is_file

    if is_file(f"{path}/config.json"):
        return path  # a resumed run must start from the same initial weights
    import torch
    from transformers import AutoTokenizer

    from lrl.model.build import build_mlm_model
    from lrl.train.pretrain_progress import no_transformers_bars

    torch.manual_seed(cfg.seed)
    tok = AutoTokenizer.from_pretrained(local_folder(tok_dir))
    # save_pretrained writes local files: on an object store built here, then uploaded (config last)
    remote = is_remote(path)
    local = tempfile.mkdtemp(prefix="lrl-init-") if remote else path + ".tmp"
    try:
        with no_transformers_bars():  # "Writing model shards" bar
            build_mlm_model(cfg.model, tok, langs).save_pretrained(local, safe_serialization=True)
        if remote:
            remove_folder(path)  # what an upload cut short left (no config.json): not mixed in
            upload_folder(local, path, last=("config.json",))
        else:
            os.replace(local, path)
    finally:
        if remote:
            shutil.rmtree(local, ignore_errors=True)
    return path


__all__ = ["fit", "FitResult", "phases", "choose_device", "autoscaler_gpus", "aux_arrays", "run_pretrain", "stage_output", "RUN_CONTROL"]
