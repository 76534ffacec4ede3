"""Pretraining runs that stop and go on: a resumed run ends with the uninterrupted run's weights
(dropout included) and run-control settings change neither the weights nor the folder, a 2-worker
DeepSpeed ZeRO-2 bf16 run resumes from its checkpoint's step with each worker's stream counts, a time limit is reported as an early stop,
and a DeepSpeed bf16 run saves its fp32 master weights."""

import json
from pathlib import Path

import pytest
import yaml
from pretrain_jobs import _bf16_share, _check_output, _job


def test_run_control_settings_and_a_resume_keep_the_weights_and_folder(tmp_path, ray_session, capsys):
    """One set of runs (each costs a Ray Train start) for two checks of the same model config.

    ``RUN_CONTROL`` fields steer the run, not the model: trained with two values of each (a, b),
    the final weights are equal, so the folder name (and the resumable run folder) leaves them out.

    A run that fails before step 4 and resumes from its step-2 checkpoint must end with the
    weights of a run that never failed (a: the same report/eval/checkpoint steps), bit for bit.
    Dropout (the model's default 0.1) draws from torch's global generator, which each attempt
    seeded once at start-up: the resumed attempt drew other dropout masks than the uninterrupted
    run at steps 3-6."""
    import torch
    from safetensors.torch import load_file

    from lrl.cli import main
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain import RUN_CONTROL, stage_output

    assert RUN_CONTROL == {"report_every", "eval_every", "checkpoint_every", "max_failures", "keep_checkpoints"}
    job = _job(tmp_path, {"engine": "torch", "cpus_per_worker": 1, "precision": "fp32"})
    assert main(["tokenizer", str(job)]) == 0
    assert "(reused: finished" not in capsys.readouterr().out
    assert main(["tokenizer", str(job)]) == 0
    assert "  (reused: finished " in capsys.readouterr().out
    tok = next(p for p in (tmp_path / "runs").iterdir() if p.name.startswith("tokenizer-"))
    base = yaml.safe_load(job.read_text(encoding="utf-8"))
    base["pretrain"]["tokenizer_path"] = str(tok)
    # a reports and evaluates every step or two and checkpoints mid-run; b does none of it; the
    # resumed run steps as a does (so its curve must be a's) but fails once after its step-2
    # checkpoint and its step-3 report (a report the failed attempt made that must not survive).
    a = {"report_every": 1, "eval_every": 2, "checkpoint_every": 2, "max_failures": 0, "keep_checkpoints": True}
    settings = {"a": a,
                "b": {"report_every": 5, "eval_every": 0, "checkpoint_every": 100, "max_failures": 3,
                      "keep_checkpoints": False},
                "resumed": {**a, "max_failures": 1, "keep_checkpoints": False, "fail_at_step": 4}}
    assert set(settings["a"]) == RUN_CONTROL
    weights, hashes, metrics = {}, set(), {}
    for name, values in settings.items():
        # Each its own output root: the same hash there is a folder (and a run folder) of its own.
        cfg = {**base, "output": {"root": str(tmp_path / f"runs_{name}")},
               "pretrain": {**base["pretrain"], **values}}
        f = tmp_path / f"{name}.yaml"
        f.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        if name != "resumed":
            hashes.add(stage_output(StageContext(load_job(str(f), [])))[0].hash)
        assert main(["pretrain", str(f)]) == 0
        out = next(p for p in (tmp_path / f"runs_{name}").iterdir() if p.name.startswith("pretrain-"))
        weights[name] = load_file(str(out / "model.safetensors"))
        metrics[name] = json.loads((out / "metrics.json").read_text())
    assert len(hashes) == 1
    # the curve: a point per report, held-out perplexity where it was evaluated (every 2nd step
    # and at the end), the same final point either way
    a_curve, b_curve = metrics["a"]["history"], metrics["b"]["history"]
    assert [h["step"] for h in a_curve] == [1, 2, 3, 4, 5, 6] and [h["step"] for h in b_curve] == [5, 6]
    assert [h["step"] for h in a_curve if "ppl_ug" in h] == [2, 4, 6] and "ppl_wo" in a_curve[1]
    assert all(h["loss"] > 0 and h["lr"] > 0 and h["tokens_per_s"] > 0 for h in a_curve + b_curve)
    assert a_curve[-1]["ppl_ug"] == b_curve[-1]["ppl_ug"] and a_curve[-1]["loss"] == b_curve[-1]["loss"]
    a_w = weights["a"]
    assert set(a_w) == set(weights["b"]) == set(weights["resumed"]) and a_w
    for other in ("b", "resumed"):
        b_w = weights[other]
        assert all(torch.equal(a_w[k], b_w[k]) for k in a_w), (other, [k for k in a_w if not torch.equal(a_w[k], b_w[k])])
    # the resume: from the step-2 checkpoint, with the uninterrupted run's batches, loss and curve
    resumed = metrics["resumed"]
    assert resumed["attempt_start_steps"] == [0, 2] and metrics["a"]["attempt_start_steps"] == [0]
    assert "steps 6 in 2 attempts (resumed at step 2)" in capsys.readouterr().out  # speeds: the whole run's
    assert resumed["stream_mixture"] == metrics["a"]["stream_mixture"]  # same batches
    assert resumed["loss"] == metrics["a"]["loss"]
    # the curve survives the resume: the failed attempt's points up to its checkpoint (steps 1, 2,
    # with the step-2 perplexity) come from the checkpoint, then the resumed attempt's (its step 3
    # once, not the failed attempt's too); the same points as the uninterrupted run's
    same = ("step", "loss", "aux_loss", "lr", "ppl_ug", "ppl_wo")
    assert [{k: h.get(k) for k in same} for h in resumed["history"]] == [{k: h.get(k) for k in same} for h in a_curve]
    # A field that does shape the model still makes a new folder.
    other = {**base, "pretrain": {**base["pretrain"], "lr": 1e-3}}
    f = tmp_path / "other.yaml"
    f.write_text(yaml.safe_dump(other, allow_unicode=True), encoding="utf-8")
    assert stage_output(StageContext(load_job(str(f), [])))[0].hash not in hashes


