"""MT actor pool (the translate step on Ray Data) vs single-process ``generate``, same model.

    python benchmarks/bench_translate.py --rows 10120 --cpus 2 --actors 2 --batch-size 32

Model: a random-init Marian built offline (``lrl.generate.translate.tiny``; d_model 64, 2+2
layers, 2k-piece Unigram tokenizer trained on FLORES en+ug), so generation runs to
``--max-length`` tokens for most rows: a fixed, known amount of decoding per row.
Input: FLORES-200 devtest English lines, repeated to ``--rows`` (ids differ).

* baseline: one process, ``HFTranslator.translate`` on chunks of ``4 * batch_size`` rows (the
  same chunks the Ray step hands each actor), model load included, with ``cpus`` torch threads
  and with 1 (on this shared machine 2 threads ran 20x slower than 1: OpenMP threads wait on
  each other when the cores are oversubscribed); the ratio is against the faster of the two.
* pool: ``TranslateTrain.apply`` (mark -> actor pool hop -> project) on a local Ray with ``cpus``
  CPUs, ``actors`` actors reserving ``cpus/actors/2`` CPUs each (half, so the tasks around the
  pool can run; with all CPUs reserved the pipeline stalled), each with ``cpus/actors`` torch
  threads rounded, i.e. as many threads in total as the baseline; ``count()`` forces execution;
  actor start-up and model loads included, ``ray.init`` not (a job starts Ray once).

Both runs happen in this process, one after the other, and the ratio is printed: the machine is
shared, so only ratios measured in the same run mean anything. Ray workers run at the baseline's
priority (``--ray-niceness 0``; Ray's default is nice 15, see --help).
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10120)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64,
                    help="tokens; inputs longer than this are refused (not truncated), so FLORES lines need ~64")
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--data-root", default=os.environ.get("LRL_DATA_ROOT", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--repeats", type=int, default=1, help="alternate baseline/pool this many times")
    ap.add_argument("--baseline-threads", default=None,
                    help="comma list of torch thread counts for the single process (default: 1 and --cpus); "
                         "the ratio is taken against the fastest")
    ap.add_argument("--ray-niceness", default="0",
                    help="RAY_worker_niceness: Ray starts workers at nice 15, which on a shared machine "
                         "alone halves their CPU share against a nice-0 baseline; 0 makes them equal")
    args = ap.parse_args()
    os.environ["RAY_worker_niceness"] = args.ray_niceness
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from lrl.generate.translate.tiny import build_tiny_marian

    flores = Path(args.data_root) / "parallel" / "flores200_devtest"
    en = (flores / "eng_Latn.devtest").read_text(encoding="utf-8").splitlines()
    ug = (flores / "uig_Arab.devtest").read_text(encoding="utf-8").splitlines()
    texts = [en[i % len(en)] for i in range(args.rows)]
    tmp = tempfile.mkdtemp(prefix="bench-mt-")
    atexit.register(shutil.rmtree, tmp, True)  # models and Ray folders: not left in /tmp
    path = build_tiny_marian(Path(tmp) / "m", en + ug, d_model=args.d_model, layers=args.layers,
                             vocab_size=2000, ffn=4 * args.d_model)
    print(f"model {path}: d_model {args.d_model}, layers {args.layers}; rows {len(texts)}; "
          f"batch {args.batch_size}; max_length {args.max_length}; cpus {args.cpus}; actors {args.actors}",
          flush=True)

    import ray

    # address="local": a new Ray of our own, even when another user has a `ray start` cluster up.
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    threads = [int(x) for x in (args.baseline_threads or f"1,{args.cpus}").split(",")]
    results = []
    for rep in range(args.repeats):
        times = {}
        for th in dict.fromkeys(threads):
            times[th] = baseline(path, texts, args, th)
            print(f"[{rep}] single process, {th} torch thread(s): {len(texts) / times[th]:8.1f} rows/s "
                  f"({times[th]:.1f} s)", flush=True)
        base = min(times.values())
        pool = actor_pool(path, texts, args)
        results.append((base, pool))
        print(f"[{rep}] actor pool ({args.actors} actors): {len(texts) / pool:8.1f} rows/s ({pool:.1f} s)   "
              f"pool / fastest single = {base / pool:.2f}x", flush=True)
    ratios = sorted(b / p for b, p in results)
    mid = len(ratios) // 2
    median = ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
    print(f"pool / fastest single: median {median:.2f}x, range {ratios[0]:.2f}-{ratios[-1]:.2f}x "
          f"over {len(ratios)} run(s) (target >= 0.9x)")
    ray.shutdown()
    return 0


def model_cfg(path: str, args, cpus_per_actor: float):
    from lrl.generate.mt_config import MTModelConfig

    return MTModelConfig(model=path, batch_size=args.batch_size, max_length=args.max_length,
                         num_actors=args.actors, cpus_per_actor=cpus_per_actor)


def baseline(path: str, texts: list[str], args, threads: int) -> float:
    from lrl.generate.translate.hf import HFTranslator

    t0 = time.perf_counter()
    tr = HFTranslator(model_cfg(path, args, threads), "en", "ug")  # sets torch threads
    chunk = 4 * args.batch_size
    n = 0
    for i in range(0, len(texts), chunk):
        n += len(tr.translate(texts[i : i + chunk]))
    assert n == len(texts)
    return time.perf_counter() - t0


def actor_pool(path: str, texts: list[str], args) -> float:
    import ray

    from lrl.data.schema import text_table
    from lrl.generate.mt_config import ProjectionConfig, TranslateTrainConfig
    from lrl.generate.translate import TranslateTrain

    rows = [{"id": f"en:{i}", "lang": "en", "text": t, "op": "orig"} for i, t in enumerate(texts)]
    ds = ray.data.from_arrow(text_table(rows)).repartition(4 * args.actors)
    cfg = TranslateTrainConfig(sources=["en"], target="ug", keep_source=False,
                               model=model_cfg(path, args, args.cpus / args.actors / 2))
    t0 = time.perf_counter()
    n = TranslateTrain(cfg, ProjectionConfig()).apply(ds).count()
    assert n == len(texts), n
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
