"""A Ray Tune search when a trial's worker process dies (a lost node, the OOM killer, kill -9)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import SimpleNamespace

from lrl.job import load_job


def test_a_trial_whose_worker_died_runs_again_instead_of_counting_as_failed(ray_session, tmp_path):
    """SIGKILL of one trial's worker process made that trial "errored" (ActorDiedError): the
    search committed without it, under the same folder name as a complete search, so every rerun
    reused a search that had lost a trial to the machine rather than to its config. The trial runs
    again from its start (trials keep no checkpoints), and its scores are counted once."""
    from lrl.tune.search import search_language

    marks = tmp_path / "killed"
    marks.mkdir()

    def dies_once(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        quality = {1e-3: 0.5, 1e-2: 0.2}[round(cfg.lr, 6)]
        hist = []
        for i in range(1, 4):
            hist.append({"step": i, "epoch": i / 3, "train_loss": 1.0 / i, "dev_f1": quality * i / 3,
                         "lr": cfg.lr, "time_s": 0.0})
            if report:
                report(dict(hist[-1]))
            mark = Path(marks, f"{cfg.lr:.6g}")
            if i == 2 and quality == 0.5 and not mark.exists():
                mark.write_text("x")
                os.kill(os.getpid(), signal.SIGKILL)  # the worker is lost part way through
        return SimpleNamespace(dev_f1=quality, per_type={}, per_lang={}, history=hist, model_dir=None)

    job = load_job(None, [f"output.root={tmp_path / 'runs'}", "tune.languages=[ug]", "tune.search=grid",
                          "tune.space.lr_min=1e-3", "tune.space.lr_max=1e-2", "tune.space.lr_grid_points=2",
                          "tune.space.warmup_ratio=[0.0]", "tune.space.batch_size=[8]", "tune.scheduler=fifo",
                          "tune.max_concurrent=1"])
    import pyarrow as pa

    empty = pa.table({"x": [1]})
    res = search_language("ug", empty, empty, job.tune, job.finetune, "unused", 0, train_fn=dies_once)
    assert list(marks.iterdir()), "the stand-in never killed its worker"
    assert [t["error"] for t in res.trials] == [None, None], res.trials
    assert [t["evaluations"] for t in res.trials] == [3, 3], "the lost attempt's scores were counted again"
    assert res.best["dev_f1"] == 0.5
