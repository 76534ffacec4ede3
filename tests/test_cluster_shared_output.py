"""``lrl run`` on a joined Ray cluster checks that a local ``output.root`` is the same folder on
every node before any stage runs (``lrl.pipeline.preflight.unshared_nodes``)."""

from __future__ import annotations

from pathlib import Path

import pytest

import lrl.runtime
from lrl.job import load_job
from lrl.pipeline import preflight
from lrl.pipeline.runner import PipelineError, run_pipeline


def _cfg(tmp_path):
    return load_job(None, [f"output.root={tmp_path / 'runs'}", "pipeline.stages=[generate]"])


def test_a_cluster_run_stops_before_any_stage_when_output_root_is_not_shared(tmp_path, monkeypatch):
    """Measured on two loopback nodes, the worker's folder a private tmpfs: the generate stage ran
    to its end and then failed with "generate lost or invented rows (read 1603, written 598)" and a
    traceback; now ``lrl run`` names the folder and the node before it starts."""
    ran = []
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")  # as under `ray job submit`
    monkeypatch.setattr(lrl.runtime, "init_ray", lambda cfg=None: None)
    monkeypatch.setattr(preflight, "unshared_nodes", lambda path: ["10.0.0.2 (node 1a2b3c4d)"])
    with pytest.raises(PipelineError, match=r"output.root=.*/runs is not shared.*10.0.0.2 \(node 1a2b3c4d\)"):
        run_pipeline(_cfg(tmp_path), registry={"generate": lambda ctx: ran.append(1)}, log=lambda m: None)
    assert ran == []


def test_a_laptop_run_does_not_check(tmp_path, monkeypatch):
    """The embedded Ray is one node: no Ray is started early and nothing is probed."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(lrl.runtime, "init_ray", lambda cfg=None: pytest.fail("Ray started for the check"))
    monkeypatch.setattr(preflight, "unshared_nodes", lambda path: pytest.fail("probed on a laptop"))
    preflight.check_shared_output(_cfg(tmp_path))


def test_unshared_nodes_asks_every_node_through_ray(ray_session, tmp_path, monkeypatch):
    """With real Ray tasks: the node itself twice over (as two nodes) sees the probe, and a probe
    that was never written is reported missing on each; no probe file is left behind."""
    import ray

    node = next(n for n in ray.nodes() if n["Alive"])
    monkeypatch.setattr(ray, "nodes", lambda: [node, {**node, "NodeManagerAddress": "10.9.9.9"}])
    out = tmp_path / "runs"
    assert preflight.unshared_nodes(str(out)) == []
    monkeypatch.setattr(Path, "touch", lambda self, *a, **kw: None)  # a folder the nodes do not share
    blind = preflight.unshared_nodes(str(out))
    assert len(blind) == 2 and f"10.9.9.9 (node {node['NodeID'][:8]})" in blind
    assert list(out.iterdir()) == []
    assert preflight.unshared_nodes("s3://bucket/runs") == []  # object storage: every node sees it
