"""Throughput and model FLOPs utilisation (MFU) against a matmul peak measured where training runs.

The peak is a timed square matmul in the training dtype with the training's thread count (or on
the GPU), measured by the training workers themselves (``worker_peak``: the driver may run on a
node without their devices, e.g. a cluster's CPU-only head), cached per (device, dtype, threads,
torch version) in ``$LRL_CACHE_DIR`` (default ``~/.cache/lrl``) of the node: later runs
re-measure briefly and keep the best value seen, because on a shared machine a single measurement
under load understates the peak (and so overstates MFU). On CPU the peak of fewer threads (same
dtype) is a floor of the peak of more.
MFU = achieved model FLOP/s / peak.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from pathlib import Path


def _cache_file() -> Path:
    root = Path(os.environ.get("LRL_CACHE_DIR", Path.home() / ".cache" / "lrl"))
    return root / "matmul_peak.json"


def measure_matmul_peak(dtype: str = "bf16", threads: int | None = None, device: str = "cpu",
                        n: int | None = None, seconds: float = 1.5, use_cache: bool = True) -> float:
    """Best FLOP/s of an ``n`` x ``n`` matmul in ``dtype`` (bf16/fp32/fp16) over ~``seconds`` on
    ``device`` (``cpu``, ``cuda`` or ``cuda:<index>``).

    ``n`` defaults to 2048 on CPU and 8192 on a GPU. A 2048 bf16 product is a ~20 us kernel on an
    H100/H200 with too few output tiles to keep all 132 multiprocessors busy for long, expected
    (not measured here: no GPU) to fall short of the chip's rate, and a peak measured low
    overstates MFU. 8192 products were measured at 769-798 TFLOP/s in bf16 on an H200."""
    import torch

    threads = threads or torch.get_num_threads()
    on_gpu = torch.device(device).type == "cuda"
    n = n or (8192 if on_gpu else 2048)
    name = torch.cuda.get_device_name(device) if on_gpu else f"cpu{os.cpu_count()}"
    key = f"{name}|{dtype}|{threads}|{torch.__version__}|{n}"
    cache = _cache_file()
    known: dict[str, float] = {}
    if use_cache and cache.is_file():
        try:
            known = json.loads(cache.read_text())
        except (OSError, json.JSONDecodeError):
            known = {}
    if key in known:
        seconds = min(seconds, 0.3)  # a quick re-measure: on a busy machine the best so far wins
    tdtype = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[dtype]
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a = torch.randn(n, n, device=device).to(tdtype)
        b = torch.randn(n, n, device=device).to(tdtype)
        best = 0.0
        end = time.perf_counter() + seconds
        torch.matmul(a, b)  # warm-up
        reps = 10 if on_gpu else 4  # 8192 on a GPU: >= 1.4 ms a product (H200 bf16), far above a sync
        while time.perf_counter() < end:
            if on_gpu:
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            for _ in range(reps):
                torch.matmul(a, b)
            if on_gpu:
                torch.cuda.synchronize(device)
            dt = time.perf_counter() - t0
            best = max(best, reps * 2 * n**3 / dt)
    finally:
        torch.set_num_threads(old)
    best = max(best, float(known.get(key, 0.0)))
    if not on_gpu:
        # ``threads`` threads can always do what fewer do, so a peak below a fewer-thread one was
        # measured under load. On this shared 2-CPU machine the fp32 2-thread peak was cached at
        # 61 GFLOP/s against 161 for 1 thread, and 2 workers reported an MFU of 49% (1 worker: 26%).
        head, tail = f"{name}|{dtype}|", f"|{torch.__version__}|{n}"
        for k, v in known.items():
            mid = k[len(head):-len(tail)] if k.startswith(head) and k.endswith(tail) else ""
            if mid.isdigit() and int(mid) < threads:
                best = max(best, float(v))
    if use_cache:
        known[key] = best
        _write_atomically(cache, json.dumps(known, indent=1))
    return best


def _write_atomically(path: Path, text: str) -> None:
    """Write ``path`` through a file of this process beside it, renamed over it: every training
    worker on a node (and every concurrent run, e.g. test processes) shares the cache, and a file
    written in place was read half-written (then taken as empty) or left with another writer's
    longer tail (invalid JSON). The last whole file wins; a peak lost that way is re-measured."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:  # a cache we cannot write only costs a longer measurement next time
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def worker_peak(dtype: str, device: str, threads: int, local_rank: int, local_world: int,
                measure=measure_matmul_peak) -> float:
    """This Ray Train worker's part of the run's matmul peak; the parts summed over all workers are
    the peak MFU is measured against. On a GPU, its own device's peak. On CPU the workers of a node
    share its cores, so the node's first worker measures with all their threads (``threads`` per
    worker, ``local_world`` workers: on one machine the measurement the driver made before) and
    the others add 0.

    Measured in the worker because the driver need not have the workers' devices: on a cluster
    whose head has no GPU, the driver's ``cuda`` measurement failed ("Torch not compiled with
    CUDA enabled")."""
    if device.startswith("cuda"):
        return float(measure(dtype, device=device))
    if local_rank != 0:
        return 0.0
    return float(measure(dtype, threads=threads * local_world, device="cpu"))