def test_time_limit_stop_is_reported_as_early(tmp_path, ray_session, capsys):
    """A run stopped by ``time_limit_s`` printed and recorded only ``steps N``, the same as a run
    that finished its planned steps; it must say that it stopped, and after how many of how many."""
    from lrl.cli import main

    job = _job(tmp_path, {"engine": "torch", "cpus_per_worker": 1, "precision": "fp32", "time_limit_s": 1e-6})
    assert main(["pretrain", str(job)]) == 0
    out = capsys.readouterr().out
    path = Path(out.split("pretrain: ")[1].split("\n")[0].strip())
    m = json.loads((path / "metrics.json").read_text())
    manifest = json.loads((path / "manifest.json").read_text())
    # The first step trains whatever the limit: a run of 0 steps saved the initial weights.
    assert m["step"] == 1 and m["steps_planned"] == 6 and m["stopped_early"] == "time_limit_s"
    assert manifest["steps"] == m["step"] and manifest["steps_planned"] == 6
    assert manifest["stopped_early"] == "time_limit_s"
    assert f"steps {m['step']} of 6 (stopped by time_limit_s)" in out


def test_time_limit_and_speeds_cover_every_attempt(tmp_path, ray_session):
    """A run fails before step 5 with no retry left, then runs again (as after a crash) from its
    step-3 checkpoint with ``time_limit_s`` set to the training time the checkpoint holds: that
    budget is used up, so the run must stop at once. The clock restarted with each attempt, so the
    resumed attempt trained on (a run with time_limit_s=3600 that failed at 50 minutes trained up
    to 110); and tokens/s, MFU and input share covered the last attempt only (here: 0, no step).
    Batches of 64 of the 97 packed sequences: the last batch of an epoch is partial."""
    from ray.train import TrainingFailedError

    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain import _init_model, fit, stage_output

    cfg = load_job(_job(tmp_path, {"engine": "torch", "cpus_per_worker": 1, "precision": "fp32", "batch_size": 64,
                                   "fail_at_step": 5, "max_failures": 0}))
    _, tok_dir, table = stage_output(StageContext(cfg))
    run_dir = tmp_path / "ray"
    model_dir = _init_model(cfg, tok_dir, ["ug", "wo"], str(run_dir / "init"))
    with pytest.raises(TrainingFailedError):
        fit(cfg.pretrain, cfg.seed, table, tok_dir, model_dir, str(tmp_path / "out"), str(run_dir))
    (saved,) = run_dir.glob("pretrain/checkpoint_*/client_state.json")
    state = json.loads(saved.read_text())
    assert state["step"] == 3 and state["train_s"] > 0 and state["tokens"] > 0 and state["loop_s"] > 0
    again = cfg.pretrain.model_copy(update={"time_limit_s": state["train_s"]})
    m = fit(again, cfg.seed, table, tok_dir, model_dir, str(tmp_path / "out"), str(run_dir)).metrics
    assert m["attempt_start_steps"] == [0, 3]
    assert m["step"] == 3 and m["stopped_early"] == "time_limit_s" and m["train_wall_s"] >= state["train_s"]
    assert m["tokens_per_s"] == pytest.approx(state["tokens"] / state["loop_s"]) and m["tokens_per_s"] > 0
    assert 0 < m["mfu"] < 1 and m["input_share"] == pytest.approx(state["input_s"] / state["loop_s"])
    # every packed sequence was trained in epoch 0 (finished at step 3): none dropped
    assert m["packed_sequences"] % 64 and m["epoch_sequences"] == m["packed_sequences"]
    assert m["sequences_left_out_per_epoch"] == 0 and m["split_padding_sequences"] == 0


