"""Stage output folders: named by stage and input hash, written under a temporary name, committed
by a final rename, and recognised as finished only by their ``manifest.json``.

A killed job therefore never leaves a folder that looks finished, and re-running a stage whose
folder (with manifest) exists does no work. A job killed outright (SIGKILL, the OOM killer, a lost
node) cannot remove its temporary folder, so each one records its owner (host, process and the
process's start time); a later stage run removes the leftovers whose owner is known to be gone and
names the ones it cannot judge (see ``clear_leftovers``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import shutil
import socket
import sys
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from lrl.config import config_hash
from lrl.data.files import InputError, filesystem, fingerprint, is_uri
from lrl.signals import raise_if_terminated

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
#: Inside a local temporary folder: who writes it (removed before the commit).
OWNER = ".lrl-owner.json"
#: Inside a folder written in place (object stores): the lease of the run writing it. A run that
#: took the lease over cleared the folder, this mark with it (removed before the commit).
WRITER = ".lrl-writer.json"
#: The name ``StageOutput`` gives a local temporary folder: ``.<stage>-<hash>.tmp-<8 hex>``.
_TMP_NAME = re.compile(r"\.(?P<key>[a-z_]+-[0-9a-f]{12})\.tmp-[0-9a-f]{8}")
#: A stage's output folder: ``<stage>-<12 hex>`` (``StageOutput.path``).
_STAGE_DIR = re.compile(r"[a-z_]+-[0-9a-f]{12}")
_VERSIONED = ("lrl", "ray", "torch", "transformers", "datasets", "deepspeed", "pyarrow", "tokenizers", "seqeval")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def input_print(path: str) -> str:
    """What names an input folder or file in a downstream stage's hash.

    Inside a finished stage output, the path from that folder on (``pretrain-<hash>/model``):
    the folder's hash already says what made it, and a root can move (a runs folder moved or
    copied elsewhere re-ran every stage after generate, whose absolute paths were in the
    hashes). Anywhere else, the content's fingerprint: a user's model or tokenizer folder can be
    rewritten in place, and its path alone would reuse what was made from the old one."""
    parts = path.rstrip("/").split("/")
    for i in range(len(parts) - 1, -1, -1):
        if _STAGE_DIR.fullmatch(parts[i]):
            fs, inner = filesystem("/".join(parts[: i + 1]))
            if fs.get_file_info(f"{inner}/{MANIFEST}").type == pafs.FileType.File:
                return "/".join(parts[i:])
            break
    return fingerprint(path)


class StageOutput:
    """The output folder of one stage run, addressed by ``<root>/<stage>-<hash>``.

    Use ``tmp`` as the write location, then ``commit(manifest)``: it writes the manifest into the
    temporary folder and renames it into place (on object stores the manifest, written last,
    is what marks completion).
    """

    def __init__(self, root: str, stage: str, config: Any, inputs: Any = None):
        self.stage = stage
        self.hash = config_hash(stage, config, inputs)
        # Absolute for local roots: the path goes into the pipeline state and the downstream
        # stages' configs, which a relative one made wrong from any other working directory.
        self.root = root.rstrip("/") if is_uri(root) else os.path.abspath(root)
        self.path = f"{self.root}/{stage}-{self.hash}"
        self._tmp: str | None = None
        self._lease = None  # held while an in-place (object store) folder is written
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
                self._take_lease()
                fs, inner = filesystem(self.path)
                if fs.get_file_info(inner).type != pafs.FileType.NotFound:
                    fs.delete_dir(inner)  # no manifest (else done): a killed run's partial files
                self._tmp = self.path
            else:
                self._tmp = f"{self.root}/.{self.stage}-{self.hash}.tmp-{uuid.uuid4().hex[:8]}"
            fs, inner = filesystem(self._tmp)
            fs.create_dir(inner, recursive=True)
            if self._lease is not None:
                with fs.open_output_stream(f"{inner}/{WRITER}") as f:
                    f.write(json.dumps({"lease": self._lease.id}).encode())
            if self._tmp != self.path:
                with fs.open_output_stream(f"{inner}/{OWNER}") as f:
                    f.write(json.dumps(_owner()).encode())
                clear_leftovers(self.root, f"{self.stage}-{self.hash}", keep=self._tmp)
        return self._tmp

    def _take_lease(self) -> None:
        """In-place folders are cleared and rewritten by whoever writes them: the lease
        ``.<stage>-<hash>.lock`` beside the folder keeps a second run of the same stage out (of
        this job, or of another job whose stage hashes the same) until this one commits."""
        from lrl.data.lease import Lease

        self._lease = Lease(f"{self.root}/.{self.stage}-{self.hash}.lock",
                            f"{self.stage} stage, pid {os.getpid()}", RootBusy, still_mine=self._mark_is_mine)
        self._lease.acquire()
        if self.done:  # the holder it waited for committed in the meantime: keep its folder
            self._release()
            raise RootBusy(f"{self.path} was finished by another run while this one waited; run again to use it")

    def _mark_is_mine(self) -> bool | None:
        """Whether the in-place folder's writer mark names this run's lease: False when it is gone
        or names another (a taker cleared the folder), None when it cannot be read now."""
        if self._lease is None:
            return False
        fs, inner = filesystem(self.path)
        try:
            with fs.open_input_stream(f"{inner}/{WRITER}") as f:
                mark = json.loads(f.read().decode())
        except FileNotFoundError:
            return False
        except (OSError, ValueError):
            return None
        return isinstance(mark, dict) and mark.get("lease") == self._lease.id

    def _writing_here(self) -> bool:
        """Whether this run still holds its in-place folder: the folder's writer mark names its
        lease (a late renewal of a stalled run could overwrite a taker's lease record, but not
        bring back the mark the taker cleared). A mark that cannot be read is read again; one
        that stays unreadable is an ``OSError``, not a takeover."""
        if self._lease is None or self._lease.lost:
            return False
        for i in range(3):
            mine = self._mark_is_mine()
            if mine is not None:
                return mine
            time.sleep(1.0 + i)
        raise OSError(f"{self.path}/{WRITER}: cannot be read to tell whether this run still writes the folder")

    def _release(self) -> None:
        if self._lease is not None:
            self._lease.release()
            self._lease = None

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
        if self._tmp != self.path:  # bookkeeping of the unfinished folder, not part of the output
            with contextlib.suppress(FileNotFoundError):
                fs.delete_file(f"{tmp_inner}/{OWNER}")
        if self._tmp == self.path:
            if not self._writing_here():  # taken over: the folder is the other run's now
                self._tmp = None
                self._release()
                raise RootBusy(f"{self.path}: another run took over this stage's lease while this one stalled, "
                               "so its folder is not marked finished (it is the other run's now); run again")
            fs.delete_file(f"{tmp_inner}/{WRITER}")
        with fs.open_output_stream(f"{tmp_inner}/{MANIFEST}") as f:
            f.write(json.dumps(full, indent=2, ensure_ascii=False, default=str).encode())
        if self._tmp == self.path:  # written in place (object store): the manifest was the commit
            self._tmp = None
            self._release()
            return self.path
        _, final_inner = filesystem(self.path)
        if fs.get_file_info(final_inner).type != pafs.FileType.NotFound and not self.done:
            # An unfinished leftover (no manifest) from a crashed run of an older layout.
            fs.delete_dir(final_inner)
        try:
            # rename(2): fails when the final folder exists and is not empty, so a concurrent
            # run that committed since the check above keeps its folder (it was deleted and
            # replaced while its next stages may have been reading it).
            fs.move(tmp_inner, final_inner)
        except OSError:
            if not self.done:
                raise
            self.abort()
            return self.path
        self._tmp = None
        clear_leftovers(self.root)  # of runs killed while this one ran (named at the next start)
        return self.path

    def abort(self) -> None:
        """Remove the temporary folder (best effort; leftovers never look finished anyway)."""
        try:
            if self._tmp is not None:
                if self._tmp == self.path:  # in place: only while it is still this run's folder
                    if self._writing_here():
                        fs, inner = filesystem(self._tmp)
                        fs.delete_dir(inner)
                elif is_uri(self._tmp):
                    fs, inner = filesystem(self._tmp)
                    fs.delete_dir(inner)
                else:
                    shutil.rmtree(self._tmp, ignore_errors=True)
        except OSError as exc:  # best effort: the stage's own error is the news, and a folder
            log.warning("could not remove %s: %s (it has no manifest: never taken as finished)", self._tmp, exc)
        finally:
            self._tmp = None
            self._release()  # else its lease was renewed, and the stage was busy, for the process's life


def _machine() -> dict[str, Any]:
    """What tells this machine and process namespace from others: a pid means something only
    where host, boot and pid namespace are all the same (containers may share a hostname)."""
    boot = Path("/proc/sys/kernel/random/boot_id")
    try:
        pidns: int | None = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        pidns = None
    return {"host": socket.gethostname(), "boot": boot.read_text().strip() if boot.is_file() else None,
            "pidns": pidns}


def _owner() -> dict[str, Any]:
    import psutil

    return {**_machine(), "pid": os.getpid(), "started": psutil.Process().create_time()}


def owner_alive(owner: Any) -> bool | None:
    """Whether the process that wrote a temporary folder still runs: False only when that is
    certain (same machine and the pid is gone, a zombie, or now another process), None when it
    cannot be told (another host or container, a reboot, no or a bad owner record)."""
    import psutil

    if not isinstance(owner, dict) or any(owner.get(k) != v for k, v in _machine().items()):
        return None
    try:
        proc = psutil.Process(int(owner["pid"]))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        # A pid reused by a later process: psutil derives both times from the same boot time.
        return abs(proc.create_time() - float(owner["started"])) < 1.0
    except psutil.NoSuchProcess:
        return False
    except (psutil.Error, KeyError, TypeError, ValueError):
        return None


def clear_leftovers(root: str, key: str | None = None, keep: str | None = None) -> list[str]:
    """Remove the temporary stage folders under a local ``root`` whose writer was killed (its
    owner is on this machine and gone) and return the ones of ``key`` (``<stage>-<hash>``) that
    cannot be judged, after naming them in one line on stderr.

    A kill -9, the OOM killer or a lost node leaves such a folder behind (GBs, never reused), and
    every later run finished beside it. A folder whose owner still runs, or may (another host:
    a concurrent run of the same config), is never touched; those of ``key`` are named so that
    someone can remove them once nothing runs. Object stores clear their leftovers in ``tmp``."""
    if is_uri(root) and not root.startswith("file://"):
        return []
    folder = local_path(root)
    try:
        entries = sorted(p for p in folder.iterdir() if _TMP_NAME.fullmatch(p.name))
    except OSError:
        return []
    unjudged = []
    for p in entries:
        if keep is not None and p == local_path(keep):
            continue
        try:
            owner = json.loads((p / OWNER).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # written before owners were recorded, or being written now
            owner = None
        alive = owner_alive(owner)
        if alive is False:
            shutil.rmtree(p, ignore_errors=True)
        elif alive is None and key is not None and _TMP_NAME.fullmatch(p.name)["key"] == key:
            unjudged.append(str(p))
    if unjudged:
        print(f"warning: {len(unjudged)} unfinished temporary folder(s) of {key} whose run may still go on "
              f"(another host or container, before a reboot, or no owner record); remove them once no "
              f"run uses them: {' '.join(unjudged)}", file=sys.stderr)
    return unjudged


class RootBusy(InputError):
    """Another run of the same job holds its lock on the output root (``root_lock``): the command
    says so in one line (an ``InputError``, exit status 2)."""


def local_path(path: str) -> Path:
    """A local path as ``Path`` (stages that need local files, e.g. tokenizers, use this)."""
    if is_uri(path) and not path.startswith("file://"):
        raise ValueError(f"{path}: this stage needs a local path")
    return Path(path.removeprefix("file://"))


def ensure_dir(path: str) -> None:
    fs, inner = filesystem(path)
    fs.create_dir(inner, recursive=True)


__all__ = ["StageOutput", "input_print", "MANIFEST", "OWNER", "RootBusy", "package_versions",
           "clear_leftovers", "owner_alive", "local_path", "ensure_dir"]
