"""Quickstart wall time and ``lrl run`` orchestration overhead.

    python benchmarks/bench_quickstart.py [--cpus 2] [--keep DIR]

Runs ``lrl quickstart`` in a fresh process (embedded Ray limited to ``--cpus``) into an empty
folder, then runs it again (every stage finished: the re-run cost). Prints, side by side:
- the quickstart wall time of the whole process (target <= 300 s on 2 CPUs),
- the sum of the stages' own times (the baseline the overhead is measured against),
- the orchestration overhead: process wall minus the stage sum (Python start, imports, config,
  state file, Ray shutdown at exit), and the runner-only overhead (inside ``run_pipeline``),
  each as a share of the stage sum (target <= 10%),
- the re-run wall time against the first run.
The machine is shared, so only the ratios within one run are meaningful.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_quickstart(out: Path, cpus: int) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the whole process tree incl. Ray workers, stdout)."""
    import psutil

    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "lrl.cli", "quickstart", f"ray.num_cpus={cpus}", "--output", str(out)]
    log = out.parent / f".{out.name}-{time.time_ns()}.log"
    cpu: dict[int, float] = {}
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, text=True)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            # The embedded Ray (raylet, workers) descends from the driver, so the tree holds all
            # of the run's work; a process's last sample is kept after it exits (up to 0.5 s lost).
            try:
                for p in [root, *root.children(recursive=True)]:
                    try:
                        t = p.cpu_times()
                        cpu[p.pid] = t.user + t.system
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            time.sleep(0.5)
    wall = time.perf_counter() - t0
    stdout = log.read_text()
    log.unlink()
    if proc.returncode != 0:
        sys.stderr.write(stdout[-6000:])
        raise SystemExit(f"quickstart failed with exit code {proc.returncode}")
    return wall, sum(cpu.values()), stdout


def runner_numbers(stdout: str) -> tuple[dict[str, float], float]:
    """Per-stage seconds and the runner's own overhead, parsed from the timing table it prints."""
    stages = {m.group(1): float(m.group(2)) for m in re.finditer(r"^\[lrl run\] (\w+): done in ([\d.]+) s", stdout, re.M)}
    m = re.search(r"^overhead\s+([\d.]+)", stdout, re.M)
    return stages, float(m.group(1)) if m else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--keep", help="write outputs here and keep them (default: a temp dir, removed)")
    args = ap.parse_args()
    out = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lrl-bench-qs-"))
    load0 = os.getloadavg()[0]
    try:
        wall1, cpu1, log1 = run_quickstart(out, args.cpus)
        stages, runner_over = runner_numbers(log1)
        wall2, cpu2, log2 = run_quickstart(out, args.cpus)
        stages2, _ = runner_numbers(log2)
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    total = sum(stages.values())
    over = wall1 - total
    load1 = os.getloadavg()[0]
    print(f"quickstart on {args.cpus} CPUs (fresh output folder); load average {load0:.1f} at start, "
          f"{load1:.1f} at end on {os.cpu_count()} cores")
    for name, s in stages.items():
        print(f"  {name:<10} {s:8.1f} s   re-run {stages2.get(name, float('nan')):6.2f} s")
    print(f"  {'stages':<10} {total:8.1f} s   (baseline: the stages' own time)")
    print(f"  wall       {wall1:8.1f} s   target <= 300 s: {'met' if wall1 <= 300 else 'NOT met'}")
    print(f"  cpu        {cpu1:8.1f} s   CPU time of the whole process tree; cpu/{args.cpus} = "
          f"{cpu1 / args.cpus:.0f} s is the wall time an idle {args.cpus}-core machine would need at best")
    print(f"  overhead   {over:8.1f} s   = {over / total:.1%} of the stage sum (whole process: python start, "
          f"imports, config, Ray shutdown); target <= 10%: {'met' if over <= 0.1 * total else 'NOT met'}")
    print(f"  runner     {runner_over:8.2f} s   = {runner_over / total:.2%} of the stage sum (inside run_pipeline)")
    print(f"  re-run     {wall2:8.1f} s   = {wall2 / wall1:.1%} of the first run (all stages finished)")
    print(json.dumps({"cpus": args.cpus, "wall_s": round(wall1, 1), "stages_s": round(total, 1),
                      "overhead_s": round(over, 1), "overhead_ratio": round(over / total, 3),
                      "runner_overhead_s": round(runner_over, 2), "rerun_wall_s": round(wall2, 1),
                      "cpu_s": round(cpu1, 1), "rerun_cpu_s": round(cpu2, 1), "load": [load0, load1],
                      "stages": stages}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