def test_ctrl_c_before_ray_registers_the_last_checkpoint_resumes_from_it(tmp_path, ray_session, monkeypatch):
    """Ray Train registers a reported checkpoint only at its controller's next poll of the workers;
    a Ctrl-C (or a killed driver) before that poll left the step-4 checkpoint complete on disk but
    out of Ray's registry, and the rerun resumed from step 2 (``attempt_start_steps`` [0, 2]),
    though the user was told the checkpoints were kept. Here the poll is made never to come: the
    worker waits until the controller has the step-2 report, keeps the step-4 report from it,
    then blocks at step 5 until the Ctrl-C.
    A newer checkpoint folder whose upload was cut short must not be resumed from."""
    import os
    import signal
    import threading
    import time

    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train import pretrain_loop
    from lrl.train.pretrain import _init_model, fit, stage_output

    cfg = load_job(_job(tmp_path, {"engine": "torch", "cpus_per_worker": 1, "precision": "fp32", "steps": 6,
                                   "checkpoint_every": 2, "report_every": 100, "max_failures": 0}))
    _, tok_dir, table = stage_output(StageContext(cfg))
    run_dir = tmp_path / "ray"
    model_dir = _init_model(cfg, tok_dir, ["ug", "wo"], str(run_dir / "init"))
    paused = tmp_path / "paused_at_step_5"

    def stopped_after_step_4(config):  # runs in the Ray Train worker (pickled by value)
        import time

        from ray.train.v2._internal.execution.context import TrainContext, get_train_context

        import lrl.train.pretrain_loop as loop

        deliver, draw = TrainContext._wait_then_report, loop.step_generator
        results = get_train_context().get_result_queue()

        def undelivered(self, report, index):  # the step-4 report never reaches the controller
            if report.checkpoint is not None and report.metrics.get("step") == 4:
                results.put = lambda *a, **k: None
            try:
                deliver(self, report, index)
            finally:
                results.__dict__.pop("put", None)

        def blocking(seed, step, rank, micro):
            while step == 3 and not results.empty():  # the controller registers step 2 first
                time.sleep(0.05)
            if step == 5:
                paused.touch()
                while True:  # until the Ctrl-C aborts the run
                    time.sleep(0.1)
            return draw(seed, step, rank, micro)

        TrainContext._wait_then_report, loop.step_generator = undelivered, blocking
        return loop.train_loop(config)

    def ctrl_c() -> None:
        deadline = time.time() + 600
        while not paused.exists() and time.time() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(pretrain_loop, "train_loop", stopped_after_step_4)
    threading.Thread(target=ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt, match="checkpoints are kept"):
        fit(cfg.pretrain, cfg.seed, table, tok_dir, model_dir, str(tmp_path / "out"), str(run_dir))
    monkeypatch.undo()
    saved = {json.loads(p.read_text())["step"] for p in run_dir.glob("pretrain/checkpoint_*/client_state.json")}
    assert saved == {2, 4}
    snapshot = json.loads((run_dir / "pretrain" / "checkpoint_manager_snapshot.json").read_text())
    assert snapshot["latest_checkpoint_result"]["metrics"]["step"] == 2  # Ray's registry: step 2
    cut = run_dir / "pretrain" / "checkpoint_2999-01-01_00-00-00.000000"  # an upload cut short
    cut.mkdir()
    (cut / "client_state.json").write_text(json.dumps({"step": 5}))
    (cut / "state.pt").write_bytes(b"half")
    m = fit(cfg.pretrain, cfg.seed, table, tok_dir, model_dir, str(tmp_path / "out"), str(run_dir)).metrics
    assert m["attempt_start_steps"] == [0, 4] and m["step"] == 6


