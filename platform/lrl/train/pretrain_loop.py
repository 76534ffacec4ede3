"""The per-worker pretraining loop run by Ray Train's ``TorchTrainer``.

Resumable: a checkpoint holds the engine state (model, optimizer, scheduler) and a small client
state (step, epoch, batch position in the epoch, the steps each attempt started from, tokens
seen per language, the curve so far, and the run's totals: training seconds, which
``time_limit_s`` budgets over all attempts, and the tokens, FLOPs and loop seconds behind tokens/s
and MFU). After a crash Ray Train restarts the workers (a rerun starts them again), the loop takes
the last complete checkpoint (``pretrain_resume.resume_checkpoint``: also one that Ray Train had
not registered yet) and continues at its step, skipping the batches that were already
consumed in the current epoch. Masks and dropout are seeded by (seed, step, rank), so the resumed run sees the same batches,
masks and dropout it would have seen.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

import numpy as np

from lrl.data.files import filesystem
from lrl.data.remote import is_file, local_folder
from lrl.model.build import readable_weights
from lrl.model.tokenizer import save_tokenizer
from lrl.train.attention import set_attention
from lrl.train.pretrain_aux import as_tensor_batch, build_module, save_aux_head
from lrl.train.pretrain_config import PretrainConfig
from lrl.train.pretrain_eval import heldout_perplexity, model_inputs
from lrl.train.pretrain_metrics import (
    RUN_TOTALS,
    Throughput,
    aux_step_flops,
    history_entry,
    run_totals,
    throughput_metrics,
    totals_from_checkpoint,
    worker_peak,
)
from lrl.train.pretrain_mlm import MaskVocab, step_generator, step_seed
from lrl.train.pretrain_progress import ProgressLine, quiet_worker_console
from lrl.train.pretrain_resume import mark_complete, report_if_finished, resume_checkpoint
from lrl.train.pretrain_stream import FirstBatch, _batches


class InjectedFailure(RuntimeError):
    """Raised once by ``pretrain.fail_at_step`` (tests of resume-from-checkpoint)."""


def _dist_sum(values: list[float], device) -> list[float]:
    """Sum ``values`` over all workers (identity when there is no process group)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def load_mlm(model_dir: str):
    """The model to train; a truncated or corrupt model.safetensors is a ``ConfigError`` naming the
    folder (``readable_weights``), which the driver shows in one line (``worker_config_error``)."""
    from transformers import AutoModelForMaskedLM
    with readable_weights(f"pretrain model folder {model_dir}"):  # under an object store: a local copy
        return AutoModelForMaskedLM.from_pretrained(local_folder(model_dir))


def window_mean(values: list[float]) -> float | None:
    """Mean of the losses since the last report; None (null in JSON) when there are none.

    A window can hold no step of an objective: with the auxiliary task every 3rd step and
    ``steps=3``, the final window is one aux step and no MLM step. Its mean was 0/0 = NaN, which
    json writes as ``NaN``, not valid JSON, into metrics.json and the stage's manifest."""
    return float(np.mean(values)) if values else None


class LossWindow:
    """The MLM and auxiliary losses of the steps since the last report.

    The final metrics take the window's means; when no step ran since the last report (a run
    stopped by ``time_limit_s`` right after a report or checkpoint step), they take the window
    that report covered. Cleared instead, the final ``loss`` was null: the stage's summary
    printed ``loss -`` for a run that had trained 100 steps."""

    def __init__(self) -> None:
        self.mlm: list[float] = []
        self.aux: list[float] = []
        self.steps = 0
        self._reported: tuple[list[float], list[float]] | None = None

    def end_step(self) -> None:
        self.steps += 1

    def reset(self) -> None:
        """A report covered the window: start the next one."""
        self._reported = (self.mlm, self.aux)
        self.mlm, self.aux, self.steps = [], [], 0

    def means(self) -> tuple[float | None, float | None]:
        """(MLM loss, auxiliary loss) of the window, or of the reported one when it is empty."""
        mlm, aux = self._reported if self.steps == 0 and self._reported is not None else (self.mlm, self.aux)
        return window_mean(mlm), window_mean(aux)


