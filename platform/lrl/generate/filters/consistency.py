"""Projection-consistency filter: a translated labelled row must keep its parent's entities
(same number, same types), which translation steps keep in the ``src_ents`` column."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from lrl.generate.filters.common import RowFilter
from lrl.generate.translate.columns import SRC_ENTS
from lrl.generate.translate.markers import spans_from_tags


class ProjectionFilter(RowFilter):
    """Reject labelled rows whose entity types (as a multiset; order may change across languages)
    differ from their source's.

    A guard more than a filter: the translate steps already reject a row whose projection lost
    an entity, and give every entity they place its own type, so a translated row leaves them with
    its source's types. Rows a later step changed (augmentation keeps ``src_ents``) or a projection
    fault are what this still catches. It cannot see two mentions' types swapped (same multiset):
    square markers reject such rows themselves (``projection_ambiguous``)."""

    name = "projection"

    def reasons(self, table: pa.Table) -> list[str | None]:
        if SRC_ENTS not in table.column_names or "tags" not in table.column_names:
            return [None] * table.num_rows
        out: list[str | None] = []
        for tags, src in zip(table.column("tags").to_pylist(), table.column(SRC_ENTS).to_pylist()):
            if src is None:
                out.append(None)
                continue
            got = [t for _, _, t in spans_from_tags(tags or [])]
            if Counter(got) != Counter(src):
                out.append(f"projection_mismatch: {len(got)} entities {sorted(got)} vs source {len(src)} {sorted(src)}")
            else:
                out.append(None)
        return out