def test_resume_checkpoint_takes_the_newest_complete_one(tmp_path, capsys, monkeypatch):
    """``resume_checkpoint``: the newest marked folder when it is newer than Ray's registered
    checkpoint, Ray's otherwise; folders without the marker never count."""
    import logging
    import sys

    from ray.train import Checkpoint

    from lrl.train.pretrain_resume import mark_complete, resume_checkpoint

    names = ["checkpoint_2026-01-01_00-00-01.000000", "checkpoint_2026-01-01_00-00-02.000000",
             "checkpoint_2026-01-01_00-00-03.000000"]
    for n in names:
        (tmp_path / n).mkdir()
    older, newer, cut = (Checkpoint.from_directory(str(tmp_path / n)) for n in names)
    assert resume_checkpoint(older, str(tmp_path)) is older  # nothing marked: Ray's
    assert resume_checkpoint(None, str(tmp_path)) is None
    mark_complete(older, 2)
    mark_complete(newer, 4)
    assert resume_checkpoint(older, str(tmp_path)).path == newer.path
    assert resume_checkpoint(None, str(tmp_path)).path == newer.path
    assert resume_checkpoint(cut, str(tmp_path)) is cut  # Ray's registered one is newer still
    assert resume_checkpoint(older, str(tmp_path / "missing")) is older
    assert sorted(p.name for p in (tmp_path / names[1]).iterdir()) == ["lrl_complete.json"]
    # Rank 0 says where each attempt starts, Ray's registered checkpoint included (a rerun that
    # resumed from it said nothing); other ranks and a finished run's final model say nothing.
    capsys.readouterr()
    resume_checkpoint(newer, str(tmp_path))
    assert capsys.readouterr().err == f"pretrain: resuming from {names[1]} (step 4)\n"
    resume_checkpoint(older, str(tmp_path))
    assert f"pretrain: resuming from {names[1]} (step 4), newer than Ray Train's" in capsys.readouterr().err
    resume_checkpoint(older, str(tmp_path), rank=1)
    # Once in a Ray Train worker, whose print() logs the line (the worker's root logger writes to
    # its stderr) and, its stderr being wrapped, prints it too: every resume said it twice.
    from ray.train.v2._internal.logging.patch_print import redirected_print

    monkeypatch.setattr("builtins.print", redirected_print)
    root, console = logging.getLogger(), logging.StreamHandler(sys.stderr)
    level = root.level
    root.addHandler(console)
    root.setLevel(logging.INFO)  # as Ray Train sets it in its workers
    try:
        resume_checkpoint(older, str(tmp_path))
    finally:
        root.removeHandler(console)
        root.setLevel(level)
        monkeypatch.undo()
    said = capsys.readouterr().err
    assert said.count("pretrain: resuming from") == 1 and "newer than Ray Train's" in said, said
    mark_complete(cut, 6, final=True)
    resume_checkpoint(cut, str(tmp_path))
    assert capsys.readouterr().err == ""


