"""Stable per-row seeds and ids for generated rows.

Python's ``hash()`` is salted per process, so Ray workers would disagree; a keyed BLAKE2b digest of
the parts gives the same number on every machine and every run.
"""

from __future__ import annotations

import hashlib

import numpy as np

_MASK = (1 << 63) - 1
_M64 = (1 << 64) - 1
_GOLDEN, _C1, _C2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def stable_hash(*parts: object) -> int:
    """A 63-bit non-negative integer from the parts (their ``str`` joined by a separator)."""
    blob = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big") & _MASK


def row_key(tokens: list[str], tags: list[str]) -> int:
    """A stable 63-bit key of a labelled row's content (tokens and tags, not its id)."""
    blob = ("\x1f".join(tokens) + "\x1e" + "\x1f".join(tags)).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big") & _MASK


def mix(base: int, copy: int) -> int:
    """SplitMix64 finaliser of ``base`` stepped ``copy + 1`` times: distinct seeds per copy from
    one digest per parent (a digest per copy made oversampling 3x slower)."""
    z = (base + (copy + 1) * _GOLDEN) & _M64
    z = ((z ^ (z >> 30)) * _C1) & _M64
    z = ((z ^ (z >> 27)) * _C2) & _M64
    return (z ^ (z >> 31)) & _MASK


def mix_array(base: np.ndarray, copy: np.ndarray) -> np.ndarray:
    """``mix`` over arrays (uint64 arithmetic wraps modulo 2**64, as in ``mix``)."""
    z = base.astype(np.uint64) + (copy.astype(np.uint64) + np.uint64(1)) * np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_C1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_C2)
    return ((z ^ (z >> np.uint64(31))) & np.uint64(_MASK)).astype(np.int64)


def row_seed(job_seed: int, op: str, parent_id: str, copy: int) -> int:
    """Seed of one generated row: a function of (job seed, op, parent id, copy index) only."""
    return mix(stable_hash(job_seed, op, parent_id), copy)


def unit(*parts: object) -> float:
    """A number in [0, 1) from the parts, uniform over distinct inputs."""
    return stable_hash(*parts) / float(1 << 63)


def child_id(parent_id: str, op: str, copy: int) -> str:
    """Id of a generated row: unique per (parent, op, copy) and readable."""
    return f"{parent_id}|{op}|{copy}"
