"""Pieces of pretraining that need no real Ray Train run: the per-worker loop's parts, and where
training runs (the device choice, the MFU peak) on a cluster this machine does not have."""

from __future__ import annotations

import json

import pytest


def test_loss_of_a_window_without_mlm_steps_is_null_not_nan():
    """steps=3 with the aux objective every 3rd step: the last window held only an aux step, and
    the reported MLM loss was 0/0 = NaN, written as NaN (invalid JSON) into manifest.json."""
    from lrl.train.pretrain_loop import window_mean

    assert window_mean([2.0, 4.0]) == pytest.approx(3.0)
    assert window_mean([]) is None
    json.loads(json.dumps({"loss": window_mean([]), "aux_loss": window_mean([1.5])}, allow_nan=False))


def test_final_loss_after_a_report_is_the_reported_window_not_null():
    """A run stopped by ``time_limit_s`` right after a report step has no step in its final
    window: its final loss was null (``loss -`` in the summary) after 100 trained steps."""
    from lrl.train.pretrain_loop import LossWindow

    w = LossWindow()
    assert w.means() == (None, None)  # nothing trained yet
    w.mlm += [2.0, 4.0]
    w.end_step()
    w.aux.append(1.0)
    w.end_step()
    assert w.means() == (3.0, 1.0)
    w.reset()  # a report covered both steps; the loop then stops
    assert w.means() == (3.0, 1.0)
    w.mlm.append(5.0)
    w.end_step()  # one more step: its own window, with no auxiliary step in it
    assert w.means() == (5.0, None)


class _Group:  # an autoscaler node type, as ray._private.state's ClusterConfig holds it
    def __init__(self, resources: dict, max_count: int):
        self.resources, self.max_count, self.min_count, self.name = resources, max_count, 0, "g"


def _cluster(monkeypatch, gpus: float, *groups: _Group) -> None:
    import types

    import ray
    import ray._private.state

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0, **({"GPU": gpus} if gpus else {})})
    config = types.SimpleNamespace(node_group_configs=list(groups)) if groups else None
    monkeypatch.setattr(ray._private.state.state, "get_cluster_config", lambda: config)


def test_auto_device_follows_the_cluster_not_the_driver(monkeypatch):
    """The shipped clusters run the driver on a head without GPUs beside GPU worker groups that
    start at 0 nodes: ``use_gpu: null`` asked the driver's torch for CUDA and trained on CPU."""
    import torch

    from lrl.train.pretrain import choose_device
    from lrl.train.pretrain_config import PretrainConfig

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only head
    head, cpu, gpu = _Group({"CPU": 0}, 0), _Group({"CPU": 16}, 8), _Group({"CPU": 8, "GPU": 1}, 4)
    _cluster(monkeypatch, 0, head, cpu, gpu)  # aws.yaml / raycluster.yaml before any GPU node started
    on, why = choose_device(PretrainConfig())
    assert on and "autoscaler" in why and "up to 4" in why
    assert choose_device(PretrainConfig(num_workers=4))[0] and not choose_device(PretrainConfig(num_workers=5))[0]
    _cluster(monkeypatch, 0, head, _Group({"GPU": 1}, -1))  # unbounded GPU node type
    assert choose_device(PretrainConfig(num_workers=8))[0]
    _cluster(monkeypatch, 2)  # a fixed cluster with 2 GPUs (e.g. the rayjob's started GPU nodes)
    assert choose_device(PretrainConfig(num_workers=2)) == (True, "auto: the Ray cluster has 2 GPUs for 2 worker(s)")
    on, why = choose_device(PretrainConfig(num_workers=3))  # would wait forever for a third GPU
    assert not on and "need 3 GPUs" in why and "use_gpu=true" in why
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the driver's own GPU does not count
    _cluster(monkeypatch, 0, head, cpu)
    assert choose_device(PretrainConfig()) == (False, "auto: no GPUs in the Ray cluster or its autoscaler's node types")
    assert choose_device(PretrainConfig(use_gpu=True)) == (True, "pretrain.use_gpu=true")
    assert choose_device(PretrainConfig(use_gpu=False)) == (False, "pretrain.use_gpu=false")