def test_resume_checkpoint_reads_the_markers_on_an_object_store(s3_store, capsys):
    """Under an s3:// output.root Ray Train keeps the checkpoints there: the markers were written
    and read on local paths only, so a rerun resumed only from Ray's registered checkpoint."""
    import pyarrow.fs as pafs
    from ray.train import Checkpoint

    from lrl.train.pretrain_resume import has_checkpoint, mark_complete, resume_checkpoint

    run = s3_store.bucket() + "/runs/.pretrain-0123456789ab.ray/pretrain"
    fs, inner = pafs.FileSystem.from_uri(run)
    names = ["checkpoint_2026-01-01_00-00-01.000000", "checkpoint_2026-01-01_00-00-02.000000",
             "checkpoint_2026-01-01_00-00-03.000000"]
    for n in names:
        with fs.open_output_stream(f"{inner}/{n}/state.pt") as f:
            f.write(b"state")
    older, newer, cut = (Checkpoint(f"{inner}/{n}", filesystem=fs) for n in names)
    assert has_checkpoint(run) and resume_checkpoint(older, run) is older  # nothing marked: Ray's
    mark_complete(older, 2)
    mark_complete(newer, 4)
    assert fs.get_file_info(f"{inner}/{names[1]}/lrl_complete.json").type == pafs.FileType.File
    chosen = resume_checkpoint(older, run)
    assert chosen.path == newer.path and isinstance(chosen.filesystem, pafs.S3FileSystem)
    assert "pretrain: resuming from checkpoint_2026-01-01_00-00-02.000000 (step 4), newer than" in capsys.readouterr().err
    assert resume_checkpoint(None, run).path == newer.path
    assert resume_checkpoint(cut, run) is cut  # Ray's registered one is newer still
    assert resume_checkpoint(older, run + "-missing") is older


