"""The Arrow schemas every stage reads and writes.

One schema for labelled token rows (NER and other tagging tasks), one for text rows, one for
line-aligned parallel text, one for rejected rows. Generated rows carry ``op``, ``parent_id`` and
``seed`` so that each can be reproduced from its parent.
"""

from __future__ import annotations

import pyarrow as pa

#: Column that a generation step may add to mark a row as rejected (null = kept); the stage
#: runner moves such rows to the rejects dataset with this reason.
REJECT = "reject"

NER_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("tokens", pa.list_(pa.string()), nullable=False),
        pa.field("tags", pa.list_(pa.string()), nullable=False),
        pa.field("source", pa.string()),
        pa.field("op", pa.string()),
        pa.field("parent_id", pa.string()),
        pa.field("seed", pa.int64()),
    ]
)

TEXT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("doc", pa.string()),
        pa.field("source", pa.string()),
        pa.field("op", pa.string()),
        pa.field("parent_id", pa.string()),
        pa.field("seed", pa.int64()),
    ]
)

PARALLEL_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("src_lang", pa.string(), nullable=False),
        pa.field("tgt_lang", pa.string(), nullable=False),
        pa.field("src", pa.string(), nullable=False),
        pa.field("tgt", pa.string(), nullable=False),
        pa.field("source", pa.string()),
    ]
)

REJECT_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("line", pa.int64()),
        pa.field("id", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string()),
    ]
)


def ner_table(rows: list[dict]) -> pa.Table:
    """Build a NER table from dict rows, filling optional columns with nulls."""
    return pa.Table.from_pylist([_fill(r, NER_SCHEMA) for r in rows], schema=NER_SCHEMA)


def text_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([_fill(r, TEXT_SCHEMA) for r in rows], schema=TEXT_SCHEMA)


def reject_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([_fill(r, REJECT_SCHEMA) for r in rows], schema=REJECT_SCHEMA)


def _fill(row: dict, schema: pa.Schema) -> dict:
    return {name: row.get(name) for name in schema.names}


#: Schema metadata key of a labelled table whose tags were read under ``scheme: tokens`` (each tag
#: X as ``B-X``). The rows alone cannot tell: a NER sentence of one-word entities has only ``B-``
#: tags too. Fine-tuning reads it to build the label set (``lrl.train.finetune_data.label_list``).
SCHEME_KEY = b"lrl.scheme"


def with_scheme(table: pa.Table, scheme: str) -> pa.Table:
    """``table`` marked as read under ``scheme`` (``tokens``); ``iob2``, the default, is no mark.
    Filters, ``take`` and slices keep the mark; ``pa.concat_tables`` keeps the first table's."""
    meta = dict(table.schema.metadata or {})
    meta.pop(SCHEME_KEY, None)
    if scheme != "iob2":
        meta[SCHEME_KEY] = scheme.encode()
    return table.replace_schema_metadata(meta or None)


def table_scheme(table: pa.Table) -> str:
    """The tag scheme ``table`` was marked with (``with_scheme``), ``iob2`` when unmarked."""
    return (table.schema.metadata or {}).get(SCHEME_KEY, b"iob2").decode()


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Select and cast ``table`` to ``schema``; absent optional columns become typed nulls."""
    cols = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
            for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)
