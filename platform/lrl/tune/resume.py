"""The languages a tune stage run finished, kept for a rerun of the same config and inputs.

The stage searches its languages one after another and wrote its output only when all were done:
a run stopped (Ctrl-C, a failed trial host, a killed job) in the last of 7 languages of
jobs/multilingual.yaml (8 trials each, the best retrained per seed) searched all 7 again. Each
finished language (its best row, trial rows, results.json group and saved model) is now kept in
``<output.root>/.tune-<hash>.langs/<lang>/`` as soon as it is done, ``done.json`` written last
(what marks the language finished, on object stores too). A rerun with the same hash (the same
config and inputs: the same search) takes those languages from there, and the folder is removed
once the stage's output is committed. A changed config has another hash and searches anew.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pyarrow.fs as pafs

from lrl.data.files import filesystem
from lrl.data.output import StageOutput

DONE = "done.json"


class FinishedLanguages:
    """Finished languages of the stage output ``out`` (keyed by its hash)."""

    def __init__(self, out: StageOutput):
        self.path = f"{out.root}/.{out.stage}-{out.hash}.langs"

    def load(self, lang: str) -> dict[str, Any] | None:
        """``{"best": row, "trials": rows, "group": results.json group or None}`` of ``lang``
        when an earlier run finished it, else None."""
        fs, inner = filesystem(f"{self.path}/{lang}/{DONE}")
        if fs.get_file_info(inner).type != pafs.FileType.File:
            return None
        try:
            with fs.open_input_stream(inner) as f:
                return json.loads(f.read().decode("utf-8"))
        except (OSError, ValueError) as exc:  # unreadable: search the language again
            print(f"warning: tune: {self.path}/{lang}/{DONE} unreadable ({exc}); searching {lang} again",
                  file=sys.stderr)
            return None

    def save(self, lang: str, entry: dict[str, Any], model_dir: str | None) -> None:
        """Keep ``lang``'s results (and the files of ``model_dir``, its saved model); ``done.json``
        last, so that a run stopped while saving leaves the language unfinished."""
        folder = f"{self.path}/{lang}"
        fs, inner = filesystem(folder)
        if fs.get_file_info(inner).type != pafs.FileType.NotFound:
            fs.delete_dir(inner)  # an unfinished save of an earlier run
        fs.create_dir(inner, recursive=True)
        if model_dir is not None:
            _copy(model_dir, f"{folder}/model")
        with fs.open_output_stream(f"{inner}/{DONE}") as f:
            f.write(json.dumps(entry, ensure_ascii=False, default=str).encode("utf-8"))

    def restore_model(self, lang: str, dest: str) -> None:
        """Copy the kept model of ``lang`` to ``dest`` (the stage's ``models/<lang>``)."""
        _copy(f"{self.path}/{lang}/model", dest)

    def clear(self) -> None:
        """Remove the folder (the stage's output, which holds everything in it, is committed)."""
        fs, inner = filesystem(self.path)
        try:
            if fs.get_file_info(inner).type != pafs.FileType.NotFound:
                fs.delete_dir(inner)
        except OSError as exc:  # the output is committed: a leftover is only disk
            print(f"warning: tune: could not remove {self.path}: {exc}", file=sys.stderr)


def _copy(src: str, dst: str) -> None:
    src_fs, src_inner = filesystem(src)
    dst_fs, dst_inner = filesystem(dst)
    dst_fs.create_dir(dst_inner, recursive=True)
    pafs.copy_files(src_inner, dst_inner, source_filesystem=src_fs, destination_filesystem=dst_fs)


__all__ = ["FinishedLanguages"]
