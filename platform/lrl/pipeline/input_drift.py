"""Input drift for ``lrl run --from/--only``: which input files the reused outputs of earlier stages
were built from other contents of.

The stages name their outputs by each input's path relative to ``data.root`` and its content, so a
changed ``data.root`` alone is no settings drift (``settings_drift.LOCATION_ONLY``). But the
settings cannot tell a root moved with the same files from one pointed at another dataset of the
same layout (v1 -> v2), nor an input edited in place: ``--from``/``--only`` reused outputs built from
other data without a word. The state file therefore keeps, per stage, the content fingerprints
(``lrl.data.files.fingerprint``) of the data files it read, keyed by what names them in the config,
and this module compares them with the current files'.

Hashing every input again on each run would cost as much as reading it (a big ``data.text``), and
no cache of content fingerprints exists elsewhere (``lrl.data.files.fingerprint`` hashes each call).
So each recorded print keeps a stamp of what it hashed (absolute path, size, mtime, ctime and inode
of every file): a file whose stamp is recorded is not read again. ctime cannot be set back by hand
(``touch -d`` sets mtime only), so an edit in place always misses the stamp and is hashed; a moved or
copied root misses it too, and is hashed and found the same.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from lrl.data.config import HELDOUT
from lrl.data.files import InputError, fingerprint, glob_files, is_glob, is_uri, resolve, saved_dataset
from lrl.job import JobConfig
from lrl.pipeline.settings_drift import changed_settings, stale_warning


def stage_inputs(cfg: JobConfig, stage: str) -> dict[str, str]:
    """The data files ``stage`` reads (resolved), keyed by the setting and the path as configured.

    As the stages hash them: generate its training sources, text and lexicons
    (``lrl.generate.sources.input_fingerprints``); tokenizer and pretrain ``data.text`` (the
    tokenizer reads generate's text when generate runs, whose record covers it); finetune and tune
    their dev sources, and their training sources unless generated rows replace them; evaluate the
    sources of ``evaluate.splits``; pretrain also its ``aux.conllu`` files and a relative
    DeepSpeed config file, generate the translate model folders found under ``data.root``
    (``lrl.generate.sources._translate_models``: both hash them into their names). Hub datasets
    (``format: hf``) are named by id, not content; other model folders (``model.checkpoint``,
    ``tokenizer.base``, absolute or hub translate models) by their settings, and are left out."""
    from lrl.pipeline.preflight_inputs import source_readers  # the sources finetune/tune/evaluate read

    read = ({i for i, src in enumerate(cfg.data.ner) if src.split not in HELDOUT} if stage == "generate"
            else set(source_readers(cfg, [stage])))
    out: dict[str, str] = {}
    for i in sorted(read):
        src = cfg.data.ner[i]
        path = resolve(src.path, cfg.data.root)
        if src.format != "hf" or saved_dataset(path):
            out[f"data.ner {src.path} ({src.split})"] = path
    # The tokenizer reads generate's copy of the text when generate runs (its record covers it).
    if stage in {"generate", "pretrain"} or (stage == "tokenizer" and "generate" not in cfg.pipeline.stages):
        out.update({f"data.text {t.path}": resolve(t.path, cfg.data.root) for t in cfg.data.text})
    if stage == "generate":
        out.update({f"augment.lexicons.{lang} {lex}": resolve(lex, cfg.data.root)
                    for lang, lex in sorted(cfg.augment.lexicons.items())})
        out.update(_translate_folders(cfg))
    if stage == "pretrain":  # a review found an edited aux.conllu reused without a word
        p = cfg.pretrain
        out.update({f"pretrain.aux.conllu {c}": resolve(c, cfg.data.root) for c in p.aux.conllu})
        ds = p.deepspeed.config_file
        if ds and not is_uri(ds) and not os.path.isabs(os.path.expanduser(ds)):
            out[f"pretrain.deepspeed.config_file {ds}"] = resolve(ds, cfg.data.root)
    return out


def _translate_folders(cfg: JobConfig) -> dict[str, str]:
    """The translate model folders the generate stage names its output by content (those found
    under ``data.root`` by a relative path: ``lrl.generate.sources.translate_model_folders``)."""
    from lrl.generate.sources import translate_model_folders

    out = {}
    for key, folder in translate_model_folders(cfg).items():
        _, role, path = key.split(":", 2)
        out[f"translate.{role} {path}"] = folder
    return out


def _stamp(path: str) -> str | None:
    """What says a local file, folder or pattern is unchanged without reading it; None for
    remote objects, whose fingerprint is already their size and mtime (nothing is read). A
    ``file://`` path is a local one (``fingerprint`` reads it in full, so it needs a stamp)."""
    if path.startswith("file://"):
        path = path[len("file://"):]
    if is_uri(path):
        return None
    if is_glob(path):
        files = glob_files(path)
    elif os.path.isdir(path):
        files = [(str(p), str(p.relative_to(path))) for p in sorted(Path(path).rglob("*")) if p.is_file()]
    else:
        files = [(path, "")]
    h = hashlib.sha256(os.path.abspath(path).encode())
    for file, name in files:
        st = os.stat(file)
        h.update(f"\0{name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}".encode())
    return h.hexdigest()[:32]


class Prints:
    """Content fingerprints of input files, read from the state's stamps where they match."""

    def __init__(self, state: dict[str, Any]):
        self.known: dict[str, str] = {}
        for rec in state.get("stages", {}).values():
            for entry in (rec.get("inputs") or {}).values():
                if isinstance(entry, dict) and entry.get("stamp") and entry.get("print"):
                    self.known[entry["stamp"]] = entry["print"]
        self.remote: dict[str, str] = {}
        self.hashed = 0  # inputs read in full (the cost the stamps save)

    def of(self, path: str) -> dict[str, str] | None:
        """``{"print", "stamp"}`` of ``path``; None when it cannot be read (the stage names that)."""
        try:
            stamp = _stamp(path)
            if stamp is None:
                if path not in self.remote:
                    self.remote[path] = fingerprint(path)
                return {"print": self.remote[path]}
            if stamp not in self.known:
                self.hashed += 1
                self.known[stamp] = fingerprint(path)
                if _stamp(path) != stamp:  # written while it was read: the print may be of neither
                    del self.known[stamp]
                    return None
            return {"print": self.known[stamp], "stamp": stamp}
        except (OSError, InputError, ValueError):
            return None

    def stage(self, cfg: JobConfig, stage: str) -> dict[str, dict[str, str]]:
        """What to record for ``stage``: its inputs' prints, those that can be read."""
        found = {key: self.of(path) for key, path in stage_inputs(cfg, stage).items()}
        return {k: v for k, v in found.items() if v is not None}


def changed_inputs(state: dict[str, Any], cfg: JobConfig, reused: list[str], prints: Prints,
                   unreadable: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Inputs (key -> reused stages) whose content differs from what a reused output was recorded
    with. An input the record lacks or the config no longer names is left to the settings check
    (``data.ner`` changed); a state written before inputs were recorded, to no check at all. A
    record whose print still holds but whose stamp is stale (a moved root) takes the new stamp.
    Recorded inputs that cannot be read now (deleted, a wrong ``data.root``) go to ``unreadable``
    ("key (path)" -> reused stages): when only reused stages read one, nothing else says it."""
    found: dict[str, list[str]] = {}
    for name in reused:
        recorded = state["stages"].get(name, {}).get("inputs")
        if not isinstance(recorded, dict):
            continue
        for key, path in stage_inputs(cfg, name).items():
            old = recorded.get(key)
            if not isinstance(old, dict) or "print" not in old:
                continue
            if old.get("stamp") is not None and old.get("stamp") == _stamp_or_none(path):
                continue  # unchanged: not read
            now = prints.of(path)
            if now is None:  # a stage to run that reads it stops on it; a reused one says nothing
                if unreadable is not None:
                    unreadable.setdefault(f"{key} ({path})", []).append(name)
                continue
            if now["print"] != old["print"]:
                found.setdefault(key, []).append(name)
            elif now.get("stamp"):
                old["stamp"] = now["stamp"]
    return found


def _stamp_or_none(path: str) -> str | None:
    try:
        return _stamp(path)
    except (OSError, InputError, ValueError):
        return None


def drift(state: dict[str, Any], cfg: JobConfig, reused: list[str],
          prints: Prints) -> tuple[dict[str, tuple[Any, Any]], list[str]]:
    """The changed settings the reused outputs do not have (``settings_drift.changed_settings``),
    and the warnings about them and about inputs changed since or unreadable now (``changed_inputs``)."""
    not_applied = changed_settings(state, cfg, reused)
    unreadable: dict[str, list[str]] = {}
    changed = changed_inputs(state, cfg, reused, prints, unreadable)
    said = [stale_warning(reused, not_applied), input_warning(reused, changed), unreadable_warning(reused, unreadable)]
    return not_applied, [w for w in said if w]


def input_warning(reused: list[str], changed: dict[str, list[str]]) -> str | None:
    """The warning ``--from``/``--only`` give when reused outputs were built from other data."""
    if not changed:
        return None
    first = min(reused.index(s) for stages in changed.values() for s in stages)
    # The stages after the first stale one read its output: built from the old data too.
    return (f"warning: the reused outputs of {', '.join(reused[first:])} were built from other contents of "
            f"inputs that changed since, which this run does not read again: {'; '.join(sorted(changed))}. "
            "Run without --from/--only to rebuild what they shape.")


def unreadable_warning(reused: list[str], missing: dict[str, list[str]]) -> str | None:
    """The warning ``--from``/``--only`` give when inputs reused outputs were built from cannot be
    read now (a deleted file, a ``data.root`` naming the wrong folder): whether they changed is not
    known, and a run without --from/--only would stop on them."""
    if not missing:
        return None
    first = min(reused.index(s) for stages in missing.values() for s in stages)
    return (f"warning: the reused outputs of {', '.join(reused[first:])} were built from inputs that cannot be "
            "read now (deleted, data.root naming another folder, a store out of reach), so whether they changed "
            f"is not known: {'; '.join(sorted(missing))}")


__all__ = ["Prints", "stage_inputs", "changed_inputs", "drift", "input_warning", "unreadable_warning"]
