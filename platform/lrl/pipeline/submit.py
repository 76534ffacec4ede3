"""``lrl submit PIPELINE.yaml [overrides] [--address URL] [--no-wait]``: run ``lrl run`` on a cluster.

The job goes through the Ray Jobs API: the working directory (job files) and the ``lrl`` package
folder are uploaded as the job's runtime_env (``working_dir`` + ``py_modules``), with pip packages
or a container image from ``pipeline.submit``. The entrypoint is the same ``lrl run`` a laptop runs;
on the cluster ``ray.init()`` joins through ``RAY_ADDRESS``, so nothing branches on "cluster".

Token authentication (on by default since Ray 2.60's ``ray start``) is handled on the client by
sending ``Authorization: Bearer <token>``, read from ``RAY_AUTH_TOKEN``, the file named by
``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token`` (where ``ray get-auth-token --generate`` puts it),
the same sources Ray's own clients read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

import lrl
from lrl.config import SHOWN_ENV, ConfigError, shown_warnings
from lrl.job import JobConfig
from lrl.pipeline.config import ORDER
from lrl.pipeline.submit_follow import auth_headers, exit_status, follow, follow_up, ray_job
from lrl.pipeline.submit_follow import auth_token as auth_token  # re-exported: defined here before the split
from lrl.signals import SIGINT_EXIT, SIGTERM_EXIT, sigterm_received


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="pipeline YAML file (inside the working directory)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides passed on to `lrl run`")
    parser.add_argument("--address", help="job server URL (default: pipeline.submit.address, "
                        "or RAY_API_SERVER_ADDRESS / RAY_ADDRESS when set)")
    parser.add_argument("--no-wait", action="store_true", help="submit, print the job id and return")
    # Checked here as `lrl run` checks them, so that a typo fails before the upload, not on the cluster.
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--from", dest="start", choices=ORDER, metavar="STAGE",
                       help="passed on to `lrl run --from`")
    group.add_argument("--only", choices=ORDER, metavar="STAGE", help="passed on to `lrl run --only`")
    parser.add_argument("--pip", action="append", metavar="REQ",
                        help="pip requirement to install for the job (repeatable; sets pipeline.submit.pip)")
    parser.add_argument("--image-uri", help="container image to run the job in (sets pipeline.submit.image_uri)")
    parser.add_argument("--dry-run", action="store_true", help="print the entrypoint and runtime_env, submit nothing")


def job_address(cli_address: str | None, cfg: JobConfig) -> str:
    """--address, then the environment Ray's CLI reads, then the config."""
    env = os.environ.get("RAY_API_SERVER_ADDRESS") or os.environ.get("RAY_ADDRESS", "")
    if cli_address:
        return cli_address
    if env.startswith("http"):
        return env
    return cfg.pipeline.submit.address


def dashboard_url(address: str, timeout_s: float = 2.0) -> str:
    """``http://`` + ``address`` when a scheme-less ``host:port`` answers HTTP (a dashboard);
    otherwise ``address`` unchanged. Ray takes a bare ``host:port`` for a GCS address, so
    ``--address 127.0.0.1:8265`` (the dashboard's port, without http://) waited 40 s for a GCS
    that was never there and then failed with "Timed out while waiting for GCS"."""
    import urllib.error
    import urllib.request

    if "://" in address or address == "auto" or ":" not in address:
        return address
    try:
        urllib.request.urlopen(f"http://{address}/api/version", timeout=timeout_s).close()
    except urllib.error.HTTPError:  # 401 without the token: still the dashboard answering
        pass
    except Exception:  # no HTTP there (a GCS port, nothing listening): leave it to Ray
        return address
    return f"http://{address}"