class Throughput:
    """Tokens, model FLOPs and wall time of the training loop's steps (excluding evaluation and
    checkpoints), by objective (``kind``: ``mlm`` or ``aux``, the auxiliary tagging task), and how
    much of the time went to getting and masking the next batch (``input_seconds``): when a run
    is slow, this says whether the input or the model step is the part to look at.

    Every step counts its time, tokens and FLOPs alike. The auxiliary steps' time was counted but
    not their tokens (the loop added only the stream's), so tokens/s and MFU understated the
    trained throughput by the aux steps' share of the loop time, and a run with the auxiliary task
    looked like slower hardware than the same run without it. Measured (16 steps, micro preset,
    seq_len 128, batch 16, one thread, ``aux.every=4`` on UD Uyghur XPOS, whose cut batches held
    ~350 tokens): the aux steps took 9% of the loop, tokens/s read 8854 instead of 9362."""

    KINDS = ("mlm", "aux")

    def __init__(self) -> None:
        self.input_seconds = 0.0
        self.by_kind = {k: {"tokens": 0.0, "seconds": 0.0, "flops": 0.0} for k in self.KINDS}
        self._t0: float | None = None

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def stop(self, tokens: int, flops: float = 0.0, kind: str = "mlm") -> None:
        """End a step of objective ``kind`` that trained ``tokens`` non-pad tokens and ``flops``
        model FLOPs (forward + backward)."""
        part = self.by_kind[kind]
        if self._t0 is not None:
            part["seconds"] += time.perf_counter() - self._t0
            self._t0 = None
        part["tokens"] += tokens
        part["flops"] += flops

    def add_input(self, seconds: float) -> None:
        self.input_seconds += seconds

    @property
    def tokens(self) -> float:
        return sum(p["tokens"] for p in self.by_kind.values())

    @property
    def seconds(self) -> float:
        return sum(p["seconds"] for p in self.by_kind.values())

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def counters(self) -> dict[str, float]:
        """This worker's counters, by ``RUN_TOTALS`` name (the loop sums them over workers)."""
        out = {"tokens": float(self.tokens), "loop_s": self.seconds, "input_s": self.input_seconds,
               "flops": sum(p["flops"] for p in self.by_kind.values())}
        for k, p in self.by_kind.items():
            out.update({f"{k}_tokens": float(p["tokens"]), f"{k}_s": p["seconds"]})
        return out


def aux_step_flops(config, n_tags: int, tokens: int, width: int) -> float:
    """Training FLOPs of an auxiliary (tagging) micro batch of ``tokens`` non-pad tokens in rows cut
    to ``width`` (``pretrain_aux.as_tensor_batch``): the encoder's forward + backward at that
    length (``model_flops_per_token`` without the MLM head) plus the d x tags head."""
    from lrl.model.build import model_flops_per_token

    per_token = model_flops_per_token(config, seq_len=width, lm_head_tokens=0.0) + 6 * config.hidden_size * n_tags
    return float(tokens) * per_token


