"""Helpers shared by the quality filters: row text, scope, and setting reject reasons.

A filter never drops a row: it writes a reason into the ``reject`` column (the first reason a row
gets is kept), and the generate runner moves such rows to the rejects dataset and counts them.
"""

from __future__ import annotations

import pyarrow as pa

from lrl.data.schema import REJECT
from lrl.generate.translate.columns import widen


def texts(table: pa.Table) -> list[str]:
    """The text of every row: tokens joined by spaces (labelled rows) or the ``text`` column."""
    if "tokens" in table.column_names:
        return [" ".join(t or []) for t in table.column("tokens").to_pylist()]
    return [t or "" for t in table.column("text").to_pylist()]


#: Ops whose rows are input rows as read: ``oversample`` only copies ``orig`` rows word for word.
_NOT_GENERATED = (None, "orig", "oversample")


def in_scope(table: pa.Table, scope: str) -> list[bool]:
    """Which rows a filter checks: all rows, or only generated ones (op other than orig/null and
    oversampling's verbatim copies of them), never rows that are already rejected."""
    ops = table.column("op").to_pylist() if "op" in table.column_names else [None] * table.num_rows
    old = table.column(REJECT).to_pylist() if REJECT in table.column_names else [None] * table.num_rows
    return [r is None and (scope == "all" or op not in _NOT_GENERATED) for op, r in zip(ops, old)]


def set_rejects(table: pa.Table, reasons: list[str | None]) -> pa.Table:
    """The table (with every output column) where rows get ``reasons`` unless already rejected."""
    table = widen(table)
    old = table.column(REJECT).to_pylist()
    new = [o if o is not None else r for o, r in zip(old, reasons)]
    return table.set_column(table.column_names.index(REJECT), REJECT, pa.array(new, pa.string()))


class RowFilter:
    """A filter that judges each row on its own: subclasses give ``reasons(table)`` (one reason or
    None per row) and inherit the batch call and the Ray Data step."""

    name = "filter"

    def reasons(self, table: pa.Table) -> list[str | None]:
        raise NotImplementedError

    def __call__(self, table: pa.Table) -> pa.Table:
        return set_rejects(table, self.reasons(table))

    def apply(self, ds):
        return ds.map_batches(self, batch_format="pyarrow")


def priority(op: str | None, rid: str) -> tuple[int, str]:
    """Which of several duplicates is kept: original rows before generated ones, then by id."""
    return (0 if op in (None, "orig") else 1, rid)