def check_listening(address: str, where: str = "--address ", timeout_s: float = 5.0) -> None:
    """A one-line ``ConfigError`` when nothing accepts a TCP connection at a scheme-less
    ``host:port`` (one that answers HTTP became ``http://`` in ``dashboard_url``) or a
    ``ray://host:port``. Ray takes the first for a GCS address and the second for a Ray Client
    server and, with nothing there, printed retry warnings for 40 s before failing; an ``http://``
    address fails at once by itself."""
    from lrl.ray_join import host_port

    target = host_port(address)  # None for http(s):// and auto
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=timeout_s).close()
    except OSError as exc:
        reason = f"no answer within {timeout_s:g} s" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ConfigError(f"{where}{address}: nothing listens there ({reason.lower()}); give the cluster's "
                          "job server (dashboard) URL, e.g. --address http://127.0.0.1:8265, and check "
                          "that the cluster is up and its port forwarded") from None


def entrypoint(config: str, working_dir: str, overrides: list[str], start: str | None, only: str | None) -> str:
    """``python -m lrl.cli run <config relative to working_dir> ...`` (the console script may not
    exist on the cluster: py_modules puts the package on the path, not its scripts)."""
    cfg_path, wd = Path(config).resolve(), Path(working_dir).resolve()
    try:
        rel = cfg_path.relative_to(wd)
    except ValueError:
        raise ConfigError(f"{config}: the pipeline file must lie inside the uploaded working directory "
                          f"{wd} (pipeline.submit.working_dir)") from None
    args = ["python", "-m", "lrl.cli", "run", rel.as_posix(), *overrides]
    if start:
        args += ["--from", start]
    if only:
        args += ["--only", only]
    return shlex.join(args)


def runtime_env(cfg: JobConfig) -> dict[str, Any]:
    """working_dir + py_modules (the lrl package folder) + pip or image_uri + forwarded secrets."""
    sub = cfg.pipeline.submit
    env_vars = {"RAY_USAGE_STATS_ENABLED": "0", "TOKENIZERS_PARALLELISM": "false"}
    # Passed on only when set here: a "0" for an unset variable overrode an offline cluster's own
    # HF_HUB_OFFLINE=1, and every hub lookup there then waited for its network timeouts.
    if os.environ.get("HF_HUB_OFFLINE"):
        env_vars["HF_HUB_OFFLINE"] = os.environ["HF_HUB_OFFLINE"]
    env_vars.update({k: os.environ[k] for k in sub.forward_env if os.environ.get(k)})
    # Temporary AWS credentials (SSO, assume-role) are the key pair plus a session token: the pair
    # alone (the default forward_env) is refused by S3, and on the nodes it also takes precedence
    # over their instance profile, so a job that would have worked without it failed.
    if "AWS_ACCESS_KEY_ID" in env_vars and os.environ.get("AWS_SESSION_TOKEN"):
        env_vars.setdefault("AWS_SESSION_TOKEN", os.environ["AWS_SESSION_TOKEN"])
    if shown_warnings():  # printed here already: the job's log comes back to this terminal
        env_vars[SHOWN_ENV] = json.dumps(shown_warnings(), ensure_ascii=False)
    env: dict[str, Any] = {
        "working_dir": str(Path(sub.working_dir).resolve()),
        "py_modules": [str(Path(lrl.__file__).resolve().parent)],
        "excludes": list(sub.excludes),
        "env_vars": env_vars,
    }
    if sub.pip:
        env["pip"] = list(sub.pip)
    if sub.image_uri:
        env["image_uri"] = sub.image_uri
    return env


#: Above this the submission line names the upload's size. (Ray 2.60's job server takes a zipped
#: package of at most 100 MiB, DASHBOARD_CLIENT_MAX_SIZE, under the GCS cap of 512 MiB: ``upload_cap``.)
NOTE_SIZE = 20 * 1024**2  # above this the submission line names the size: a slow upload, say why


def upload_cap() -> int:
    """The smaller of Ray's two caps on an uploaded package (read from Ray, which may change them)."""
    from ray._private.ray_constants import DASHBOARD_CLIENT_MAX_SIZE
    from ray._private.runtime_env.packaging import GCS_STORAGE_MAX_SIZE

    return min(DASHBOARD_CLIENT_MAX_SIZE, GCS_STORAGE_MAX_SIZE)