def mfu(tokens_per_s: float, flops_per_token: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved training FLOP/s over the measured peak."""
    return tokens_per_s * flops_per_token / peak_flops if peak_flops > 0 else 0.0


#: Run totals kept in the checkpoint's client state (summed over workers, all attempts up to the
#: checkpoint): training tokens (all objectives), loop seconds and input seconds (``Throughput``),
#: model FLOPs, the tokens and seconds of each objective's steps, the run's training wall seconds
#: (rank 0's clock, what ``time_limit_s`` budgets), and the sequences of a finished epoch (all
#: workers; None until one finished).
RUN_TOTALS = {"tokens": 0.0, "loop_s": 0.0, "input_s": 0.0, "flops": 0.0, "mlm_tokens": 0.0, "mlm_s": 0.0,
              "aux_tokens": 0.0, "aux_s": 0.0, "train_s": 0.0, "epoch_sequences": None}


def totals_from_checkpoint(client_state: dict, flops_per_token: float) -> dict:
    """A checkpoint's client state with the totals this version keeps. A checkpoint written before
    the totals held FLOPs and per-objective counts has ``tokens``/``loop_s`` of MLM steps only (the
    auxiliary steps' tokens were not counted): those are its MLM tokens and FLOPs. Resumed as
    they were, the earlier attempts counted 0 FLOPs and the run's MFU fell by their share."""
    if "tokens" not in client_state or "flops" in client_state:
        return client_state
    return {**client_state, "flops": client_state["tokens"] * flops_per_token,
            "mlm_tokens": client_state["tokens"], "mlm_s": client_state.get("loop_s", 0.0)}


def run_totals(before: dict, summed: dict, train_s: float, epoch_sequences: float | None) -> dict:
    """The run's totals: ``before`` (the earlier attempts' totals from the checkpoint) plus this
    attempt's (``summed``: ``Throughput.counters`` summed over workers). A failed attempt counts
    up to its last checkpoint: the steps after it are trained again, and counted, by the next
    attempt."""
    out = {k: before.get(k, 0.0) + v for k, v in summed.items()}
    out["train_s"] = before["train_s"] + train_s
    out["epoch_sequences"] = before["epoch_sequences"] if epoch_sequences is None else int(epoch_sequences)
    return out


def throughput_metrics(totals: dict, world: int, peak_flops: float) -> dict:
    """tokens/s, MFU and input share of the whole run (every attempt) from ``run_totals``.

    ``tokens_per_s`` and ``mfu`` count every step the loop timed, auxiliary ones included, with
    their own tokens and FLOPs: they say how fast the hardware trained the model, comparable
    between runs with and without the auxiliary task (a shorter tagging batch costs fewer FLOPs
    a token, so MFU, not tokens/s, is the figure to compare when the mix differs).
    ``mlm_tokens_per_s`` is the MLM steps' speed (their tokens over their own time) and
    ``aux_time_share`` the loop time the auxiliary steps took: the corpus advances at
    ``mlm_tokens_per_s * (1 - aux_time_share)``.

    They covered the last attempt only: a run resumed near its end reported the speed of its
    last few steps, and one resumed at its last checkpoint and then stopped by ``time_limit_s``
    before a step reported 0 tokens/s."""
    def rate(tokens: str, secs: str) -> float:
        s = totals.get(secs, 0.0)
        return totals.get(tokens, 0.0) / (s / world) if s > 0 else 0.0  # workers run in parallel

    secs = totals["loop_s"]
    achieved = totals.get("flops", 0.0) / (secs / world) if secs > 0 else 0.0
    return {"tokens_per_s": rate("tokens", "loop_s"), "mfu": achieved / peak_flops if peak_flops > 0 else 0.0,
            "input_share": totals["input_s"] / secs if secs > 0 else 0.0,
            "mlm_tokens_per_s": rate("mlm_tokens", "mlm_s"),
            "aux_tokens_per_s": rate("aux_tokens", "aux_s") if totals.get("aux_s") else None,
            "aux_time_share": totals.get("aux_s", 0.0) / secs if secs > 0 else 0.0}


def history_entry(metrics: dict, evaluated: bool, loss: bool) -> dict:
    """A point of the pretraining curve (``history`` in metrics.json, drawn by the report) from a
    report's metrics: step, learning rate, tokens/s (the run's so far, as the report says), the
    MLM and auxiliary losses of the steps since the previous report (``loss``; off for a point that
    only evaluated) and the held-out perplexity per language (``ppl_<lang>``) when ``evaluated`` at
    this step. Before, no curve was kept and every report said "No per-step curve recorded"."""
    out = {"step": metrics["step"], "lr": metrics.get("lr"), "tokens_per_s": metrics.get("tokens_per_s")}
    if loss:
        out.update(loss=metrics.get("loss"), aux_loss=metrics.get("aux_loss"))
    if evaluated:
        out.update({k: v for k, v in metrics.items() if k.startswith("ppl_")})
    return out


__all__ = ["measure_matmul_peak", "worker_peak", "Throughput", "aux_step_flops", "mfu", "totals_from_checkpoint",
           "RUN_TOTALS", "run_totals", "throughput_metrics", "history_entry"]
