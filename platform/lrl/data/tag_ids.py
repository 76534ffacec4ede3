"""Tags written as integer ids (JSONL ``"tags": [3, 0]``, a Hugging Face ClassLabel column)
turned into names, or a reject reason that says why not.

An id is a name only through a list of names: a ClassLabel's, or the source's ``tag_names``. Read
as text, ``3`` became the tag ``3``: under ``scheme: tokens`` the one-token span ``B-3``, so a POS
model was trained on the labels ``B-0`` ... ``B-16`` without a word (under ``iob2`` every such row
was quarantined as "invalid BIO", which did not say what was wrong either).
"""

from __future__ import annotations

from collections.abc import Sequence

from lrl.data.token_tags import TagScheme

#: The reject kind (text before the first colon, as manifests count reasons).
KIND = "tag id"


def named_tags(tags: Sequence[object], names: Sequence[str] | None,
               scheme: TagScheme = "iob2") -> tuple[list[str | None] | None, str | None]:
    """``tags`` with every integer id replaced by its name in ``names``; (None, reason) for a
    sentence with an id that cannot be named. Strings and nulls pass unchanged (the collector
    checks them).

    With ``names``, an id outside them is a reject of its own under either scheme (ClassLabel -1
    is "no label"): kept as its text, the IOB2 check rejected id 9 of 3 names as "invalid BIO: tag
    1 '9' is not O, B-X or I-X", which did not say the id was out of range."""
    out: list[str | None] = []
    for i, tag in enumerate(tags):
        if tag is None or isinstance(tag, str):
            out.append(tag)
        elif isinstance(tag, int) and not isinstance(tag, bool) and names is not None:
            if 0 <= tag < len(names):
                out.append(names[tag])
            else:
                none = " (-1: a ClassLabel's 'no label')" if tag == -1 else ""
                return None, (f"{KIND}: tag {i} is {tag}, which is no index of the {len(names)} tag names "
                              f"(ids 0-{len(names) - 1}){none}")
        elif isinstance(tag, float) and names is not None:  # tag_names given: ids must be whole numbers
            return None, f"{KIND}: tag {i} is the number {tag}, not an integer id of the {len(names)} tag names"
        elif isinstance(tag, (int, float)) and not isinstance(tag, bool):
            return None, (f"{KIND}: tag {i} is the number {tag}, not a tag name ('NOUN', 'B-PER'); to read "
                          "integer tag ids, give the source tag_names (the names in id order, as a Hugging "
                          "Face ClassLabel's)")
        else:
            out.append(str(tag))
    return out, None


def check_names(names: list[str] | None) -> list[str] | None:
    """``tag_names`` as a config gives them: non-empty, unique, no blank name."""
    if names is None:
        return None
    if not names:
        raise ValueError("tag_names is empty: list the tag names in id order (id 0 first)")
    blank = [i for i, n in enumerate(names) if not n.strip()]
    if blank:
        raise ValueError(f"tag_names: name {blank[0]} is blank")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"tag_names: {repeated} listed more than once (each id needs its own name)")
    return names


__all__ = ["KIND", "named_tags", "check_names"]
