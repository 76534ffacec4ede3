"""Where the pretraining gap lives: the SAME plain loop run in different places on the same cores.

``bench_pretrain.py`` compares lrl's Ray Train + DeepSpeed run with a plain PyTorch loop; its Ray
side is ~0.8x in the loop. This script takes lrl's Ray-side code out of the question: every side
runs ``bench_pretrain.plain_loop`` itself (in-memory packed data, ``TorchEngine``, bf16 autocast,
the same masks; no Ray Data, no DeepSpeed), and only the place it runs in changes:

  plain         a process without Ray (the baseline every ratio uses);
  ray-idle      the driver, with an embedded Ray started through ``init_ray`` and idle;
  train-active  the driver, while a one-worker ``TorchTrainer`` runs a worker that only sleeps
                (Ray Train's controller and actors alive, as in a real run);
  train-worker  inside a one-worker ``TorchTrainer`` (the loop on Ray Train's training thread);
  train-worker-batch
                the same, with the embedded Ray started from a SCHED_BATCH thread (every Ray
                process inherits the policy, so its wake-ups no longer preempt a running thread)
                and the training thread set back to SCHED_OTHER (not in the default sides);
  train-worker-noprestart
                the same as train-worker, with Ray's worker prestart off, so no idle pooled worker
                process is left next to the training (not in the default sides).

For each side: tokens/s in the loop, the loop process's CPUs (user + system over wall, all its
threads), the rest of the machine's busy CPUs (``/proc/stat``), tokens per CPU-second of the loop
process, and involuntary context switches per second. Sides rotate order every round, because
this shared machine's speed drifts by 10-20% within minutes; medians of per-round ratios are
reported.

    python benchmarks/bench_train_worker.py --seconds 45 --rounds 3
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "platform"))
# Ray's workers import this module to run the loop: they inherit the path from the driver.
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent / "platform"),
                                            *filter(None, [os.environ.get("PYTHONPATH")])])

import bench_pretrain  # noqa: E402

SIDES = ("plain", "ray-idle", "train-active", "train-worker", "train-worker-batch", "train-worker-noprestart")
DEFAULT_SIDES = SIDES[:4]


def _busy_cpu_s() -> float:
    """CPU-seconds the whole machine has been busy (all CPUs, idle and iowait excluded)."""
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def measured_loop(args: dict) -> dict:
    """``plain_loop`` with this process's and the machine's CPU accounting around its loop only
    (model loading and packing are left out: they cost more in a fresh Ray worker)."""
    at = {}

    def mark(name: str) -> None:
        at[name] = (resource.getrusage(resource.RUSAGE_SELF), _busy_cpu_s(), time.perf_counter())

    res = bench_pretrain.plain_loop(args["cfg"], args["table"], args["tok"], args["model"], args["seconds"],
                                    args["threads"], mark)
    (r0, b0, t0), (r1, b1, t1) = at["start"], at["end"]
    wall, proc = t1 - t0, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return {"tokens_per_s": res["in_loop_tokens_per_s"], "proc_cpus": proc / wall,
            "other_cpus": (b1 - b0 - proc) / wall, "tokens_per_cpu_s": res["tokens"] / proc,
            "nivcsw_per_s": (r1.ru_nivcsw - r0.ru_nivcsw) / wall, "nice": os.nice(0)}


def _worker_loop(config: dict) -> None:
    if config.get("normal_thread"):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))  # this thread only
    # Ray Train V2 keeps metrics only with checkpoints: the result goes through a file.
    Path(config["out"]).write_text(json.dumps(measured_loop(config)))


def _sleeping_worker(config: dict) -> None:
    stop = Path(config["stop"])
    while not stop.exists():
        time.sleep(0.2)


def _trainer(fn, config: dict, name: str, storage: Path):
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    return TorchTrainer(fn, train_loop_config=config, torch_config=TorchConfig(backend="gloo"),
                        scaling_config=ray.train.ScalingConfig(num_workers=1, resources_per_worker={"CPU": 1}),
                        run_config=ray.train.RunConfig(name=name, storage_path=str(storage)))


def run_side(side: str, args: dict, work: Path, tag: str, cores: int) -> dict:
    if side == "plain":
        return measured_loop(args)
    import ray

    from lrl.runtime import RayConfig, init_ray

    batch = side.endswith("-batch")
    # Read by Ray's processes as they start, so only this side's Ray runs without prestart.
    env = {"RAY_prestart_worker_first_driver": "0", "RAY_enable_worker_prestart": "0"}
    if batch:  # every Ray process inherits SCHED_BATCH from this thread; the loop's thread undoes it
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    try:
        with mock.patch.dict(os.environ, env if side.endswith("-noprestart") else {}):
            init_ray(RayConfig(num_cpus=cores))
    finally:
        if batch:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    try:
        time.sleep(2)  # Ray's own start-up work settles
        if side == "ray-idle":
            return measured_loop(args)
        if side.startswith("train-worker"):
            out = work / f"{tag}.json"
            _trainer(_worker_loop, {**args, "out": str(out), "normal_thread": batch}, tag, work / "ray").fit()
            return json.loads(out.read_text())
        stop = work / f"{tag}.stop"
        fit = threading.Thread(target=_trainer(_sleeping_worker, {"stop": str(stop)}, tag, work / "ray").fit)
        fit.start()
        time.sleep(15)  # the worker group is up and the worker sleeps
        try:
            return measured_loop(args)
        finally:
            stop.touch()
            fit.join()
    finally:
        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=45, help="loop time of each side")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cores", type=int, default=2, help="Ray's CPUs and the loop's threads")
    ap.add_argument("--sides", default=",".join(DEFAULT_SIDES), help=f"comma-separated subset of {SIDES}")
    ap.add_argument("--lines", type=int, default=4000, help="lines of text per language")
    a = ap.parse_args()
    sides = a.sides.split(",")
    if "plain" not in sides or not set(sides) <= set(SIDES):
        ap.error(f"--sides must include plain and come from {SIDES}")
    from lrl.train.pretrain_config import PretrainConfig

    cfg = PretrainConfig(engine="torch", precision="bf16", steps=10**6, batch_size=32, seq_len=128,
                         threads_per_worker=a.cores, time_limit_s=a.seconds,
                         schedule={"type": "constant", "warmup_ratio": 0.0})
    work = Path(tempfile.mkdtemp(prefix="bench-train-worker-"))
    atexit.register(shutil.rmtree, work, True)  # models and Ray folders: not left in /tmp
    table, tok, model = bench_pretrain.prepare(work, a.lines, "micro", 128)
    args = {"cfg": cfg, "table": table, "tok": tok, "model": model, "seconds": a.seconds, "threads": a.cores}
    ratios: dict[str, list[float]] = {s: [] for s in sides if s != "plain"}
    for r in range(a.rounds):
        order = sides[r % len(sides):] + sides[:r % len(sides)]  # each side first once in a while
        if r % 2:
            order.reverse()
        res = {s: run_side(s, args, work, f"r{r}-{s}", a.cores) for s in order}
        for s in ratios:
            ratios[s].append(res[s]["tokens_per_s"] / res["plain"]["tokens_per_s"])
        print(json.dumps({"round": r, "order": order, **res}), flush=True)
        for s in order:
            x = res[s]
            print(f"  {s:13}{x['tokens_per_s']:9.0f} tok/s  x{x['tokens_per_s'] / res['plain']['tokens_per_s']:.2f}"
                  f"  loop CPUs {x['proc_cpus']:.2f}  others {x['other_cpus']:.2f}"
                  f"  tok/CPU-s x{x['tokens_per_cpu_s'] / res['plain']['tokens_per_cpu_s']:.2f}"
                  f"  preempted {x['nivcsw_per_s']:.0f}/s  nice {x['nice']}", flush=True)
    for s, v in ratios.items():
        print(f"median tokens/s ratio to plain, {s}: {statistics.median(v):.2f} over {len(v)} rounds "
              f"({', '.join(f'{x:.2f}' for x in v)})")


if __name__ == "__main__":
    main()
