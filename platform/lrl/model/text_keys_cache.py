"""A cache of what the tokenizer stage's text holds (``lrl.model.command._text_keys``).

Naming the stage's folder read all of its text (``load_text``) on every run only to decide two
conditional hash keys: a full download for text on an object store, also where the folder was
finished and nothing was to be done (about 0.9 s locally for the mono ug + yo text). The inputs'
fingerprints already identify the text, so the scan's result is kept in a small JSON file under the
output root, ``<output.root>/.cache/tokenizer-text-keys/<key>.json``, ``<key>`` a hash of all that
decides the result. A cache that cannot be read or written is passed over: the keys are computed
as without it, and they never differ from what the scan gives.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import pyarrow.fs as pafs

from lrl.data.files import filesystem

#: Bumped when what the scan reads or how it reads it changes (``load_text``, the keys' tests),
#: so that results cached by the old code are not read.
VERSION = 1
FOLDER = ".cache/tokenizer-text-keys"


def cache_path(root: str, parts: Any) -> str:
    """Where the result for ``parts`` (JSON data naming everything the scan depends on) is kept."""
    blob = json.dumps([VERSION, parts], sort_keys=True, ensure_ascii=False, default=str)
    return f"{root.rstrip('/')}/{FOLDER}/{hashlib.sha256(blob.encode()).hexdigest()[:32]}.json"


def _read(path: str) -> dict[str, int] | None:
    try:
        fs, inner = filesystem(path)
        with fs.open_input_stream(inner) as f:
            keys = json.loads(f.read().decode())
    except (OSError, ValueError):  # none yet (FileNotFoundError is an OSError), or unreadable
        return None
    # Anything else (a file cut short, edited by hand) is no result: scanned again.
    if not isinstance(keys, dict) or not all(isinstance(k, str) and type(v) is int for k, v in keys.items()):
        return None
    return keys


def _write(path: str, keys: dict[str, int]) -> None:
    try:
        fs, inner = filesystem(path)
        fs.create_dir(inner.rsplit("/", 1)[0], recursive=True)
        data = json.dumps(keys, sort_keys=True).encode()
        if isinstance(fs, pafs.LocalFileSystem):  # a reader never sees a file half written
            tmp = f"{inner}.tmp-{uuid.uuid4().hex[:8]}"
            with fs.open_output_stream(tmp) as f:
                f.write(data)
            fs.move(tmp, inner)  # rename(2): atomic, the last writer of the same result wins
        else:  # object stores put an object whole, or not at all
            with fs.open_output_stream(inner) as f:
                f.write(data)
    except (OSError, ValueError):  # a read-only root, an unreachable store: compute again next time
        pass


def cached_keys(root: str, parts: Any, scan: Callable[[], dict[str, int]], remember: bool) -> dict[str, int]:
    """``scan()``'s keys, read from the cache under ``root`` when there; with ``remember``, a
    scan's result is written there (off for dry runs and plans, which write nothing)."""
    path = cache_path(root, parts)
    found = _read(path)
    if found is not None:
        return found
    keys = scan()
    if remember:
        _write(path, keys)
    return keys


__all__ = ["VERSION", "FOLDER", "cache_path", "cached_keys"]
