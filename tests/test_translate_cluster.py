"""The tiny-Marian actor pool on a simulated 2-node Ray cluster (``ray.cluster_utils.Cluster``).

Slow + cluster: it shuts down any Ray this process started (the session fixture starts it again
on demand only in tests that ask for it) and starts its own head and worker node.
"""

from __future__ import annotations

import pytest
from ray_tmpdir import own_ray_tmpdir

from lrl.data.schema import REJECT, ner_table


@pytest.mark.slow
@pytest.mark.cluster
def test_actor_pool_on_two_nodes(tmp_path, data_root):
    import ray
    from ray.cluster_utils import Cluster

    from lrl.generate import translate
    from lrl.generate.translate.tiny import build_tiny_marian
    from lrl.job import JobConfig

    flores = data_root / "parallel" / "flores200_devtest"
    en = (flores / "eng_Latn.devtest").read_text(encoding="utf-8").splitlines()
    ug = (flores / "uig_Arab.devtest").read_text(encoding="utf-8").splitlines()
    path = build_tiny_marian(tmp_path / "m", en[:200] + ug[:200], d_model=32, layers=1)
    rows = [{"id": f"en:{i}", "lang": "en", "tokens": line.split()[:10],
             "tags": ["B-LOC"] + ["O"] * (len(line.split()[:10]) - 1)} for i, line in enumerate(en[:240])]

    ray.shutdown()
    # Its own Ray temp dir: not the machine's ray_current_cluster, which the Rays of other test
    # processes (pytest -n) read (tests/ray_tmpdir.py).
    with own_ray_tmpdir():
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        cluster.add_node(num_cpus=2, resources={"worker_node": 1})
        try:
            ray.init(address=cluster.address, log_to_driver=False)
            cluster.wait_for_nodes()
            assert len([n for n in ray.nodes() if n["Alive"]]) == 2
            model = {"backend": "hf", "model": path, "batch_size": 16, "max_length": 48, "num_actors": 2}
            cfg = JobConfig.model_validate({"translate": {"enabled": True, "train": {"model": model, "keep_source": False}}})
            ds = translate.steps(cfg)[0].apply(ray.data.from_arrow(ner_table(rows)).repartition(6))
            out = ds.take_all()
            # Every row translated exactly once, across both nodes' actors.
            assert sorted(r["parent_id"] for r in out) == sorted(r["id"] for r in rows)
            # (inputs over max_length tokens are rejected, not truncated, and so are outputs cut at
            # it: the tiny random model never writes </s>)
            assert all(r[REJECT] is None or r[REJECT].startswith(("projection:", "translation_too_long:",
                                                                  "translation_cut:"))
                       for r in out)
        finally:
            ray.shutdown()
            cluster.shutdown()
