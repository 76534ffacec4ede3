"""The generate stage on a simulated multi-node Ray cluster (head + 2 worker nodes): rows are
produced on both worker nodes, removing a node mid-job loses and duplicates no row, and the nodes
write an object-store output root (a local S3 server) themselves.

Slow and cluster-marked. The session Ray is shut down first; this module's fixture starts a plain
local Ray again afterwards so that later tests using ``ray_session`` still find one running."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from ray_tmpdir import machine_address_file, own_ray_tmpdir

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


@pytest.fixture(scope="module")
def cluster(s3_store):
    """Started after ``s3_store``: its nodes inherit the local S3 server's endpoint."""
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    machine_file = machine_address_file()
    # Its own Ray temp dir: not the machine's ray_current_cluster, which the Rays of other test
    # processes (pytest -n) read (tests/ray_tmpdir.py); nodes added later go there too.
    with own_ray_tmpdir():
        # The head has no CPUs: every task runs on one of the two worker nodes.
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        workers = [c.add_node(num_cpus=1) for _ in range(2)]
        c.wait_for_nodes()
        ray.init(address=c.address, log_to_driver=False)
        c.machine_address_file = machine_file
        yield c, workers
        ray.shutdown()
        c.shutdown()
    # For later tests, as conftest starts it: a new local instance, never a `ray start` cluster
    # that another run left on this machine (ray.init() would join it and refuse num_cpus).
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)


def node_recorder(folder: Path, pause_s: float):
    """A test-only step that records which node handled which row ids (pausing per batch so
    that tasks overlap and a node can be removed while some are in flight)."""
    folder.mkdir(parents=True, exist_ok=True)

    def record(batch):
        import os
        import uuid

        import ray

        node = ray.get_runtime_context().get_node_id()
        key = uuid.uuid4().hex
        # In flight from here until the .json exists; the pid lets the test kill it mid-batch.
        (folder / f"{key}.start").write_text(json.dumps({"node": node, "ids": batch["id"].to_pylist(),
                                                         "pid": os.getpid()}))
        time.sleep(pause_s)
        (folder / f"{key}.json").write_text(json.dumps({"node": node, "ids": batch["id"].to_pylist()}))
        return batch

    class Recorder:
        name = "record-node"

        def apply(self, ds):
            return ds.map_batches(record, batch_format="pyarrow", batch_size=100)

    return Recorder()


def _in_flight(folder: Path, node: str) -> list[dict]:
    """Start records of batches that started on ``node`` and never finished there."""
    out = []
    for p in folder.glob("*.start"):
        try:
            rec = json.loads(p.read_text())
        except ValueError:  # being written right now
            continue
        if rec["node"] == node and not p.with_suffix(".json").exists():
            out.append({**rec, "key": p.stem})
    return out


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in {"Z", "X"}


def kill_in_flight(folder: Path, node: str) -> bool:
    """SIGKILL the workers inside a batch on ``node``; True if one died before finishing its batch.

    A batch seen in flight can finish in the moment between the look and the kill (the driver's
    executor thread holds the GIL often; CI saw the removal hit nothing in flight twice), so a kill
    counts only if the batch's ``.json`` is still missing once the process is surely dead."""
    recs = _in_flight(folder, node)
    for rec in recs:
        with contextlib.suppress(ProcessLookupError):
            os.kill(rec["pid"], signal.SIGKILL)
    if not recs:
        return False
    # Once dead (gone, or a zombie its raylet has not reaped) a process writes nothing more. Not
    # a fixed sleep: the node must go before Ray retries the task on that same node.
    deadline = time.time() + 2
    while time.time() < deadline and not all(_dead(rec["pid"]) for rec in recs):
        time.sleep(0.005)
    return any(not (folder / f"{rec['key']}.json").exists() for rec in recs)


def orphans(folder: Path, node: str) -> list[str]:
    """Row ids of batches that started on ``node`` and never finished there."""
    return [i for rec in _in_flight(folder, node) for i in rec["ids"]]


