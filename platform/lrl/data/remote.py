"""Folders on object stores (s3://, gs://) for code that only reads and writes local files.

Hugging Face ``from_pretrained``/``save_pretrained``, the tokenizers library and the HTML report
open local paths only: under an ``output.root`` on an object store they failed, or wrote a local
folder named ``s3:/...`` in the working directory. ``local_folder`` gives them a local copy of a
remote folder (per machine, so Ray tasks and Train workers on any node call it themselves), and
``local_output`` a local folder whose files go to the remote one when the block ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator

import pyarrow.fs as pafs

from lrl.data.files import InputError, filesystem, is_uri

#: Where ``local_folder`` keeps its copies (default: ``<tmp>/lrl-remote``).
CACHE_ENV = "LRL_REMOTE_CACHE"
#: A copy unused this long is removed when another folder is fetched (every stage output a node
#: reads is copied there: models of hundreds of MB each, for good otherwise).
KEEP_S = 7 * 86400


def is_remote(path: str) -> bool:
    """True for a URI other than ``file://`` (object stores and other filesystems pyarrow knows)."""
    return is_uri(path) and not path.startswith("file://")


def absolute(path: str) -> str:
    """An absolute local path (Ray's workers do not run in the driver's folder); a URI as is."""
    return path if is_uri(path) else os.path.abspath(path)


def is_file(path: str) -> bool:
    """Whether ``path`` is a file, on any filesystem (``Path.is_file`` is False for every URI)."""
    fs, inner = filesystem(path)
    return fs.get_file_info(inner).type == pafs.FileType.File


def is_dir(path: str) -> bool:
    """Whether ``path`` is a folder, on any filesystem (on an object store: a prefix with objects)."""
    fs, inner = filesystem(path)
    return fs.get_file_info(inner).type == pafs.FileType.Directory


def _listing(path: str) -> list[pafs.FileInfo]:
    fs, inner = filesystem(path)
    try:
        infos = fs.get_file_info(pafs.FileSelector(inner, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise InputError(f"{path}: cannot list the folder ({exc})") from exc
    return [i for i in infos if i.type == pafs.FileType.File]


def local_folder(path: str) -> str:
    """A local path with the files of the folder ``path``: ``path`` itself when local, else a copy.

    The copy is keyed by the URI and the folder's listing (names, sizes, times), so a folder
    written again under the same name (a stage output removed and rebuilt) is fetched again, and
    an unchanged one only once per machine. It is filled under a temporary name and renamed, so
    concurrent callers (the workers of one node) never read a half-fetched folder."""
    if not is_remote(path):
        return path.removeprefix("file://")
    files = _listing(path)
    if not files:
        raise InputError(f"{path}: no such folder, or it holds no files")
    key = hashlib.sha256("\0".join([path.rstrip("/"), *sorted(f"{i.path}\0{i.size}\0{i.mtime_ns}"
                                                                for i in files)]).encode()).hexdigest()[:16]
    cache = os.environ.get(CACHE_ENV) or os.path.join(tempfile.gettempdir(), "lrl-remote")
    dest = os.path.join(cache, f"{path.rstrip('/').rsplit('/', 1)[-1]}-{key}")
    if os.path.isdir(dest):
        with contextlib.suppress(OSError):
            os.utime(dest)  # used: kept by _prune
        return dest
    _prune(cache)
    tmp = f"{dest}.tmp-{uuid.uuid4().hex[:8]}"
    os.makedirs(tmp)
    try:
        fs, inner = filesystem(path)
        pafs.copy_files(inner, tmp, source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
        try:
            os.rename(tmp, dest)
        except OSError:  # another process of this machine fetched it first: same files
            if not os.path.isdir(dest):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _prune(cache: str) -> None:
    """Remove the copies (and fetches cut short) in ``cache`` unused for ``KEEP_S`` seconds."""
    now = time.time()
    for name in os.listdir(cache) if os.path.isdir(cache) else []:
        path = os.path.join(cache, name)
        with contextlib.suppress(OSError):
            if now - os.stat(path).st_mtime > KEEP_S:
                shutil.rmtree(path)


def upload_folder(local: str, dest: str, last: tuple[str, ...] = ()) -> None:
    """Copy the files of the local folder ``local`` into ``dest`` (any filesystem); the files
    named in ``last`` (relative names) go after all others, so that their presence says the rest
    is there (an upload cut short leaves them out)."""
    fs, inner = filesystem(dest)
    fs.create_dir(inner, recursive=True)
    names = sorted(os.path.relpath(os.path.join(d, f), local) for d, _, files in os.walk(local) for f in files)
    for rel in sorted(names, key=lambda n: n in last):
        target = f"{inner.rstrip('/')}/{rel}"
        if "/" in rel:
            fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        pafs.copy_files(os.path.join(local, rel), target, source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=fs)


@contextlib.contextmanager
def local_output(path: str) -> Iterator[str]:
    """A local folder to write ``path``'s files into: ``path`` itself when local (created), else a
    temporary folder uploaded to ``path`` when the block ends without an error."""
    if not is_remote(path):
        local = path.removeprefix("file://")
        os.makedirs(local, exist_ok=True)
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="lrl-upload-") as tmp:
        yield tmp
        upload_folder(tmp, path)


def remove_folder(path: str) -> None:
    """Remove the folder ``path`` (any filesystem) if it exists; OSError when it cannot."""
    if not is_remote(path):
        if os.path.exists(path.removeprefix("file://")):
            shutil.rmtree(path.removeprefix("file://"))
        return
    fs, inner = filesystem(path)
    if fs.get_file_info(inner).type != pafs.FileType.NotFound:
        fs.delete_dir(inner)


__all__ = ["absolute", "is_dir", "is_file", "is_remote", "local_folder", "upload_folder", "local_output", "remove_folder", "CACHE_ENV",
           "KEEP_S"]