def test_matmul_peak_is_measured_by_the_workers_on_their_devices():
    """Each GPU worker measures its own device; on CPU the first worker of a node measures with all
    the node's workers' threads (the driver's former measurement on one machine), the others add 0."""
    from lrl.train.pretrain_metrics import worker_peak

    calls = []

    def measure(dtype, threads=None, device="cpu"):
        calls.append((dtype, threads, device))
        return 10.0

    assert worker_peak("bf16", "cuda:1", 2, local_rank=1, local_world=2, measure=measure) == 10.0
    assert calls == [("bf16", None, "cuda:1")]
    assert worker_peak("fp32", "cpu", 2, local_rank=0, local_world=3, measure=measure) == 10.0
    assert calls[-1] == ("fp32", 6, "cpu")
    assert worker_peak("fp32", "cpu", 2, local_rank=1, local_world=3, measure=measure) == 0.0 and len(calls) == 2


def test_gpu_training_from_a_cpu_only_driver_never_touches_cuda(tmp_path, ray_session, monkeypatch):
    """``pretrain.use_gpu: true`` on a cluster whose head has no GPU: the driver measured the MFU
    peak on ``cuda`` itself and crashed ("Torch not compiled with CUDA enabled") before training.
    It now asks Ray Train for GPU workers and leaves every CUDA call to them."""
    import shutil

    import ray.train
    import ray.train.torch
    import torch
    from pretrain_jobs import _job

    import lrl.train.pretrain_metrics as pm
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain import run_pretrain

    def no_cuda(*args, **kwargs):
        raise AssertionError(f"the driver touched CUDA: {args} {kwargs}")

    def measure(dtype, threads=None, device="cpu", **kwargs):
        if str(device).startswith("cuda"):
            no_cuda(dtype, device)
        return 1e9

    monkeypatch.setattr(pm, "measure_matmul_peak", measure)
    monkeypatch.setattr(torch.cuda, "_lazy_init", no_cuda)
    seen = {}

    class Trainer:  # Ray Train as far as the driver sees it: the GPU workers' final checkpoint
        def __init__(self, loop, train_loop_config, scaling_config, **kwargs):
            seen.update(config=train_loop_config, scaling=scaling_config, torch=kwargs["torch_config"])

        def fit(self):
            d = tmp_path / "final"
            shutil.copytree(seen["config"]["model_dir"], d / "model")
            metrics = {"step": 1, "loss": 1.0, "tokens_per_s": 1.0, "mfu": 0.1, "attempt_start_steps": [0],
                       "device": "cuda", "device_reason": seen["config"]["device_reason"], "peak_flops": 1e15}
            (d / "metrics.json").write_text(json.dumps(metrics))
            return ray.train.Result(metrics=metrics, checkpoint=ray.train.Checkpoint.from_directory(str(d)),
                                    error=None, path=str(d))

    monkeypatch.setattr(ray.train.torch, "TorchTrainer", Trainer)
    # a cluster (the test's embedded Ray has no GPU, and check_resources refuses to wait on it)
    monkeypatch.setattr("lrl.train.pretrain_resources.embedded_ray", lambda: False)
    path = run_pretrain(StageContext(load_job(str(_job(tmp_path, {"use_gpu": True})))))
    assert seen["scaling"].use_gpu and seen["scaling"].resources_per_worker == {"CPU": 1.0, "GPU": 1}
    assert seen["torch"].backend == "nccl" and seen["config"]["use_gpu"] and "peak_flops" not in seen["config"]
    manifest = json.loads((tmp_path / path / "manifest.json").read_text())
    assert manifest["device"] == "cuda" and manifest["device_reason"] == "pretrain.use_gpu=true"


