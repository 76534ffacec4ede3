"""IOB2 tag validation and repair, shared by readers and every augmentation operation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from lrl.data.files import InputError

BioPolicy = Literal["error", "repair", "quarantine"]


class BioError(InputError):
    """An invalid tag sequence under the ``error`` policy; the message names file and line."""


def entity_type(tag: str) -> str | None:
    """``B-PER`` -> ``PER``; ``O`` -> None."""
    return None if tag == "O" else tag[2:]


def is_valid_tag(tag: str) -> bool:
    return tag == "O" or (len(tag) > 2 and tag[:2] in ("B-", "I-"))


def bio_problems(tags: Sequence[str], labels: Iterable[str] | None = None) -> list[str]:
    """Reasons why ``tags`` is not valid IOB2 (empty list when it is).

    ``labels`` is the set of allowed entity types (``PER``, ``LOC`` ...); None allows any.
    """
    allowed = set(labels) if labels is not None else None
    problems: list[str] = []
    prev = "O"
    for i, tag in enumerate(tags):
        if not is_valid_tag(tag):
            problems.append(f"tag {i} {tag!r} is not O, B-X or I-X")
            prev = "O"
            continue
        etype = entity_type(tag)
        if allowed is not None and etype is not None and etype not in allowed:
            problems.append(f"tag {i} {tag!r}: unknown label {etype!r}")
        if tag.startswith("I-") and entity_type(prev) != etype:
            problems.append(f"tag {i} {tag!r} follows {prev!r} (I- without B-)")
        prev = tag
    return problems


def repair_bio(tags: Sequence[str]) -> list[str]:
    """Turn every I-X that does not continue an X span into B-X (the usual IOB1->IOB2 repair)."""
    out: list[str] = []
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and entity_type(prev) != entity_type(tag):
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Entity spans ``(start, end_exclusive, type)`` of a valid IOB2 sequence."""
    out: list[tuple[int, int, str]] = []
    start, etype = -1, None
    for i, tag in enumerate(list(tags) + ["O"]):
        if etype is not None and not (tag.startswith("I-") and tag[2:] == etype):
            out.append((start, i, etype))
            etype = None
        if tag.startswith("B-") or (tag.startswith("I-") and etype is None):
            start, etype = i, tag[2:]
    return out


@dataclass(frozen=True)
class BioCheck:
    """Outcome of checking one sentence under a policy: fixed tags, or a reason to quarantine."""

    tags: list[str] | None
    reject: str | None


def check_tags(tags: Sequence[str], policy: BioPolicy, labels: Iterable[str] | None, where: str) -> BioCheck:
    """Apply ``policy`` to one sentence's tags; ``where`` (file:line) goes into errors.

    ``repair`` fixes I- without B-; a malformed tag or an unknown label cannot be repaired without
    inventing a label, so under ``repair`` such a sentence is quarantined with its reason.
    """
    problems = bio_problems(tags, labels)
    if not problems:
        return BioCheck(list(tags), None)
    if policy == "error":
        raise BioError(f"{where}: {_reason(problems[0])}")
    if policy == "repair":
        fixed = repair_bio(tags)
        rest = bio_problems(fixed, labels)
        if not rest:
            return BioCheck(fixed, None)
        return BioCheck(None, _reason(rest[0]))
    return BioCheck(None, _reason(problems[0]))


def _reason(problem: str) -> str:
    """``<kind>: <detail>``; the kind (before the first colon) is what manifests count by."""
    kind = "unknown label" if "unknown label" in problem else "invalid BIO"
    return f"{kind}: {problem}"


def reason_kind(reason: str) -> str:
    """The countable kind of a reject reason: the text before its first colon."""
    return reason.split(":", 1)[0].strip()
