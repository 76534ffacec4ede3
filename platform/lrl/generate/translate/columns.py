"""Columns that translation adds to schema rows, shared with the quality filters.

Generated rows keep what the filters must compare them with: ``src_text`` (the parent's text,
for the length ratio) and ``src_ents`` (the parent's entity types, for projection consistency).
Rows that were not translated carry nulls. ``reject`` is the runner's rejection column. Every
batch a step returns has exactly these columns in this order, so Ray blocks concatenate cleanly.
"""

from __future__ import annotations

import pyarrow as pa

from lrl.data.schema import NER_SCHEMA, REJECT, TEXT_SCHEMA, conform

SRC_TEXT = "src_text"
SRC_ENTS = "src_ents"
#: The repairs label projection made to a translated row (``Projection.repairs``: fuzzy,
#: dangling, moved_marker...), counted per op into the manifest by the writer (``count_repairs``).
REPAIRS = "repairs"
#: Columns beyond NER_SCHEMA / TEXT_SCHEMA that translation steps emit (the runner drops them).
EXTRA_COLUMNS = (REJECT, SRC_TEXT, SRC_ENTS, REPAIRS)

_EXTRA = [pa.field(REJECT, pa.string()), pa.field(SRC_TEXT, pa.string()),
          pa.field(SRC_ENTS, pa.list_(pa.string())), pa.field(REPAIRS, pa.list_(pa.string()))]
NER_OUT = pa.schema(list(NER_SCHEMA) + _EXTRA)
TEXT_OUT = pa.schema(list(TEXT_SCHEMA) + _EXTRA)


def out_schema(table: pa.Table) -> pa.Schema:
    """NER_OUT for labelled rows (a ``tokens`` column), TEXT_OUT for text rows."""
    return NER_OUT if "tokens" in table.column_names else TEXT_OUT


def widen(table: pa.Table) -> pa.Table:
    """The table with every output column (missing ones null), in schema order; other columns
    that an earlier step added are kept after them."""
    schema = out_schema(table)
    base = conform(table, schema)
    extra = [n for n in table.column_names if n not in schema.names and not n.startswith("_mt_")]
    fields = list(schema) + [table.schema.field(n) for n in extra]
    return pa.Table.from_arrays(base.columns + [table.column(n) for n in extra], schema=pa.schema(fields))


def row_text(row: dict) -> str:
    """The text of a labelled row (tokens joined by spaces) or of a text row."""
    if row.get("tokens") is not None:
        return " ".join(row["tokens"])
    return row.get("text") or ""
