"""Augmentation throughput: read -> augment -> write Parquet on >= 200k NER rows, four ways.

1. plain: one process, a loop over input files and batches (the baseline every ratio uses);
2. pool: ``multiprocessing.Pool(2)``, one input file per task;
3. ray: Ray Data on 2 CPUs the way the generate stage runs it: ``init_ray`` (so the stage's Ray
   Data settings), the driver reads the input (Arrow, C++), ``from_tables`` on the stage's
   ``plan_blocks`` -> the stage's ``AugmentStep`` (tasks, not actors; pyarrow batches) ->
   ``PartWriter`` (each task writes its own Parquet); timed after a warm-up run so that worker
   start-up (a one-off per cluster) is reported separately;
   ``ray-read_parquet`` is the same with ``ray.data.read_parquet`` as the reader (Ray 2.60 reads
   many small files in ONE task and block, so it runs serially: shown for reference);
4. pool-freeze (reference, not a target): Pool(2) whose workers freeze their heap after the
   initializer, as lrl's Ray workers do after a step's first slice (``RayConfig.freeze_worker_heap``),
   so that the gain from that setting is not mistaken for Ray Data beating a Pool;
5. nlpaug: ``RandomWordAug`` swap and delete on joined sentences (the closest equivalents it has;
   it cannot keep tags aligned), on a subset because it is much slower.

Each method runs ``--repeats`` times, interleaved (plain, pool, ray, plain, ...), and the median
is reported, because this shared machine's speed drifts by 10-20% within minutes.

Input rows are the real WikiANN ug + wo training sentences, repeated with fresh ids to ``--rows``
(oversampled), split into ``--files`` Parquet files. All lrl methods run the same ops with the same
per-row seeds, so they must write the same number of rows (checked). Example:

    python benchmarks/bench_augment.py --data ../shared/data --rows 200000

``--source oversample`` instead starts from the 2,561 sentences themselves, as the generate stage
does with few labelled rows: the oversampling step (the stage's plan, ``target_per_lang = rows/2``)
makes ``--rows`` rows inside the tasks, then the same ops and writer. Plain and Pool run the same
``oversample_batch`` on ``--files`` slices of the sentences; Ray runs the stage's ``plan_blocks``
(cut by the plan's row weights) -> ``OversampleStep`` -> ``AugmentStep`` -> ``PartWriter``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lrl.data.blocks import from_tables
from lrl.data.config import NerSource
from lrl.data.readers import read_ner
from lrl.data.schema import NER_SCHEMA
from lrl.generate.augment import AugmentBatch, AugmentStep, build_resources
from lrl.generate.config import AugmentConfig, OversampleConfig
from lrl.generate.oversample import OversamplePlan, OversampleStep, oversample_batch, plan_oversample
from lrl.generate.stage import plan_blocks
from lrl.generate.write import ATTEMPT, REPAIR, PartWriter, count_values, write_partitioned


def make_input(data: Path, rows: int, files: int, out: Path) -> pa.Table:
    """WikiANN ug + wo train repeated (ids made unique) to ``rows`` rows in ``files`` files."""
    base = pa.concat_tables([read_ner(NerSource(path=str(data / "wikiann" / lang / "train"), lang=lang), None).table
                             for lang in ("ug", "wo")])
    reps = -(-rows // base.num_rows)
    parts = []
    for r in range(reps):
        ids = pc.binary_join_element_wise(base.column("id"), pa.scalar(f"r{r}"), "#")
        parts.append(base.set_column(0, NER_SCHEMA.field("id"), ids))
    table = pa.concat_tables(parts).slice(0, rows).combine_chunks()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    step = -(-rows // files)
    for i in range(files):
        pq.write_table(table.slice(i * step, step), out / f"in-{i:03d}.parquet")
    return base


# --- plain loop and Pool: the same batch callable and the same writer as the stage ----------
_AUG: AugmentBatch | None = None


def _init(cfg: AugmentConfig, resources, seed: int) -> None:
    global _AUG
    _AUG = AugmentBatch(cfg, resources, seed)


def process_file(args: tuple[str, str, int]) -> int:
    """Read one input file, augment it batch by batch, write it partitioned by language (one file
    per language, like a Ray task writing its block)."""
    src, out, batch_size = args
    table = pq.read_table(src)
    done = pa.concat_tables([_AUG(table.slice(start, batch_size)) for start in range(0, table.num_rows, batch_size)])
    return sum(rows for _, rows in write_partitioned(done, f"{out}/data", NER_SCHEMA, Path(src).stem))


# --- --source oversample: a few thousand sentences become --rows rows inside the workers --------
_PLAN: OversamplePlan | None = None
_SENTENCES: pa.Table | None = None


def _init_oversample(cfg: AugmentConfig, resources, seed: int, plan: OversamplePlan, sentences: pa.Table) -> None:
    global _PLAN, _SENTENCES
    _init(cfg, resources, seed)
    _PLAN, _SENTENCES = plan, sentences


def process_slice(args: tuple[int, int, str, int]) -> int:
    """Oversample one slice of the sentences (in the step's slices, as the stage does), augment the
    copies batch by batch and write them partitioned by language."""
    start, length, out, batch_size = args
    part = _SENTENCES.slice(start, length)
    rows = OversampleStep.batch_size  # the step's default slice, as the stage runs it
    copies = pa.concat_tables([c for s in range(0, part.num_rows, rows)
                               for c in oversample_batch(part.slice(s, rows), _PLAN)])
    done = pa.concat_tables([_AUG(copies.slice(s, batch_size)) for s in range(0, copies.num_rows, batch_size)])
    return sum(rows for _, rows in write_partitioned(done, f"{out}/data", NER_SCHEMA, f"slice-{start:06d}"))


def _init_frozen(init, *args) -> None:
    """A Pool worker's initializer, then the heap frozen as lrl's Ray workers do it
    (``RayConfig.freeze_worker_heap``): the "pool-freeze" reference line."""
    import gc

    init(*args)
    gc.collect()
    gc.freeze()


def slices(n_rows: int, parts: int) -> list[tuple[int, int]]:
    step = -(-n_rows // parts)
    return [(i, min(step, n_rows - i)) for i in range(0, n_rows, step)]


def run_plain(items: list, out: str, batch_size: int, work=process_file) -> int:
    """``work`` is ``process_file`` (items: paths) or ``process_slice`` (items: (start, length))."""
    return sum(work((*_as_tuple(i), out, batch_size)) for i in items)


def run_pool(items: list, out: str, batch_size: int, pool, work=process_file) -> int:
    return sum(pool.imap_unordered(work, [(*_as_tuple(i), out, batch_size) for i in items]))


def _as_tuple(item) -> tuple:
    return item if isinstance(item, tuple) else (item,)


def run_ray(files: list, out: str, step: AugmentStep, reader: str = "driver",
            oversample: OversampleStep | None = None) -> int:
    import ray

    if oversample is not None:  # the stage's path: blocks cut by the plan's weights, then the step
        sentences = pa.concat_tables([_SENTENCES.slice(a, n) for a, n in files])
        cpus = int(ray.cluster_resources()["CPU"])
        ds = oversample.apply(from_tables(plan_blocks(sentences, cpus, oversample.row_weights(sentences))))
    elif reader == "driver":
        table = pa.concat_tables([pq.read_table(f) for f in files])
        ds = from_tables(plan_blocks(table, int(ray.cluster_resources()["CPU"])))
    else:
        ds = ray.data.read_parquet(files)
    ds = step.apply(ds)
    ds = ds.map_batches(PartWriter(out), batch_format="pyarrow", batch_size=None)
    written = 0
    for b in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        files = pc.is_in(b.column("kind"), pa.array([REPAIR, ATTEMPT])).to_pylist()
        written += sum(n for n, counts in zip(b.column("rows").to_pylist(), files) if not counts)
    return written


def run_nlpaug(table: pa.Table, out: str) -> int:
    import nlpaug.augmenter.word as naw

    swap, delete = naw.RandomWordAug(action="swap"), naw.RandomWordAug(action="delete")
    texts = [" ".join(t) for t in table.column("tokens").to_pylist()]
    made = []
    for text in texts:
        made.append(text)
        made.extend(swap.augment(text))
        made.extend(delete.augment(text))
    os.makedirs(out, exist_ok=True)
    pq.write_table(pa.table({"text": made}), f"{out}/nlpaug.parquet")
    return len(made)


def timed(fn, *args) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn(*args)
    return time.perf_counter() - t0, n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path(os.environ.get("LRL_DATA_ROOT", "../shared/data")))
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--files", type=int, default=16, help="input Parquet files (one task each)")
    p.add_argument("--ops", default="swap,delete", help="augmentation ops, comma-separated")
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="runs per method (interleaved); the median is reported")
    p.add_argument("--read-parquet", action="store_true", help="also time Ray with ray.data.read_parquet")
    p.add_argument("--nlpaug-rows", type=int, default=20_000, help="0 skips nlpaug")
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/augment"))
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--source", choices=["files", "oversample"], default="files",
                   help="files: --rows rows read from --files Parquet files; oversample: the sentences "
                        "oversampled to --rows inside the workers (see above)")
    a = p.parse_args(argv)
    if a.nlpaug_rows and importlib.util.find_spec("nlpaug") is None:
        # Checked first: it failed after every timed method had run (nlpaug is in the bench extra).
        print("nlpaug is not installed (pip install -e '.[bench]'): its line is left out", file=sys.stderr)
        a.nlpaug_rows = 0

    cfg = AugmentConfig(ops=a.ops.split(","), neighbours={"enabled": False}, batch_size=a.batch_size)
    in_dir = a.out / "input"
    base = make_input(a.data, a.rows, a.files, in_dir)
    files = sorted(str(f) for f in in_dir.glob("*.parquet"))
    resources = build_resources(cfg, base)
    init_args: tuple = (cfg, resources, 0)
    over: OversampleStep | None = None
    if a.source == "oversample":
        plan = plan_oversample(OversampleConfig(enabled=True, target_per_lang=a.rows // 2), base, 0)
        init_args += (plan, base)
        _init_oversample(*init_args)
        over = OversampleStep(plan)
        files = slices(base.num_rows, a.files)
        print(f"{base.num_rows} sentences oversampled to {sum(plan.after.values())} rows in the workers "
              f"({len(files)} slices), ops {cfg.ops}, batch {a.batch_size}, cpus {a.cpus}")
    else:
        _init(*init_args)
        print(f"{a.rows} input rows in {len(files)} files, ops {cfg.ops}, batch {a.batch_size}, cpus {a.cpus}")

    results: dict[str, dict] = {}

    def record(name: str, runs: list[tuple[float, int]], rows_in: int) -> None:
        seconds = statistics.median(t for t, _ in runs)
        rows_out = {n for _, n in runs}
        results[name] = {"seconds": round(seconds, 2), "runs_s": [round(t, 2) for t, _ in runs],
                         "rows_in": rows_in, "rows_out": rows_out.pop() if len(rows_out) == 1 else sorted(rows_out),
                         "rows_per_s": round(rows_in / seconds)}
        print(f"  {name:<16} median {seconds:6.2f} s  {rows_in / seconds:9.0f} input rows/s  "
              f"(runs {', '.join(f'{t:.2f}' for t, _ in runs)} s; {results[name]['rows_out']} rows written)",
              flush=True)

    def fresh(name: str) -> str:
        d = a.out / name
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)  # as the stage's driver creates its folder (PartWriter checks it is there)
        return str(d)

    from lrl.runtime import RayConfig, init_ray

    # Both parallel methods get warm workers: the pool is forked (before Ray starts, so no Ray
    # threads are forked) and warmed like Ray's workers; neither start-up is timed.
    pool = mp.get_context("fork").Pool(a.cpus, initializer=_init_oversample if over else _init, initargs=init_args)
    work = process_slice if over else process_file
    run_pool(files[: a.cpus], fresh("pool-warmup"), a.batch_size, pool, work)
    frozen = mp.get_context("fork").Pool(a.cpus, initializer=_init_frozen,
                                         initargs=(_init_oversample if over else _init, *init_args))
    run_pool(files[: a.cpus], fresh("pool-warmup"), a.batch_size, frozen, work)
    t0 = time.perf_counter()
    ray = init_ray(RayConfig(num_cpus=a.cpus))
    ray.data.DataContext.get_current().enable_progress_bars = False
    step = AugmentStep(cfg, resources, 0, count=True)  # as the stage runs it: attempts counted
    warm = time.perf_counter()
    run_ray(files[: a.cpus], fresh("ray-warmup"), step, oversample=over)
    print(f"  (ray start {warm - t0:.1f} s, warm-up run on {a.cpus} files {time.perf_counter() - warm:.1f} s; "
          "not timed)")
    runs: dict[str, list[tuple[float, int]]] = {"plain": [], "pool": [], "ray": [], "pool-freeze": []}
    for _ in range(a.repeats):
        runs["plain"].append(timed(run_plain, files, fresh("plain"), a.batch_size, work))
        runs["pool"].append(timed(run_pool, files, fresh("pool"), a.batch_size, pool, work))
        runs["ray"].append(timed(run_ray, files, fresh("ray"), step, "driver", over))
        runs["pool-freeze"].append(timed(run_pool, files, fresh("pool-freeze"), a.batch_size, frozen, work))
    for name, r in runs.items():
        record(name, r, a.rows)
    if a.read_parquet and not over:
        record("ray-read_parquet", [timed(run_ray, files, fresh("ray-rp"), step, "read_parquet")], a.rows)
    ray.shutdown()
    pool.close()
    frozen.close()

    if a.nlpaug_rows:
        sub = pq.read_table(sorted(in_dir.glob("*.parquet"))[0]).slice(0, a.nlpaug_rows)
        record("nlpaug(subset)", [timed(run_nlpaug, sub, fresh("nlpaug"))], sub.num_rows)

    same = {str(results[k]["rows_out"]) for k in ("plain", "pool", "ray", "pool-freeze")}
    plain = results["plain"]["rows_per_s"]
    print("\nratios (input rows/s vs the plain loop measured in this run):")
    for name, r in results.items():
        print(f"  {name:<14} {r['rows_per_s'] / plain:5.2f}x")
    print(f"ray vs pool: {results['ray']['rows_per_s'] / results['pool']['rows_per_s']:.2f}x   "
          f"targets: ray >= 1.6x plain, ray >= pool")
    print(f"ray vs pool-freeze (a Pool with the same gc.freeze as lrl's Ray workers; reference, "
          f"not the target): {results['ray']['rows_per_s'] / results['pool-freeze']['rows_per_s']:.2f}x")
    print("rows written per op (ray):", count_values(str(a.out / "ray" / "data"), ["op"]))
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    if len(same) != 1:
        print(f"ERROR: methods wrote different row counts: {same}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