def job(data_root: Path, out: Path):
    from lrl.job import load_job

    return load_job(None, [
        f"data.root={data_root}",
        "data.ner=[{path: wikiann/ug/train, lang: ug}, {path: wikiann/wo/train, lang: wo}]",
        "augment.ops=[swap, delete]", "augment.neighbours.enabled=false", f"output.root={out}",
    ])


def output_ids(path: str) -> list[str]:
    from lrl.generate.write import read_rows

    return read_rows(path, columns=["id"]).column("id").to_pylist()


def test_the_cluster_leaves_the_machines_ray_address_file_alone(cluster):
    """The Rays of other test processes read that file: it must not name this cluster."""
    c, _ = cluster
    path = Path(c.machine_address_file)
    assert not path.is_file() or c.address not in path.read_text()


def test_rows_are_produced_on_both_nodes_and_a_lost_node_loses_nothing(cluster, data_root, tmp_path):
    from lrl.generate.stage import run_generate
    from lrl.pipeline.stage import StageContext

    c, workers = cluster
    worker_ids = {w.node_id for w in workers}

    # 1. A clean run: both worker nodes produce rows.
    clean = run_generate(StageContext(job(data_root, tmp_path / "clean")),
                         extra_steps=[node_recorder(tmp_path / "nodes", 0.2)], quiet=True)
    seen = [json.loads(p.read_text()) for p in (tmp_path / "nodes").glob("*.json")]
    nodes = {s["node"] for s in seen}
    assert nodes == worker_ids, f"rows produced on {nodes}, workers are {worker_ids}"
    expected = output_ids(clean)
    assert len(expected) == len(set(expected)) and len(expected) > 2561  # originals + swap + delete rows

    # 2. The same job again; a worker node is removed while tasks are in flight.
    out = tmp_path / "lossy"
    result: dict = {}

    def run():
        try:
            result["path"] = run_generate(StageContext(job(data_root, out)),
                                          extra_steps=[node_recorder(tmp_path / "nodes2", 0.5)], quiet=True)
        except BaseException as exc:  # surfaced by the assertion below
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    # Remove the node once the job has written files, right after killing a worker of that node
    # inside a batch. The node dies with its processes: removing the node alone stops its raylet,
    # and the worker could finish its batch before noticing (CI once saw the removal hit nothing).
    folder = tmp_path / "nodes2"
    deadline = time.time() + 180
    hit = False
    while time.time() < deadline and thread.is_alive() and not hit:
        if folder.exists() and list(out.glob(".generate-*/data/*/*.parquet")):
            hit = kill_in_flight(folder, workers[0].node_id)
        time.sleep(0.02)
    assert list(out.glob(".generate-*/data/*/*.parquet")), "the job wrote nothing in time"
    assert hit, "no batch on the node to remove was caught in flight"
    c.remove_node(workers[0], allow_graceful=False)
    c.add_node(num_cpus=1)  # the cluster heals, as an autoscaler would; retries may land anywhere
    thread.join(timeout=240)
    assert not thread.is_alive(), "job did not finish after losing a node"
    assert "error" not in result, result.get("error")
    got = output_ids(result["path"])
    assert len(got) == len(set(got)), f"{len(got) - len(set(got))} duplicated rows"
    assert sorted(got) == sorted(expected), "rows lost or changed after a node was removed"
    manifest = json.loads((Path(result["path"]) / "manifest.json").read_text())
    assert manifest["output_rows"] == len(expected)
    # The removed node had taken part before it went away.
    records = [json.loads(p.read_text()) for p in (tmp_path / "nodes2").glob("*.json")]
    assert workers[0].node_id in {r["node"] for r in records}
    recorded = [i for r in records for i in r["ids"]]
    # The batch in flight on the removed node never finished there; its rows were redone elsewhere.
    lost = orphans(tmp_path / "nodes2", workers[0].node_id)
    assert lost, "the node removal hit nothing in flight"
    redone = {i for r in records if r["node"] != workers[0].node_id for i in r["ids"]}
    assert set(lost) <= redone and set(lost) <= set(got)
    print(f"lost-node run: {len(recorded) - len(set(recorded))} row ids processed more than once (retries), "
          f"nodes {sorted({r['node'][:8] for r in records})}")


