"""The hidden run folder ``.pretrain-<hash>.ray`` after a failed pretraining: removed after a config
error before any checkpoint (it held only the seeded initial model, under a hash the corrected
config no longer has), kept when there is something to resume or the same config will run again."""

from __future__ import annotations

import os

import pytest
from pretrain_jobs import _job


def _run(tmp_path, monkeypatch, error: BaseException, checkpoint: bool):
    """``run_pretrain`` with a ``fit`` that starts Ray Train's run folder (with a checkpoint or
    not) and fails with ``error``, as Ray Train's ``fit`` does after its workers failed."""
    import lrl.train.pretrain as pretrain
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    def fails(p, seed, table, tok_dir, model_dir, tmp, run_dir, *args, **kwargs):
        ray_run = os.path.join(run_dir, pretrain.STAGE)
        os.makedirs(ray_run)
        open(os.path.join(ray_run, ".validate_storage_marker"), "w").close()  # what Ray Train writes first
        if checkpoint:
            os.makedirs(os.path.join(ray_run, "checkpoint_2026-01-01_00-00-00.000000"))
        raise error

    monkeypatch.setattr(pretrain, "fit", fails)
    monkeypatch.setattr("lrl.runtime.init_ray", lambda cfg: None)
    pretrain.run_pretrain(StageContext(load_job(str(_job(tmp_path, {"engine": "torch"})))))


def _worker_error(exc: Exception):
    """What Ray Train 2.60's ``fit`` raises when rank 0 raised ``exc``."""
    from ray.train import WorkerGroupError

    return WorkerGroupError(f"[Rank 0 Error Snippet]:\n{exc!r}", {0: exc})


def test_a_config_error_in_the_workers_removes_the_run_folder_and_says_so(tmp_path, monkeypatch):
    """``engine: torch`` with fp16 is found in the workers (``TorchEngine``): measured on CPU, the
    stage failed with Ray Train's WorkerGroupError (exit 1, a traceback) and left the folder with
    the initial model and Ray Train's empty run folder. Now the worker's ConfigError is the stage's
    error (``lrl`` exits 2 with its message) and the folder is gone."""
    from lrl.config import ConfigError

    why = ConfigError("pretrain.precision=fp16 is only supported with engine=deepspeed on GPU")
    with pytest.raises(BaseException) as err:
        _run(tmp_path, monkeypatch, _worker_error(why), checkpoint=False)
    runs = tmp_path / "runs"
    assert not list(runs.glob(".pretrain-*.ray"))
    assert not list(runs.glob("pretrain-*")) and not list(runs.glob(".pretrain-*.tmp-*"))
    assert err.value is why


@pytest.mark.parametrize("case", ["config error after a checkpoint", "crash before a checkpoint",
                                  "crash after a checkpoint", "stop"])
def test_the_run_folder_stays_where_a_rerun_needs_it(tmp_path, monkeypatch, case):
    """A checkpoint is something to resume (or a failure to look into), whatever the error; a crash
    or a stop is rerun with the same config, whose hash names this folder (its initial model is
    reused, its checkpoints resumed): kept. A worker's config error is still the stage's error."""
    from lrl.config import ConfigError

    misfit = ConfigError("the checkpoint does not fit pretrain's settings")
    error = {"config error after a checkpoint": _worker_error(misfit),
             "crash before a checkpoint": _worker_error(RuntimeError("CUDA error: out of memory")),
             "crash after a checkpoint": _worker_error(RuntimeError("CUDA error: out of memory")),
             "stop": KeyboardInterrupt("pretraining stopped by Ctrl-C")}[case]
    with pytest.raises(BaseException) as err:
        _run(tmp_path, monkeypatch, error, checkpoint="after" in case)
    assert err.value is (misfit if case.startswith("config") else error)
    (run_dir,) = (tmp_path / "runs").glob(".pretrain-*.ray")
    assert (run_dir / "init" / "config.json").is_file()


def test_torch_engine_with_fp16_is_a_config_error_at_load():
    """The combination no worker can train is refused when the job loads, naming the field: found
    in the Ray Train workers, it cost a worker group per retry (``FailureConfig``) first."""
    from lrl.config import ConfigError
    from lrl.job import load_job

    with pytest.raises(ConfigError, match="pretrain.*precision=fp16 is only supported with engine=deepspeed"):
        load_job(None, ["pretrain.engine=torch", "pretrain.precision=fp16"])
    assert load_job(None, ["pretrain.precision=fp16"]).pretrain.engine == "deepspeed"  # on a GPU, later


def test_ray_train_v1_is_refused_before_any_folder_is_made(tmp_path, monkeypatch):
    """With ``RAY_TRAIN_V2_ENABLED=0`` Ray Train V1 keeps checkpoints a level deeper than the run
    folder lrl reads: resume would miss them, and the leftover cleanup could remove them."""
    import lrl.train.pretrain as pretrain
    from lrl.config import ConfigError
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    monkeypatch.setenv("RAY_TRAIN_V2_ENABLED", "0")
    with pytest.raises(ConfigError, match="RAY_TRAIN_V2_ENABLED=0 selects Ray Train V1"):
        pretrain.run_pretrain(StageContext(load_job(str(_job(tmp_path, {"engine": "torch"})))))
    assert not list((tmp_path / "runs").glob(".pretrain-*.ray"))
