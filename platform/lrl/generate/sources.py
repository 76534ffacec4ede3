"""What names the generate stage's inputs, in its folder's hash and in the rows it writes.

Both name a relative input by its path as configured (relative to ``data.root``), never by where
``data.root`` lies: with absolute paths, the same job and data under another root (a runs folder
copied to another machine, or ``lrl submit`` to a Ray cluster, which unpacks the working dir, and
a sample or data kept in it, under ``.../_ray_pkg_<content hash>/``) got a new folder name and so
ran every stage again. The root used is recorded in ``manifest.json`` (``data_root``) instead.
Error messages keep absolute paths: they are for a person looking for the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from lrl.data.config import HELDOUT
from lrl.data.files import InputError, fingerprint, is_uri, resolve, saved_dataset
from lrl.job import JobConfig


def training_sources(cfg: JobConfig) -> list:
    """The ``data.ner`` sources the stage generates from (every split but the held-out ones)."""
    return [s for s in cfg.data.ner if s.split not in HELDOUT]


#: The last part of a generated row's id: ``|op|copy`` (``augment.seeds.child_id``, oversampling)
#: or ``>op:lang`` (translation, ``translate.ops``).
_CHILD_SUFFIX = re.compile(r"(?:\|(?P<op>\w+)\|\d+|>(?P<hop>\w+):[^|>]+)$")


def check_generated_ids(cfg: JobConfig, ids: dict[str, str]) -> None:
    """An ``InputError`` when an input row id (``ids``: id -> its source) is one the stage would give
    a row it makes from another input row: rows of an earlier generate output fed in again keep
    their ids (``s2``, ``s2|delete|0``), and deleting from ``s2`` wrote a second ``s2|delete|0``
    (two rows of one id: parent_id lookups, dedup and replay took them for one). Only the ops this
    config runs are peeled off, so re-reading such rows for other ops (or filters alone) still works."""
    # The steps run translate -> oversample -> augment, each augment op on the rows entering the
    # step (never on another op's rows): peeled from the end, a suffix may only be of an earlier
    # step than the one before it (translation hops may repeat). Any other chain (``s2|delete|0|swap|0``)
    # is no id the stage makes from ``s2``.
    ops = dict.fromkeys(cfg.augment.ops, 0) | ({"oversample": 1} if cfg.oversample.enabled else {})
    if cfg.translate.enabled:
        ops |= {"translate": 2, "backtranslate": 2}
    if not ops:
        return
    for rid, source in ids.items():
        if "|" not in rid and ">" not in rid:  # read ids (``lang:split:n``): no regex per row
            continue
        prefix, last = rid, -1
        while (m := _CHILD_SUFFIX.search(prefix)) and (step := ops.get(m["op"] or m["hop"], -1)) >= 0 \
                and (step > last or step == last == 2):
            prefix, last = prefix[: m.start()], step
            if prefix in ids:
                raise InputError(f"{source}: row id {rid!r} is the id generate gives a row it makes from row "
                                 f"{prefix!r} ({ids[prefix]}): the output would hold two rows of that id; give "
                                 "the input rows other ids (rows of an earlier generate output: leave out its "
                                 "generated rows, op other than orig)")


def check_held_out(cfg: JobConfig) -> None:
    """An ``InputError`` for a missing dev/test source, worded as for a training input (``not_found``).
    The stage does not read them (finetune, tune and evaluate do, from ``data.ner``; the manifest only
    lists them, ``held_out``): a misspelt one passed ``lrl run --dry-run`` unnoticed. Not hashed; a hub
    id (``format: hf``) is left alone (``lrl.data.readers.check_source``)."""
    from lrl.data.readers import check_source

    for src in cfg.data.ner:
        if src.split in HELDOUT:
            check_source(src, cfg.data.root, f"{src.split} file not found")


def input_fingerprints(cfg: JobConfig) -> dict[str, str]:
    """Content fingerprint of every input, keyed by its path as configured (relative to
    ``data.root``, which is not hashed); a hub dataset id is addressed by id/config/split."""
    from lrl.data.readers import check_hf_path

    out: dict[str, str] = {}
    for src in training_sources(cfg):
        path = resolve(src.path, cfg.data.root)
        # As the reader decides: with data.root=../shared/data the hub id ``wikiann`` is also the
        # folder of the CoNLL files, and under an s3:// root a hub id is no file to hash.
        if src.format == "hf" and not saved_dataset(path):
            check_hf_path(src, path, cfg.data.root)  # ./x, no folder: named here, so by dry runs too
            out[f"ner:{src.path}"] = f"hf:{src.path}:{src.hf_config}:{src.split}"
        else:
            out[f"ner:{src.path}#{src.split}"] = fingerprint(path)
    for tsrc in cfg.data.text:
        out[f"text:{tsrc.path}"] = fingerprint(resolve(tsrc.path, cfg.data.root))
    # Lexicons shape the synonym/insert rows like any input: an edited lexicon must not be
    # answered with the output of the old one.
    for lang, lex in sorted(cfg.augment.lexicons.items()):
        out[f"lexicon:{lang}:{lex}"] = fingerprint(resolve(lex, cfg.data.root))
    return out | _translate_models(cfg)


def _translate_models(cfg: JobConfig) -> dict[str, str]:
    """Content fingerprint of each relative ``translate`` model folder found under ``data.root``
    (``lrl.generate.translate.local_model``): with ``data.root`` out of the hash, its path as
    configured named another root's other model alike. Only such jobs get the key; a hub id, an
    absolute folder or one found in the working folder is named by its configured string, as before."""
    return {key: fingerprint(found) for key, found in translate_model_folders(cfg).items()}


def translate_model_folders(cfg: JobConfig) -> dict[str, str]:
    """``{"translate:<role>:<path as configured>": folder}`` of the folders ``_translate_models``
    hashes (also recorded for ``lrl run --from``'s input drift, ``lrl.pipeline.input_drift``)."""
    t = cfg.translate
    if not t.enabled or cfg.data.root is None:
        return {}
    models = [("train", t.train.model if t.train else None)]
    if t.backtranslate is not None:
        models += [("to_pivot", t.backtranslate.to_pivot), ("from_pivot", t.backtranslate.from_pivot)]
    out: dict[str, str] = {}
    for name, m in models:
        path = m.model if m is not None else None
        if path and not is_uri(path) and not os.path.isabs(os.path.expanduser(path)) \
                and os.path.isdir(found := resolve(path, cfg.data.root)):
            out[f"translate:{name}:{path}"] = found
    return out


def root_prefix(path: str, root: str | None) -> str | None:
    """What ``resolve`` put before the configured ``path`` (``data.root`` and a slash, as joined),
    None when it joined nothing (an absolute path, a URI, no root)."""
    if root is None or is_uri(path) or os.path.isabs(path):
        return None
    prefix = root.rstrip("/") if is_uri(root) else str(Path(root))
    return prefix if prefix.endswith("/") else prefix + "/"


def relative(path: str, prefix: str | None) -> str:
    """``path`` without ``prefix`` (``root_prefix``): the path relative to ``data.root``."""
    return path[len(prefix):] if prefix and path.startswith(prefix) else path


def relative_column(table: pa.Table, prefix: str | None, column: str = "source") -> pa.Table:
    """``table`` with each ``column`` value relative to ``data.root`` (``relative``); the schema's
    metadata (reading counts, the tag scheme) kept. Mapped per distinct value: a source has few."""
    if prefix is None or column not in table.column_names or not table.num_rows:
        return table
    enc = table.column(column).combine_chunks().dictionary_encode()
    names = pa.array([relative(v, prefix) for v in enc.dictionary.to_pylist()], pa.string())
    values = pc.take(names, enc.indices)
    return table.set_column(table.schema.get_field_index(column), table.schema.field(column), values)


__all__ = ["training_sources", "check_held_out", "input_fingerprints", "root_prefix", "relative", "relative_column"]
