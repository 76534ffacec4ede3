"""The base of every augmentation operation: per-row seeding, ids and the batch loop.

An operation subclass only implements ``edit(tokens, tags, lang, rng)``; this base turns it into a
callable over Ray Data batches (``batch_format="pyarrow"``: a ``pyarrow.Table`` with the
``NER_SCHEMA`` columns, extra columns allowed) that returns the GENERATED rows only. Each
generated row is a pure function of (parent row, op params, row seed, resources), so ``make``
reproduces it exactly: that is what ``replay`` calls.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

import pyarrow as pa

from lrl.data.schema import REJECT
from lrl.generate.augment.resources import AugmentResources
from lrl.generate.augment.seeds import child_id, mix, stable_hash

Edit = tuple[list[str], list[str]] | None

# Resources shipped as an ObjectRef are fetched once per worker process, not once per batch.
_RESOLVED: dict[str, AugmentResources] = {}


def resolve_resources(res: Any) -> AugmentResources:
    """An ``AugmentResources`` from itself or from a Ray ObjectRef to one (cached per process)."""
    if isinstance(res, AugmentResources):
        return res
    key = res.hex()
    if key not in _RESOLVED:
        import ray

        _RESOLVED[key] = ray.get(res)
    return _RESOLVED[key]


class AugmentOp:
    """One augmentation operation over batches. Cheap to construct; resources resolved lazily."""

    name: ClassVar[str] = ""

    def __init__(self, params: Any, resources: Any, job_seed: int = 0, copies: int = 1):
        self.params = params
        self.job_seed = job_seed
        self.copies = copies
        self._resources = resources
        self._rng = random.Random()

    @property
    def res(self) -> AugmentResources:
        if not isinstance(self._resources, AugmentResources):
            self._resources = resolve_resources(self._resources)
        return self._resources

    def edit(self, tokens: list[str], tags: list[str], lang: str, rng: random.Random) -> Edit:
        """New (tokens, tags), or None when the op cannot apply to this sentence.

        ``tokens`` and ``tags`` are fresh copies the op may change in place."""
        raise NotImplementedError

    def make(self, row: dict[str, Any], seed: int, copy: int) -> dict[str, Any] | None:
        """The generated row for ``row`` under ``seed`` (None: not applicable or unchanged)."""
        tokens, tags = row["tokens"], row["tags"]
        self._rng.seed(seed)  # reseeding one generator costs less than making one per row
        out = self.edit(list(tokens), list(tags), row["lang"], self._rng)
        if out is None or (out[0] == list(tokens) and out[1] == list(tags)):
            return None
        new = dict(row)
        new.update(id=child_id(row["id"], self.name, copy), tokens=out[0], tags=out[1], op=self.name,
                   parent_id=row["id"], seed=seed)
        if REJECT in new:
            new[REJECT] = None
        return new

    def rows(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """Generated rows for one parent row (``copies`` attempts, deterministic seeds; a copy equal
        to an earlier copy or to an input row is dropped)."""
        out = []
        seen: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
        digest = stable_hash(self.job_seed, self.name, row["id"])  # row_seed = mix(digest, copy)
        for copy in range(self.copies):
            made = self.make(row, mix(digest, copy), copy)
            if made is None:
                continue
            # A copy equal to an earlier copy of the same parent is a duplicate, not a new row:
            # short sentences have few variants (a two-token mention has one shuffle), and with
            # copies=3 on WikiANN slices 12-18% of swap/delete rows repeated a sibling. The kept
            # copies keep their index, so ``replay`` still regenerates each of them.
            key = (tuple(made["tokens"]), tuple(made["tags"]))
            if key in seen:
                continue
            seen.add(key)
            # Equal to an input row, a copy is a duplicate of training data, not an augmentation:
            # on WikiANN ug/wo train, 36%/43% of mention rows were (entity-only sentences whose
            # mention was swapped for another entity-only sentence's), 8%/25% of labelwise rows,
            # and 9% of ug's deletions.
            if not self.res.is_original(made["lang"], made["tokens"], made["tags"]):
                out.append(made)
        return out

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Generated rows for every kept (not rejected) row of ``batch``, in ``batch``'s schema."""
        return generated_table(batch, [self])


def generated_table(batch: pa.Table, ops: list[AugmentOp]) -> pa.Table:
    """Rows that ``ops`` generate from ``batch`` (one pass over the rows, ops in order)."""
    cols = batch.to_pydict()
    names = batch.column_names
    rejected = cols.get(REJECT)
    out: dict[str, list] = {n: [] for n in names}
    for i in range(batch.num_rows):
        if rejected is not None and rejected[i] is not None:
            continue  # a rejected row stays rejected; its variants would be too
        row = {n: cols[n][i] for n in names}
        for op in ops:
            for made in op.rows(row):
                for n in names:
                    out[n].append(made[n])
    return pa.Table.from_pydict(out, schema=batch.schema)
