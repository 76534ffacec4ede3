"""IOB2 tag validation and repair, shared by readers and every augmentation operation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from lrl.data.files import InputError

BioPolicy = Literal["error", "repair", "quarantine"]


@dataclass(frozen=True)
class TagProblem:
    """One tag (or token) at fault: its index in the sentence, what is wrong (``tag 3 'I-PER'
    follows 'O' (I- without B-)``) and the kind that reject counts go by (``invalid BIO``,
    ``unknown label``; the collector's ``empty token``, ``null value``, ``empty tag``, ``IOB2 tag``).

    Structured so that a caller takes the index and kind as data: read back out of the message,
    they broke silently whenever the message's wording changed."""

    index: int
    message: str
    kind: str = "invalid BIO"

    @property
    def reason(self) -> str:
        """``<kind>: <message>``, the reject reason; the kind (before the first colon) is what
        manifests count by (``reason_kind``)."""
        return f"{self.kind}: {self.message}"

    def __str__(self) -> str:
        return self.message


class BioError(InputError):
    """An invalid tag sequence under the ``error`` policy; the message names file and line, and
    ``problem`` is the tag at fault (None when the error names no tag)."""

    def __init__(self, message: str, problem: TagProblem | None = None) -> None:
        super().__init__(message)
        self.problem = problem


def entity_type(tag: str) -> str | None:
    """``B-PER`` -> ``PER``; ``O`` -> None."""
    return None if tag == "O" else tag[2:]


def is_valid_tag(tag: str) -> bool:
    return tag == "O" or (len(tag) > 2 and tag[:2] in ("B-", "I-"))


def bio_problems(tags: Sequence[str], labels: Iterable[str] | None = None) -> list[TagProblem]:
    """The tags at fault, in order, when ``tags`` is not valid IOB2 (empty list when it is).

    ``labels`` is the set of allowed entity types (``PER``, ``LOC`` ...); None allows any.
    """
    allowed = set(labels) if labels is not None else None
    problems: list[TagProblem] = []
    prev = "O"
    for i, tag in enumerate(tags):
        if not is_valid_tag(tag):
            problems.append(TagProblem(i, f"tag {i} {tag!r} is not O, B-X or I-X"))
            prev = "O"
            continue
        etype = entity_type(tag)
        if allowed is not None and etype is not None and etype not in allowed:
            problems.append(TagProblem(i, f"tag {i} {tag!r}: unknown label {etype!r}", "unknown label"))
        if tag.startswith("I-") and entity_type(prev) != etype:
            problems.append(TagProblem(i, f"tag {i} {tag!r} follows {prev!r} (I- without B-)"))
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
    """Outcome of checking one sentence under a policy: fixed tags, or a reason to quarantine and
    the tag at fault (``problem``)."""

    tags: list[str] | None
    reject: str | None
    problem: TagProblem | None = None


def check_tags(tags: Sequence[str], policy: BioPolicy, labels: Iterable[str] | None, where: str) -> BioCheck:
    """Apply ``policy`` to one sentence's tags; ``where`` (file:line) goes into errors.

    ``repair`` fixes I- without B-; a malformed tag or an unknown label cannot be repaired without
    inventing a label, so under ``repair`` such a sentence is quarantined with its reason.
    """
    problems = bio_problems(tags, labels)
    if not problems:
        return BioCheck(list(tags), None)
    if policy == "error":
        raise BioError(f"{where}: {problems[0].reason}", problems[0])
    if policy == "repair":
        fixed = repair_bio(tags)
        rest = bio_problems(fixed, labels)
        if not rest:
            return BioCheck(fixed, None)
        return BioCheck(None, rest[0].reason, rest[0])
    return BioCheck(None, problems[0].reason, problems[0])


def reason_kind(reason: str) -> str:
    """The countable kind of a reject reason: the text before its first colon."""
    return reason.split(":", 1)[0].strip()
