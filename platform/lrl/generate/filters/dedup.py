"""Exact and near-duplicate removal across the whole distributed dataset.

Duplicates sit in different blocks on different workers, so a per-batch pass cannot see them.
Two strategies, chosen for what each needs:

* Exact: a hash key per row, then ``groupby(key).map_groups`` — Ray hash-partitions the rows by
  key (a shuffle), so every copy of a text lands in one group, wherever it came from. Lazy, no
  driver memory, scales with the cluster.
* Near (MinHash + LSH): similarity is not transitive through one key, so candidate pairs from all
  LSH bands are merged into clusters (union-find), a global step. The input is materialised once,
  then only the compact keys (id, priority, band hashes, signature: ~300 bytes a row) go to the
  driver, which computes the rejected ids; a second pass over the materialised blocks marks them.
  Driver memory is O(rows x key size), fine for millions of sentences.

In both, the copy kept is an original row before a generated one, then the smallest id, so the
result does not depend on block order. Already rejected rows are neither kept nor re-marked.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

import numpy as np
import pyarrow as pa

from lrl.data.schema import REJECT
from lrl.generate.filters.common import in_scope, priority, set_rejects, texts
from lrl.generate.translate.columns import widen

_KEY = "_dedup_key"
_PRIME = (1 << 61) - 1


def normalise(text: str, case: bool = False) -> str:
    """Whitespace collapsed (and case folded unless ``case``)."""
    text = " ".join(text.split())
    return text if case else text.casefold()


class ExactDedup:
    """Mark every row whose (language, normalised text) occurs earlier in priority order."""

    name = "dedup"

    def __init__(self, case: bool = False) -> None:
        self.case = case

    def add_key(self, table: pa.Table) -> pa.Table:
        keys = [hashlib.blake2b(f"{lang}\x00{normalise(t, self.case)}".encode(), digest_size=12).hexdigest()
                for lang, t in zip(table.column("lang").to_pylist(), texts(table))]
        return widen(table).append_column(_KEY, pa.array(keys, pa.string()))

    @staticmethod
    def mark_group(group: pa.Table) -> pa.Table:
        live = in_scope(group, "all")
        ops = group.column("op").to_pylist()
        ids = group.column("id").to_pylist()
        order = sorted((priority(ops[i], ids[i]), i) for i in range(group.num_rows) if live[i])
        reasons: list[str | None] = [None] * group.num_rows
        for _, i in order[1:]:
            reasons[i] = f"duplicate: of {ids[order[0][1]]}"
        return set_rejects(group, reasons).drop_columns([_KEY])

    def apply(self, ds):
        ds = ds.map_batches(self.add_key, batch_format="pyarrow")
        return ds.groupby(_KEY).map_groups(ExactDedup.mark_group, batch_format="pyarrow")


def minhash(text: str, shingle: int, num_perm: int, seed: int = 1) -> np.ndarray:
    """MinHash signature (``num_perm`` uint64) of the word ``shingle``-grams of ``text``."""
    words = normalise(re.sub(r"[^\w\s]", " ", text)).split() or [""]
    grams = {" ".join(words[i : i + shingle]) for i in range(max(1, len(words) - shingle + 1))}
    x = np.array([int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little")
                  for g in grams], dtype=np.uint64)
    rng = np.random.RandomState(seed)
    a = rng.randint(1, 1 << 30, size=num_perm).astype(np.uint64)
    b = rng.randint(0, 1 << 30, size=num_perm).astype(np.uint64)
    # x < 2^32 and a, b < 2^30, so a*x+b < 2^62 stays inside uint64.
    return ((np.outer(x, a) + b) % np.uint64(_PRIME)).min(axis=0)


class NearDedup:
    """Mark rows whose word-shingle Jaccard similarity (MinHash estimate) with a kept row of the
    same language is at least ``threshold``."""

    name = "near_dedup"

    def __init__(self, threshold: float = 0.8, shingle: int = 3, num_perm: int = 64, bands: int = 16) -> None:
        self.threshold, self.shingle, self.num_perm, self.bands = threshold, shingle, num_perm, bands

    def keys(self, table: pa.Table) -> pa.Table:
        live = in_scope(table, "all")
        rows = []
        ops = table.column("op").to_pylist()
        for i, (rid, lang, text) in enumerate(zip(table.column("id").to_pylist(),
                                                  table.column("lang").to_pylist(), texts(table))):
            if live[i]:
                sig = minhash(text, self.shingle, self.num_perm)
                rows.append({"id": rid, "lang": lang, "prio": priority(ops[i], rid)[0],
                             "sig": sig.astype(np.int64).tolist()})
        return pa.Table.from_pylist(rows, schema=pa.schema([("id", pa.string()), ("lang", pa.string()),
                                                            ("prio", pa.int8()), ("sig", pa.list_(pa.int64()))]))

    def clusters(self, keys: pa.Table) -> dict[str, str]:
        """Rejected id -> id of the row kept in its cluster."""
        ids = keys.column("id").to_pylist()
        langs = keys.column("lang").to_pylist()
        prio = keys.column("prio").to_pylist()
        sigs = np.array(keys.column("sig").to_pylist(), dtype=np.int64).reshape(len(ids), self.num_perm)
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
                for j in members[1:]:
                    a, b = find(members[0]), find(j)
                    if a != b and float((sigs[members[0]] == sigs[j]).mean()) >= self.threshold:
                        parent[b] = a
        groups: dict[int, list[int]] = defaultdict(list)
        for i in range(len(ids)):
            groups[find(i)].append(i)
        out: dict[str, str] = {}
        for members in groups.values():
            if len(members) > 1:
                keep = min(members, key=lambda i: (prio[i], ids[i]))
                out.update({ids[i]: ids[keep] for i in members if i != keep})
        return out

    def apply(self, ds):
        import ray

        ds = ds.materialize()  # computed once: the key pass and the marking pass both read it
        parts = list(ds.map_batches(self.keys, batch_format="pyarrow").iter_batches(batch_format="pyarrow"))
        keys = pa.concat_tables(parts) if parts else self.keys(pa.table({"id": [], "lang": [], "op": []}))
        dups = ray.put(self.clusters(keys))
        return ds.map_batches(_mark_ids, fn_kwargs={"ref": [dups]}, batch_format="pyarrow")


def _mark_ids(table: pa.Table, ref: list) -> pa.Table:
    """Set ``near_duplicate`` reasons for the ids the driver found (ref wrapped in a list so Ray
    passes the reference itself, fetched once per batch from the object store)."""
    import ray

    dups: dict[str, str] = ray.get(ref[0])
    table = widen(table)
    live = in_scope(table, "all")
    reasons = [f"near_duplicate: of {dups[r]}" if ok and r in dups else None
               for r, ok in zip(table.column("id").to_pylist(), live)]
    return set_rejects(table, reasons) if REJECT in table.column_names else table