def train_loop(config: dict[str, Any]) -> None:
    """Ray Train entry point; ``config`` is built by ``lrl.train.pretrain.fit``."""
    marks = {"loop_entered": time.time()}  # wall-clock marks of this attempt (start-up breakdown)
    import ray.train

    cfg = PretrainConfig.model_validate(config["cfg"])
    seed, langs = int(config["seed"]), list(config["langs"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    quiet_worker_console()  # Ray Train's per-report line, transformers' bars
    progress = ProgressLine(cfg.steps, rank)
    # Ray's registered checkpoint, or a newer one it never registered (the run was stopped first)
    ckpt = resume_checkpoint(ray.train.get_checkpoint(), config.get("checkpoint_dir"), rank)
    if ckpt is not None and report_if_finished(ckpt, rank, _without_history):
        return
    import ray.train.torch  # (both already imported by Ray Train's process-group set-up)
    import torch

    threads = cfg.threads_per_worker or max(1, round(cfg.cpus_per_worker))
    device = ray.train.torch.get_device() if config["use_gpu"] else torch.device("cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"pretrain trains on GPUs ({config.get('device_reason')}) but this worker's torch "
                           f"has no CUDA (torch {torch.__version__}): install a CUDA build on the GPU nodes")
    # The MFU peak is measured here, on the devices (and cores) that train, in the dtype they
    # train in; before the first batch starts Ray Data's work on this node's cores. Collective.
    peak = _dist_sum([worker_peak(cfg.precision, str(device), threads, ctx.get_local_rank(),
                                  ctx.get_local_world_size())], device)[0]
    # A resumed attempt's epoch and position are only known once the engine has loaded them.
    started = FirstBatch(ray.train.get_dataset_shard, cfg, seed, rank) if ckpt is None else None
    from transformers import AutoTokenizer

    from lrl.train.pretrain_engine import build_engine

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    # under an output.root on an object store, a copy on this worker's machine
    tok = AutoTokenizer.from_pretrained(local_folder(config["tokenizer_dir"]))
    model = load_mlm(config["model_dir"])
    set_attention(model, cfg.attention, cfg.precision, device)
    aux = config.get("aux")
    n_tags = len(aux["labels_list"]) if aux else 0
    module = build_module(model, n_tags)
    engine = build_engine(module, cfg, world, device, cfg.steps)
    vocab = MaskVocab.from_tokenizer(tok)
    # ``history``: the curve metrics.json keeps (``history_entry``); in the client state, so that
    # a resumed run's curve goes on from the checkpoint's.
    state: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "starts": [], "history": [],
                             "seen_seqs": [0] * len(langs), "seen_tokens": [0] * len(langs), **RUN_TOTALS}
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state.update(totals_from_checkpoint(engine.load(d), config["flops_per_token"]))
    state["starts"].append(state["step"])
    # The earlier attempts' totals (tokens, loop and training seconds): this attempt adds its own,
    # so that time_limit_s, tokens/s and MFU are the run's, not the last attempt's.
    before = {k: state[k] for k in RUN_TOTALS}
    # The client state saves the sequences and tokens seen per language summed over all workers
    # (a checkpoint's client state is rank 0's, and every rank loads it); each rank counts its own
    # since this attempt began in ``seen``. Saved per rank, a resumed worker took rank 0's counts
    # as its own: 2 workers resumed at step 4 of 12 reported sw 51 / wo 67 sequences where the
    # uninterrupted run (same weights, same batches) saw 53 / 65.
    seen = {"seen_seqs": [0] * len(langs), "seen_tokens": [0] * len(langs)}

    def seen_totals() -> dict[str, list[float]]:
        """Sequences and tokens per language seen by all workers in the whole run (collective)."""
        return {k: [a + b for a, b in zip(state[k], _dist_sum([float(x) for x in v], engine.device))]
                for k, v in seen.items()}

    marks["engine_ready"] = time.time()
    epoch_rows: list[int] = []  # sequences of each epoch this worker finished
    stream = _batches(ray.train.get_dataset_shard("train"), cfg, state, seed, rank, started, epoch_rows)
    thr = Throughput()
    pad = int(tok.pad_token_id)
    lang_emb = bool(config.get("lang_embedding"))
    window = LossWindow()
    t_start = time.time()
    evals: dict[str, Any] = {}
    fresh_eval = False  # evaluated since the curve's last entry

    def evaluate() -> dict[str, float]:
        return heldout_perplexity(engine.module, config["heldout"], langs, pad, cfg.masking, vocab, seed,
                                  cfg.batch_size, engine.device, engine.autocast, lang_emb)

    def totals(now: float | None = None) -> dict[str, Any]:
        """The run's totals (``pretrain_metrics.RUN_TOTALS``) up to now (collective)."""
        mine = thr.counters()
        *summed, rows, done = _dist_sum([*mine.values(), float(epoch_rows[-1] if epoch_rows else 0),
                                         1.0 if epoch_rows else 0.0], engine.device)
        return run_totals(before, dict(zip(mine, summed)), (now or time.time()) - t_start,
                          rows if done == world else None)

    def metrics(tot: dict[str, Any], final: bool = False) -> dict[str, Any]:
        loss, aux_loss = window.means()
        out = {"step": state["step"], "epoch": state["epoch"], "lr": engine.lr(),
               "loss": loss, "aux_loss": aux_loss,
               **throughput_metrics(tot, world, peak),
               "attempt_start_steps": list(state["starts"]), **evals}
        if final:
            totals = seen_totals()
            seqs, toks = totals["seen_seqs"], totals["seen_tokens"]
            total = max(1.0, sum(toks))
            out["stream_mixture"] = {lang: {"sequences": int(seqs[i]), "tokens": int(toks[i]),
                                            "token_share": toks[i] / total} for i, lang in enumerate(langs)}
        return out

    def stop_now() -> bool:
        # Step 1 always trains: a run of 0 steps (first batch after the budget) saved initial weights.
        if cfg.time_limit_s is None or state["step"] == 0:
            return False
        # Every rank must take the same decision (collectives), so rank 0's clock decides. The
        # limit is the run's: the earlier attempts' training time counts (it restarted with each
        # attempt, so a run that failed after 50 of its 60 minutes trained up to 110).
        late = 1.0 if rank == 0 and before["train_s"] + time.time() - t_start >= cfg.time_limit_s else 0.0
        return _dist_sum([late], engine.device)[0] > 0

    while state["step"] < cfg.steps and not stop_now():
        step = state["step"] + 1
        if cfg.fail_at_step == step and rank == 0 and config.get("fail_marker"):
            if not is_file(config["fail_marker"]):  # in the run folder, on an object store too
                fs, inner = filesystem(config["fail_marker"])
                fs.open_output_stream(inner).close()
                raise InjectedFailure(f"injected failure before step {step}")
        aux_step = aux is not None and step % cfg.aux.every == 0
        # Dropout draws from torch's global generator, which each attempt seeded once at start-up:
        # with the default dropout 0.1 a resumed run's weights differed from an uninterrupted
        # run's (per tensor up to 34% relative, 1.9e-3 absolute, after 12 micro-preset steps).
        # Seeded per (seed, step, rank) like the masks (micro -1: a seed of its own), it replays.
        torch.manual_seed(step_seed(seed, step, rank, -1))
        thr.start()
        tokens, flops = 0, 0.0
        for micro in range(cfg.grad_accum):
            gen = step_generator(seed, step, rank, micro)
            if aux_step:
                idx = torch.randint(len(aux["input_ids"]), (cfg.batch_size,), generator=gen).numpy()
                batch = as_tensor_batch(aux, idx, pad, engine.device)
                batch.update(kind=1, aux_weight=cfg.aux.weight)
                if lang_emb:
                    batch["token_type_ids"] = torch.full_like(batch["input_ids"], langs.index(cfg.aux.lang))
                window.aux.append(engine.micro_step(batch))
                # its own tokens and FLOPs (the tokens/s and MFU of pretrain_metrics.Throughput)
                n_aux = int(batch["attention_mask"].sum())
                tokens += n_aux
                flops += aux_step_flops(model.config, n_tags, n_aux, int(batch["input_ids"].shape[1]))
                continue
            t_in = time.perf_counter()
            b = next(stream)
            batch, _ = model_inputs(b["input_ids"], b["word_start"], b["lang_id"], pad, cfg.masking, vocab,
                                    gen, engine.device, lang_emb)
            thr.add_input(time.perf_counter() - t_in)
            window.mlm.append(engine.micro_step(batch))
            n_tok = b["n_tokens"].tolist()
            tokens += int(sum(n_tok))
            flops += int(sum(n_tok)) * config["flops_per_token"]
            for lid, n in zip(b["lang_id"].tolist(), n_tok):
                seen["seen_seqs"][lid] += 1
                seen["seen_tokens"][lid] += n
        thr.stop(tokens, flops, "aux" if aux_step else "mlm")
        window.end_step()
        state["step"] = step
        marks.setdefault("first_step_done", time.time())
        if cfg.eval_every and step % cfg.eval_every == 0:
            evals, fresh_eval = {f"ppl_{k}": v for k, v in evaluate().items()}, True
        if step % cfg.checkpoint_every == 0 and step < cfg.steps:
            tot = totals()
            m = metrics(tot)
            state["history"].append(history_entry(m, fresh_eval, loss=True))
            progress.show(m, force=True)
            _checkpoint(engine, {**state, **seen_totals(), **tot}, m, rank, cfg)
            window.reset()
            fresh_eval = False
        elif step % cfg.report_every == 0 and step < cfg.steps:  # the final report follows
            m = metrics(totals())
            state["history"].append(history_entry(m, fresh_eval, loss=True))
            progress.show(m, force=fresh_eval)
            ray.train.report(m)
            window.reset()
            fresh_eval = False
        elif fresh_eval and step < cfg.steps:  # an evaluation between reports: a point of its own
            state["history"].append(history_entry(metrics(totals()), True, loss=False))
            fresh_eval = False
    marks["loop_done"] = time.time()
    evals = {f"ppl_{k}": v for k, v in evaluate().items()}
    tot = totals(marks["loop_done"])
    final = metrics(tot, final=True)
    final["train_wall_s"] = tot["train_s"]  # all attempts (each failed one up to its last checkpoint)
    final["epoch_sequences"] = tot["epoch_sequences"]  # pretrain.fit compares it with the stream
    # the tokens behind tokens/s: the stream's (MLM steps) and the treebank's (aux steps)
    final["trained_tokens"] = {"mlm": int(tot["mlm_tokens"]), "aux": int(tot["aux_tokens"])}
    # Said in the output, not left to be inferred from ``step``: the LR schedule still spans
    # ``steps``, so a stopped run also ended before its schedule's end.
    final["steps_planned"] = cfg.steps
    # What trained, why (pretrain.choose_device) and the peak its MFU is measured against.
    final.update(peak_flops=peak, device=device.type, device_reason=config.get("device_reason"),
                 device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else None)
    final["stopped_early"] = "time_limit_s" if state["step"] < cfg.steps else None
    point = history_entry(final, True, loss=True)
    if state["history"] and state["history"][-1]["step"] == point["step"]:
        state["history"][-1].update(point)  # stopped right after a report: that point, evaluated
    else:
        state["history"].append(point)
    progress.show(final, force=True)
    final["history"] = state["history"]  # every attempt's reports, into metrics.json only
    final["marks"] = marks
    _final_save(engine, module, tok, aux, final, rank, cfg)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()  # otherwise torch reports the worker as crashed


def _checkpoint(engine, state: dict[str, Any], metrics: dict[str, Any], rank: int, cfg: PretrainConfig) -> None:
    """Save engine + client state and report it (every rank: ZeRO shards are per rank)."""
    import ray.train

    with tempfile.TemporaryDirectory(prefix="lrl-ckpt-") as d:
        if cfg.engine == "deepspeed":
            engine.save(d, dict(state))
        elif rank == 0:
            engine.save(d, dict(state))
        has = cfg.engine == "deepspeed" or rank == 0
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d) if has else None)
    _dist_sum([0.0], engine.device)  # every rank's part is uploaded (its report returned)
    if rank == 0:
        mark_complete(ray.train.get_checkpoint(), state["step"])


