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


def run_quickstart(out: Path, cpus: int) -> tuple[float, str]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "lrl.cli", "quickstart", f"ray.num_cpus={cpus}", "--output", str(out)]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.stderr.write(res.stdout[-4000:] + res.stderr[-4000:])
        raise SystemExit(f"quickstart failed with exit code {res.returncode}")
    return wall, res.stdout


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
    try:
        wall1, log1 = run_quickstart(out, args.cpus)
        stages, runner_over = runner_numbers(log1)
        wall2, log2 = run_quickstart(out, args.cpus)
        stages2, _ = runner_numbers(log2)
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    total = sum(stages.values())
    over = wall1 - total
    print(f"quickstart on {args.cpus} CPUs (fresh output folder)")
    for name, s in stages.items():
        print(f"  {name:<10} {s:8.1f} s   re-run {stages2.get(name, float('nan')):6.2f} s")
    print(f"  {'stages':<10} {total:8.1f} s   (baseline: the stages' own time)")
    print(f"  wall       {wall1:8.1f} s   target <= 300 s: {'met' if wall1 <= 300 else 'NOT met'}")
    print(f"  overhead   {over:8.1f} s   = {over / total:.1%} of the stage sum (whole process: python start, "
          f"imports, config, Ray shutdown); target <= 10%: {'met' if over <= 0.1 * total else 'NOT met'}")
    print(f"  runner     {runner_over:8.2f} s   = {runner_over / total:.2%} of the stage sum (inside run_pipeline)")
    print(f"  re-run     {wall2:8.1f} s   = {wall2 / wall1:.1%} of the first run (all stages finished)")
    print(json.dumps({"cpus": args.cpus, "wall_s": round(wall1, 1), "stages_s": round(total, 1),
                      "overhead_s": round(over, 1), "overhead_ratio": round(over / total, 3),
                      "runner_overhead_s": round(runner_over, 2), "rerun_wall_s": round(wall2, 1),
                      "stages": stages}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