class _StoppedTrainer:
    """Ray Train 2.60's ``TorchTrainer`` as the driver sees a user's Ctrl-C: ``fit`` installs the
    SIGINT handler (which aborts the run), the signal arrives, and ``fit`` raises ``SystemExit(1)``.
    ``outcome`` replaces that ending (a training failure)."""

    outcome: BaseException | None = None

    def __init__(self, loop, **kwargs):
        self.run_dir = kwargs["run_config"].storage_path

    def _register_sigint_handler(self, controller) -> None:
        import signal

        signal.signal(signal.SIGINT, lambda signum, frame: None)  # Ray's: abort the controller

    def fit(self):
        import signal

        self._register_sigint_handler(None)
        if self.outcome is not None:
            raise self.outcome
        signal.raise_signal(signal.SIGINT)
        raise SystemExit(1)  # what Ray's ray.get raises once the aborted controller is gone


@pytest.mark.parametrize("outcome", [None, RuntimeError("worker failed")], ids=["ctrl_c", "failure"])
def test_ctrl_c_during_pretraining_stops_the_run_and_keeps_its_checkpoints(tmp_path, ray_session, monkeypatch,
                                                                        outcome):
    """Ctrl-C during ``trainer.fit`` ended as ``SystemExit(1)``: ``lrl run`` logged "pretrain:
    FAILED" and exited 1. It must stop like any Ctrl-C (KeyboardInterrupt: STOPPED, exit 130) and
    keep the run folder a rerun resumes from; a training failure stays a failure."""
    import signal

    import ray.train.torch
    from pretrain_jobs import _job

    from lrl.job import load_job
    from lrl.pipeline.runner import run_pipeline

    monkeypatch.setattr(ray.train.torch, "TorchTrainer", _StoppedTrainer)
    monkeypatch.setattr(_StoppedTrainer, "outcome", outcome)
    cfg = load_job(str(_job(tmp_path, {"engine": "torch"})), ["pipeline.stages=[tokenizer,pretrain]"])
    lines: list[str] = []
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt if outcome is None else RuntimeError) as err:
        run_pipeline(cfg, log=lines.append)
    assert signal.getsignal(signal.SIGINT) is before  # the runner put the handler back
    what = "STOPPED" if outcome is None else "FAILED"
    assert any(line.startswith(f"[lrl run] pretrain: {what} after") for line in lines), lines
    if outcome is None:
        assert "checkpoints are kept" in str(err.value)
    runs = tmp_path / "runs"
    (run_dir,) = runs.glob(".pretrain-*.ray")  # kept: a rerun resumes from it
    assert (run_dir / "init" / "config.json").is_file()
    assert not list(runs.glob("pretrain-*"))  # nothing that looks finished, no temporary folder left


def test_fit_or_stop_changes_only_a_ctrl_c():
    """A ``SystemExit`` without a Ctrl-C (not Ray Train's abort) passes unchanged, and so does a
    result when no signal came."""
    from lrl.train.pretrain_resources import fit_or_stop

    class Exits(_StoppedTrainer):
        def __init__(self):
            pass

        def fit(self):
            self._register_sigint_handler(None)
            raise SystemExit(1)

    class Returns(Exits):
        def fit(self):
            self._register_sigint_handler(None)
            return "result"

    import signal

    before = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):
            fit_or_stop(Exits())
        assert fit_or_stop(Returns()) == "result"
    finally:
        signal.signal(signal.SIGINT, before)


def _nodes(monkeypatch, *nodes: dict, config=None) -> None:
    import types

    import ray
    import ray._private.state

    total: dict[str, float] = {}
    for n in nodes:
        for k, v in n.items():
            total[k] = total.get(k, 0) + v
    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True, "Resources": n} for n in nodes])
    monkeypatch.setattr(ray, "cluster_resources", lambda: total)
    groups = types.SimpleNamespace(node_group_configs=config) if config else None
    monkeypatch.setattr(ray._private.state.state, "get_cluster_config", lambda: groups)


