"""The token file of Ray's token authentication, made once per machine without a race.

Ray 2.60 turns token authentication on for a new local Ray and, when no token exists, writes a new
one to ``~/.ray/auth_token`` in place (``generate_and_save_token``). Two Rays starting at once on a
machine without the file (two ``lrl`` commands, the test processes of ``pytest -n`` on a fresh CI
machine) each wrote their own: one Ray's processes could read the other's token, or half of it,
and refuse each other. Made here first, the file is created whole and never replaced: every Ray
then reads the same token and Ray generates none.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def default_token_path() -> Path:
    """Where Ray looks when neither ``RAY_AUTH_TOKEN`` nor ``RAY_AUTH_TOKEN_PATH`` is set."""
    return Path.home() / ".ray" / "auth_token"


def ensure_token_file() -> None:
    """Create ``~/.ray/auth_token`` if a local Ray would generate it (token mode on or left to
    Ray's default, no token given otherwise). Written to a file of this process and linked into
    place: a reader sees no file or the whole token, and a concurrent creator keeps the first
    one's. A home that cannot be written is left to Ray (it fails there with its own error)."""
    if os.environ.get("RAY_AUTH_MODE", "token").lower() != "token":
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return
    path = default_token_path()
    if path.exists():
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))  # what Ray's generate_new_authentication_token makes
        with contextlib.suppress(FileExistsError):  # another process made it first: keep that one
            os.link(tmp, path)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