def _final_save(engine, module, tok, aux, final: dict[str, Any], rank: int, cfg: PretrainConfig) -> None:
    """Rank 0 writes the HF masked-LM folder (fp32 safetensors) + tokenizer + metrics.json, and the
    aux head beside it; it travels to the driver as the last checkpoint."""
    import contextlib

    import ray.train
    import torch

    master = _master_weights(engine.module, cfg)  # collective: before rank 0 goes its own way
    gather = contextlib.nullcontext()
    if cfg.engine == "deepspeed" and cfg.deepspeed.zero_stage == 3:
        import deepspeed

        gather = deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None)
    with tempfile.TemporaryDirectory(prefix="lrl-final-") as d, gather:
        if rank == 0:
            mlm = engine.module.mlm
            state = {k: master.get(f"mlm.{k}", v).detach().to("cpu", torch.float32) for k, v in mlm.state_dict().items()}
            mlm.save_pretrained(os.path.join(d, "model"), state_dict=state, safe_serialization=True)
            # save_pretrained records the parameters' dtype (bf16 under DeepSpeed's bf16 mode) in
            # config.json, and transformers loads a folder in that dtype by default: say fp32,
            # which is what the weights are.
            mlm.config.dtype = "float32"
            mlm.config.save_pretrained(os.path.join(d, "model"))
            # transformers 4 reads it too; its length limit is the model's positions (not 512)
            save_tokenizer(tok, os.path.join(d, "model"), mlm.config.max_position_embeddings)
            if aux is not None:
                save_aux_head(engine.module, aux["labels_list"], aux["column"], os.path.join(d, "aux_head"),
                              {k[len("aux_head."):]: v for k, v in master.items() if k.startswith("aux_head.")})
            with open(os.path.join(d, "metrics.json"), "w", encoding="utf-8") as f:
                json.dump(final, f, indent=1, default=str)
        ray.train.report(_without_history(final),
                         checkpoint=ray.train.Checkpoint.from_directory(d) if rank == 0 else None)
    if rank == 0:  # the only rank with a part: uploaded once its report returned
        mark_complete(ray.train.get_checkpoint(), final["step"], final=True)


