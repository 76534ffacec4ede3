"""Tags written as integer ids (JSONL ``"tags": [3, 0]``, a Hugging Face ClassLabel column)
turned into names, or a reject reason that says why not.

An id is a name only through a list of names: a ClassLabel's, or the source's ``tag_names``. Read
as text, ``3`` became the tag ``3``: under ``scheme: tokens`` the one-token span ``B-3``, so a POS
model was trained on the labels ``B-0`` ... ``B-16`` without a word (under ``iob2`` every such row
was quarantined as "invalid BIO", which did not say what was wrong either).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pyarrow as pa

from lrl.data.files import InputError
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


def column_types(path: str, table: pa.Table, tag_col: str, tag_names: list[str] | None = None,
                 features: list[str] | None = None) -> list[str] | None:
    """Check that ``tokens`` and the tag column hold a list of strings per sentence; returns the
    tag names when the tags are ClassLabel ids: ``features`` (a Hugging Face dataset's ClassLabel
    names), else the ClassLabel names the file records (Parquet metadata), else the source's
    ``tag_names``. A string column was read character by character ("Kano" became the tokens K,
    a, n, o, kept when the tags matched) and integer tags crashed the BIO check with a TypeError.

    ClassLabel names that differ from ``tag_names`` are an error. For a dataset the names are its
    features' only: it was also compared with the Arrow table's metadata (a copy ``datasets``
    makes of the features), under the message "differ from the source's tag_names" with no
    tag_names given."""
    for name in ("tokens", tag_col):
        typ = table.schema.field(name).type
        if not (pa.types.is_list(typ) or pa.types.is_large_list(typ)):
            raise InputError(f"{path}: column {name!r} is {typ}, not a list (one value per token) per sentence")
        inner = typ.value_type
        if pa.types.is_string(inner) or pa.types.is_large_string(inner) or pa.types.is_null(inner):
            continue  # null: only empty lists or nulls, which the collector rejects row by row
        if name == tag_col and pa.types.is_integer(inner):
            whose, names = ("dataset's", features) if features is not None else \
                ("file's", class_label_names(table, tag_col))
            if names is not None and tag_names is not None and names != tag_names:
                raise InputError(f"{path}: the {whose} ClassLabel names {names} differ from the source's "
                                 f"tag_names {tag_names}")
            if names is not None or tag_names is not None:
                return names or tag_names
            raise InputError(f"{path}: column {name!r} holds integer tag ids but the file records no ClassLabel "
                             "names (Hugging Face 'huggingface' metadata); write the tag names instead, or "
                             "give the source tag_names (the names in id order)")
        raise InputError(f"{path}: column {name!r} is {typ}, not a list of strings")
    return None


def class_label_names(table: pa.Table, column: str) -> list[str] | None:
    """The ClassLabel names ``datasets`` stores for ``column`` in the Parquet schema metadata."""
    meta = (table.schema.metadata or {}).get(b"huggingface")
    try:
        names = json.loads(meta)["info"]["features"][column]["feature"]["names"]
    except (TypeError, KeyError, ValueError):
        return None
    return [str(n) for n in names] if isinstance(names, list) else None


__all__ = ["KIND", "named_tags", "check_names", "column_types", "class_label_names"]
