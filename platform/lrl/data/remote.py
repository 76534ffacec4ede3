"""Folders on object stores (s3://, gs://) for code that only reads and writes local files.

Hugging Face ``from_pretrained``/``save_pretrained``, the tokenizers library and the HTML report
open local paths only: under an ``output.root`` on an object store they failed, or wrote a local
folder named ``s3:/...`` in the working directory. ``local_folder`` gives them a local copy of a
remote folder (per machine, so Ray tasks and Train workers on any node call it themselves), and
``local_output`` a local folder whose files go to the remote one when the block ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import logging
import os
import shutil
import stat
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator

import pyarrow.fs as pafs

from lrl.data.files import InputError, filesystem, is_uri

#: Where ``local_folder`` keeps its copies (default: ``<tmp>/lrl-remote-<uid>``, ``cache_dir``).
CACHE_ENV = "LRL_REMOTE_CACHE"
#: A copy unused this long is removed when another folder is fetched (every stage output a node
#: reads is copied there: models of hundreds of MB each, for good otherwise).
KEEP_S = 7 * 86400

log = logging.getLogger(__name__)
#: Cache folders whose lock files could not be locked, warned about once per process.
_UNLOCKED: set[str] = set()


def is_remote(path: str) -> bool:
    """True for a URI other than ``file://`` (object stores and other filesystems pyarrow knows)."""
    return is_uri(path) and not path.startswith("file://")


