"""Languages a tune search already finished, found again by a later run (one operation).

The stage searches its languages one after another, and a language's search depends only on
its own data, the encoder and the tune and finetune settings, never on the other languages. Each
language therefore has a key of its own (``language_key``), and its search is taken from an
earlier run wherever that key was finished (``lrl.data.finished``):

- by a run that stopped later: each finished language (best row, trial rows, results.json group
  and saved model) waits in ``<output.root>/.tune-<lang>-<key>/``. A stop in the last of
  jobs/multilingual.yaml's 7 languages (8 trials each) searched all 7 again;
- by a committed tune output, whose manifest lists its languages' keys (``language_keys``):
  adding a language to ``tune.languages`` or ``data.ner`` (a new stage folder) searched every
  language again, though only the new one had anything to search.
"""

from __future__ import annotations

from typing import Any

import pyarrow.fs as pafs

from lrl.data.files import filesystem
from lrl.data.finished import FinishedParts, part_key, read_json


def language_key(settings: dict[str, Any], lang: str, data_print: str, model_print: str) -> str:
    """What names one language's search: the stage's settings that shape a search (without the
    language list), the language, its train/dev content and the encoder."""
    return part_key("tune-language", settings, lang, data_print, model_print)


class FinishedLanguages(FinishedParts):
    """Earlier finished searches: an entry is ``{"best": row, "trials": rows, "group":
    results.json group or None}``."""

    stage = "tune"
    key_field = "language_keys"

    def read_committed(self, folder: str, part: str) -> dict[str, Any] | None:
        best = [r for r in read_json(f"{folder}/best.json") if r.get("lang") == part]
        trials = [t for t in read_json(f"{folder}/trials.json") if t.get("lang") == part]
        group = None
        fs, inner = filesystem(f"{folder}/results.json")
        if fs.get_file_info(inner).type == pafs.FileType.File:
            group = read_json(f"{folder}/results.json").get("groups", {}).get(part)
        return {"best": best[0], "trials": trials, "group": group} if len(best) == 1 else None


__all__ = ["FinishedLanguages", "language_key"]