def test_workers_that_can_never_be_placed_fail_fast(monkeypatch):
    """jobs/multilingual.yaml's 2 workers x 4 CPUs on ``ray.num_cpus=2`` waited for ever ("No
    available node types can fulfill resource request {'CPU': 4.0}"). The embedded Ray never
    grows, nor does a cluster whose autoscaler maximum is too small: an error naming the settings.
    A joined cluster without a published maximum (Ray 2.60's autoscalers) may grow: a warning."""
    from lrl.config import ConfigError
    from lrl.train.pretrain_config import PretrainConfig
    from lrl.train.pretrain_resources import check_resources

    big = PretrainConfig(num_workers=2, cpus_per_worker=4)
    _nodes(monkeypatch, {"CPU": 2.0})
    with pytest.raises(ConfigError, match=r"num_workers=2 x cpus_per_worker=4 \(8 CPUs.*embedded.*2 CPUs"):
        check_resources(big, gpu=False, embedded=True)
    assert check_resources(PretrainConfig(num_workers=2, cpus_per_worker=1), gpu=False, embedded=True) is None
    assert "for ever if this cluster has none" in check_resources(big, gpu=False, embedded=False)
    _nodes(monkeypatch, {"CPU": 4.0}, {"CPU": 4.0})  # 8 CPUs, a worker's 4 on each node
    assert check_resources(big, gpu=False, embedded=True) is None
    _nodes(monkeypatch, {"CPU": 6.0}, {"CPU": 2.0})  # 8 CPUs, but the second worker fits nowhere
    with pytest.raises(ConfigError, match="at most 6 CPUs on one"):
        check_resources(big, gpu=False, embedded=True)
    _nodes(monkeypatch, {"CPU": 16.0})  # GPUs asked for where there are none
    with pytest.raises(ConfigError, match="1 GPU each.*0 GPUs"):
        check_resources(PretrainConfig(use_gpu=True), gpu=True, embedded=True)
    # a cluster whose autoscaler publishes its maximum: 2 CPU nodes of 2 CPUs at most
    _nodes(monkeypatch, {"CPU": 2.0}, config=[_Group({"CPU": 2}, 2)])
    with pytest.raises(ConfigError, match=r"hold at most 0 such workers \(its node types have at most 2 CPUs"):
        check_resources(big, gpu=False, embedded=False)
    # 20 CPUs at its maximum, but a 4-CPU worker fits on none of its 2-CPU nodes: the total said "fits"
    _nodes(monkeypatch, {"CPU": 2.0}, config=[_Group({"CPU": 2}, 10)])
    with pytest.raises(ConfigError, match="hold at most 0 such workers"):
        check_resources(big, gpu=False, embedded=False)
    _nodes(monkeypatch, {"CPU": 2.0}, config=[_Group({"CPU": 2}, 1), _Group({"CPU": 6}, 1)])  # one fits
    with pytest.raises(ConfigError, match="hold at most 1 such workers"):
        check_resources(big, gpu=False, embedded=False)
    _nodes(monkeypatch, {"CPU": 2.0}, config=[_Group({"CPU": 8}, 1)])  # both on one 8-CPU node
    assert "waits until an autoscaler adds nodes" in check_resources(big, gpu=False, embedded=False)
    _nodes(monkeypatch, {"CPU": 2.0}, config=[_Group({"CPU": 4}, -1)])  # unbounded: it may grow
    assert "waits until an autoscaler adds nodes" in check_resources(big, gpu=False, embedded=False)


def test_pretrain_cli_says_which_settings_never_fit(tmp_path, ray_session, monkeypatch, capsys):
    """On the test session's embedded Ray (2 CPUs) the stage stops before Ray Train is asked."""
    import ray.train.torch
    from pretrain_jobs import _job

    from lrl.cli import main

    class Waits:
        def __init__(self, *args, **kwargs):
            raise AssertionError("Ray Train was asked for workers that never fit: it waits for ever")

    monkeypatch.setattr(ray.train.torch, "TorchTrainer", Waits)
    job = _job(tmp_path, {"engine": "torch", "num_workers": 2, "cpus_per_worker": 4})
    assert main(["pretrain", str(job)]) == 2
    err = capsys.readouterr().err
    assert "pretrain.num_workers=2 x cpus_per_worker=4" in err and "never be placed" in err
    # A config error before Ray Train: the folder held only the initial model, rebuilt by a rerun.
    assert not list((tmp_path / "runs").glob(".pretrain-*.ray"))