def absolute(path: str) -> str:
    """An absolute local path (Ray's workers and later runs reading a state file do not run in the
    driver's folder, where a relative path named another folder); a URI as is."""
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
    an unchanged one only once per machine: concurrent callers of one machine (the Ray Train
    workers or Tune trials of a node) take a lock beside the copy, and while the first fetches
    the others wait, then reuse its copy. It is filled under a temporary name and renamed, so a
    fetch cut short (a killed process) is never taken for a copy. A copy whose names and sizes
    differ from the listing (the folder rewritten or partly deleted meanwhile by another node)
    is thrown away and fetched again with a new listing; twice so: InputError."""
    if not is_remote(path):
        return path.removeprefix("file://")
    for _ in range(2):
        files = _listing(path)
        if not files:
            raise InputError(f"{path}: no such folder, or it holds no files")
        dest = _fetch(path, files)
        if dest is not None:
            return dest
    raise InputError(f"{path}: the folder changed while it was copied, twice; is another run writing it?")


def _fetch(path: str, files: list[pafs.FileInfo]) -> str | None:
    """The copy of ``path`` keyed by its listing ``files``: fetched under the lock unless there
    already; None (nothing kept) when what was copied is not what ``files`` lists."""
    key = hashlib.sha256("\0".join([path.rstrip("/"), *sorted(f"{i.path}\0{i.size}\0{i.mtime_ns}"
                                                                for i in files)]).encode()).hexdigest()[:16]
    cache = cache_dir()
    dest = os.path.join(cache, f"{path.rstrip('/').rsplit('/', 1)[-1]}-{key}")
    with _fetch_lock(dest, path, cache) as locked:
        if locked:
            # Only lock holders make them, so one there now is a killed fetch's: without this it
            # stayed (a model's size) until pruned a week later.
            for stale in glob.glob(glob.escape(dest) + ".tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
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
            if _sizes(tmp) != {i.path[len(inner.rstrip("/")) + 1:]: i.size for i in files}:
                return None  # changed meanwhile: the copy would be cached under the old listing's key
            try:
                os.rename(tmp, dest)
            except OSError:  # fetched meanwhile (unlocked, or under a lock file pruned and made again)
                if not os.path.isdir(dest):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _sizes(folder: str) -> dict[str, int]:
    """Relative name (``/``-separated) -> size of every file under the local ``folder``."""
    return {os.path.relpath(os.path.join(d, f), folder).replace(os.sep, "/"): os.path.getsize(os.path.join(d, f))
            for d, _, names in os.walk(folder) for f in names}


@contextlib.contextmanager
def _fetch_lock(dest: str, path: str, cache: str) -> Iterator[bool]:
    """Hold the lock of the copy ``dest`` of ``path``; yields whether it is held.

    Without it N workers of one node each downloaded the whole folder (a model: N times hundreds
    of MB) and all but one copy were thrown away. A cache on a filesystem without locks (some
    NFS and Lustre mounts: ENOLCK) failed every remote read; it now fetches unlocked (concurrent
    callers may each download; the copies are the same files) after one warning per process."""
    with open(dest + ".lock", "a") as lock:
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # say why this worker stalls (a model's download: minutes)
                print(f"waiting for another process's fetch of {path}", file=sys.stderr, flush=True)
                fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError as exc:
            if cache not in _UNLOCKED:
                _UNLOCKED.add(cache)
                log.warning("cannot lock files in %s (%s): remote folders are fetched unlocked, maybe once per "
                            "worker; set %s to a local folder", cache, exc, CACHE_ENV)
            yield False
            return
        with contextlib.suppress(OSError):
            os.utime(dest + ".lock")  # in use: not pruned while held
        yield True


def cache_dir() -> str:
    """The folder of ``local_folder``'s copies: ``LRL_REMOTE_CACHE``, else ``<tmp>/lrl-remote-<uid>``.

    Per user, created private (0700): a shared folder was created 0755 by its first user (the
    others' fetches failed with PermissionError), and its predictable names let another local
    user plant a folder there that was then loaded as a model. One of this user that only others
    can read (made by hand or in a container image: 0755) is made 0700; one of another user, a
    symlink, not a folder, or writable by others is refused."""
    env = os.environ.get(CACHE_ENV)
    if env:
        os.makedirs(env, exist_ok=True)
        return env
    path = os.path.join(tempfile.gettempdir(), f"lrl-remote-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise InputError(f"{path}: not a private folder of this user (owner uid {st.st_uid}, mode "
                         f"{stat.S_IMODE(st.st_mode):o}); remove it or set {CACHE_ENV} to another folder")
    if st.st_mode & 0o077:  # nobody else could write into it: nothing planted, only readable
        os.chmod(path, 0o700)
    return path


def _prune(cache: str) -> None:
    """Remove the copies (and fetches cut short) in ``cache`` unused for ``KEEP_S`` seconds."""
    now = time.time()
    for name in os.listdir(cache) if os.path.isdir(cache) else []:
        path = os.path.join(cache, name)
        with contextlib.suppress(OSError):
            if now - os.stat(path).st_mtime > KEEP_S:
                if os.path.isdir(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)  # a lock file: recreated by the next fetch of its folder


def upload_folder(local: str, dest: str, last: tuple[str, ...] = ()) -> None:
    """Copy the files of the local folder ``local`` into ``dest`` (any filesystem); the files
    named in ``last`` (file names, in any subfolder: a model folder inside a stage's) go after
    all others, so that their presence says the rest is there (an upload cut short leaves them out)."""
    fs, inner = filesystem(dest)
    fs.create_dir(inner, recursive=True)
    names = sorted(os.path.relpath(os.path.join(d, f), local) for d, _, files in os.walk(local) for f in files)
    for rel in sorted(names, key=lambda n: os.path.basename(n) in last):
        target = f"{inner.rstrip('/')}/{rel}"
        if "/" in rel:
            fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        pafs.copy_files(os.path.join(local, rel), target, source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=fs)


#: Uploaded after every other file by ``local_output``: readers take a folder holding them for a
#: finished model or tokenizer (``tune.splits.resolve_model``, evaluate's model finder,
#: ``finetune.model=s3://...``), and in name order they went up before the weights.
LAST_FILES = ("config.json", "tokenizer_config.json")


@contextlib.contextmanager
def local_output(path: str, last: tuple[str, ...] = LAST_FILES) -> Iterator[str]:
    """A local folder to write ``path``'s files into: ``path`` itself when local (created), else a
    temporary folder uploaded to ``path`` when the block ends without an error, the files named
    in ``last`` after the others (``upload_folder``)."""
    if not is_remote(path):
        local = path.removeprefix("file://")
        os.makedirs(local, exist_ok=True)
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="lrl-upload-") as tmp:
        yield tmp
        upload_folder(tmp, path, last=last)


def remove_folder(path: str) -> None:
    """Remove the folder ``path`` (any filesystem) if it exists; OSError when it is still there.

    A local folder is removed file by file past the ones that cannot be (an NFS ``.nfsXXXX``
    file of an open one): stopping at the first left most of a multi-GB folder behind."""
    if not is_remote(path):
        local = path.removeprefix("file://")
        shutil.rmtree(local, ignore_errors=True)
        if os.path.exists(local):
            raise OSError(f"{local}: could not be removed completely")
        return
    fs, inner = filesystem(path)
    if fs.get_file_info(inner).type != pafs.FileType.NotFound:
        fs.delete_dir(inner)


__all__ = ["absolute", "cache_dir", "is_dir", "is_file", "is_remote", "local_folder", "upload_folder", "local_output",
           "remove_folder", "CACHE_ENV", "KEEP_S", "LAST_FILES"]
