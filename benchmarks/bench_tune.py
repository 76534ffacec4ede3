"""ASHA against running every trial to its end on the same search space: wall time, dev
evaluations (the work done, which load noise does not change) and best dev F1.

Both searches run the same trials (a grid, or ``--search random``: ``--samples`` draws from one
seeded generator, so both runs get the same configs) of ``train_tagger`` on WikiANN
(a from-scratch micro encoder, a slice of the training split, the full dev split), on the same
Ray instance, one after the other; the FIFO run (every trial to its end) is the baseline, and the
ASHA run's wall time and best score are printed as ratios/differences against it. The order is
alternated by ``--asha-first`` to check that warm caches do not favour the second run.

    python benchmarks/bench_tune.py --data ../shared/data --lang ug --train-rows 400 --epochs 4

A grid in ascending learning rate is ASHA's worst case when the score rises with the rate: each
trial reaches a rung better than every one recorded there, so none is stopped (D2, session 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data", help="shared data root (wikiann/<lang>/{train,dev})")
    p.add_argument("--lang", default="ug")
    p.add_argument("--train-rows", type=int, default=400, help="training sentences (seeded few-shot slice)")
    p.add_argument("--epochs", type=float, default=4.0, help="epochs per trial (one dev evaluation each)")
    p.add_argument("--lrs", type=int, default=3, help="log-spaced learning rates in [lr-min, lr-max]")
    p.add_argument("--lr-min", type=float, default=3e-4)
    p.add_argument("--lr-max", type=float, default=3e-3)
    p.add_argument("--batch-sizes", default="16,32", help="comma-separated batch sizes")
    p.add_argument("--cpus", type=int, default=2, help="Ray CPUs (1 CPU per trial)")
    p.add_argument("--search", choices=("grid", "random"), default="grid",
                   help="grid: lr points in ascending order; random: --samples seeded draws (the same in both runs)")
    p.add_argument("--samples", type=int, default=8, help="trials of a random search")
    p.add_argument("--asha-first", action="store_true", help="run ASHA before the grid baseline")
    p.add_argument("--out", default="benchmarks/out/tune.jsonl", help="results are appended here")
    p.add_argument("--work", default="benchmarks/out/tune_work", help="encoder cache folder")
    return p.parse_args()


def main() -> int:
    args = parse()
    import ray

    from lrl.data.readers import read_conll
    from lrl.job import load_job
    from lrl.train.finetune_scratch import build_scratch_encoder
    from lrl.tune.search import grid_size, search_language

    root = Path(args.data)
    train = read_conll(str(root / "wikiann" / args.lang / "train"), args.lang).table
    dev = read_conll(str(root / "wikiann" / args.lang / "dev"), args.lang).table
    enc_dir = Path(args.work) / f"enc-{args.lang}"
    if not (enc_dir / "config.json").is_file():
        build_scratch_encoder(enc_dir, train.column("tokens").to_pylist(), [args.lang], vocab_size=4000,
                              hidden=128, layers=3, heads=2, max_positions=256)
    common = [f"finetune.few_shot={args.train_rows}", f"finetune.epochs={args.epochs}", "finetune.threads=1",
              f"tune.search={args.search}", f"tune.num_samples={args.samples}", f"tune.space.lr_min={args.lr_min}", f"tune.space.lr_max={args.lr_max}",
              f"tune.space.lr_grid_points={args.lrs}", f"tune.space.batch_size=[{args.batch_sizes}]",
              "tune.space.warmup_ratio=[0.1]", "tune.grace_period=1", "tune.reduction_factor=2",
              "tune.cpus_per_trial=1", "tune.save_best=false"]
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    runs = {}
    order = ["asha", "fifo"] if args.asha_first else ["fifo", "asha"]
    for sched in order:
        job = load_job(None, common + [f"tune.scheduler={sched}"])
        t0 = time.time()
        res = search_language(args.lang, train, dev, job.tune, job.finetune, str(enc_dir), 0)
        wall = time.time() - t0
        runs[sched] = {"wall_s": round(wall, 1), "best_dev_f1": res.best["dev_f1"], "trials": len(res.trials),
                       "stopped_early": sum(bool(t["stopped_early"]) for t in res.trials),
                       "evaluations": sum(t["evaluations"] for t in res.trials),
                       "best": {k: res.best[k] for k in ("lr", "batch_size")}}
        print(f"{sched}: {runs[sched]}", flush=True)
    ray.shutdown()
    base, asha = runs["fifo"], runs["asha"]
    print(f"\nsame {args.search} search of {grid_size(job.tune)} trials, {args.lang}, {args.train_rows} train rows, "
          f"{args.epochs} epochs, {args.cpus} CPUs")
    print(f"{'method':<12}{'wall s':>9}{'x grid':>8}{'best dev F1':>13}{'evals':>7}{'stopped':>9}")
    for name, r in (("full grid", base), ("ASHA", asha)):
        print(f"{name:<12}{r['wall_s']:>9.1f}{r['wall_s'] / base['wall_s']:>8.2f}{100 * r['best_dev_f1']:>13.1f}"
              f"{r['evaluations']:>7}{r['stopped_early']:>9}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a", encoding="utf-8") as f:
        f.write(json.dumps({"cmd": " ".join(sys.argv), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                            "args": vars(args), "runs": runs}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
