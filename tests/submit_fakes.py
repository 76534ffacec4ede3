"""For the ``lrl submit`` tests: parsed arguments, and a stand-in for Ray's JobSubmissionClient."""

from __future__ import annotations

import argparse


def _args(config, *overrides, **kw) -> argparse.Namespace:
    base = dict(config=str(config), overrides=list(overrides), address=None, no_wait=False,
                start=None, only=None, dry_run=False)
    return argparse.Namespace(**{**base, **kw})


class FakeClient:
    """Stands in for JobSubmissionClient: records the submission, streams two log lines."""

    last: FakeClient | None = None

    def __init__(self, address, headers=None):
        self.address, self.headers, self.submitted = address, headers, {}
        FakeClient.last = self

    def submit_job(self, **kw):
        self.submitted = kw
        return "raysubmit_fake"

    async def tail_job_logs(self, job_id):
        for line in ("stage generate done\n", "all done\n"):
            yield line

    def get_job_status(self, job_id):
        from ray.job_submission import JobStatus

        return JobStatus.SUCCEEDED