@pytest.mark.slow
def test_deepspeed_zero2_bf16_two_workers_resume_to_the_straight_runs_weights_and_counts(tmp_path, ray_session):
    """2 workers x 0.5 CPU, DeepSpeed ZeRO-2 bf16; rank 0 fails once before step 5: the retry must
    start at the step-3 checkpoint, not at step 0, finish all 6 steps, and end with the weights
    (the fp32 master weights, gathered from 2 ranks) and per-language stream counts of the run that
    never failed. A checkpoint's client state is rank 0's and every rank loads it, so rank 1 took
    over rank 0's per-language counts and ``stream_mixture`` differed (same total, other languages)
    though the weights did not. Batches of 16: each shard ends its epoch with a partial batch, the
    resumed attempt's first. (One pair of runs for both checks: each 2-worker run costs ~50 s.)"""
    import torch
    from safetensors.torch import load_file

    from lrl.cli import main

    weights, metrics = {}, {}
    for name, extra in (("straight", {}), ("resumed", {"fail_at_step": 5})):
        root = tmp_path / name
        root.mkdir()
        job = _job(root, {"engine": "deepspeed", "num_workers": 2, "cpus_per_worker": 0.5, "precision": "bf16",
                          "deepspeed": {"zero_stage": 2}, "batch_size": 16, **extra})
        assert main(["pretrain", str(job)]) == 0
        out = next(p for p in (root / "runs").iterdir() if p.name.startswith("pretrain-"))
        metrics[name] = _check_output(str(out))
        assert _bf16_share(out / "model.safetensors") < 0.5  # the fp32 master weights, not the bf16 module's
        weights[name] = load_file(str(out / "model.safetensors"))
    assert metrics["resumed"]["attempt_start_steps"] == [0, 3] and metrics["straight"]["attempt_start_steps"] == [0]
    assert all(m["step"] == 6 and m["engine"] == "deepspeed" and m["num_workers"] == 2 for m in metrics.values())
    mix = metrics["straight"]["stream_mixture"]
    m = metrics["resumed"]
    shard = (m["packed_sequences"] + m["split_padding_sequences"]) // 2  # equal shards, nothing dropped
    assert m["split_padding_sequences"] == m["packed_sequences"] % 2 and shard % 16
    batches = [min(16, shard - at) for at in range(0, shard, 16)] * 6  # a partial batch ends each epoch
    assert sum(v["sequences"] for v in mix.values()) == 2 * sum(batches[:6])  # 6 steps, 2 workers
    assert m["epoch_sequences"] == 2 * shard and m["sequences_left_out_per_epoch"] == 0
    assert metrics["resumed"]["stream_mixture"] == mix
    a, b = weights["straight"], weights["resumed"]
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def test_matmul_peak_of_more_threads_is_at_least_that_of_fewer(tmp_path, monkeypatch):
    """A peak measured while the machine was busy can fall below the peak of fewer threads (here
    2-thread fp32 was cached at 61 GFLOP/s, 1-thread at 161), which overstated the MFU of runs with
    more threads or workers: the fewer-thread peak is a lower bound of the more-thread one."""
    import os

    import torch

    from lrl.train.pretrain_metrics import measure_matmul_peak

    monkeypatch.setenv("LRL_CACHE_DIR", str(tmp_path))
    name, version = f"cpu{os.cpu_count()}", torch.__version__
    high = 1e18  # more than any CPU measures
    (tmp_path / "matmul_peak.json").write_text(json.dumps({
        f"{name}|fp32|1|{version}|256": high,
        f"{name}|bf16|1|{version}|256": high * 10,  # another dtype: not a bound for fp32
        f"{name}|fp32|4|{version}|256": high * 10,  # more threads: not a bound for 2
    }))
    assert measure_matmul_peak("fp32", threads=2, n=256, seconds=0.1) == high
    assert measure_matmul_peak("fp32", threads=1, n=256, seconds=0.1) == high


def test_deepspeed_bf16_run_saves_the_fp32_master_weights(tmp_path, ray_session, data_root):
    """Under DeepSpeed's bf16 mode the module holds bf16 copies and the optimizer the fp32 weights
    it updates. The final folder (and aux head) came from the module: fp32 files whose every value
    was bf16-rounded. An fp32 run's weights are almost never bf16-representable (~2e-5 of them)."""
    from lrl.cli import main

    src = (data_root / "ud" / "ug" / "dev.conllu").read_text(encoding="utf-8").split("\n\n")[:40]
    conllu = tmp_path / "aux.conllu"
    conllu.write_text("\n\n".join(src) + "\n\n", encoding="utf-8")
    job = _job(tmp_path, {"engine": "deepspeed", "precision": "bf16", "cpus_per_worker": 1, "steps": 4,
                          "deepspeed": {"zero_stage": 2}}, str(conllu))
    assert main(["pretrain", str(job)]) == 0
    out = next(p for p in (tmp_path / "runs").iterdir() if p.name.startswith("pretrain-"))
    _check_output(str(out))
    assert _bf16_share(out / "model.safetensors") < 0.5
    assert _bf16_share(out / "aux_head" / "head.safetensors") < 0.5
