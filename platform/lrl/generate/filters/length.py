"""Length-ratio filter: a translation far shorter or longer than its source is likely broken
(truncated, hallucinated, repeated). Needs the source text, which translation steps keep in the
``src_text`` column; rows without one (not translated) pass."""

from __future__ import annotations

import unicodedata

import pyarrow as pa

from lrl.generate.filters.common import RowFilter, in_scope, texts
from lrl.generate.translate.columns import SRC_TEXT


class LengthRatioFilter(RowFilter):
    """Reject rows whose length in characters / their source's is outside [min_ratio, max_ratio].
    Characters are counted in NFC: decomposed text (279 of the 1,012 FLORES Yoruba lines) counts
    every tone mark apart and is 22% longer."""

    name = "length_ratio"

    def __init__(self, min_ratio: float, max_ratio: float, scope: str = "generated") -> None:
        self.min_ratio, self.max_ratio, self.scope = min_ratio, max_ratio, scope

    def reasons(self, table: pa.Table) -> list[str | None]:
        if SRC_TEXT not in table.column_names:
            return [None] * table.num_rows
        out: list[str | None] = []
        for text, src, check in zip(texts(table), table.column(SRC_TEXT).to_pylist(), in_scope(table, self.scope)):
            if not check or src is None:
                out.append(None)
                continue
            n, m = _length(text), _length(src)
            ratio = n / max(1, m)
            # The lengths and 3 digits: "0.33 < 0.33" (21/64 rounded) read as a reject in error.
            if ratio < self.min_ratio:
                out.append(f"length_ratio: {n}/{m} characters = {ratio:.3f} < {self.min_ratio}")
            elif ratio > self.max_ratio:
                out.append(f"length_ratio: {n}/{m} characters = {ratio:.3f} > {self.max_ratio}")
            else:
                out.append(None)
        return out


def _length(text: str) -> int:
    return len(unicodedata.normalize("NFC", text.strip()))
