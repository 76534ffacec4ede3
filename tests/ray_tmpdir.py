"""A Ray temp dir of a test's own for ``ray.cluster_utils.Cluster``.

A Cluster head writes its address to ``<Ray temp dir>/ray_current_cluster`` and its shutdown
deletes that file. Under ``pytest -n`` other test processes run their own Rays beside it, and Ray
reads the file wherever an address is looked up without one (Ray Train's placement-group cleaner
in a worker of the session Ray, ``ray.init()``, ``ray status``): they would have found this test's
cluster instead of their own Ray. ``RAY_TMPDIR`` is read at each lookup, so setting it for the
cluster's lifetime keeps the file (and the node's session folders) in a folder of its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator


def machine_address_file() -> str:
    """The ``ray_current_cluster`` every process of this machine reads (with this environment)."""
    from ray._common.utils import get_ray_address_file

    return get_ray_address_file(None)


@contextlib.contextmanager
def own_ray_tmpdir() -> Iterator[str]:
    from lrl.ray_token import ensure_token_file

    ensure_token_file()  # a Cluster's head, too, would write its own token in place (lrl.ray_token)
    before = os.environ.get("RAY_TMPDIR")
    # Short, under /tmp: Ray's socket paths (<dir>/ray/session_.../sockets/...) stay < 108 bytes.
    path = tempfile.mkdtemp(prefix="lrlc-", dir="/tmp")
    os.environ["RAY_TMPDIR"] = path
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = before
        shutil.rmtree(path, ignore_errors=True)
