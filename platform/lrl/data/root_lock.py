"""One run of a job at a time per output root: ``flock`` on local roots, a lease object
(``lrl.data.lease``) on object stores."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from lrl.data.files import InputError, is_uri
from lrl.data.output import RootBusy, local_path

log = logging.getLogger(__name__)


def lock_file(root: str, job: str) -> Path:
    """The lock file of ``job`` on a local output ``root``: hidden, never a stage folder."""
    return local_path(root.rstrip("/")) / f".lrl-{_job_name(job)}.lock"


def _job_name(job: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", job)


@contextlib.contextmanager
def root_lock(root: str, job: str, command: str = "lrl run") -> Iterator[None]:
    """Hold ``job``'s lock on a local output ``root`` while ``command`` runs it; ``RootBusy`` at
    once when another process holds it.

    Two runs of one job on one root share its hidden folders (pretraining's
    ``.pretrain-<hash>.ray``, the finished parts of finetune and tune): the second crashed with a
    30-line traceback in pretraining, or could only race the first. Other jobs on the same root
    (the recipes all write to ``runs``; a cluster's jobs to one volume) name other stage folders
    and go on side by side. The kernel drops the lock with its process (kill -9 too), so it never
    needs removing. A root that cannot be locked (some NFS mounts: ENOLCK; a lock file of another
    user) runs unlocked with a warning. On object stores a lease object stands in for the lock
    (``lrl.data.lease``): a run killed there leaves it, and the next run waits until it expires."""
    import fcntl

    if is_uri(root) and not root.startswith("file://"):
        from lrl.data.lease import Lease

        lease = Lease(f"{root.rstrip('/')}/.lrl-{_job_name(job)}.lock",
                      f"{command} of job {job!r}, pid {os.getpid()}",
                      lambda why: RootBusy(f"job {job!r} is already running on the output root {root}: {why}; wait "
                                           "for it to finish (or stop it), or give this run another output.root"))
        lease.acquire()
        try:
            yield
        finally:
            lease.release()
        return
    path = lock_file(root, job)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file of that name, or a read-only place: a traceback named neither
        raise InputError(f"output.root={root}: cannot make the folder {path.parent} ({exc.strerror or exc}); "
                         "set output.root to a folder (made when missing)") from None
    fd = None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
        os.close(fd)
        raise RootBusy(f"job {job!r} is already running on the output root {path.parent} ({holder}); wait for "
                       "it to finish (or stop it), or give this run another output.root") from None
    except OSError as exc:
        log.warning("could not lock the output root %s (%s): runs of job %r on it are not kept apart",
                    path.parent, exc, job)
        if fd is not None:
            os.close(fd)
        yield
        return
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (f"{command}, pid {os.getpid()} on {socket.gethostname()}, started "
                       f"{time.strftime('%Y-%m-%d %H:%M:%S')}").encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


__all__ = ["root_lock", "lock_file"]
