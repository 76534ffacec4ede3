"""Languages a tune search already finished, found again by a later run (one operation).

The stage searches its languages one after another, and a language's search depends only on
its own data, the encoder and the tune and finetune settings, never on the other languages. Each
language therefore has a key of its own (``language_key``), and its search is taken from an
earlier run wherever that key was finished:

- by a run that stopped later (Ctrl-C, a lost trial host, a killed job): each finished language
  (best row, trial rows, results.json group and saved model) waits in
  ``<output.root>/.tune-<lang>-<key>/`` as soon as it is done, ``done.json`` written last (what
  marks it finished, on object stores too), until the stage's output is committed. A stop in the
  last of jobs/multilingual.yaml's 7 languages (8 trials each) searched all 7 again;
- by a committed tune output, whose manifest lists its languages' keys (``language_keys``):
  adding a language to ``tune.languages`` or ``data.ner`` (a new stage folder) searched every
  language again, though only the new one had anything to search.

A changed setting or changed data of a language gives it another key: it is searched anew.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pyarrow.fs as pafs

from lrl.config import config_hash
from lrl.data.files import filesystem
from lrl.data.output import MANIFEST

DONE = "done.json"
_OUTPUT = re.compile(r"tune-[0-9a-f]{12}")


def language_key(settings: dict[str, Any], lang: str, data_print: str, model_print: str) -> str:
    """What names one language's search: the stage's settings that shape a search (without the
    language list), the language, its train/dev content and the encoder."""
    return config_hash("tune-language", {**settings, "lang": lang}, {"data": data_print, "model": model_print})


def _read_json(path: str) -> Any:
    fs, inner = filesystem(path)
    with fs.open_input_stream(inner) as f:
        return json.loads(f.read().decode("utf-8"))


def _copy(src: str, dst: str) -> None:
    src_fs, src_inner = filesystem(src)
    dst_fs, dst_inner = filesystem(dst)
    dst_fs.create_dir(dst_inner, recursive=True)
    pafs.copy_files(src_inner, dst_inner, source_filesystem=src_fs, destination_filesystem=dst_fs)


class FinishedLanguages:
    """Earlier finished searches of the languages in ``keys`` (``{lang: language_key}``) under the
    output root ``root``."""

    def __init__(self, root: str, keys: dict[str, str]):
        self.root, self.keys = root.rstrip("/"), keys
        self._models: dict[str, str] = {}  # lang -> the folder its kept model is copied from
        self.sources: dict[str, str] = {}  # lang -> where it was found (for messages)

    def _pending(self, lang: str) -> str:
        return f"{self.root}/.tune-{lang}-{self.keys[lang]}"

    def load(self, lang: str) -> dict[str, Any] | None:
        """``{"best": row, "trials": rows, "group": results.json group or None}`` of ``lang``
        when an earlier run finished its search with the same key, else None."""
        entry = self._load_pending(lang)
        return entry if entry is not None else self._load_committed(lang)

    def _load_pending(self, lang: str) -> dict[str, Any] | None:
        folder = self._pending(lang)
        fs, inner = filesystem(f"{folder}/{DONE}")
        if fs.get_file_info(inner).type != pafs.FileType.File:
            return None
        try:
            entry = _read_json(f"{folder}/{DONE}")
        except (OSError, ValueError) as exc:  # unreadable: search the language again
            print(f"warning: tune: {folder}/{DONE} unreadable ({exc}); searching {lang} again", file=sys.stderr)
            return None
        self._models[lang], self.sources[lang] = f"{folder}/model", "a stopped run of this search"
        return entry

    def _load_committed(self, lang: str) -> dict[str, Any] | None:
        fs, inner = filesystem(self.root)
        try:
            found = fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
        except OSError:
            return None
        for info in sorted(found, key=lambda i: i.path):
            name = info.base_name
            if info.type != pafs.FileType.Directory or not _OUTPUT.fullmatch(name):
                continue
            folder = f"{self.root}/{name}"
            try:
                if _read_json(f"{folder}/{MANIFEST}").get("language_keys", {}).get(lang) != self.keys[lang]:
                    continue
                best = [r for r in _read_json(f"{folder}/best.json") if r.get("lang") == lang]
                trials = [t for t in _read_json(f"{folder}/trials.json") if t.get("lang") == lang]
                group = None
                if fs.get_file_info(f"{inner}/{name}/results.json").type == pafs.FileType.File:
                    group = _read_json(f"{folder}/results.json").get("groups", {}).get(lang)
            except (OSError, ValueError, AttributeError):  # no manifest yet, or not readable: not a source
                continue
            if len(best) != 1 or (group is not None  # its model removed since: search again
                                  and fs.get_file_info(f"{inner}/{name}/models/{lang}").type != pafs.FileType.Directory):
                continue
            self._models[lang], self.sources[lang] = f"{folder}/models/{lang}", name
            return {"best": best[0], "trials": trials, "group": group}
        return None

    def save(self, lang: str, entry: dict[str, Any], model_dir: str | None) -> None:
        """Keep ``lang``'s results (and the files of ``model_dir``, its saved model) until the
        stage's output is committed; ``done.json`` last, so that a run stopped while saving
        leaves the language unfinished."""
        folder = self._pending(lang)
        fs, inner = filesystem(folder)
        if fs.get_file_info(inner).type != pafs.FileType.NotFound:
            fs.delete_dir(inner)  # an unfinished save of an earlier run
        fs.create_dir(inner, recursive=True)
        if model_dir is not None:
            _copy(model_dir, f"{folder}/model")
        with fs.open_output_stream(f"{inner}/{DONE}") as f:
            f.write(json.dumps(entry, ensure_ascii=False, default=str).encode("utf-8"))

    def restore_model(self, lang: str, dest: str) -> None:
        """Copy the kept model of ``lang`` (found by ``load``) to ``dest`` (the stage's ``models/<lang>``)."""
        _copy(self._models[lang], dest)

    def clear(self) -> None:
        """Remove this search's pending folders (the committed output holds everything in them)."""
        for lang in self.keys:
            fs, inner = filesystem(self._pending(lang))
            try:
                if fs.get_file_info(inner).type != pafs.FileType.NotFound:
                    fs.delete_dir(inner)
            except OSError as exc:  # the output is committed: a leftover is only disk
                print(f"warning: tune: could not remove {self._pending(lang)}: {exc}", file=sys.stderr)


__all__ = ["FinishedLanguages", "language_key"]
