"""Sources of several files: a pattern (``corpus/ug-*.conll``) or a folder of CoNLL, JSONL or
text shards, read one file at a time in sorted order (``files.source_files`` lists them).

Each file is read as a source of its own would be (its empty-file and every-sentence-rejected
checks, its rejects with its own path and lines); only the ids differ, as they must carry the
file: ``lang:split:<name>:n`` for sentences, ``lang:<name>:line`` for text, ``<name>`` the
file's path relative to the folder or to the pattern's leading folder. A single-file source
keeps its ids (``lang:split:n``, ``lang:<file name>:line``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pyarrow as pa

from lrl.data.collect import ReadResult, Shard, SourceIds
from lrl.data.files import InputError
from lrl.data.schema import REJECT_SCHEMA

#: File or folder names that say which split their sentences belong to (WikiANN's train, dev and
#: test files lie in one folder per language).
SPLIT_NAMES = frozenset({"train", "dev", "test", "valid", "validation"})


def check_split_names(path: str, files: list[tuple[str, str]], split: str) -> None:
    """Refuse a labelled source whose files are named as another split: ``wikiann/wo`` read as a
    folder would put its dev and test sentences into the training data, where the scores of the
    later stages could not reveal it. Name the split's own files (``wikiann/wo/train*``)."""
    other = sorted({name for _, name in files for part in name.split("/")
                    if part.split(".")[0] in SPLIT_NAMES - {split}})
    if other:
        raise InputError(f"{path}: holds files named as other splits than {split!r} ({', '.join(other)}), and one "
                         "source is one split: name the split's own files (a pattern such as .../train*)")


def read_files(path: str, files: list[tuple[str, str]],
               read_one: Callable[[str, Shard], ReadResult]) -> ReadResult:
    """Read every file of the source ``path`` with ``read_one(file, shard)`` and join the results:
    Arrow tables chained without a copy, one file's text in memory at a time."""
    ids = SourceIds()
    results = [read_one(file, Shard(name, ids)) for file, name in files]
    reasons: Counter[str] = Counter()
    for r in results:
        reasons.update(r.reject_reasons)
    rejects = [r.rejects for r in results if r.rejects.num_rows]
    return ReadResult(pa.concat_tables([r.table for r in results]),
                      pa.concat_tables(rejects) if rejects else REJECT_SCHEMA.empty_table(),
                      path, dict(reasons), sum(r.repaired for r in results), sum(r.nfc_changed for r in results))


__all__ = ["read_files", "check_split_names", "SPLIT_NAMES"]
