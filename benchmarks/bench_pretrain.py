"""Ray Train + DeepSpeed pretraining vs a plain single-process PyTorch loop: same model, data, cores.

Both sides train the same freshly built preset (same initial weights) on the same temperature-
resampled, packed ug+wo text for the same wall-clock budget, with bf16, AdamW and the same masks.
Reported side by side:
  in-loop   tokens/s measured inside the training loop (no start-up, evaluation or saving);
  end-to-end tokens trained / wall time from "start" to "model saved" (Ray start, data
            packing (in the driver for small text, pretrain.driver_pack_rows), worker start,
            DeepSpeed init and compiles included).
Targets (issue 4): Ray >= 0.9x in the loop, <= 10% slower end to end, for runs of >= 5 minutes.
Ray starts through ``lrl.runtime.init_ray``, as in ``lrl pretrain``. With ``--rounds N`` the two
sides alternate N times (plain, Ray, plain, Ray, ...) and the median of the per-round ratios is
reported, because this shared machine's speed drifts by 10-20% within minutes; odd rounds run the
Ray side first (``--order abba``, the default), so that a drift within a round favours each side
equally often.

    python benchmarks/bench_pretrain.py --seconds 300 [--rounds 2] [--order abba|fixed] [--workers 2]
        [--engine deepspeed]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "platform"))

DATA = Path(os.environ.get("LRL_DATA_ROOT", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))


def prepare(work: Path, lines: int, preset: str, seq_len: int):
    """Text table, tokenizer folder and initial model folder shared by both sides."""
    import pyarrow as pa
    import torch

    from lrl.data.config import TextSource
    from lrl.data.readers import read_text_lines
    from lrl.model.build import build_mlm_model
    from lrl.model.config import ModelConfig, TokenizerConfig
    from lrl.model.tokenizer import train_tokenizer

    table = pa.concat_tables([read_text_lines(TextSource(path=str(DATA / "mono" / f"{x}.txt"), lang=x,
                                                         max_lines=lines), None) for x in ("ug", "wo")])
    texts = {x: [t for t, lang in zip(table["text"].to_pylist(), table["lang"].to_pylist()) if lang == x]
             for x in ("ug", "wo")}
    tok = train_tokenizer(texts, TokenizerConfig(vocab_size=8000))
    tok.save_pretrained(str(work / "tok"))
    torch.manual_seed(0)
    build_mlm_model(ModelConfig(preset=preset, max_length=seq_len), tok, ["ug", "wo"]).save_pretrained(
        str(work / "init"))
    return table, str(work / "tok"), str(work / "init")


def plain_loop(cfg, table, tok_dir: str, model_dir: str, seconds: float, threads: int, mark=None) -> dict:
    """Single process, no Ray: the same data preparation, module, engine code and masks. ``mark``,
    if given, is called with "start" and "end" around the training loop (bench_train_worker.py)."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from lrl.data.sampling import heldout_split, resample
    from lrl.train.attention import set_attention
    from lrl.train.pretrain_aux import build_module
    from lrl.train.pretrain_data import pack_local
    from lrl.train.pretrain_engine import TorchEngine
    from lrl.train.pretrain_eval import model_inputs
    from lrl.train.pretrain_mlm import MaskVocab, step_generator

    t0 = time.perf_counter()
    torch.set_num_threads(threads)
    train, _ = heldout_split(table, cfg.heldout_fraction)
    stream, _ = resample(train, cfg.alpha, 0)
    packed = pack_local(stream, tok_dir, cfg.seq_len, ["ug", "wo"])
    ids = torch.cat([torch.as_tensor(v["input_ids"]) for v in packed.values()])
    ws = torch.cat([torch.as_tensor(v["word_start"]) for v in packed.values()])
    lid = torch.cat([torch.as_tensor(v["lang_id"]) for v in packed.values()])
    order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(0))
    tok = AutoTokenizer.from_pretrained(tok_dir)
    model = AutoModelForMaskedLM.from_pretrained(model_dir)
    set_attention(model, cfg.attention, cfg.precision, "cpu")  # the kernel the Ray loop picks too
    engine = TorchEngine(build_module(model, 0), cfg, 1, "cpu", cfg.steps)
    vocab, pad = MaskVocab.from_tokenizer(tok), tok.pad_token_id
    bs = cfg.batch_size * cfg.num_workers  # the same global batch as the Ray run
    tokens, loop_s, step, at = 0, 0.0, 0, 0
    if mark:
        mark("start")
    while loop_s < seconds and step < cfg.steps:
        step += 1
        t = time.perf_counter()
        if at + bs > len(ids):
            at = 0
        sel = order[at: at + bs]
        at += bs
        batch, _ = model_inputs(ids[sel], ws[sel], lid[sel], pad, cfg.masking, vocab,
                                step_generator(0, step, 0), "cpu", False)
        loss = engine.micro_step(batch)
        tokens += int((ids[sel] != pad).sum())
        loop_s += time.perf_counter() - t
    if mark:
        mark("end")
    with tempfile.TemporaryDirectory() as d:
        engine.module.mlm.save_pretrained(d)
    return {"steps": step, "loss": loss, "in_loop_tokens_per_s": tokens / loop_s,
            "end_to_end_s": time.perf_counter() - t0, "tokens": tokens,
            "end_to_end_tokens_per_s": tokens / (time.perf_counter() - t0)}


