"""``lrl submit``: what the user is told about where outputs go and why a job did not succeed, and
what the job's environment gets from the submitting shell (fast, with a fake Jobs client)."""

from __future__ import annotations

import argparse

import pytest
from submit_fakes import FakeClient, _args

from lrl.config import ConfigError
from lrl.job import load_job
from lrl.pipeline import submit

#: What Ray 2.60 recorded for a job whose pip requirement did not install (trimmed; measured on a
#: two-node loopback cluster): ~40 lines of Ray's traceback, pip's own error last.
PIP_FAILURE = "\n".join(
    ["runtime_env setup failed: Failed to set up runtime environment.",
     "Could not create the actor because its associated runtime env failed to be created.",
     "[Node 192.0.2.2] Traceback (most recent call last):"]
    + [f'  File "ray/_private/runtime_env/frame{i}.py", line {i}, in f' for i in range(30)]
    + ["    Looking in indexes: https://pypi.org/simple",
       "    ERROR: Could not find a version that satisfies the requirement seqeval-typo (from versions: none)",
       "    ERROR: No matching distribution found for seqeval-typo"])


class EndedClient(FakeClient):
    """A job that ended as ``status`` with what Ray records for it."""

    status, info = "FAILED", None

    async def tail_job_logs(self, job_id):
        if False:  # a job whose runtime_env failed streams no log line
            yield ""

    def get_job_status(self, job_id):
        from ray.job_submission import JobStatus

        return JobStatus(EndedClient.status)

    def get_job_info(self, job_id):
        return EndedClient.info


def _job(tmp_path, root="/shared/runs"):
    job = tmp_path / "job.yaml"
    job.write_text(f"name: fake\noutput:\n  root: {root}\npipeline:\n  submit:\n    working_dir: {tmp_path}\n")
    return job


@pytest.mark.parametrize("status,info,code,said,not_said", [
    # the runtime_env failed: no log came back, the reason is only in the job's message
    ("FAILED", argparse.Namespace(driver_exit_code=None, error_type="RUNTIME_ENV_SETUP_FAILURE",
                                  message=PIP_FAILURE), 1,
     ["RUNTIME_ENV_SETUP_FAILURE", "No matching distribution found for seqeval-typo",
      "ray job status raysubmit_fake --address http://127.0.0.1:1"], ["frame0.py"]),
    # lrl run failed: its log came back already; the message (its tail) is not repeated
    ("FAILED", argparse.Namespace(driver_exit_code=2, error_type="JOB_ENTRYPOINT_COMMAND_ERROR",
                                  message="Job entrypoint command failed with exit code 2, last logs: lrl run: error: x"),
     2, ["exited with status 2", "ray job logs raysubmit_fake --address http://127.0.0.1:1"], ["last logs"]),
    ("STOPPED", argparse.Namespace(driver_exit_code=None, error_type=None, message="Job was intentionally stopped."),
     1, ["Job was intentionally stopped."], []),
])
def test_a_job_that_did_not_succeed_says_why(tmp_path, monkeypatch, capsys, status, info, code, said, not_said):
    """A job whose ``--pip`` requirement did not install ended as a bare "job raysubmit_...: FAILED"
    with exit status 1: no log line had come back, and the reason was only in the job's status
    message on the cluster."""
    import ray.job_submission

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", EndedClient)
    monkeypatch.setattr(EndedClient, "status", status)
    monkeypatch.setattr(EndedClient, "info", info)
    assert submit.run(_args(_job(tmp_path), address="http://127.0.0.1:1")) == code
    err = capsys.readouterr().err
    for text in said:
        assert text in err, err
    for text in not_said:
        assert text not in err, err


@pytest.mark.parametrize("override", ["output.root=runs", "pipeline.state=state.json"])
def test_a_relative_output_root_or_state_file_is_refused_before_the_upload(tmp_path, monkeypatch, override):
    """``lrl submit jobs/x.yaml`` with the default ``output.root: runs`` printed a warning, ran the
    whole job and "succeeded": every output lay in the job's temporary copy of the working
    directory on the cluster (measured: .../runtime_resources/working_dir_files/_ray_pkg_.../runs/
    generate-...), where Ray deletes it and where each node has its own copy."""
    import ray.job_submission

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", FakeClient)
    FakeClient.last = None
    job = _job(tmp_path)
    key = override.split("=")[0]
    for dry_run in (True, False):
        with pytest.raises(ConfigError, match=f"{key}=.* is relative.*s3://"):
            submit.run(_args(job, override, address="http://127.0.0.1:1", dry_run=dry_run))
    assert FakeClient.last is None, "a job whose outputs would be lost was submitted"


