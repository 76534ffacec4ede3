"""Parts of a stage that an earlier run already finished, found again by a later run.

Some stages are a list of independent parts: tune searches one language after another, finetune
trains one group (a language, or ``joint``) per set of seeds. A part depends only on its own data,
the encoder and the settings, never on the other parts, so each part has a key of its own
(``part_key``), and a part is taken from an earlier run wherever that key was finished:

- by a run that stopped later (Ctrl-C, a lost host, a killed job): each finished part waits in
  ``<output.root>/.<stage>-<part>-<key>/`` as soon as it is done (``done.json`` written last,
  which marks it finished, on object stores too), until the stage's output is committed;
- by a committed output of the same stage, whose manifest lists its parts' keys (``key_field``):
  adding a language makes a new stage folder, but only the new language has anything to do.

A changed setting or changed data of a part gives it another key: it is done anew. Subclasses
say what a committed output holds of a part (``read_committed``).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pyarrow.fs as pafs

from lrl.config import config_hash
from lrl.data.files import filesystem, read_json
from lrl.data.output import MANIFEST

DONE = "done.json"


def part_key(stage: str, settings: dict[str, Any], part: str, data_print: Any, model_print: str) -> str:
    """What names one part: the stage's settings that shape it (without the list of parts), the
    part's name, its train/dev content and the encoder."""
    return config_hash(stage, {**settings, "lang": part}, {"data": data_print, "model": model_print})


def copy_folder(src: str, dst: str) -> None:
    src_fs, src_inner = filesystem(src)
    dst_fs, dst_inner = filesystem(dst)
    dst_fs.create_dir(dst_inner, recursive=True)
    pafs.copy_files(src_inner, dst_inner, source_filesystem=src_fs, destination_filesystem=dst_fs)


class FinishedParts:
    """Earlier finished parts of ``stage`` for the parts in ``keys`` (``{part: key}``) under the
    output root ``root``. An entry is a JSON dict; its ``group`` (a results.json group, or None)
    with a ``model_dir`` means the part has a saved model in ``models/<part>``."""

    stage = ""
    key_field = ""  # the manifest's {part: key} of a committed output

    def __init__(self, root: str, keys: dict[str, str]):
        self.root, self.keys = root.rstrip("/"), keys
        self._models: dict[str, str] = {}  # part -> the folder its kept model is copied from
        self.sources: dict[str, str] = {}  # part -> where it was found (for messages)

    def read_committed(self, folder: str, part: str) -> dict[str, Any] | None:
        """The entry of ``part`` in the committed output ``folder`` (its key matched), or None."""
        raise NotImplementedError

    def _pending(self, part: str) -> str:
        return f"{self.root}/.{self.stage}-{part}-{self.keys[part]}"

    def load(self, part: str) -> dict[str, Any] | None:
        """The entry of ``part`` when an earlier run finished it with the same key, else None."""
        entry = self._load_pending(part)
        return entry if entry is not None else self._load_committed(part)

    def _load_pending(self, part: str) -> dict[str, Any] | None:
        folder = self._pending(part)
        fs, inner = filesystem(f"{folder}/{DONE}")
        if fs.get_file_info(inner).type != pafs.FileType.File:
            return None
        try:
            entry = read_json(f"{folder}/{DONE}")
        except (OSError, ValueError) as exc:  # unreadable: do the part again
            print(f"warning: {self.stage}: {folder}/{DONE} unreadable ({exc}); doing {part} again", file=sys.stderr)
            return None
        self._models[part], self.sources[part] = f"{folder}/model", "a stopped run of this stage"
        return entry

    def _load_committed(self, part: str) -> dict[str, Any] | None:
        fs, inner = filesystem(self.root)
        try:
            found = fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
        except OSError:
            return None
        name_re = re.compile(rf"{re.escape(self.stage)}-[0-9a-f]{{12}}")
        for info in sorted(found, key=lambda i: i.path):
            name = info.base_name
            if info.type != pafs.FileType.Directory or not name_re.fullmatch(name):
                continue
            folder = f"{self.root}/{name}"
            try:
                if read_json(f"{folder}/{MANIFEST}").get(self.key_field, {}).get(part) != self.keys[part]:
                    continue
                entry = self.read_committed(folder, part)
            except (OSError, ValueError, AttributeError):  # no manifest yet, or not readable: not a source
                continue
            group = (entry or {}).get("group")
            if entry is None or (group is not None and group.get("model_dir")  # its model removed since
                                 and fs.get_file_info(f"{inner}/{name}/models/{part}").type != pafs.FileType.Directory):
                continue
            self._models[part], self.sources[part] = f"{folder}/models/{part}", name
            return entry
        return None

    def save(self, part: str, entry: dict[str, Any], model_dir: str | None) -> None:
        """Keep ``part``'s entry (and the files of ``model_dir``, its saved model) until the
        stage's output is committed; ``done.json`` last, so that a run stopped while saving
        leaves the part unfinished."""
        folder = self._pending(part)
        fs, inner = filesystem(folder)
        if fs.get_file_info(inner).type != pafs.FileType.NotFound:
            fs.delete_dir(inner)  # an unfinished save of an earlier run
        fs.create_dir(inner, recursive=True)
        if model_dir is not None:
            copy_folder(model_dir, f"{folder}/model")
        with fs.open_output_stream(f"{inner}/{DONE}") as f:
            f.write(json.dumps(entry, ensure_ascii=False, default=str).encode("utf-8"))

    def restore_model(self, part: str, dest: str) -> None:
        """Copy the kept model of ``part`` (found by ``load``) to ``dest`` (the stage's ``models/<part>``)."""
        copy_folder(self._models[part], dest)

    def clear(self) -> None:
        """Remove this stage's pending folders (the committed output holds everything in them)."""
        for part in self.keys:
            fs, inner = filesystem(self._pending(part))
            try:
                if fs.get_file_info(inner).type != pafs.FileType.NotFound:
                    fs.delete_dir(inner)
            except OSError as exc:  # the output is committed: a leftover is only disk
                print(f"warning: {self.stage}: could not remove {self._pending(part)}: {exc}", file=sys.stderr)


__all__ = ["FinishedParts", "part_key", "read_json", "copy_folder", "DONE"]
