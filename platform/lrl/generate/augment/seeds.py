"""Stable per-row seeds and ids for generated rows.

Python's ``hash()`` is salted per process, so Ray workers would disagree; a keyed BLAKE2b digest of
the parts gives the same number on every machine and every run.
"""

from __future__ import annotations

import hashlib

_MASK = (1 << 63) - 1


def stable_hash(*parts: object) -> int:
    """A 63-bit non-negative integer from the parts (their ``str`` joined by a separator)."""
    blob = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big") & _MASK


def row_seed(job_seed: int, op: str, parent_id: str, copy: int) -> int:
    """Seed of one generated row: a function of (job seed, op, parent id, copy index) only."""
    return stable_hash(job_seed, op, parent_id, copy)


def unit(*parts: object) -> float:
    """A number in [0, 1) from the parts, uniform over distinct inputs."""
    return stable_hash(*parts) / float(1 << 63)


def child_id(parent_id: str, op: str, copy: int) -> str:
    """Id of a generated row: unique per (parent, op, copy) and readable."""
    return f"{parent_id}|{op}|{copy}"
