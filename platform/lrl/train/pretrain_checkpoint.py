"""How ``model.checkpoint`` names the pretrain stage's output.

A local checkpoint folder counts by its content (``input_print``), not by its path string: edited
in place, its path alone reused the output pretrained from the old weights, and a byte-identical
copy elsewhere (or the same folder written as ``~/...``) pretrained again. The whole folder is
read (sha256) on each ``stage_output``, dry runs included: about 0.1 s for MiniLM's 88 MB, a
second per GB from the page cache; pretraining loads every byte of it anyway, and
``pretrain.model_path`` is hashed the same way. A sampled print (sizes plus some MiB of each
file) would miss an edit inside a weights file of the same size.

A hub id or an object-store URI (which the loader takes for a hub id) keeps its string, so those
jobs, and jobs without a checkpoint, keep their names. A finished output is reused after its
local checkpoint folder was deleted (``lrl.pipeline.preflight.check_model_folders`` warns): the
manifest records the print it was named by (``started_from.print``), and the outputs under
``output.root`` that started from that path are tried with their recorded print; an output made
before this record (named by the path string) is found by the path string, as before.
"""
from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from lrl.data.output import StageOutput, input_print

if TYPE_CHECKING:
    from lrl.job import JobConfig

STAGE = "pretrain"


def _checkpoint(cfg: JobConfig) -> str | None:
    """The checkpoint pretraining loads: none with ``pretrain.model_path`` (its content is hashed
    instead; those outputs keep their names)."""
    return None if cfg.pretrain.model_path else cfg.model.checkpoint


def checkpoint_print(checkpoint: str | None) -> str | None:
    """The content print of ``checkpoint`` when it names a local folder (resolved as the loader
    resolves it: ``~`` expanded, relative to the working folder); None for no checkpoint, a hub id,
    a URI or a folder that is gone."""
    if not checkpoint or "://" in checkpoint:
        return None
    path = os.path.expanduser(checkpoint)
    return input_print(os.path.abspath(path)) if os.path.isdir(path) else None


def checkpoint_output(cfg: JobConfig, config: dict, inputs: dict, make: type[StageOutput]) -> StageOutput:
    """The pretrain output of ``config``/``inputs`` under ``output.root`` (``make``: the class, as
    ``lrl.train.pretrain`` names it), a local ``model.checkpoint`` hashed by content; a deleted one
    by a finished output's recorded print, else by its path string."""
    checkpoint, root = _checkpoint(cfg), cfg.output.root
    if (found := checkpoint_print(checkpoint)) is not None:
        return _by_print(make, root, config, inputs, found)
    from lrl.data.local_or_hub import missing_folder

    if checkpoint and missing_folder("model.checkpoint", checkpoint) is not None:  # a local folder gone
        for recorded in _recorded_prints(root, checkpoint):
            if (out := _by_print(make, root, config, inputs, recorded)).done:
                return out
    return make(root, STAGE, config, inputs)


def _by_print(make: type[StageOutput], root: str, config: dict, inputs: dict, found: str) -> StageOutput:
    """The path string leaves the hash (a copy elsewhere is the same start); the print joins it."""
    model = {**config["model"], "checkpoint": None}
    return make(root, STAGE, {**config, "model": model}, {**inputs, "checkpoint": found})


def with_print(started: dict | None, cfg: JobConfig) -> dict | None:
    """A manifest's ``started_from`` with the checkpoint's print, which finds the output again once
    the folder is deleted (``checkpoint_output``). Read again at commit: a folder edited during the
    run records a print its output is not named by, and is then not reused without it."""
    found = checkpoint_print(_checkpoint(cfg))
    return started if started is None or found is None else {**started, "print": found}


def _recorded_prints(root: str, checkpoint: str) -> list[str]:
    """The prints recorded by the finished pretrain folders under ``root`` that started from
    ``checkpoint`` (as written or as the loader resolved it), the latest finished first: a folder
    edited in place between runs left outputs of each version, and the last one made is what it
    held when deleted (sorted by print, the older weights' output could be reused); none when
    ``root`` cannot be listed."""
    import pyarrow.fs as pafs

    from lrl.data.files import filesystem, read_json

    names = {checkpoint, os.path.expanduser(checkpoint)}
    found: list[tuple[str, str]] = []  # (finished_at, print)
    try:
        fs, inner = filesystem(root)
        for info in fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True)):
            if info.type != pafs.FileType.Directory or not re.fullmatch(r"pretrain-[0-9a-f]{12}", info.base_name):
                continue
            try:
                manifest: Any = read_json(f"{root.rstrip('/')}/{info.base_name}/manifest.json")
                start = manifest.get("started_from")
            except (OSError, ValueError, AttributeError):  # not finished, unreadable, or no object
                continue
            if isinstance(start, dict) and start.get("checkpoint") in names and isinstance(start.get("print"), str):
                found.append((str(manifest.get("finished_at") or ""), start["print"]))
    except OSError:
        return []
    return list(dict.fromkeys(p for _, p in sorted(found, reverse=True)))


__all__ = ["checkpoint_output", "checkpoint_print", "with_print"]
