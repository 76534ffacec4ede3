"""Exact and near-duplicate removal across the whole distributed dataset.

Duplicates sit in different blocks on different workers, so a per-batch pass cannot see them.
Both filters do one "key pass on the driver": the input is materialised once (so upstream work,
such as translation, is not repeated), workers compute a compact key per row (exact: a 12-byte
hash of language + normalised text; near: a MinHash signature, 64 x 8 bytes), only those keys
and ids travel to the driver, which decides the rejected ids (near: LSH bands give candidate
pairs, verified on the signatures and merged into clusters with union-find, a global step that
per-key groups cannot do), and a second pass over the materialised blocks marks them.
Driver memory is O(rows x key size): ~40 bytes a row for exact, ~550 for near, i.e. fine for
millions of sentences. A hash-partitioned ``groupby(key).map_groups`` was tried for exact dedup
(lazy, no driver memory) but took ~35 s for 1k rows here (Ray 2.60's hash shuffle starts
aggregator actors), against ~2 s for this pass; for billions of rows it is the way to go.

In both, the copy kept is an original row before a generated one, then the smallest id, so the
result does not depend on block order. Already rejected rows are neither kept nor re-marked, and
oversampling copies (op ``oversample``) are not compared: they are duplicates on purpose, and
removing them would undo the oversampling step. They follow their parent: the copies of a
rejected row are rejected with it. With ``scope="generated"`` (``filter.dedup_scope``) only
generated rows are rejected: the originals still decide what a generated row duplicates, but two
originals that repeat each other both stay (the labelled data is the user's to clean).

Near dedup never rejects a row for resembling its own family: the rows that descend from one
input row (its oversampling copies, its augmentations, their translations; found by following
``parent_id``). An augmented row is meant to be a near copy of its source: one word inserted,
swapped or replaced in a sentence of 15 leaves most shingles equal, so near dedup rejected
the augmentation it was asked for (on WikiANN ug, wo, yo and sw with every op, 550 of 793 near
duplicates were of the row's own source or a sibling). A family's exact repeats are still
exact duplicates, and a row near another input row's family is still rejected.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from lrl.data.blocks import materialize
from lrl.generate.filters.common import in_scope, priority, set_rejects, texts
from lrl.generate.translate.columns import widen

_COPY = "oversample"  # deliberate copies, never duplicates
_PRIME = (1 << 31) - 1  # Mersenne prime; a*x stays below 2^62, inside uint64


def normalise(text: str, case: bool = False) -> str:
    """NFC, whitespace collapsed (and case folded unless ``case``). Accents and tone marks stay:
    in Yoruba ``ọkọ`` (husband), ``ọkọ̀`` (vehicle) and ``ọ̀kọ̀`` (spear) are different words."""
    text = " ".join(unicodedata.normalize("NFC", text).split())
    return text if case else text.casefold()


def _blank(m: re.Match) -> str:
    """A space for punctuation and symbols; combining marks (categories Mn, Mc, Me) are kept."""
    return m.group() if unicodedata.category(m.group())[0] == "M" else " "


def words(text: str) -> list[str]:
    """The normalised words of ``text``, punctuation removed. ``\\w`` does not match combining
    marks, so a plain ``[^\\w\\s]`` split ``ọ̀kọ̀`` into ``ọ kọ``: tone marks vanished and the
    Devanagari ``हिन्दी`` became three letters, making different sentences look alike."""
    return re.sub(r"[^\w\s]", _blank, normalise(text)).split()


class ExactDedup:
    """Mark every row whose (language, normalised text) occurs earlier in priority order."""

    name = "dedup"

    def __init__(self, case: bool = False, scope: str = "all") -> None:
        self.case, self.scope = case, scope

    def keys(self, table: pa.Table) -> pa.Table:
        live = in_scope(table, "all")
        ops = table.column("op").to_pylist()
        rows = [{"id": rid, "prio": priority(op, rid)[0],
                 "key": hashlib.blake2b(f"{lang}\x00{normalise(t, self.case)}".encode(), digest_size=12).digest()}
                for rid, lang, t, op, ok in zip(table.column("id").to_pylist(), table.column("lang").to_pylist(),
                                                texts(table), ops, live) if ok and op != _COPY]
        return pa.Table.from_pylist(rows, schema=pa.schema([("id", pa.string()), ("prio", pa.int8()),
                                                            ("key", pa.binary(12))]))

    def duplicates(self, keys: pa.Table) -> dict[str, str]:
        """Rejected id -> id of the kept copy (``scope="generated"``: generated rows only)."""
        kept: dict[bytes, tuple[int, str]] = {}
        rows = list(zip(keys.column("prio").to_pylist(), keys.column("id").to_pylist(),
                        keys.column("key").to_pylist()))
        for prio, rid, key in rows:
            if key not in kept or (prio, rid) < kept[key]:
                kept[key] = (prio, rid)
        return {rid: kept[key][1] for prio, rid, key in rows
                if kept[key][1] != rid and judged(self.scope, prio)}

    def apply(self, ds):
        return _driver_pass(ds, self.keys, self.duplicates, "duplicate")


def minhash(text: str, shingle: int, num_perm: int, seed: int = 1) -> np.ndarray:
    """MinHash signature (``num_perm`` uint64) of the word ``shingle``-grams of ``text``."""
    ws = words(text) or [""]
    grams = {" ".join(ws[i : i + shingle]) for i in range(max(1, len(ws) - shingle + 1))}
    x = np.array([int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little")
                  for g in grams], dtype=np.uint64)
    rng = np.random.RandomState(seed)
    a = rng.randint(1, _PRIME, size=num_perm).astype(np.uint64)
    b = rng.randint(0, _PRIME, size=num_perm).astype(np.uint64)
    # (a*x + b) mod p with a, b, x < p = 2^31-1 is a universal hash family: a*x is far above p,
    # so the modulo mixes (a < 2^30 with p = 2^61-1 did not: the minimum was always the same few x).
    x = x % np.uint64(_PRIME)
    return ((np.outer(x, a) + b) % np.uint64(_PRIME)).min(axis=0)


class NearDedup:
    """Mark rows whose word-shingle Jaccard similarity (MinHash estimate) with a kept row of the
    same language is at least ``threshold``."""

    name = "near_dedup"

    def __init__(self, threshold: float = 0.8, shingle: int = 3, num_perm: int = 64, bands: int = 16,
                 scope: str = "all") -> None:
        self.threshold, self.shingle, self.num_perm, self.bands = threshold, shingle, num_perm, bands
        self.scope = scope

    def keys(self, table: pa.Table) -> pa.Table:
        """Per live row: id, parent, and (copies excepted: they are never compared) language,
        priority and MinHash signature. Copies come along for their ``parent`` link: a copy's
        augmentations name the copy as parent, and the family is found through it."""
        live = in_scope(table, "all")
        rows = []
        ops = table.column("op").to_pylist()
        parents = (table.column("parent_id").to_pylist() if "parent_id" in table.column_names
                   else [None] * table.num_rows)
        for i, (rid, lang, text) in enumerate(zip(table.column("id").to_pylist(),
                                                  table.column("lang").to_pylist(), texts(table))):
            if not live[i]:
                continue
            row = {"id": rid, "lang": lang, "prio": priority(ops[i], rid)[0], "parent": parents[i], "sig": None}
            if ops[i] != _COPY:
                row["sig"] = minhash(text, self.shingle, self.num_perm).astype(np.int64).tolist()
            rows.append(row)
        return pa.Table.from_pylist(rows, schema=pa.schema([("id", pa.string()), ("lang", pa.string()),
                                                            ("prio", pa.int8()), ("parent", pa.string()),
                                                            ("sig", pa.list_(pa.int64()))]))

    def clusters(self, keys: pa.Table) -> dict[str, str]:
        """Rejected id -> id of the row kept in its cluster (rows of the kept row's family stay)."""
        family = families(keys)
        keys = keys.filter(pa.compute.is_valid(keys.column("sig")))
        ids = keys.column("id").to_pylist()
        langs = keys.column("lang").to_pylist()
        prio = keys.column("prio").to_pylist()
        sigs = np.array(keys.column("sig").to_pylist(), dtype=np.int64).reshape(len(ids), self.num_perm)
        fam = [family[i] for i in ids]
        parent = list(range(len(ids)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        rows = self.num_perm // self.bands
        for band in range(self.bands):
            buckets: dict[tuple, list[int]] = defaultdict(list)
            part = sigs[:, band * rows : (band + 1) * rows]
            for i in range(len(ids)):
                buckets[(langs[i], part[i].tobytes())].append(i)
            for members in buckets.values():
                self._join_bucket(members, parent, find, fam, sigs)
        groups: dict[int, list[int]] = defaultdict(list)
        for i in range(len(ids)):
            groups[find(i)].append(i)
        out: dict[str, str] = {}
        for members in groups.values():
            if len(members) > 1:
                keep = min(members, key=lambda i: (prio[i], ids[i]))
                # A member of the kept row's own family joined the cluster through another family's
                # row: it is a variant of the kept row, which near dedup leaves alone.
                out.update({ids[i]: ids[keep] for i in members
                            if fam[i] != fam[keep] and judged(self.scope, prio[i])})
        return out

    def _join_bucket(self, members: list[int], parent: list[int], find, fam: list[str], sigs: np.ndarray) -> None:
        """Union the rows of one LSH bucket with the clusters they are near. Each row is checked
        against the representatives of every other cluster in the bucket that are of a family not
        its own (rows of one family are never paired: module docstring). Per cluster at most two
        representatives of different families are kept: checking against the first row of every
        family instead made a bucket of near-identical originals quadratic (2,000 rows 1.6 s,
        4,000 rows 6.4 s, against 0.02 s and 0.04 s)."""
        reps: dict[int, list[int]] = {}  # cluster root -> representatives (distinct families)
        for j in members:
            rj = find(j)
            # Every cluster the row is near, not only the first: it joins them all (rows of one
            # family left apart are brought together by another family's row near both).
            for a in list(reps):
                if a == rj or a not in reps:  # merged into another cluster during this loop
                    continue
                if any(fam[c] != fam[j] and float((sigs[c] == sigs[j]).mean()) >= self.threshold for c in reps[a]):
                    parent[rj] = a
                    have = {fam[x] for x in reps[a]}
                    reps[a] = (reps[a] + [c for c in reps.pop(rj, []) if fam[c] not in have])[:2]
                    rj = a
            mine = reps.setdefault(rj, [])
            if len(mine) < 2 and all(fam[c] != fam[j] for c in mine):
                mine.append(j)

    def apply(self, ds):
        return _driver_pass(ds, self.keys, self.clusters, "near_duplicate")


def families(keys: pa.Table) -> dict[str, str]:
    """Id -> id of its family's root: the topmost ancestor reached through the ``parent`` links of
    ``keys`` (a row whose parent is not among them, rejected or never there, ends its chain there)."""
    links = dict(zip(keys.column("id").to_pylist(), keys.column("parent").to_pylist()))
    out: dict[str, str] = {}
    for rid in links:
        chain, x = [], rid
        while x not in out and links.get(x) is not None and len(chain) <= len(links):  # bound: no cycles
            chain.append(x)
            x = links[x]  # type: ignore[assignment]
        root = out.get(x, x)
        for y in chain:
            out[y] = root
        out.setdefault(rid, root)
    return out


def judged(scope: str, prio: int) -> bool:
    """Whether a duplicate of ``priority`` class ``prio`` (0: an original row) may be rejected:
    always with scope ``all``; with ``generated``, only a generated row. Either way the kept copy
    is the best by priority, so a generated row that repeats an original is the one rejected."""
    return scope == "all" or prio != 0


def _driver_pass(ds, keys_fn, decide, kind: str):
    """Materialise ``ds`` once, bring only its keys to the driver, decide the rejected ids there
    and mark them in a second pass over the materialised blocks."""
    import ray

    ds = materialize(ds)  # computed once: the key pass and the marking pass both read it
    parts = [b for b in ds.map_batches(keys_fn, batch_format="pyarrow").iter_batches(batch_format="pyarrow")
             if b.num_rows]
    dups = decide(pa.concat_tables(parts)) if parts else {}
    ref = ray.put(dups)
    return ds.map_batches(_mark_ids, fn_kwargs={"ref": [ref], "kind": kind}, batch_format="pyarrow")


def _mark_ids(table: pa.Table, ref: list, kind: str) -> pa.Table:
    """Set ``<kind>: of <kept id>`` for the ids the driver found (the reference is wrapped in a
    list so Ray passes it as is; each batch fetches it from the object store)."""
    import ray

    dups: dict[str, str] = ray.get(ref[0])
    table = widen(table)
    live = in_scope(table, "all")
    ops, parents = table.column("op").to_pylist(), table.column("parent_id").to_pylist()
    reasons = []
    for r, ok, op, parent in zip(table.column("id").to_pylist(), live, ops, parents):
        # An oversampling copy is judged with its parent: the copies of a rejected duplicate are
        # word for word that duplicate. Kept, they undid the dedup (a sentence WikiANN am lists
        # twice still came 19 times, not 10) and their parent was not in the data: 432 such rows
        # with filter.ops=[dedup,near_dedup] on the multilingual recipe.
        kept = dups.get(r) if op != _COPY else dups.get(parent)
        reasons.append(f"{kind}: of {kept}" if ok and kept is not None else None)
    return set_rejects(table, reasons)
