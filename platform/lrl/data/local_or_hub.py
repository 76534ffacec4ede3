"""Settings that take a local folder or a Hugging Face hub id (``tokenizer.base``,
``model.checkpoint``, ``translate.*.model``, ``data.ner`` sources of ``format: hf``): which of the
two a value that names no local folder is meant as; and settings that take a local folder only
(``finetune.model``, ``tune.model_path``, ``evaluate.model``, ``pretrain.model_path``/``tokenizer_path``).

transformers takes anything that is not a folder for a hub id: a misspelt ``models/x`` then
failed with hub wording ("Repo id must use alphanumeric chars", or 57 s of retries and "couldn't
connect to 'https://huggingface.co'" on a machine without network), never saying that no such
folder exists. A value no hub id can be (``looks_like_path``) is an error naming the folder instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

#: A hub id: ``name`` or ``org/name`` of word characters, ``-`` and ``.`` (no leading or trailing
#: ``.``/``-``, no ``--`` or ``..``), as ``huggingface_hub.utils.validate_repo_id`` has it.
_HUB_ID = re.compile(r"(\w([\w.-]*\w)?/)?\w([\w.-]*\w)?")


def looks_like_path(value: str, roots: Iterable[str | None] = ()) -> bool:
    """Whether ``value`` can only be a local path, not a hub id: absolute, ``./``, ``../``, ``~``,
    more than one ``/``, characters no hub id has, or ``a/b`` whose first part ``a`` is a local
    folder (under one of ``roots``, or the working folder). A bare ``a/b`` with no local ``a`` is
    taken for a hub id (``org/name``), as is a name without ``/``."""
    path = os.path.expanduser(value)
    if path != value or os.path.isabs(path) or path.startswith(".") or path.count("/") > 1:
        return True
    if not _HUB_ID.fullmatch(path) or "--" in path or ".." in path:
        return True
    if "/" not in path:
        return False
    first = path.split("/", 1)[0]
    return any(os.path.isdir(os.path.join(root, first) if root else first) for root in (*roots, None))


def missing_folder(setting: str, value: str | None) -> str | None:
    """The one-line error for ``setting=value`` read from the working folder, when ``value``
    looks like a local path (``looks_like_path``) and is no folder: the path as resolved, and
    that it was not found. None for a folder, a hub id, an object-store URI or no value."""
    if not value or "://" in value or not looks_like_path(value):
        return None
    return _no_folder(setting, value)


def missing_local_folder(setting: str, value: str | None) -> str | None:
    """``missing_folder`` for a setting that takes a local folder only (no hub download): any
    value that is no folder, with a word when it reads like a hub id. Read as written, as its
    loaders read it (``~`` is not expanded). None for a folder, an object-store URI or no value
    (a caller leaves out its own other forms, ``preset:<name>``)."""
    if not value or "://" in value:
        return None
    more = "" if looks_like_path(value) else f"; {setting} takes a local folder: hub ids are not downloaded"
    if value.startswith("~"):
        more = "; ~ is not expanded here: write the folder's full path"
    return _no_folder(setting, value, more, expand=False)


def _no_folder(setting: str, value: str, more: str = "", expand: bool = True) -> str | None:
    path = os.path.expanduser(value) if expand else value
    if os.path.isdir(path):
        return None
    what = "is a file, not a folder" if os.path.exists(path) else "not found"
    where = "" if os.path.isabs(path) else f"; a relative {setting} is read from the working folder {os.getcwd()}"
    return f"{setting}={value}: no such folder ({os.path.abspath(path)} {what}{where}{more})"


def hub_id(value: str, roots: Iterable[str | None] = ()) -> bool:
    """Whether a loader of a local folder or a hub id reads ``value`` as a hub id: no URI, no
    folder (in the working folder, where transformers and ``datasets`` look), and a value a hub
    id can be (``looks_like_path`` with ``roots``; such a value that is no folder is an error,
    ``missing_folder``). Model cards name a value as a hub id by this rule."""
    return "://" not in value and not os.path.isdir(os.path.expanduser(value)) and not looks_like_path(value, roots)


def no_local_folder(setting: str, value: str) -> str:
    """What a hub error for ``value`` (taken for a hub id: ``looks_like_path`` is False) adds:
    that no local folder of that name exists either, and where it was looked for."""
    where = "" if os.path.isabs(os.path.expanduser(value)) else \
        f" (a relative {setting} is read from the working folder {os.getcwd()})"
    return f"no local folder {os.path.abspath(os.path.expanduser(value))}{where}"


__all__ = ["hub_id", "looks_like_path", "missing_folder", "missing_local_folder", "no_local_folder"]