def test_the_submission_says_where_the_outputs_go(tmp_path, monkeypatch, capsys):
    import ray.job_submission

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", FakeClient)
    assert submit.run(_args(_job(tmp_path, "/shared/runs/"), address="http://127.0.0.1:1")) == 0
    out = capsys.readouterr().out
    assert "outputs (as the cluster sees them): /shared/runs/<stage>-<hash>, state file /shared/runs/pipeline-" in out


def test_hf_hub_offline_is_passed_on_only_when_set(monkeypatch):
    """An unset HF_HUB_OFFLINE went to the job as "0", overriding an offline cluster's own
    HF_HUB_OFFLINE=1 (its hub lookups then waited for network timeouts)."""
    cfg = load_job(None, ["output.root=/shared/runs"])
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert "HF_HUB_OFFLINE" not in submit.runtime_env(cfg)["env_vars"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert submit.runtime_env(cfg)["env_vars"]["HF_HUB_OFFLINE"] == "1"


class RefusedClient(FakeClient):
    def submit_job(self, **kw):  # what Ray 2.60 raised for a 506 MiB working directory (measured)
        raise RuntimeError("Request failed with status code 413: Maximum request body size 104857600 exceeded..")


def test_a_refused_upload_is_a_clear_error_not_a_traceback(tmp_path, monkeypatch):
    """A working directory over the job server's 100 MiB cap (data kept beside the job files) ended
    ``lrl submit`` in a RuntimeError traceback (exit status 1) that named neither the folder nor
    what to do."""
    import ray.job_submission

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", RefusedClient)
    with pytest.raises(ConfigError, match=rf"not submitted.*413(.|\n)*{tmp_path}.*at most 100 MiB.*excludes"):
        submit.run(_args(_job(tmp_path), address="http://127.0.0.1:1"))


def test_temporary_aws_credentials_travel_with_their_session_token(monkeypatch):
    """forward_env passed AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY on, not AWS_SESSION_TOKEN:
    with SSO or assume-role credentials the job got a key pair S3 refuses, which also shadows the
    nodes' instance profile."""
    cfg = load_job(None, ["output.root=/shared/runs"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session")
    assert submit.runtime_env(cfg)["env_vars"]["AWS_SESSION_TOKEN"] == "session"
    # not forwarded when the key pair is not (forward_env without it): nothing half-set
    cfg = load_job(None, ["output.root=/shared/runs", "pipeline.submit.forward_env=[HF_TOKEN]"])
    assert "AWS_SESSION_TOKEN" not in submit.runtime_env(cfg)["env_vars"]


def test_the_dry_run_does_not_print_forwarded_secrets(tmp_path, monkeypatch, capsys):
    """``lrl submit --dry-run`` printed the runtime_env with HF_TOKEN and the AWS keys in full."""
    monkeypatch.setenv("HF_TOKEN", "hf_verysecret")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "topsecret")
    assert submit.run(_args(_job(tmp_path), dry_run=True)) == 0
    out = capsys.readouterr().out
    assert "'HF_TOKEN': '***'" in out and "'AWS_SECRET_ACCESS_KEY': '***'" in out
    assert not any(s in out for s in ("hf_verysecret", "AKIAEXAMPLE", "topsecret")), out
    assert "'TOKENIZERS_PARALLELISM': 'false'" in out  # lrl's own settings stay readable


def test_a_dashboard_address_without_http_is_found(monkeypatch):
    """``--address 127.0.0.1:8265`` (no http://) was taken by Ray for a GCS address: 40 s of
    "Failed to connect to GCS" and then an error. A host:port that answers HTTP is the dashboard."""
    import http.server
    import socket
    import threading

    class Dashboard(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # a token-protected dashboard: 401 is still an answer
            self.send_response(401)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Dashboard)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        addr = f"127.0.0.1:{server.server_port}"
        assert submit.dashboard_url(addr) == f"http://{addr}"
    finally:
        server.shutdown()
        server.server_close()
    with socket.socket() as s:  # nothing listening (or a GCS port): left to Ray as given
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    assert submit.dashboard_url(closed, timeout_s=0.5) == closed
    for given in ("http://h:8265", "https://h", "auto"):
        assert submit.dashboard_url(given) == given


class LogCheckingClient(FakeClient):
    seen: tuple[bool, bool] | None = None

    def submit_job(self, **kw):
        import logging

        # the loggers Ray's upload logs through (packaging.py's "Ignoring upload ...", the client's own)
        logs = [logging.getLogger(n) for n in ("ray._private.runtime_env.packaging",
                                               "ray._private.runtime_env.working_dir",
                                               "ray.dashboard.modules.dashboard_sdk")]
        LogCheckingClient.seen = (any(x.isEnabledFor(logging.INFO) for x in logs),
                                  all(x.isEnabledFor(logging.WARNING) for x in logs))
        return super().submit_job(**kw)


def test_the_upload_shows_rays_warnings_not_its_info_lines(tmp_path, monkeypatch, capsys):
    """Every submission began with a dozen lines of Ray's upload INFO logging (measured from the
    repository root: 6 x "Ignoring upload to cluster for these files: [.../.gitignore]", 2 x
    "Creating a file package", 2 x "Uploading package")."""
    import logging

    import ray.job_submission

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", LogCheckingClient)
    before = {n: logging.getLogger(n).level for n in submit.UPLOAD_LOGGERS}
    assert submit.run(_args(_job(tmp_path), address="http://127.0.0.1:1")) == 0
    assert LogCheckingClient.seen == (False, True)
    assert {n: logging.getLogger(n).level for n in submit.UPLOAD_LOGGERS} == before  # put back after
    assert f"uploading {tmp_path} and the lrl package to http://127.0.0.1:1" in capsys.readouterr().out


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_address_where_nothing_listens_fails_at_once(tmp_path, monkeypatch, scheme):
    """``--address 127.0.0.1:PORT`` (no http://) or ``ray://127.0.0.1:PORT`` with no cluster there:
    Ray took them for a GCS or Ray Client address and printed retry warnings for 40 s (measured: 42 s
    and 38 s) before its error. It now fails at once, with one line, before any client is made."""
    import socket
    import time

    import ray.job_submission

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", FakeClient)
    FakeClient.last = None
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"{scheme}127.0.0.1:{s.getsockname()[1]}"
    began = time.monotonic()
    with pytest.raises(ConfigError, match=rf"^--address {closed}: nothing listens there \(.+\);.*http://") as err:
        submit.run(_args(_job(tmp_path), address=closed))
    assert "\n" not in str(err.value)
    assert time.monotonic() - began < 10 and FakeClient.last is None


class GitCheckoutClient(FakeClient):
    """Runs Ray's own working-directory step, as the real client does before its upload."""

    def submit_job(self, **kw):
        from ray._private.runtime_env.working_dir import upload_working_dir_if_needed

        upload_working_dir_if_needed(dict(kw["runtime_env"]), include_gitignore=True,
                                     upload_fn=lambda *a, **k: None)
        return super().submit_job(**kw)


def test_rays_advice_to_upload_dot_git_is_not_shown(tmp_path, monkeypatch):
    """Every submission from a git checkout printed Ray 2.60's WARNING "Directory '.git' is now
    ignored by default ... set RAY_OVERRIDE_RUNTIME_ENV_DEFAULT_EXCLUDES=''": lrl excludes .git
    itself, and the advice would only add the history to the upload. Other warnings still show."""
    import logging

    import ray.job_submission
    import ray.util.debug

    (tmp_path / ".git").mkdir()
    for key in [k for k in ray.util.debug._logged if ".git" in k]:  # Ray warns once per process
        ray.util.debug._logged.discard(key)
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    log = logging.getLogger("ray._private.runtime_env.working_dir")
    handler = Keep()
    log.addHandler(handler)
    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", GitCheckoutClient)
    try:
        assert submit.run(_args(_job(tmp_path), address="http://127.0.0.1:1")) == 0
        log.warning("a warning of Ray's own about the upload")
    finally:
        log.removeHandler(handler)
    assert not [m for m in seen if ".git" in m], seen
    assert seen == ["a warning of Ray's own about the upload"]
