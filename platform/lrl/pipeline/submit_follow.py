"""Following a job ``lrl submit`` sent: the cluster token it sends, the ``ray job`` commands it
prints for later, the log stream beside the status polls, and the exit status and reason it
reports when the job ends (split from ``lrl.pipeline.submit``, which builds and sends the job)."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from pathlib import Path
from typing import Any

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def auth_token() -> str | None:
    """The cluster token from the environment or the token file; None when there is none."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    candidates = [os.environ.get("RAY_AUTH_TOKEN_PATH"), str(Path.home() / ".ray" / "auth_token")]
    for path in filter(None, candidates):
        p = Path(path).expanduser()
        if p.is_file():
            return p.read_text(encoding="utf-8").strip() or None
    return None


def auth_headers() -> dict[str, str]:
    token = auth_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


def ray_job(verb: str, job_id: str, address: str | None = None) -> str:
    """A ``ray job VERB`` command line to print for later, as it must be typed to work.

    Ray's CLI sends the cluster token only under ``RAY_AUTH_MODE=token`` (lrl sends it itself, so
    ``lrl submit`` worked without it): with a token found and that variable unset, as after the
    KubeRay or ``ray up`` steps, the printed commands failed with "Authentication required"."""
    prefix = "RAY_AUTH_MODE=token " if auth_token() and os.environ.get("RAY_AUTH_MODE") != "token" else ""
    where = f" --address {shlex.quote(address)}" if address else ""
    return f"{prefix}ray job {verb}{' ' + job_id if job_id else ''}{where}"


def follow_up(address: str, job_id: str) -> str:
    return (f"  {ray_job('status', job_id, address)}\n"
            f"  {ray_job('logs', job_id, address)} --follow\n"
            f"  {ray_job('stop', job_id, address)}")


async def _tail(client: Any, job_id: str) -> None:
    async for chunk in client.tail_job_logs(job_id):
        sys.stdout.write(chunk)
        sys.stdout.flush()


async def follow(client: Any, job_id: str, poll_s: float = 2.0, drain_s: float = 15.0,
                 max_poll_failures: int = 10, address: str | None = None) -> str:
    """Stream the job's logs until the job ends and return its final status.

    The status is polled beside the log stream, not after it: the stream is a websocket through the
    dashboard and can stall or break while the job runs on; the client must still see the end. Once
    the job is over the stream gets ``drain_s`` to deliver what is left (the logs stay on the
    cluster: ``ray job logs``). A status poll that fails (the dashboard restarting, a network blip)
    is retried; ``max_poll_failures`` failures in a row end the wait with the last error."""
    tail = asyncio.create_task(_tail(client, job_id))
    warned, failures, logs = False, 0, ray_job("logs", job_id, address)
    while True:
        if tail.done():  # the stream can end a moment before the status settles
            await asyncio.sleep(min(poll_s, 0.5))
        else:
            await asyncio.wait({tail}, timeout=poll_s)
        if tail.done() and tail.exception() is not None and not warned:
            print(f"\n[lrl submit] the log stream broke ({tail.exception()!r}); waiting for the job's status "
                  f"(full logs: {logs})", file=sys.stderr, flush=True)
            warned = True
        try:
            status = str((await asyncio.to_thread(client.get_job_status, job_id)).value)
        except Exception as exc:  # the job runs on without us: keep asking, for a while
            failures += 1
            if failures >= max_poll_failures:
                tail.cancel()
                raise
            print(f"\n[lrl submit] could not read the job's status ({exc!r}); retrying", file=sys.stderr, flush=True)
            continue
        failures = 0
        if status in TERMINAL:
            break
    try:  # a stalled or broken stream: the status is what counts
        await asyncio.wait_for(asyncio.shield(tail), drain_s)
    except asyncio.TimeoutError:
        tail.cancel()
        print(f"\n[lrl submit] the log stream did not finish within {drain_s:.0f} s of the job's end; "
              f"full logs: {logs}", file=sys.stderr, flush=True)
    except Exception as exc:
        if not warned:
            print(f"\n[lrl submit] the log stream broke ({exc!r}); full logs: {logs}",
                  file=sys.stderr, flush=True)
    return status


#: Lines of the cluster's reason for a failed job shown (a failed pip install ends with pip's
#: own error after ~40 lines of Ray's traceback).
REASON_LINES = 12


def exit_status(client: Any, job_id: str, status: str, address: str | None = None) -> int:
    """0 for a job that succeeded; otherwise the exit status of the cluster's ``lrl run`` (2 for a
    config or input error, as on a laptop), or 1 when the cluster does not say (stopped before it
    ran, the runtime_env failed). For a job that did not succeed it prints why, as the cluster says:
    a job whose runtime_env failed (a pip requirement that does not install, an image that does not
    pull) never started ``lrl run``, so no log line came back and the user saw a bare "FAILED"."""
    if status == "SUCCEEDED":
        return 0
    try:
        info = client.get_job_info(job_id)
    except Exception:  # the status is known; the code and the reason are details
        info = None
    code = getattr(info, "driver_exit_code", None)
    message = str(getattr(info, "message", "") or "").rstrip()
    if "ENTRYPOINT" in str(getattr(info, "error_type", "") or ""):
        # its log (the error included) came back above; Ray's message only repeats its tail
        print(f"the cluster's `lrl run` exited with status {code}; its log is above "
              f"(again: {ray_job('logs', job_id, address)})", file=sys.stderr, flush=True)
    elif message:
        lines = message.splitlines()
        shown = lines[-REASON_LINES:] if len(lines) > REASON_LINES else lines
        more = f"\n  (last {REASON_LINES} of {len(lines)} lines: {ray_job('status', job_id, address)} shows it all)" \
            if len(lines) > REASON_LINES else ""
        print(f"why, as the cluster says ({getattr(info, 'error_type', None) or status}):\n  "
              + "\n  ".join(shown) + more, file=sys.stderr, flush=True)
    return code if isinstance(code, int) and 0 < code < 256 else 1
