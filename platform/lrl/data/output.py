"""Stage output folders: named by stage and input hash, written under a temporary name, committed
by a final rename, and recognised as finished only by their ``manifest.json``.

A killed job therefore never leaves a folder that looks finished, and re-running a stage whose
folder (with manifest) exists does no work.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from lrl.config import config_hash
from lrl.data.files import filesystem, is_uri
from lrl.signals import raise_if_terminated

MANIFEST = "manifest.json"
_VERSIONED = ("lrl", "ray", "torch", "transformers", "datasets", "deepspeed", "pyarrow", "tokenizers", "seqeval")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


class StageOutput:
    """The output folder of one stage run, addressed by ``<root>/<stage>-<hash>``.

    Use ``tmp`` as the write location, then ``commit(manifest)``: it writes the manifest into the
    temporary folder and renames it into place (on object stores the manifest, written last,
    is what marks completion).
    """

    def __init__(self, root: str, stage: str, config: Any, inputs: Any = None):
        self.stage = stage
        self.hash = config_hash(stage, config, inputs)
        self.root = root.rstrip("/")
        self.path = f"{self.root}/{stage}-{self.hash}"
        self._tmp: str | None = None
        self._t0 = time.time()

    @property
    def done(self) -> bool:
        """True when a previous run of the same config and inputs finished (manifest present)."""
        fs, inner = filesystem(self.path)
        return fs.get_file_info(f"{inner}/{MANIFEST}").type == pafs.FileType.File

    def manifest(self) -> dict[str, Any]:
        fs, inner = filesystem(self.path)
        with fs.open_input_stream(f"{inner}/{MANIFEST}") as f:
            return json.loads(f.read().decode())

    @property
    def in_place(self) -> bool:
        """Object stores (s3://, gs://) cannot rename a folder: Arrow's S3 and GCS filesystems move
        single objects only, so the final rename failed every stage at its very end. There the
        stage writes into its final folder and the manifest, written last, marks completion."""
        return not isinstance(filesystem(self.path)[0], pafs.LocalFileSystem)

    @property
    def tmp(self) -> str:
        """A fresh temporary folder beside the final one (on object stores the final folder,
        cleared of an unfinished run's leftovers); partial results live only here."""
        if self._tmp is None:
            if self.in_place:
                fs, inner = filesystem(self.path)
                if fs.get_file_info(inner).type != pafs.FileType.NotFound:
                    fs.delete_dir(inner)  # no manifest (else done): a killed run's partial files
                self._tmp = self.path
            else:
                self._tmp = f"{self.root}/.{self.stage}-{self.hash}.tmp-{uuid.uuid4().hex[:8]}"
            fs, inner = filesystem(self._tmp)
            fs.create_dir(inner, recursive=True)
        return self._tmp

    def commit(self, manifest: dict[str, Any]) -> str:
        """Write ``manifest.json`` (adding versions and wall time) and move tmp to the final path."""
        raise_if_terminated()  # a stop that did not unwind the stage must not look finished
        full = {"stage": self.stage, "hash": self.hash, **manifest,
                "versions": package_versions(), "wall_time_s": round(time.time() - self._t0, 3),
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        fs, tmp_inner = filesystem(self.tmp)
        if self._tmp != self.path and self.done:
            # Another run of the same config and inputs finished first (a retried job while the
            # first still ran): its output is equivalent, and its next stages may be reading it.
            self.abort()
            return self.path
        with fs.open_output_stream(f"{tmp_inner}/{MANIFEST}") as f:
            f.write(json.dumps(full, indent=2, ensure_ascii=False, default=str).encode())
        if self._tmp == self.path:  # written in place (object store): the manifest was the commit
            self._tmp = None
            return self.path
        _, final_inner = filesystem(self.path)
        if fs.get_file_info(final_inner).type != pafs.FileType.NotFound:
            # An unfinished leftover (no manifest) from a crashed run of an older layout.
            fs.delete_dir(final_inner)
        fs.move(tmp_inner, final_inner)
        self._tmp = None
        return self.path

    def abort(self) -> None:
        """Remove the temporary folder (best effort; leftovers never look finished anyway)."""
        if self._tmp is not None:
            if is_uri(self._tmp):
                fs, inner = filesystem(self._tmp)
                fs.delete_dir(inner)
            else:
                shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def local_path(path: str) -> Path:
    """A local path as ``Path`` (stages that need local files, e.g. tokenizers, use this)."""
    if is_uri(path) and not path.startswith("file://"):
        raise ValueError(f"{path}: this stage needs a local path")
    return Path(path.removeprefix("file://"))


def ensure_dir(path: str) -> None:
    fs, inner = filesystem(path)
    fs.create_dir(inner, recursive=True)


__all__ = ["StageOutput", "MANIFEST", "package_versions", "local_path", "ensure_dir"]
