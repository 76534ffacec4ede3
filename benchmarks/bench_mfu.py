"""MFU of MLM pretraining with bf16 autocast on the CPU cores vs the matmul peak measured now.

The baseline is measured in the same run: the best FLOP/s of a 2048^2 bf16 matmul on the same
number of threads (``lrl.train.pretrain_metrics.measure_matmul_peak``, not cached here). The
training side is the pretraining module and engine code (``TorchEngine``: AdamW, bf16 autocast,
clipping) on packed random-token batches of the preset; FLOPs per token from
``lrl.model.build.model_flops_per_token``. Target (issue 4): >= 30% for the default preset.

    python benchmarks/bench_mfu.py --seconds 60 [--preset micro] [--batch 32] [--seq-len 128] [--dropout 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "platform"))
os.environ.setdefault("DS_ACCELERATOR", "cpu")


def train_rate(preset: str, batch: int, seq_len: int, seconds: float, threads: int, precision: str,
               dropout: float = 0.0) -> dict:
    import torch
    from transformers import BertForMaskedLM

    from lrl.model.build import model_flops_per_token, preset_config
    from lrl.model.config import ModelConfig
    from lrl.train.attention import set_attention
    from lrl.train.pretrain_aux import build_module
    from lrl.train.pretrain_config import PretrainConfig
    from lrl.train.pretrain_engine import TorchEngine

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    conf = preset_config(ModelConfig(preset=preset, max_length=seq_len, dropout=dropout), 8000, 0, ["ug", "wo"])
    cfg = PretrainConfig(engine="torch", precision=precision, batch_size=batch, seq_len=seq_len)
    model = BertForMaskedLM(conf)
    kernel = set_attention(model, cfg.attention, precision, "cpu")  # as the training loop does
    engine = TorchEngine(build_module(model, 0), cfg, 1, "cpu", 10**6)
    ids = torch.randint(10, 8000, (batch, seq_len))
    labels = torch.where(torch.rand(batch, seq_len) < 0.15, ids, torch.full_like(ids, -100))
    batch_in = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels, "kind": 0}
    for _ in range(2):  # warm-up (allocator, oneDNN kernels)
        engine.micro_step(batch_in)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        engine.micro_step(batch_in)
        steps += 1
    dt = time.perf_counter() - t0
    tps = steps * batch * seq_len / dt
    flops = model_flops_per_token(conf, seq_len=seq_len, lm_head_tokens=0.15)  # head on masked only
    return {"preset": preset, "precision": precision, "attention": kernel, "dropout": dropout, "steps": steps, "tokens_per_s": tps,
            "flops_per_token": flops, "achieved_flops": tps * flops}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--preset", default="micro")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.0,
                    help="model dropout (not model FLOPs; the config default 0.1 costs ~half the speed on CPU)")
    ap.add_argument("--precision", nargs="+", default=["bf16", "fp32"])
    args = ap.parse_args()
    from lrl.train.pretrain_metrics import measure_matmul_peak

    rows = []
    for prec in args.precision:
        peak_before = measure_matmul_peak(prec, threads=args.threads, use_cache=False)
        r = train_rate(args.preset, args.batch, args.seq_len, args.seconds, args.threads, prec, args.dropout)
        peak_after = measure_matmul_peak(prec, threads=args.threads, use_cache=False)
        # The machine is shared: the peak is measured before and after; MFU uses the higher one.
        peak = max(peak_before, peak_after)
        r.update(peak_flops=peak, peak_before=peak_before, peak_after=peak_after, mfu=r["achieved_flops"] / peak)
        rows.append(r)
    print(json.dumps({"args": vars(args), "results": rows}, indent=1))
    print(f"\n{'preset':8}{'prec':6}{'tokens/s':>10}{'GFLOP/s':>9}{'peak GFLOP/s':>14}{'MFU':>7}")
    for r in rows:
        print(f"{r['preset']:8}{r['precision']:6}{r['tokens_per_s']:10.0f}{r['achieved_flops'] / 1e9:9.1f}"
              f"{r['peak_flops'] / 1e9:14.1f}{r['mfu']:7.1%}")


if __name__ == "__main__":
    main()
