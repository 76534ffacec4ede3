"""Joining a Ray cluster at an address (``lrl.ray_join``): a token the head has is used, a wrong
token or an address where nothing listens fails at once with one line naming the address."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from lrl.config import ConfigError
from lrl.ray_join import host_port
from lrl.runtime import RayConfig, init_ray

JOIN = """
import json, os, sys
from lrl.config import ConfigError
from lrl.runtime import RayConfig, init_ray
try:
    ray = init_ray(RayConfig())
except ConfigError as exc:
    print("LRL_ERROR", exc)
    sys.exit(2)
print("JOINED", json.dumps(ray.get_runtime_context().gcs_address))
"""


def _join(address: str, **env_changes) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    env.update(RAY_ADDRESS=address, **env_changes)
    started = time.monotonic()
    res = subprocess.run([sys.executable, "-c", JOIN], capture_output=True, text=True, timeout=120, env=env)
    return res, time.monotonic() - started


@pytest.fixture
def token_cluster(ray_session):
    """The session's Ray: started like `ray start --head` on a machine where lrl or Ray had made
    ``~/.ray/auth_token`` (Ray 2.60 turns token authentication on for it)."""
    if os.environ.get("RAY_AUTH_MODE") != "token":
        pytest.skip("the session Ray runs without token authentication")
    return ray_session.get_runtime_context().gcs_address


def test_joining_a_token_cluster_by_address_uses_the_token_the_head_has(token_cluster):
    """``RAY_ADDRESS=HOST:PORT lrl generate ...`` against a ``ray start`` head printed ~20 s of
    "InvalidAuthToken" warnings and ended in Ray's ConnectionError traceback: ``ray.init`` with an
    explicit address never turns token authentication on, though the token was right there."""
    res, _ = _join(token_cluster)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert f"JOINED {json.dumps(token_cluster)}" in res.stdout


def test_a_wrong_token_is_one_line_naming_what_to_set(token_cluster):
    res, took = _join(token_cluster, RAY_AUTH_TOKEN="0123456789abcdef0123456789abcdef")
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-3000:]
    line = next(x for x in res.stdout.splitlines() if x.startswith("LRL_ERROR"))
    assert f"RAY_ADDRESS={token_cluster}" in line and "RAY_AUTH_TOKEN" in line and "token" in line
    assert took < 15, took  # not Ray's ~20 s of retries


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("form", ["{}", "ray://{}"])
def test_an_address_where_nothing_listens_fails_at_once(monkeypatch, form):
    """``ray.address=127.0.0.1:6399`` with nothing there retried for over two minutes, printing
    only Ray's "Failed to connect to GCS" warnings."""
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **kw: pytest.fail("ray.init called"))
    address = form.format(f"127.0.0.1:{_free_port()}")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=f"ray.address={address}: no Ray cluster answers there") as err:
        init_ray(RayConfig(address=address))
    assert time.monotonic() - started < 6
    # the port to check: Ray Client's for ray://, the cluster's own otherwise
    assert ("--ray-client-server-port" in str(err.value)) == address.startswith("ray://")


def test_auto_and_listening_addresses_reach_ray_init(monkeypatch):
    """``auto`` is Ray's to resolve; a ``ray://`` address with a listener goes on to Ray Client."""
    import ray

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **kw: calls.append(kw["address"]))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = f"ray://127.0.0.1:{server.getsockname()[1]}"
        for address in ("auto", client):
            init_ray(RayConfig(address=address))
    assert calls == ["auto", client]


def test_host_port_forms():
    assert host_port("10.0.0.1:6379") == ("10.0.0.1", 6379)
    assert host_port("ray://head:10001") == ("head", 10001)
    assert host_port("[::1]:6379") == ("::1", 6379)
    assert host_port("auto") is None and host_port("head") is None


def test_lrl_generate_checks_the_address_before_reading_its_inputs(tmp_path, monkeypatch, capsys):
    """The check ran at the stage's ``ray.init``, after ~20 s of reading the WikiANN ug job's
    inputs; the command now fails as it starts, before anything is read."""
    import lrl.generate.stage
    from lrl.cli import main

    monkeypatch.setattr(lrl.generate.stage, "read_inputs", lambda *a, **kw: pytest.fail("inputs read"))
    job = tmp_path / "job.yaml"
    job.write_text(f"data:\n  ner:\n    - {{path: in.conll, lang: ug}}\noutput:\n  root: {tmp_path / 'out'}\n",
                   encoding="utf-8")
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_free_port()}")
    assert main(["generate", str(job)]) == 2
    assert f"RAY_ADDRESS={os.environ['RAY_ADDRESS']}: no Ray cluster answers there" in capsys.readouterr().err


NO_AUTH_CLUSTER = """
import os
os.environ["RAY_AUTH_MODE"] = "disabled"  # the nodes start without token authentication
import ray
from ray.cluster_utils import Cluster
c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
del os.environ["RAY_AUTH_MODE"]  # the driver: mode unset, ~/.ray/auth_token may exist
from lrl.runtime import RayConfig, init_ray
try:
    init_ray(RayConfig(address=c.address))
    # a task that fetches an object this driver owns: the cluster calls the driver back
    print("ROUND_TRIP", ray.get(ray.remote(lambda x: x + 1).remote(ray.put(41))), os.environ.get("RAY_AUTH_MODE"))
finally:
    ray.shutdown()
    c.shutdown()
"""


def test_a_cluster_without_token_authentication_is_joined_without_it(tmp_path):
    """Token mode is turned on only when the cluster asks for it: a driver in token mode refused
    the calls of a cluster without it (generate's tasks failed with OwnerDiedError)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    env["RAY_AUTH_TOKEN"] = "0123456789abcdef0123456789abcdef"  # a token is available
    # Its own temp dir (short: Ray's socket paths stay under 107 bytes): the test cluster writes and
    # then deletes ray_current_cluster there, not the machine's /tmp/ray one other Rays may use.
    env["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="lrlj-", dir="/tmp")
    try:
        res = subprocess.run([sys.executable, "-c", NO_AUTH_CLUSTER], capture_output=True, text=True,
                             timeout=180, env=env, cwd=tmp_path)
    finally:
        shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
    assert "ROUND_TRIP 42 None" in res.stdout, res.stdout[-2000:] + res.stderr[-3000:]
