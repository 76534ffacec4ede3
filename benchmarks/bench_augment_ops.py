"""Per-op augmentation cost, Ray tasks vs actors for cheap ops, oversampling and neighbour build time.

    python benchmarks/bench_augment_ops.py --data ../shared/data --rows 20000

Input: WikiANN ug + wo train, repeated (with distinct ids) to ``--rows`` rows. Numbers printed:
1. each op alone in a plain loop over 512-row pyarrow batches, as generated rows/s and as input
   rows/s relative to a baseline measured in the same run (the batch -> Python -> Arrow round trip
   that every op pays: ``to_pydict`` + ``from_pydict`` of the same rows);
2. ops ``swap,mention,shuffle`` through Ray Data on 2 CPUs, as tasks and as an actor pool of 2,
   against the plain loop of the same ops (all consume every output row);
3. oversampling to 10x the rows, output rows/s in a plain loop;
4. time to learn corpus-neighbour synonyms from the full mono/wo.txt and mono/ug.txt.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "platform"))

from lrl.data.readers import read_conll  # noqa: E402
from lrl.generate.augment import OP_CLASSES, AugmentBatch, augment_batch, build_resources  # noqa: E402
from lrl.generate.augment.synonyms import corpus_neighbours  # noqa: E402
from lrl.generate.config import AugmentConfig, NeighbourConfig, OversampleConfig  # noqa: E402
from lrl.generate.oversample import oversample_batch, plan_oversample  # noqa: E402


def load(data: Path, rows: int) -> pa.Table:
    base = pa.concat_tables([read_conll(str(data / "wikiann" / lg / "train"), lg).table for lg in ("ug", "wo")])
    parts, n = [], 0
    while n < rows:
        part = base.slice(0, rows - n)
        ids = pa.array([f"{i}#{len(parts)}" for i in part.column("id").to_pylist()])
        parts.append(part.set_column(0, base.schema.field(0), ids))
        n += part.num_rows
    return pa.concat_tables(parts)


def batches(t: pa.Table, size: int = 512) -> list[pa.Table]:
    return [t.slice(i, size) for i in range(0, t.num_rows, size)]


def timed(fn) -> tuple[float, int]:
    start = time.perf_counter()
    n = fn()
    return time.perf_counter() - start, n


def per_op(train: pa.Table, texts: pa.Table) -> None:
    bs = batches(train)
    base_s, _ = timed(lambda: sum(pa.Table.from_pydict(b.to_pydict(), schema=b.schema).num_rows for b in bs))
    print(f"baseline round trip: {train.num_rows / base_s:,.0f} rows/s")
    for op in sorted(OP_CLASSES):
        cfg = AugmentConfig(ops=[op], neighbours=NeighbourConfig(max_lines=20000))
        res = build_resources(cfg, train.slice(0, 2561), texts if op in ("synonym", "insert") else None)
        run = AugmentBatch(cfg, res, seed=0)
        s, n = timed(lambda run=run: sum(run(b).num_rows for b in bs))
        gen = n - train.num_rows
        print(f"{op:10s} {gen:7d} generated, {gen / s:9,.0f} gen rows/s, input {train.num_rows / s:9,.0f} rows/s "
              f"= {base_s / s:.2f}x baseline")


def ray_modes(train: pa.Table) -> None:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    cfg = AugmentConfig(ops=["swap", "mention", "shuffle"])
    res = build_resources(cfg, train.slice(0, 2561))
    plain_s, plain_n = timed(lambda: sum(AugmentBatch(cfg, res, 0)(b).num_rows for b in batches(train)))
    print(f"plain loop swap,mention,shuffle: {plain_n / plain_s:,.0f} out rows/s")
    ref = ray.put(res)
    blocks = [ray.put(b) for b in batches(train, 2000)]
    for mode in ("tasks", "actors", "tasks", "actors"):  # twice each: the second run is warm
        ds = ray.data.from_arrow_refs(blocks)
        if mode == "tasks":
            ds = ds.map_batches(augment_batch, fn_kwargs={"cfg": cfg, "resources": ref, "seed": 0},
                                batch_format="pyarrow", batch_size=512)
        else:
            ds = ds.map_batches(AugmentBatch, fn_constructor_kwargs={"cfg": cfg, "resources": ref, "seed": 0},
                                batch_format="pyarrow", batch_size=512, compute=ray.data.ActorPoolStrategy(size=2))
        s, n = timed(lambda ds=ds: sum(b.num_rows for b in ds.iter_batches(batch_format="pyarrow", batch_size=None)))
        assert n == plain_n, (n, plain_n)
        print(f"ray {mode:6s}: {n / s:9,.0f} out rows/s = {plain_s / s:.2f}x plain loop ({s:.1f} s)")
    ray.shutdown()


def oversampling(train: pa.Table) -> None:
    cfg = OversampleConfig(enabled=True, target_per_lang=train.num_rows * 5)
    plan_s, _ = timed(lambda: plan_oversample(cfg, train) and 0)
    plan = plan_oversample(cfg, train)
    bs = batches(train, 256)
    s, n = timed(lambda: sum(p.num_rows for b in bs for p in oversample_batch(b, plan)))
    print(f"oversample: plan {plan_s:.2f} s for {train.num_rows} rows; {n:,} rows out at {n / s:,.0f} rows/s")


def neighbours(data: Path) -> None:
    for lang in ("wo", "ug"):
        with open(data / "mono" / f"{lang}.txt", encoding="utf-8") as f:
            lines = [ln for ln in f if not ln.startswith("# doc")]
        s, n = timed(lambda lines=lines: len(corpus_neighbours(lines, NeighbourConfig())))
        print(f"neighbours {lang}: {len(lines):,} lines -> {n:,} words with neighbours in {s:.1f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--rows", type=int, default=20000)
    args = p.parse_args()
    train = load(args.data, args.rows)
    rows = []
    for lg in ("ug", "wo"):
        with open(args.data / "mono" / f"{lg}.txt", encoding="utf-8") as f:
            rows += [{"lang": lg, "text": ln.strip()} for ln in f if ln.strip() and not ln.startswith("# doc")]
    texts = pa.Table.from_pylist(rows)
    per_op(train, texts)
    oversampling(train)
    neighbours(args.data)
    ray_modes(train)


if __name__ == "__main__":
    main()
