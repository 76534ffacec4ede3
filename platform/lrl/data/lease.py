"""A lock on an object store (s3://, gs://): one small JSON object that names its holder and that
the holder renews while it runs.

Local output roots are kept apart by ``flock`` (``lrl.data.root_lock.root_lock``), which the kernel
drops with its process. Object stores have no such lock and, through pyarrow, no conditional
write, so two runs of one job on one ``s3://`` root both ran: the second cleared the first's
in-place stage folder while the first was writing it. A lease stands in for the lock:

- taking it: read the object. When another holder's lease is there, watch it: renewed while
  watching (the holder runs) -> ``busy`` at once; not renewed for ``ttl`` seconds (its run was
  killed: nothing removes a lease then) -> taken over with a warning. Then write this holder's
  record, wait ``settle`` seconds and read it back: when two runs wrote at nearly the same time,
  the store keeps one record, and the other run stops. Object stores read back what was last
  written (S3 and GCS are strongly consistent), so this only fails when a process stalls for
  more than ``settle`` between reading and writing the lease.
- holding it: a daemon thread renews it every ``renew`` seconds; a failed read or write is
  retried at the next renewal. When it finds another holder's record (this run stalled past
  ``ttl`` and was taken over) it stops and marks the lease ``lost``. ``StageOutput`` also leaves
  a writer mark in the folder, which a takeover clears, and that mark decides (``still_mine``):
  a stalled run whose late renewal overwrote its taker's record gives up at its next renewal or
  its commit, and the taker writes its record again.
- giving it back: the object is removed when it is still this holder's.

The store's clock is trusted only for a lease older than twice ``ttl`` (taken over at once);
otherwise the waiting run watches it for ``ttl`` seconds on its own clock.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable

import pyarrow.fs as pafs

from lrl.data.files import filesystem

log = logging.getLogger(__name__)

#: Seconds between renewals of a held lease.
RENEW_S = 10.0
#: A lease not renewed for this long is taken to be left by a killed run, and is taken over.
TTL_S = 60.0
#: Seconds between writing a lease and reading it back (two runs that wrote at nearly one time).
SETTLE_S = 1.0


class Lease:
    """The lease object ``uri``; ``busy(message)`` returns the exception raised when another run
    holds it (``acquire``). ``still_mine``, when given, decides at each renewal whether what the
    lease guards is still this holder's (a stage folder's writer mark), over the record's id."""

    def __init__(self, uri: str, holder: str, busy: Callable[[str], Exception], *,
                 ttl: float | None = None, renew: float | None = None, settle: float | None = None,
                 still_mine: Callable[[], bool | None] | None = None):
        self.uri, self.holder, self._busy = uri, holder, busy
        # Whether what the lease guards is still this holder's (True / False / None: cannot tell)
        self._still_mine = still_mine
        # Read at construction, not import: tests shorten them on the module.
        self.ttl = TTL_S if ttl is None else ttl
        self.renew = RENEW_S if renew is None else renew
        self.settle = SETTLE_S if settle is None else settle
        self.id = uuid.uuid4().hex
        self.lost = False
        self._fs, self._path = filesystem(uri)
        self._count = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self) -> dict | None:
        """The lease's record, None when there is none; an ``OSError`` of the store (a timeout, a
        503) is raised, not taken for another holder: one failed read had lost a long run's lease."""
        try:
            with self._fs.open_input_stream(self._path) as f:
                data = f.read()
        except FileNotFoundError:
            return None
        try:
            record = json.loads(data.decode("utf-8"))
        except ValueError:  # not a lease of ours: judged by whether it changes
            return {"id": "unreadable", "bytes": data[:200].hex()}
        return record if isinstance(record, dict) else {"id": "unreadable", "bytes": data[:200].hex()}

    def _read_retrying(self, tries: int = 3) -> dict | None:
        for i in range(tries):
            try:
                return self._read()
            except OSError:
                if i == tries - 1:
                    raise
                time.sleep(self.settle + 0.5 * i)
        return None  # not reached

    def _write(self) -> None:
        self._count += 1
        record = {"id": self.id, "holder": self.holder, "host": socket.gethostname(), "renewals": self._count,
                  "renewed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        parent = self._path.rsplit("/", 1)[0]
        self._fs.create_dir(parent, recursive=True)
        with self._fs.open_output_stream(self._path) as f:
            f.write(json.dumps(record).encode())

    def _age(self) -> float | None:
        """Seconds since the lease object was last written, by the store's clock against ours
        (None when the store gives no time)."""
        info = self._fs.get_file_info(self._path)
        if info.type != pafs.FileType.File or info.mtime is None:
            return None
        return time.time() - info.mtime.timestamp()

    def acquire(self) -> None:
        """Take the lease (waiting out a killed run's) or raise ``busy``."""
        seen = self._read_retrying()
        if seen is not None and seen.get("id") != self.id:
            self._wait_out(seen)
        self._write()
        time.sleep(self.settle)
        now = self._read_retrying()
        if now is None or now.get("id") != self.id:
            raise self._busy(f"{self.uri} was taken at the same moment by {_who(now)}")
        self._thread = threading.Thread(target=self._keep, name="lrl-lease", daemon=True)
        self._thread.start()

    def _wait_out(self, seen: dict) -> None:
        try:
            age = self._age()
        except OSError:  # no time to judge by: watched like a recent lease
            age = None
        # Clocks differ between machines, and the store's times are whole seconds: only a lease
        # far past its time is judged by them
        if age is not None and age > 2 * self.ttl:
            print(f"warning: taking over the lease {self.uri} of {_who(seen)}, last renewed {age:.0f} s ago "
                  "(its run was killed)", file=sys.stderr)
            return
        print(f"waiting for the lease {self.uri} of {_who(seen)}: it is taken over if not renewed within "
              f"{self.ttl:.0f} s", file=sys.stderr)
        # Taken over only when reads that succeeded saw it unchanged for a whole ttl: a waiter whose
        # own reads failed (throttled) took over a live lease and deleted its holder's folder.
        start = last_ok = time.monotonic()
        while last_ok - start < self.ttl:
            time.sleep(self.renew / 2)
            try:
                now = self._read()
            except OSError as exc:  # a failed look says nothing about the holder: look again
                if time.monotonic() - last_ok > 2 * self.ttl:
                    raise self._busy(f"{self.uri} cannot be read to tell whether {_who(seen)} still runs: "
                                     f"{exc}") from exc
                continue
            if now is None:  # given back: the run ended
                return
            if now != seen:
                raise self._busy(f"{self.uri} is held by {_who(now)}, which is running")
            last_ok = time.monotonic()
        print(f"warning: taking over the lease {self.uri} of {_who(seen)}: not renewed for {self.ttl:.0f} s",
              file=sys.stderr)

    def _keep(self) -> None:
        while not self._stop.wait(self.renew):
            try:
                now = self._read()
                # A stage folder's writer mark says whose the folder is: a stalled run's late
                # renewal could overwrite its taker's record, and then both runs gave up
                mine = self._still_mine() if self._still_mine is not None else None
                if mine is False or (now is not None and now.get("id") != self.id and mine is not True):
                    self.lost = True
                    log.error("lost the lease %s to %s: this run will not mark its output finished",
                              self.uri, _who(now))
                    return
                if now is None or now.get("id") != self.id:
                    log.warning("the lease %s was removed or overwritten (%s) while this run held it; writing "
                                "it again", self.uri, _who(now))
                self._write()
            except OSError as exc:  # a store hiccup: the next renewal tries again, well within ttl
                log.warning("could not renew the lease %s: %s", self.uri, exc)

    def release(self) -> None:
        """Stop renewing and remove the lease if it is still this holder's (best effort)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.renew + 30)  # a store call hung past its retries: go on
            self._thread = None
        try:
            now = self._read()
            if now is not None and now.get("id") == self.id:
                self._fs.delete_file(self._path)
        except OSError as exc:
            log.warning("could not remove the lease %s: %s (it expires in %.0f s)", self.uri, exc, self.ttl)


def _who(record: dict | None) -> str:
    if not record:
        return "nobody"
    return f"{record.get('holder', 'an unknown run')} on {record.get('host', '?')}"


__all__ = ["Lease", "RENEW_S", "TTL_S", "SETTLE_S"]
