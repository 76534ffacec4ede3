"""Checks made before ``ray.init`` joins a cluster at an address (``ray.address`` or
``RAY_ADDRESS``): a wrong address or a missing token fails in seconds with one line saying what to
set, instead of Ray's minutes of retry warnings and a traceback."""

from __future__ import annotations

import contextlib
import os
import socket
import sys

from lrl.config import ConfigError

#: Seconds to wait for a TCP connection to the address. Ray 2.60 retried an address where nothing
#: listened for over two minutes, printing only "Failed to connect to GCS" warnings.
CONNECT_TIMEOUT_S = 5.0


def host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT``, ``ray://HOST:PORT`` or ``[IPv6]:PORT``; None when the
    address names no port (``auto``, a bare host): Ray then finds or reports it itself."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not host or "://" in host:  # http://: init_ray says what it is
        return None
    return host.strip("[]"), int(port)


def check_reachable(address: str, where: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise ``ConfigError`` unless something accepts a TCP connection at ``address``'s port."""
    target = host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as exc:
        reason = (f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError)
                  else (exc.strerror or str(exc)).lower())
        start = ("a Ray Client server listens on the head's --ray-client-server-port (10001 by default)"
                 if address.startswith("ray://") else "start the cluster (`ray start --head --port=PORT`)")
        raise ConfigError(
            f"{where}={address}: no Ray cluster answers there ({reason}). Check that {start}, or fix the "
            "address; unset it to run on an embedded local Ray") from None


def _token_available() -> bool:
    """Whether Ray finds a token (``RAY_AUTH_TOKEN``, the file named by ``RAY_AUTH_TOKEN_PATH``,
    ``~/.ray/auth_token``) whatever the mode; False if Ray moves this private name."""
    try:
        from ray._raylet import AuthenticationTokenLoader
    except ImportError:
        return False
    return AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True)


def _probe(address: str, timeout: float) -> str | None:
    """One key-value read from the GCS at ``address``: "ok", "auth" (it rejected this process's
    token or its lack of one; answered at once) or None (anything else: left to ``ray.init``)."""
    try:
        from ray._raylet import GcsClient
        from ray.exceptions import AuthenticationError
    except ImportError:
        return None
    try:
        GcsClient(address=address).internal_kv_get(b"session_name", namespace=b"session", timeout=timeout)
    except AuthenticationError:
        return "auth"
    except Exception:
        return None
    return "ok"


def _token_mode() -> bool:
    """Token authentication on for this process and the ones it starts, as Ray turns it on (the
    mode in the environment, Ray's cached config read again); False if Ray moves that name."""
    try:
        from ray._private.authentication.authentication_token_setup import _enable_token_auth
    except ImportError:
        return False
    _enable_token_auth()
    return True


@contextlib.contextmanager
def _stderr_silenced():
    """fd 2 to /dev/null: Ray's C++ client logs a warning line there when the GCS rejects a call,
    which the first probe of a cluster with token authentication gets, and which lrl reports
    itself when it stays."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def check_token(address: str, where: str, timeout: float = 5.0) -> None:
    """Token authentication on for this process when the cluster at ``address`` asks for it,
    ``RAY_AUTH_MODE`` is unset and a token is available; a ``ConfigError`` when the cluster still
    rejects this process.

    That is how ``ray start --head`` decides for the head (Ray 2.60,
    ``maybe_enable_token_auth_if_token_available``) and what ``ray.init(address="auto")`` does, but
    ``ray.init`` with an explicit address never turns it on: joining a head that had found
    ``~/.ray/auth_token`` (written by lrl's embedded runs) failed after ~20 s of "InvalidAuthToken"
    warnings. It is turned on only when the cluster asks: a driver in token mode on a cluster
    without it refuses the cluster's own calls (its workers' object fetches failed with
    OwnerDiedError). Left alone if Ray moves these private names."""
    with _stderr_silenced():
        answer = _probe(address, timeout)
        if answer == "auth" and os.environ.get("RAY_AUTH_MODE") is None and _token_available() and _token_mode():
            answer = _probe(address, timeout)
    if answer == "auth":
        mode = os.environ.get("RAY_AUTH_MODE")
        extra = f" (RAY_AUTH_MODE={mode} is set here)" if mode and mode != "token" else ""
        raise ConfigError(
            f"{where}={address}: the Ray cluster uses token authentication and rejected this "
            f"machine's token or its lack of one{extra}. Set RAY_AUTH_TOKEN to the cluster's token "
            "(`ray get-auth-token` on the head), or RAY_AUTH_TOKEN_PATH to a file holding it, and "
            "RAY_AUTH_MODE=token")


def check_join(address: str, where: str) -> None:
    """Everything before ``ray.init(address=address)``; ``where`` names the setting the address
    came from (``ray.address`` or ``RAY_ADDRESS``). ``auto`` is left to Ray (it finds the local
    cluster and its token itself); a ``ray://`` (Ray Client) address is only checked for a listener."""
    if address == "auto":
        return
    check_reachable(address, where)
    if address.startswith("ray://"):
        return
    check_token(address, where)