def test_worker_nodes_write_an_object_store_root(s3_store, cluster, data_root, tmp_path):
    """``output.root`` on an object store: the worker nodes write the Parquet parts there
    themselves (no disk is shared), only the manifest marks the folder finished, and a second run
    reuses it."""
    import pyarrow.fs as pafs
    import ray

    from lrl.generate.stage import run_generate, stage_output
    from lrl.pipeline.stage import StageContext

    c, _ = cluster
    if not ray.is_initialized():
        ray.init(address=c.address, log_to_driver=False)
    root = s3_store.bucket() + "/runs"
    cfg = job(data_root, root)
    path = run_generate(StageContext(cfg), extra_steps=[node_recorder(tmp_path / "nodes", 0.2)], quiet=True)
    assert path == f"{root}/generate-{stage_output(cfg).hash}"
    workers = {n.node_id for n in c.list_all_nodes()} - {c.head_node.node_id}
    used = {json.loads(p.read_text())["node"] for p in (tmp_path / "nodes").glob("*.json")}
    assert len(used) == 2 and used <= workers, (used, workers)
    fs, inner = pafs.FileSystem.from_uri(path)
    with fs.open_input_stream(f"{inner}/manifest.json") as f:
        manifest = json.loads(f.read())
    ids = output_ids(path)
    assert len(ids) == len(set(ids)) == manifest["output_rows"] > 2561
    parts = fs.get_file_info(pafs.FileSelector(f"{inner}/data", recursive=True))
    assert sum(i.path.endswith(".parquet") for i in parts) >= 2
    # no local folder stands in for the store, and a rerun does no work
    assert not any(Path(".").glob("s3:*")) and not any(tmp_path.glob("s3:*"))
    assert run_generate(StageContext(cfg), extra_steps=[node_recorder(tmp_path / "again", 0.0)], quiet=True) == path
    assert not (tmp_path / "again").exists() or not any((tmp_path / "again").glob("*.json"))


def test_generate_joins_the_cluster_named_by_ray_address(cluster, data_root, tmp_path, monkeypatch):
    """Without ``ray.address``, a process that has not started Ray joins the cluster that
    ``RAY_ADDRESS`` names (how ``ray job submit`` runs ``lrl``) instead of an embedded Ray:
    the rows are made on the cluster's worker nodes (its head has no CPUs)."""
    import ray

    from lrl.generate.stage import run_generate
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    c, _ = cluster
    ray.shutdown()
    monkeypatch.setenv("RAY_ADDRESS", c.address)
    sample = tmp_path / "ug.conll"
    text = (data_root / "wikiann" / "ug" / "train").read_text(encoding="utf-8")
    sample.write_text("\n\n".join(text.split("\n\n")[:40]) + "\n", encoding="utf-8")
    cfg = load_job(None, [f"data.ner=[{{path: {sample}, lang: ug}}]", "augment.ops=[swap]",
                          f"output.root={tmp_path / 'out'}"])
    assert cfg.ray.address is None
    path = run_generate(StageContext(cfg), extra_steps=[node_recorder(tmp_path / "nodes", 0.0)], quiet=True)
    assert ray.get_runtime_context().gcs_address == c.address
    workers = {n.node_id for n in c.list_all_nodes()} - {c.head_node.node_id}
    used = {json.loads(p.read_text())["node"] for p in (tmp_path / "nodes").glob("*.json")}
    assert used and used <= workers, (used, workers)
    assert len(output_ids(path)) > 40
