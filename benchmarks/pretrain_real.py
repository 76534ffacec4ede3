"""A real pretraining run: the MicroBERT-scale preset on ../shared/data/mono (ug + wo by default)
for a bounded time, through the same stage as ``lrl pretrain`` (tokenizer stage included).

Prints, per language: held-out perplexity (masked-token CE on whole held-out documents) at the end
and of the untrained model (the baseline, measured in the same run: step 0 of the same eval),
the target mixture p ∝ n^alpha next to the realised one (tokens per language in the stream),
tokens/s and MFU. GPU: ``--gpu`` (bf16, one GPU; see benchmarks/gpu_pretrain.sh).

    python benchmarks/pretrain_real.py --minutes 25 [--langs ug wo] [--alpha 0.3] [--engine deepspeed]

``--steps N`` stops at a step count instead (two runs to compare then see the same batches
whatever the machine's load); ``--aux-conllu ud/ug/train.conllu`` adds MicroBERT's auxiliary XPOS
tagging of the first language (every ``--aux-every``-th step).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "platform"))

DATA = Path(os.environ.get("LRL_DATA_ROOT", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))


def untrained_ppl(out: str) -> dict[str, float]:
    """Held-out perplexity of the run's initial weights on the same held-out slice and masks."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from lrl.data.sampling import heldout_split
    from lrl.job import load_job
    from lrl.train.pretrain_aux import build_module
    from lrl.train.pretrain_data import load_text, pack_local
    from lrl.train.pretrain_eval import heldout_perplexity
    from lrl.train.pretrain_mlm import MaskVocab

    man = json.loads((Path(out) / "manifest.json").read_text())
    cfg = load_job(Path(out).parent / "job.yaml")
    p = cfg.pretrain
    table, _ = load_text(cfg)
    _, held = heldout_split(table, p.heldout_fraction)
    langs = man["languages"]
    packed = pack_local(held, man["tokenizer"], p.seq_len, langs, p.heldout_max_seqs)
    tok = AutoTokenizer.from_pretrained(man["tokenizer"])
    module = build_module(AutoModelForMaskedLM.from_pretrained(man["model_init"]), 0)
    torch.set_num_threads(2)
    return heldout_perplexity(module, packed, langs, tok.pad_token_id, p.masking, MaskVocab.from_tokenizer(tok),
                              cfg.seed, p.batch_size, "cpu", p.precision == "bf16", False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--langs", nargs="+", default=["ug", "wo"])
    ap.add_argument("--alpha", type=float, default=0.3)
    ap.add_argument("--engine", choices=["deepspeed", "torch"], default="torch")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--precision", default="fp32", help="bf16 or fp32 (fp32 was faster for micro on CPU)")
    ap.add_argument("--preset", default="micro")
    ap.add_argument("--max-lines", type=int, default=None, help="lines per language (None: all)")
    ap.add_argument("--gpu", action="store_true", help="one GPU, bf16 (overrides --precision)")
    ap.add_argument("--steps", type=int, default=None,
                    help="stop after this many steps instead of --minutes (comparable across machine load)")
    ap.add_argument("--aux-conllu", nargs="*", default=[],
                    help="CoNLL-U files (under the data root) for the auxiliary XPOS task, e.g. ud/ug/train.conllu")
    ap.add_argument("--aux-every", type=int, default=4, help="every k-th step is an auxiliary tagging step")
    ap.add_argument("--out", default="/tmp/lrl-pretrain-real")
    args = ap.parse_args()
    import yaml

    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain import run_pretrain

    os.makedirs(args.out, exist_ok=True)
    text = [{"path": str(DATA / "mono" / f"{x}.txt"), "lang": x,
             **({"max_lines": args.max_lines} if args.max_lines else {})} for x in args.langs]
    job = {"name": "pretrain-real", "seed": 0, "data": {"text": text}, "output": {"root": args.out},
           "tokenizer": {"vocab_size": 8000, "max_lines_per_lang": 50000},
           "model": {"preset": args.preset, "max_length": args.seq_len},
           "pretrain": {"engine": args.engine, "steps": args.steps or 10**6, "batch_size": args.batch // args.workers,
                        "seq_len": args.seq_len, "alpha": args.alpha, "lr": 1e-3,
                        "precision": "bf16" if args.gpu else args.precision, "num_workers": args.workers,
                        "cpus_per_worker": 0.5 if args.workers > 1 else 1,
                        "threads_per_worker": max(1, 2 // args.workers), "use_gpu": args.gpu,
                        "time_limit_s": None if args.steps else args.minutes * 60, "report_every": 200, "checkpoint_every": 2000,
                        "eval_every": 1000, "heldout_max_seqs": 128,
                        # the untrained baseline below loads the initial model from the run folder
                        "keep_checkpoints": True,
                        "schedule": {"type": "constant", "warmup_ratio": 0.0},
                        **({"aux": {"conllu": [str(DATA / c) for c in args.aux_conllu], "lang": args.langs[0],
                                    "column": "xpos", "every": args.aux_every}} if args.aux_conllu else {})}}
    # constant LR: with a time budget the number of steps is unknown, so no decay to zero.
    (Path(args.out) / "job.yaml").write_text(yaml.safe_dump(job, allow_unicode=True))
    cfg = load_job(Path(args.out) / "job.yaml")
    t0 = time.time()
    path = run_pretrain(StageContext(cfg))
    wall = time.time() - t0
    m = json.loads((Path(path) / "metrics.json").read_text())
    before = untrained_ppl(path)
    print(f"output {path}\nwall {wall / 60:.1f} min, steps {m['step']}, loss {m['loss']:.3f}, "
          f"tokens/s {m['tokens_per_s']:.0f}, MFU {m['mfu']:.1%}")
    print(f"\n{'lang':6}{'ppl untrained':>14}{'ppl trained':>12}{'rows':>8}{'target p':>10}"
          f"{'sampled rows p':>15}{'stream token share':>19}")
    for lang in m["languages"]:
        t, s = m["target_mixture"][lang], m["stream_mixture"][lang]
        print(f"{lang:6}{before[lang]:14.1f}{m['ppl_' + lang]:12.1f}{t['rows']:8d}{t['target_p']:10.3f}"
              f"{t['realised_p']:15.3f}{s['token_share']:19.3f}")
    print(json.dumps({"wall_s": wall, "untrained_ppl": before, **m}, default=str)[:4000])


if __name__ == "__main__":
    main()
