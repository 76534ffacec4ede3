"""Peak memory of streaming ~10M rows (made by oversampling) through augmentation and write.

Runs the real generate stage (``run_generate``) on WikiANN ug + wo train with
``oversample.target_per_lang = rows / 2`` (so ``--rows`` rows stream into augmentation) and
``augment.ops`` (default swap), on an embedded Ray with 2 CPUs. A thread samples every process
of the job (the driver and all its descendants: GCS, raylet with the plasma object store, every
Ray worker) with psutil and records the peak of:

- the sum of PSS (proportional set size: shared pages, such as the object store's shared memory
  mapped by several processes, are split among them, so the sum counts them once): the real total;
- the sum of RSS (counts shared pages once per process that maps them: an upper bound).

The baseline printed beside it is the same stage on 1/100 of the rows, measured in the same run:
a streaming job's peak should barely grow with its row count. Target: peak PSS sum < 4 GiB. Example:

    python benchmarks/bench_stream_memory.py --data ../shared/data --rows 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import threading
import time
from pathlib import Path

import psutil

GiB = 2**30


class MemorySampler:
    """Samples the summed PSS and RSS of this process and all its descendants in a thread."""

    def __init__(self, interval_s: float = 0.5):
        self.interval_s = interval_s
        self.peak_pss = self.peak_rss = 0
        self.peak_procs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> tuple[int, int, int]:
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        pss = rss = 0
        for p in procs:
            try:
                info = p.memory_full_info()  # reads smaps: gives pss (Linux)
                pss += info.pss
                rss += info.rss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return pss, rss, len(procs)

    def _run(self) -> None:
        while not self._stop.is_set():
            pss, rss, n = self.sample()
            self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
            self.peak_procs = max(self.peak_procs, n)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_stage(data: Path, rows: int, ops: str, out: Path, object_store_mb: int) -> tuple[float, dict]:
    from lrl.generate.stage import run_generate
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    shutil.rmtree(out, ignore_errors=True)
    cfg = load_job(None, [
        f"data.root={data}",
        "data.ner=[{path: wikiann/ug/train, lang: ug}, {path: wikiann/wo/train, lang: wo}]",
        "oversample.enabled=true", f"oversample.target_per_lang={rows // 2}",
        f"augment.ops=[{ops}]", "augment.neighbours.enabled=false",
        f"output.root={out}", "ray.num_cpus=2", f"ray.object_store_memory_mb={object_store_mb}",
    ])
    t0 = time.perf_counter()
    path = run_generate(StageContext(cfg), quiet=True)
    seconds = time.perf_counter() - t0
    return seconds, json.loads((Path(path) / "manifest.json").read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path(os.environ.get("LRL_DATA_ROOT", "../shared/data")))
    p.add_argument("--rows", type=int, default=10_000_000, help="rows after oversampling")
    p.add_argument("--ops", default="swap")
    p.add_argument("--object-store-mb", type=int, default=1024)
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/stream"))
    p.add_argument("--keep", action="store_true", help="keep the written output")
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)

    import ray

    from lrl.runtime import RayConfig, init_ray

    init_ray(RayConfig(num_cpus=2, object_store_memory_mb=a.object_store_mb))
    ray.data.DataContext.get_current().enable_progress_bars = False
    results = {}
    for name, rows in (("baseline (rows/100)", max(a.rows // 100, 10_000)), ("full", a.rows)):
        with MemorySampler() as mem:
            seconds, m = run_stage(a.data, rows, a.ops, a.out / name.split()[0], a.object_store_mb)
        results[name] = {"rows_oversampled": rows, "rows_written": m["output_rows"], "seconds": round(seconds, 1),
                         "rows_per_s": round(m["output_rows"] / seconds), "peak_pss_gib": round(mem.peak_pss / GiB, 3),
                         "peak_rss_sum_gib": round(mem.peak_rss / GiB, 3), "processes": mem.peak_procs,
                         "rows_per_op": m["rows_per_op"]}
        r = results[name]
        print(f"{name:<20} {r['rows_written']:>10} rows written in {seconds:7.1f} s ({r['rows_per_s']} rows/s); "
              f"peak PSS sum {r['peak_pss_gib']:.2f} GiB, peak RSS sum {r['peak_rss_sum_gib']:.2f} GiB "
              f"over {mem.peak_procs} processes", flush=True)
        if not a.keep:
            shutil.rmtree(a.out / name.split()[0], ignore_errors=True)
    ray.shutdown()
    full, base = results["full"], results["baseline (rows/100)"]
    print(f"full/baseline peak PSS: {full['peak_pss_gib'] / base['peak_pss_gib']:.2f}x for "
          f"{full['rows_written'] / base['rows_written']:.0f}x the rows; target peak PSS < 4 GiB: "
          f"{'met' if full['peak_pss_gib'] < 4 else 'NOT met'}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