def _without_history(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics Ray Train keeps: the curve (a row per report) stays in metrics.json only."""
    return {k: v for k, v in metrics.items() if k != "history"}


def _master_weights(module, cfg: PretrainConfig) -> dict[str, Any]:
    """The fp32 master copy of ``module``'s parameters, by state-dict name, when DeepSpeed trains in
    bf16/fp16 (the module then holds 16-bit copies; the optimizer the fp32 weights it updates);
    empty otherwise. Collective (ZeRO keeps each rank's part): every rank calls it.

    The final folder was written from the module: fp32 files holding bf16-rounded values (every
    value of a ZeRO-2 bf16 run's weights was bf16-representable), up to 0.4% off the weights
    training had reached (the start point of fine-tuning), and the aux head the same."""
    if cfg.engine != "deepspeed" or cfg.precision == "fp32":
        return {}
    from deepspeed.utils import safe_get_full_fp32_param

    full: dict[int, Any] = {}
    out: dict[str, Any] = {}
    # remove_duplicate=False names tied weights (the decoder and the word embeddings) under both of
    # their state-dict keys; each tensor is fetched once, in the same order on every rank.
    for name, param in module.named_parameters(remove_duplicate=False):
        if id(param) not in full:
            full[id(param)] = safe_get_full_fp32_param(param)
        if full[id(param)] is not None:
            out[name] = full[id(param)]
    return out


__all__ = ["train_loop", "window_mean", "LossWindow", "InjectedFailure"]