def upload_sizes(working_dir: str, excludes: list[str], cap: int) -> dict[str, int]:
    """Bytes per top-level entry of what Ray packs from ``working_dir`` (its default excludes,
    ``excludes``, .gitignore/.rayignore files, with Ray's own matchers), stopping once over ``cap``.
    Ray found an oversized folder (a home directory) only after zipping all of it, and named no
    culprit. Symlinked folders are not entered: one pointing out of the tree (to / or a dataset)
    made the walk endless; uncompressed sizes, so an upper bound of the zip's."""
    from ray._private import ray_constants as rc
    from ray._private.runtime_env import packaging as pk

    root = Path(working_dir).absolute()
    include_gitignore = os.environ.get(rc.RAY_RUNTIME_ENV_IGNORE_GITIGNORE, "0") != "1"
    quiet = logging.getLogger(f"{__name__}.walk")  # Ray logs each ignore file it reads at INFO
    quiet.setLevel(logging.WARNING)
    matchers = [pk._get_excludes(root, rc.get_runtime_env_default_excludes() + list(excludes))]
    sizes: dict[str, int] = {}

    def walk(path: Path) -> bool:  # as Ray's _dir_travel; False once over the cap
        added = pk.get_excludes_from_ignore_files(path, include_gitignore=include_gitignore, logger=quiet)
        matchers.extend(added)
        try:
            if any(m(path) for m in matchers):
                return True
            if path.is_dir() and not path.is_symlink():
                return all(walk(sub) for sub in path.iterdir())
            if path.is_file():
                top = path.relative_to(root).parts[0]
                sizes[top] = sizes.get(top, 0) + path.stat().st_size
            return sum(sizes.values()) <= cap
        finally:
            del matchers[len(matchers) - len(added):]

    walk(root)
    return sizes


def mib(n: int) -> str:
    return f"{n / 1024**2:.1f} MiB"


#: Ray's cap applies to the zip, and sizes are counted before compression: up to this many times
#: the cap the upload is only warned of (text zips 3-4x smaller, weights hardly at all), above it
#: refused before packing (no mix of files zips 10x smaller; a home directory is far above it).
REFUSE_FACTOR = 10


def check_upload_size(cfg: JobConfig) -> int:
    """The upload's size in bytes before compression (at least ``REFUSE_FACTOR`` times the cap
    when the walk stopped there). Over the cap: a warning naming the largest entries (Ray refuses
    the zip if it stays over); over ``REFUSE_FACTOR`` times it: a one-line ``ConfigError``."""
    sub, cap = cfg.pipeline.submit, upload_cap()
    wd = str(Path(sub.working_dir).resolve())
    sizes = upload_sizes(wd, list(sub.excludes), REFUSE_FACTOR * cap)
    total = sum(sizes.values())
    if total > cap:
        top = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
        names = ", ".join(f"{name} ({mib(n)})" for name, n in top)
        what = f"pipeline.submit.working_dir={wd}: {mib(total)} to upload before compression (largest: {names})"
        advice = ("list them in pipeline.submit.excludes or a .gitignore, keep data on storage every node "
                  "sees, or point pipeline.submit.working_dir at a smaller folder")
        if total > REFUSE_FACTOR * cap:
            raise ConfigError(f"{what}, far over Ray's {mib(cap)} cap on the zipped upload; {advice}")
        print(f"warning: {what}: Ray refuses the zip if it stays over {mib(cap)}; {advice}",
              file=sys.stderr, flush=True)
    return total


def check_shared_outputs(cfg: JobConfig) -> None:
    """A ``ConfigError`` (before anything is uploaded) for a relative ``output.root`` or
    ``pipeline.state``. On the cluster a relative path lands in the job's temporary copy of the
    working directory: a warning was all the user got, the job ran and "succeeded", and every stage
    output (and the state file a later ``--from``/``--only`` reads) was left in a folder Ray deletes,
    on the node that wrote it (each node has its own copy), under a name the user never saw."""
    for key, value in (("output.root", cfg.output.root), ("pipeline.state", cfg.pipeline.state)):
        if value and "://" not in value and not os.path.isabs(value):
            raise ConfigError(f"{key}={value!r} is relative: on the cluster it would land in the job's "
                              f"temporary copy of the working directory and be lost; pass a path every node "
                              f"sees or a URI ({key}=/shared/runs, {key}=s3://BUCKET/runs)")


