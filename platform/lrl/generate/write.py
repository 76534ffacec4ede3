"""Writing the generate stage's Parquet output: ``data/``, ``rejects/`` and ``text/``, each
partitioned by language in hive layout (``data/lang=ug/part-<hash>.parquet``).

Generated rows are written by the Ray tasks that produce them (``PartWriter`` inside
``map_batches``), so the full dataset never passes through the driver or the object store in one
piece. Each file is named by a hash of the ids it holds and moved into place by an atomic rename:
a task that Ray retries after a lost node recomputes the same batch and overwrites the same file,
so a retry neither loses nor duplicates rows, and a half-written file (name starting with ``.``)
is ignored by Parquet readers.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections import Counter
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from lrl.data.files import filesystem, is_uri
from lrl.data.schema import NER_SCHEMA, REJECT, TEXT_SCHEMA, conform

DATA, REJECTS, TEXT = "data", "rejects", "text"

#: Rejected rows of every origin in one schema: reader rejects fill ``line``/``raw``, step
#: rejects fill the row columns (so a rejected generated row can still be inspected/reproduced).
REJECTED_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("line", pa.int64()),
        pa.field("raw", pa.string()),
        pa.field("tokens", pa.list_(pa.string())),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("op", pa.string()),
        pa.field("parent_id", pa.string()),
        pa.field("seed", pa.int64()),
    ]
)


def _without_lang(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name != "lang"])


def write_file(table: pa.Table, folder: str, prefix: str) -> str:
    """Write ``table`` as ``<folder>/<prefix>-<hash of ids>.parquet``, atomically on local disk."""
    digest = hashlib.blake2b("\x00".join(map(str, table.column("id").to_pylist())).encode(),
                             digest_size=10).hexdigest()
    path = f"{folder}/{prefix}-{digest}.parquet"
    fs, inner = filesystem(path)
    fs.create_dir(inner.rsplit("/", 1)[0], recursive=True)
    if is_uri(path):
        # Object stores publish an object only when its upload completes: no rename needed.
        pq.write_table(table, inner, filesystem=fs)
        return path
    head, name = os.path.split(inner)
    tmp = os.path.join(head, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, inner)
    return path


def write_partitioned(table: pa.Table, root: str, schema: pa.Schema, prefix: str) -> list[tuple[str, int]]:
    """Write ``table`` under ``root/lang=<lang>/`` (one file per language); returns (path, rows)."""
    out: list[tuple[str, int]] = []
    if table.num_rows == 0:
        return out
    table = conform(table, schema)
    file_schema = _without_lang(schema)
    for lang in pc.unique(table.column("lang")).to_pylist():
        part = table.filter(pc.equal(table.column("lang"), lang))
        part = part.select(file_schema.names)
        out.append((write_file(part, f"{root}/lang={lang}", prefix), part.num_rows))
    return out


def rejected_rows(batch: pa.Table) -> pa.Table:
    """Rows of ``batch`` whose ``reject`` column is set, as ``REJECTED_SCHEMA`` rows."""
    mask = pc.is_valid(batch.column(REJECT))
    bad = batch.filter(mask)
    bad = bad.append_column("reason", bad.column(REJECT))
    if "text" in bad.column_names and "raw" not in bad.column_names:
        bad = bad.append_column("raw", bad.column("text"))  # a rejected text row keeps its text
    return conform(bad, REJECTED_SCHEMA)


class PartWriter:
    """``map_batches`` callable: writes a batch's kept rows to ``data/`` (or ``text/`` for text
    rows) and its rejected rows to ``rejects/``, and returns one small row per written file
    (kind, path, rows)."""

    def __init__(self, root: str, kind: str = DATA):
        self.root = root.rstrip("/")
        self.kind = kind
        self.schema = TEXT_SCHEMA if kind == TEXT else NER_SCHEMA
        self.prefix = "text" if kind == TEXT else "part"

    def __call__(self, batch: pa.Table) -> pa.Table:
        written: list[tuple[str, str, int]] = []
        if REJECT in batch.column_names:
            mask = pc.is_valid(batch.column(REJECT))
            if pc.any(mask).as_py():
                for path, n in write_partitioned(rejected_rows(batch), f"{self.root}/{REJECTS}",
                                                 REJECTED_SCHEMA, self.prefix):
                    written.append((REJECTS, path, n))
                batch = batch.filter(pc.invert(mask))
        for path, n in write_partitioned(batch, f"{self.root}/{self.kind}", self.schema, self.prefix):
            written.append((self.kind, path, n))
        kinds, paths, rows = zip(*written) if written else ((), (), ())
        return pa.table({"kind": pa.array(kinds, pa.string()), "path": pa.array(paths, pa.string()),
                         "rows": pa.array(rows, pa.int64())})


def write_text(tables: Iterable[pa.Table], root: str) -> int:
    """Write text rows (``TEXT_SCHEMA``) under ``root/text/lang=<lang>/``; returns the row count."""
    n = 0
    for i, table in enumerate(tables):
        for _, rows in write_partitioned(table, f"{root.rstrip('/')}/{TEXT}", TEXT_SCHEMA, f"text{i}"):
            n += rows
    return n


def count_values(folder: str, columns: list[str], kind_of_reason: bool = False) -> dict[str, int]:
    """Count rows per value combination of ``columns`` in a hive-partitioned Parquet folder,
    reading only those columns batch by batch (cheap even for 10M rows). Keys join values by '/'.
    ``kind_of_reason`` counts the first column by its text before the first colon (reject kinds)."""
    fs, inner = filesystem(folder)
    if fs.get_file_info(inner).type.name == "NotFound":
        return {}
    ds = pads.dataset(inner, filesystem=fs, format="parquet", partitioning="hive")
    counts: Counter[str] = Counter()
    for batch in ds.to_batches(columns=columns):
        if batch.num_rows == 0:
            continue
        key = batch.column(0).cast(pa.string()).fill_null("null")
        if kind_of_reason:
            key = pc.utf8_trim_whitespace(pc.list_element(pc.split_pattern(key, ":", max_splits=1), 0))
        for col in range(1, len(columns)):
            key = pc.binary_join_element_wise(key, batch.column(col).cast(pa.string()).fill_null("null"), "/")
        for item in pc.value_counts(key).to_pylist():
            counts[item["values"]] += item["counts"]
    return dict(sorted(counts.items()))


def read_rows(stage_path: str, kind: str = DATA, columns: list[str] | None = None) -> pa.Table:
    """Read one part (``data``, ``rejects`` or ``text``) of a finished generate output, with
    ``lang`` restored from the partition folders. For small outputs; large ones stream with
    ``ray.data.read_parquet(f"{stage_path}/data")``."""
    fs, inner = filesystem(f"{stage_path.rstrip('/')}/{kind}")
    if fs.get_file_info(inner).type.name == "NotFound":
        schema = {DATA: NER_SCHEMA, REJECTS: REJECTED_SCHEMA, TEXT: TEXT_SCHEMA}[kind]
        return schema.empty_table() if columns is None else schema.empty_table().select(columns)
    ds = pads.dataset(inner, filesystem=fs, format="parquet",
                      partitioning=pads.partitioning(pa.schema([("lang", pa.string())]), flavor="hive"))
    return ds.to_table(columns=columns)
