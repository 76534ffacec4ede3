"""``lrl submit`` following a job: log streams that stall, break or end first, status polls that
fail, and Ctrl-C (stops the following, not the job)."""

from __future__ import annotations

import asyncio
import time

import pytest
from submit_fakes import FakeClient, _args

from lrl.pipeline import submit


class StalledClient(FakeClient):
    """A log stream that stalls after one line (or breaks) while the job runs on and succeeds."""

    def __init__(self, address, headers=None, broken=False):
        super().__init__(address, headers)
        self.broken, self.polls = broken, 0

    async def tail_job_logs(self, job_id):

        yield "stage generate done\n"
        if self.broken:
            raise ConnectionResetError("websocket closed")
        await asyncio.sleep(3600)

    def get_job_status(self, job_id):
        from ray.job_submission import JobStatus

        self.polls += 1
        return JobStatus.SUCCEEDED if self.polls >= 3 else JobStatus.RUNNING


@pytest.mark.parametrize("broken", [False, True])
def test_follow_sees_the_end_when_the_log_stream_stalls_or_breaks(broken, capsys):

    client = StalledClient("http://x", broken=broken)
    t0 = time.time()
    assert asyncio.run(submit.follow(client, "raysubmit_x", poll_s=0.05, drain_s=0.2)) == "SUCCEEDED"
    assert time.time() - t0 < 5 and client.polls == 3
    out = capsys.readouterr()
    assert "stage generate done" in out.out
    assert ("broke" if broken else "did not finish within") in out.err and "ray job logs raysubmit_x" in out.err


class EarlyEndClient(StalledClient):
    """The stream ends at once; the status reads RUNNING a few more times."""

    async def tail_job_logs(self, job_id):
        yield "all done\n"


def test_follow_waits_between_polls_when_the_stream_ended_first(capsys):

    client = EarlyEndClient("http://x")
    t0 = time.time()
    assert asyncio.run(submit.follow(client, "raysubmit_x", poll_s=0.1, drain_s=0.2)) == "SUCCEEDED"
    assert client.polls == 3 and time.time() - t0 >= 0.15  # slept between polls, did not spin
    assert capsys.readouterr().err == ""  # a stream that ended on its own is no warning


class FlakyStatusClient(EarlyEndClient):
    """The status endpoint fails ``fail`` times in a row before it answers."""

    def __init__(self, address, headers=None, fail=2):
        super().__init__(address, headers)
        self.fail = fail

    def get_job_status(self, job_id):
        if self.fail:
            self.fail -= 1
            raise ConnectionError("dashboard restarting")
        return super().get_job_status(job_id)


def test_follow_retries_failed_status_polls_then_gives_up(capsys):

    client = FlakyStatusClient("http://x", fail=2)
    assert asyncio.run(submit.follow(client, "raysubmit_x", poll_s=0.01, drain_s=0.2)) == "SUCCEEDED"
    assert capsys.readouterr().err.count("could not read the job's status") == 2
    with pytest.raises(ConnectionError, match="dashboard restarting"):
        asyncio.run(submit.follow(FlakyStatusClient("http://x", fail=99), "raysubmit_x", poll_s=0.01,
                                  max_poll_failures=3))


def test_ctrl_c_stops_following_not_the_job(tmp_path, monkeypatch, capsys):
    import ray.job_submission

    async def interrupted(client, job_id, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", FakeClient)
    monkeypatch.setattr(submit, "follow", interrupted)
    job = tmp_path / "job.yaml"
    job.write_text(f"name: fake\noutput:\n  root: /shared/runs\npipeline:\n  submit:\n    working_dir: {tmp_path}\n")
    assert submit.run(_args(job, address="http://127.0.0.1:1")) == 130
    err = capsys.readouterr().err
    assert "the job runs on" in err and "ray job stop raysubmit_fake --address http://127.0.0.1:1" in err


# --- the real thing ----------------------------------------------------------------------------


class InterruptedUpload(FakeClient):
    def submit_job(self, **kw):
        raise KeyboardInterrupt  # Ctrl-C while a large working directory uploads


def test_ctrl_c_during_the_upload_says_where_to_look(tmp_path, monkeypatch, capsys):
    """Ctrl-C while the upload ran reached the CLI's handler for stage runs: "unfinished output
    removed, finished stages kept", nothing about the cluster, where the job may already exist."""
    import ray.job_submission

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", InterruptedUpload)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    job = tmp_path / "job.yaml"
    job.write_text(f"name: fake\noutput:\n  root: /shared/runs\npipeline:\n  submit:\n    working_dir: {tmp_path}\n")
    assert submit.run(_args(job, address="http://127.0.0.1:1")) == 130
    err = capsys.readouterr().err
    assert "stopped before http://127.0.0.1:1 confirmed the job" in err
    assert "ray job list --address http://127.0.0.1:1 shows it" in err
    assert "stages" not in err
