"""Shared by the translation tests: a job with a translate section, English rows with entities,
and an in-process stand-in for a Ray Dataset."""

from __future__ import annotations

TOKENS = "John Smith visited New York City and Paris France .".split()
TAGS = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-LOC", "O", "B-ORG", "B-LOC", "O"]


def job(**translate):
    from lrl.job import JobConfig

    return JobConfig.model_validate({"seed": 7, "translate": {"enabled": True, **translate}})


def en_rows(n: int) -> list[dict]:
    return [{"id": f"en:{i}", "lang": "en", "tokens": TOKENS + [f"w{i}"], "tags": TAGS + ["O"],
             "source": "x.conll#train", "op": "orig"} for i in range(n)]


class Local:
    """A stand-in for a Ray Dataset that runs ``map_batches`` functions at once, in process."""

    def __init__(self, table):
        self.table = table

    def map_batches(self, fn, fn_kwargs=None, **_):
        return Local(fn(self.table, **(fn_kwargs or {})))