def masked(renv: dict[str, Any], cfg: JobConfig) -> dict[str, Any]:
    """The runtime_env as ``--dry-run`` prints it: the values forwarded from this shell (tokens,
    cloud keys) shown as ``***``. They were printed in full, into terminals and CI logs."""
    secret = {*cfg.pipeline.submit.forward_env, "AWS_SESSION_TOKEN"}
    env = {k: "***" if k in secret else v for k, v in renv.get("env_vars", {}).items()}
    return {**renv, "env_vars": env}


#: The loggers of Ray 2.60's upload: the packaging helpers (their module loggers, under this
#: parent) and the Jobs client's own ("Uploading package gcs://...").
UPLOAD_LOGGERS = ("ray._private.runtime_env", "ray.dashboard.modules.dashboard_sdk")


class DefaultExcludeNotice(logging.Filter):
    """Drops Ray 2.60's "Directory '.git' is now ignored by default ... set
    RAY_OVERRIDE_RUNTIME_ENV_DEFAULT_EXCLUDES=''" warning, printed at every submission from a git
    checkout: lrl excludes ``.git`` itself (``pipeline.submit.excludes``), and following the advice
    would only add a repository's history to an upload capped at 100 MiB."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is now ignored by default when packaging" not in str(record.msg)


#: Where Ray 2.60 logs that warning (``upload_working_dir_if_needed``'s module logger).
WORKING_DIR_LOGGER = "ray._private.runtime_env.working_dir"


def outputs_line(cfg: JobConfig) -> str:
    """Where the job's stage outputs and state file go, printed at submission: the log's stage
    table comes only at the end, hours later or never (--no-wait)."""
    from lrl.pipeline.runner import state_path

    return (f"outputs (as the cluster sees them): {cfg.output.root.rstrip('/')}/<stage>-<hash>, "
            f"state file {state_path(cfg)}")


def submit(cfg: JobConfig, args: argparse.Namespace) -> int:
    from ray.job_submission import JobSubmissionClient

    address = job_address(args.address, cfg)
    check_shared_outputs(cfg)
    # A relative data.root resolves against the current directory here and against the job's copy of
    # the working directory there: the same only for a folder that travels with the upload.
    root, wd = cfg.data.root, Path(cfg.pipeline.submit.working_dir).resolve()
    if root and "://" not in root and not os.path.isabs(root) and not Path(root).resolve().is_relative_to(wd):
        print(f"warning: data.root={root!r} is relative and outside the uploaded working directory {wd}: "
              "on the cluster it resolves inside the job's copy of that folder, where the data is not; "
              "pass a path every node sees (data.root=/data or s3://...)", file=sys.stderr)
    ep = entrypoint(args.config, cfg.pipeline.submit.working_dir, list(args.overrides), args.start, args.only)
    renv = runtime_env(cfg)
    size = check_upload_size(cfg)
    if args.dry_run:
        print(f"address: {address}\nentrypoint: {ep}\nruntime_env: {masked(renv, cfg)}\n"
              f"upload: {mib(size)} (working_dir, uncompressed)\n{outputs_line(cfg)}")
        return 0
    address = dashboard_url(address)
    # (the environment's address is taken only as an http:// URL: job_address)
    check_listening(address, "--address " if args.address else "pipeline.submit.address=")
    try:
        client = JobSubmissionClient(address, headers=auth_headers())
    except Exception as exc:  # connection refused, 401: say what to check
        raise ConfigError(f"cannot reach the Ray job server at {address}: {exc}\n"
                          "  is the cluster up, the dashboard port forwarded, and the token set "
                          "(RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token, see README troubleshooting)?") from None
    # Ray's client logs a dozen INFO lines per upload ("Ignoring upload to cluster for these files:
    # [.gitignore]" once per .gitignore per package, "Creating a file package"): the first screen of
    # every submission. Its warnings (a large file, a package near the size cap) still show.
    note = f" ({mib(size)}: list big files in pipeline.submit.excludes)" if size > NOTE_SIZE else ""
    print(f"uploading {renv['working_dir']}{note} and the lrl package to {address}", flush=True)
    quieted = {name: logging.getLogger(name).level for name in UPLOAD_LOGGERS}
    for name in UPLOAD_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    notice = DefaultExcludeNotice()
    logging.getLogger(WORKING_DIR_LOGGER).addFilter(notice)
    try:
        job_id = client.submit_job(entrypoint=ep, runtime_env=renv,
                                   entrypoint_num_cpus=cfg.pipeline.submit.entrypoint_num_cpus,
                                   metadata={"lrl_job": cfg.name})
    except KeyboardInterrupt:  # during a long upload; the CLI's "finished stages kept" did not apply
        # The request may have reached the job server before the cut: only the cluster knows.
        print(f"\nstopped before {address} confirmed the job; if it was created it runs on: "
              f"{ray_job('list', '', address)} shows it", file=sys.stderr, flush=True)
        return SIGTERM_EXIT if sigterm_received() else SIGINT_EXIT
    except Exception as exc:  # a working directory over Ray's size cap, a refused upload: was a traceback
        hint = ""
        if "413" in str(exc) or "size" in str(exc).lower():
            # Ray 2.60's job server takes a request body of at most 100 MiB (DASHBOARD_CLIENT_MAX_SIZE),
            # less than the 512 MiB package cap its own warnings name
            hint = ("; Ray's job server takes packages of at most 100 MiB: keep data on storage every node "
                    "sees (data.root=/data, s3://...) or list the folder in pipeline.submit.excludes")
        raise ConfigError(f"the job was not submitted to {address}: {exc}\n  uploaded: the working directory "
                          f"{renv['working_dir']} (pipeline.submit.working_dir, less .gitignore and "
                          f"pipeline.submit.excludes) and the lrl package{hint}") from None
    finally:
        logging.getLogger(WORKING_DIR_LOGGER).removeFilter(notice)
        for name, level in quieted.items():
            logging.getLogger(name).setLevel(level)
    print(f"submitted {job_id} to {address}\n{outputs_line(cfg)}\nfollow it with:\n{follow_up(address, job_id)}",
          flush=True)
    if args.no_wait:
        return 0
    try:
        status = asyncio.run(follow(client, job_id, address=address))
    except KeyboardInterrupt:  # Ctrl-C stops the following, not the job: say so, and how to stop it
        print(f"\nstopped following {job_id}; the job runs on. To stop it:\n"
              f"  {ray_job('stop', job_id, address)}", file=sys.stderr, flush=True)
        return SIGTERM_EXIT if sigterm_received() else SIGINT_EXIT  # the status a shell shows for each
    print(f"\njob {job_id}: {status}")
    return exit_status(client, job_id, status, address)


def run(args: argparse.Namespace) -> int:
    from lrl.job import load_job

    # The file is validated here, before anything is uploaded, with the same overrides; the
    # submission flags only shape the runtime_env, so they are not passed on to the entrypoint.
    flags = []
    if getattr(args, "pip", None):
        flags.append(f"pipeline.submit.pip={json.dumps(args.pip)}")
    if getattr(args, "image_uri", None):
        flags.append(f"pipeline.submit.image_uri={json.dumps(args.image_uri)}")
    cfg = load_job(args.config, [*args.overrides, *flags])
    from lrl.pipeline.runner import PipelineError, select

    try:  # a stage the pipeline does not have fails here, not after the upload
        select(list(cfg.pipeline.stages), args.start, args.only)
    except PipelineError as exc:
        print(f"lrl submit: error: {exc}", file=sys.stderr)
        return 2
    return submit(cfg, args)
