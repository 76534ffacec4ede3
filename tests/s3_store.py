"""An S3 object store for tests: moto's server on localhost, reached by pyarrow's own S3 client.

Output roots on object stores (s3://, gs://) take other code paths than local ones: no rename
(stages write in place and the manifest marks completion), no ``flock`` (a lease object keeps
two runs apart). The server runs in this process, so every process that inherits the environment
set here (Ray's workers, started after it) reaches the same buckets.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid

#: What points pyarrow (and boto3) at the local server; set before Ray starts so its workers
#: inherit it. Dummy credentials: moto accepts any. ``LRL_REMOTE_CACHE``: the local copies of this
#: session's s3 folders (``lrl.data.remote.local_folder``, in this process and in Ray's workers)
#: go in a folder of its own, removed with the server, not among other runs' copies.
ENV_KEYS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
            "LRL_REMOTE_CACHE")


def _patch_complete_multipart() -> None:
    """moto 5.2 names the CompleteMultipartUpload answer's root element ``...Response``; S3 and
    its API spec name it ``CompleteMultipartUploadResult``, and the AWS SDK inside pyarrow reads
    an answer without it as an error embedded in a 200 (every write of a file failed)."""
    from moto.s3.responses import S3Response

    if getattr(S3Response, "_lrl_patched", False):
        return
    serialized = S3Response.serialized

    def fixed(self, result):
        status, headers, body = serialized(self, result)
        if self.data.get("Action") == "CompleteMultipartUpload" and isinstance(body, (str, bytes)):
            old, new = "CompleteMultipartUploadResponse", "CompleteMultipartUploadResult"
            body = body.replace(old, new) if isinstance(body, str) else body.replace(old.encode(), new.encode())
        return status, headers, body

    S3Response.serialized = fixed
    S3Response._lrl_patched = True


class S3Store:
    """A running moto S3 server with the environment that points clients at it."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        _patch_complete_multipart()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                    "LRL_REMOTE_CACHE": tempfile.mkdtemp(prefix="lrl-remote-test-")}
        self._saved = {k: os.environ.get(k) for k in ENV_KEYS}
        os.environ.update(self.env)

    def bucket(self) -> str:
        """A new empty bucket; returns its ``s3://`` URI."""
        import boto3

        name = f"lrl-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL"]).create_bucket(Bucket=name)
        return f"s3://{name}"

    def stop(self) -> None:
        self._server.stop()
        shutil.rmtree(self.env["LRL_REMOTE_CACHE"], ignore_errors=True)
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