def ray_run(cfg, table, tok_dir: str, model_dir: str, work: Path, cores: int) -> dict:
    import ray

    from lrl.runtime import RayConfig, init_ray
    from lrl.train.pretrain import fit

    t0 = time.perf_counter()
    init_ray(RayConfig(num_cpus=cores))
    ray_start = time.perf_counter() - t0
    try:
        res = fit(cfg, 0, table, tok_dir, model_dir, str(work / "out"), str(work / "ray"), run_name="bench")
    finally:
        ray.shutdown()
    wall = time.perf_counter() - t0
    m = res.metrics
    tokens = sum(v["tokens"] for v in m["stream_mixture"].values())
    return {"steps": m["step"], "loss": m["loss"], "in_loop_tokens_per_s": m["tokens_per_s"],
            "end_to_end_s": wall, "tokens": tokens, "end_to_end_tokens_per_s": tokens / wall,
            "trainer_fit_s": m["trainer_fit_s"], "train_wall_s": m["train_wall_s"], "mfu": m["mfu"],
            "input_share": m.get("input_share"), "phases_s": {"ray_start_s": ray_start, **m.get("phases_s", {})}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60, help="training time budget of each side")
    ap.add_argument("--rounds", type=int, default=1, help="alternations of the two sides; medians reported")
    ap.add_argument("--order", choices=["abba", "fixed"], default="abba",
                    help="abba: odd rounds run the Ray side first; fixed: plain first in every round")
    ap.add_argument("--engine", choices=["deepspeed", "torch"], default="deepspeed")
    ap.add_argument("--workers", type=int, default=1, help="Ray Train workers (threads split between them)")
    ap.add_argument("--zero", type=int, default=2)
    ap.add_argument("--preset", default="micro")
    ap.add_argument("--batch", type=int, default=32, help="global batch (sequences per step)")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--lines", type=int, default=4000, help="lines of text per language")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16",
                    help="both sides: DeepSpeed bf16 mode / torch bf16 autocast, or fp32")
    args = ap.parse_args()
    from lrl.train.pretrain_config import PretrainConfig

    threads = max(1, args.cores // args.workers)
    cfg = PretrainConfig(
        engine=args.engine, precision=args.precision, steps=10**6, batch_size=args.batch // args.workers, seq_len=args.seq_len,
        num_workers=args.workers, cpus_per_worker=0.5 if args.workers > 1 else 1, threads_per_worker=threads,
        time_limit_s=args.seconds, report_every=10**6, checkpoint_every=10**6, heldout_max_seqs=8,
        deepspeed={"zero_stage": args.zero}, schedule={"type": "constant", "warmup_ratio": 0.0})
    work = Path(tempfile.mkdtemp(prefix="bench-pretrain-"))
    atexit.register(shutil.rmtree, work, True)  # models and Ray folders: not left in /tmp
    table, tok_dir, model_dir = prepare(work, args.lines, args.preset, args.seq_len)
    rounds = []
    for r in range(args.rounds):
        # Odd rounds run the Ray side first (plain, Ray, Ray, plain, ...): a drift of the machine's
        # speed within a round then favours each side equally often.
        order = ["plain", "ray"] if r % 2 == 0 or args.order == "fixed" else ["ray", "plain"]
        sides = {}
        for side in order:
            sides[side] = (plain_loop(cfg, table, tok_dir, model_dir, args.seconds, args.cores) if side == "plain"
                           else ray_run(cfg, table, tok_dir, model_dir, work / f"round{r}", args.cores))
        rounds.append({"first": order[0], "plain": sides["plain"], "ray": sides["ray"]})
        print(json.dumps({"round": r, **rounds[-1]}, indent=1), flush=True)
    print(f"\nargs: {vars(args)}")
    print(f"{'round':6}{'':12}{'plain torch':>14}{'Ray+' + args.engine:>18}{'ratio':>8}")
    ratios: dict[str, list[float]] = {}
    for r, x in enumerate(rounds):
        for key in ("in_loop_tokens_per_s", "end_to_end_tokens_per_s"):
            ratio = x["ray"][key] / x["plain"][key]
            ratios.setdefault(key, []).append(ratio)
            print(f"{r:<6}{key[:-13]:12}{x['plain'][key]:14.0f}{x['ray'][key]:18.0f}{ratio:8.2f}"
                  f"  ({x['first']} first)")
        print(f"{r:<6}{'wall s':12}{x['plain']['end_to_end_s']:14.1f}{x['ray']['end_to_end_s']:18.1f}")
    for key, v in ratios.items():
        print(f"median {key[:-13]} ratio over {len(v)} round(s): {statistics.median(v):.2f}"
              f"  (target >= 0.90)")

if __name__ == "__main__":
    main()
