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

#: What ``AugmentOp.rows`` counts per (op, language): the attempts (``copies`` per kept parent
#: row), the rows generated, and each attempt that generated none, by reason: the op does not
#: apply to the sentence (``edit`` returned None: no O token to swap...), the edit changed
#: nothing, the copy repeats an earlier copy of the same parent, or it equals an input row.
#: attempts = generated + the four reasons. Generated rows then meet the filters, which may
#: reject some (counted as rejects, with the op).
TALLY = ("attempts", "generated", "not_applicable", "unchanged", "repeats_copy", "equals_input")
ATTEMPTS, GENERATED, NOT_APPLICABLE, UNCHANGED, REPEATS_COPY, EQUALS_INPUT = range(len(TALLY))
_NO_LANG = object()  # equal to no language, not even a null one


def new_tally() -> list[int]:
    """A zero count per ``TALLY`` entry."""
    return [0] * len(TALLY)

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
        made = self._attempt(row, seed, copy)
        return None if isinstance(made, int) else made

    def _attempt(self, row: dict[str, Any], seed: int, copy: int) -> dict[str, Any] | int:
        """``make``, saying why nothing was made: the ``TALLY`` index of the reason."""
        tokens, tags = row["tokens"], row["tags"]
        self._rng.seed(seed)  # reseeding one generator costs less than making one per row
        out = self.edit(list(tokens), list(tags), row["lang"], self._rng)
        if out is None:
            return NOT_APPLICABLE
        if out[0] == list(tokens) and out[1] == list(tags):
            return UNCHANGED
        new = dict(row)
        new.update(id=child_id(row["id"], self.name, copy), tokens=out[0], tags=out[1], op=self.name,
                   parent_id=row["id"], seed=seed)
        if REJECT in new:
            new[REJECT] = None
        return new

    def rows(self, row: dict[str, Any], tally: list[int] | None = None) -> list[dict[str, Any]]:
        """Generated rows for one parent row (``copies`` attempts, deterministic seeds; a copy equal
        to an earlier copy or to an input row is dropped).

        ``tally`` (a ``new_tally()`` list) is counted into: the attempts, the rows made and every
        attempt that made none by its reason (``TALLY``), so that nothing is dropped uncounted."""
        t = tally if tally is not None else new_tally()
        t[ATTEMPTS] += self.copies
        out = []
        seen: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
        digest = stable_hash(self.job_seed, self.name, row["id"])  # row_seed = mix(digest, copy)
        for copy in range(self.copies):
            made = self._attempt(row, mix(digest, copy), copy)
            if isinstance(made, int):
                t[made] += 1
                continue
            # A copy equal to an earlier copy of the same parent is a duplicate, not a new row:
            # short sentences have few variants (a two-token mention has one shuffle), and with
            # copies=3 on WikiANN slices 12-18% of swap/delete rows repeated a sibling. The kept
            # copies keep their index, so ``replay`` still regenerates each of them.
            key = (tuple(made["tokens"]), tuple(made["tags"]))
            if key in seen:
                t[REPEATS_COPY] += 1
                continue
            seen.add(key)
            # Equal to an input row, a copy is a duplicate of training data, not an augmentation:
            # on WikiANN ug/wo train, 36%/43% of mention rows were (entity-only sentences whose
            # mention was swapped for another entity-only sentence's), 8%/25% of labelwise rows,
            # and 9% of ug's deletions.
            if self.res.is_original(made["lang"], made["tokens"], made["tags"]):
                t[EQUALS_INPUT] += 1
            else:
                out.append(made)
        t[GENERATED] += len(out)
        return out

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Generated rows for every kept (not rejected) row of ``batch``, in ``batch``'s schema."""
        return generated_table(batch, [self])


def generated_table(batch: pa.Table, ops: list[AugmentOp],
                    tallies: dict[tuple[str, str], list[int]] | None = None) -> pa.Table:
    """Rows that ``ops`` generate from ``batch`` (one pass over the rows, ops in order).

    ``tallies`` is counted into per (op, lang) (``AugmentOp.rows``); the lists are looked up
    only when the language changes from one row to the next (rows come grouped by language), so
    a row costs a few integer increments more, not a dictionary lookup per op."""
    cols = batch.to_pydict()
    names = batch.column_names
    rejected = cols.get(REJECT)
    langs = cols["lang"]
    if tallies is None:
        tallies = {}
    lang: object = _NO_LANG
    per_op: list[tuple[AugmentOp, list[int]]] = []
    out: dict[str, list] = {n: [] for n in names}
    for i in range(batch.num_rows):
        if rejected is not None and rejected[i] is not None:
            continue  # a rejected row stays rejected; its variants would be too
        if langs[i] != lang:
            lang = langs[i]
            per_op = [(op, tallies.setdefault((op.name, lang), new_tally())) for op in ops]
        row = {n: cols[n][i] for n in names}
        for op, tally in per_op:
            for made in op.rows(row, tally):
                for n in names:
                    out[n].append(made[n])
    return pa.Table.from_pydict(out, schema=batch.schema)
