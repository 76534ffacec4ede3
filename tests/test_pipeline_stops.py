"""``lrl run`` when it is stopped (SIGTERM, Ctrl-C) and what it checks before its first stage
(languages without train or dev sources)."""

from __future__ import annotations

import time

import pytest
from pipeline_fakes import STAGES, FakeStages, _cfg

from lrl.pipeline.runner import PipelineError, load_state, plan, run_pipeline, state_path


def test_a_stopped_stage_is_reported_stopped_not_failed(tmp_path):
    """``ray job stop`` (SIGTERM) printed "FAILED" just before "stopped by SIGTERM"."""
    from lrl.signals import Terminated

    def stopped(ctx):
        raise Terminated()

    lines: list[str] = []
    with pytest.raises(Terminated):
        run_pipeline(_cfg(tmp_path), registry={**FakeStages().registry(), "tokenizer": stopped}, log=lines.append)
    assert any("tokenizer: STOPPED after" in x for x in lines) and not any("FAILED" in x for x in lines)
    lines.clear()
    with pytest.raises(RuntimeError):
        run_pipeline(_cfg(tmp_path), registry=FakeStages(fail_once="pretrain").registry(), log=lines.append)
    assert any("pretrain: FAILED after" in x for x in lines)


def test_ctrl_c_after_a_stage_that_took_over_sigint_still_stops_the_run(tmp_path):
    """Ray Train's ``fit`` installs its own SIGINT handler (abort that training run) and leaves it
    installed: after pretrain, a Ctrl-C during finetune was swallowed ("Received SIGINT. Gracefully
    aborting the training run") and ``lrl quickstart`` ran on to the report with exit status 0."""
    import os
    import signal

    swallowed: list[int] = []

    def pretrain_like_ray_train(ctx):
        signal.signal(signal.SIGINT, lambda signum, frame: swallowed.append(signum))
        return fake.make("pretrain")(ctx)

    seen: list = []  # the handler when the Ctrl-C comes (said if the run is not interrupted)

    def finetune_interrupted(ctx):
        seen.append(signal.getsignal(signal.SIGINT))
        os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C
        for _ in range(100):  # the handler runs between bytecodes of the main thread
            time.sleep(0.01)
        return fake.make("finetune")(ctx)

    fake = FakeStages()
    registry = {**fake.registry(), "pretrain": pretrain_like_ray_train, "finetune": finetune_interrupted}
    before = signal.getsignal(signal.SIGINT)
    # As in a terminal. A process started in the background by a shell without job control (a CI
    # runner's `cmd &`) starts with SIGINT ignored, and the run rightly kept it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    lines: list[str] = []
    interrupted = False
    try:
        run_pipeline(_cfg(tmp_path), registry=registry, log=lines.append)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGINT, before)
    assert interrupted, (f"no KeyboardInterrupt; SIGINT handler at the Ctrl-C: {seen}", lines)
    assert not swallowed, "the finished stage's handler took the Ctrl-C"
    assert any("finetune: STOPPED after" in x for x in lines), lines
    assert "finetune" not in load_state(state_path(_cfg(tmp_path)))["stages"]


def _ner(*sources: str) -> str:
    """A ``data.ner`` override from ``lang:split`` pairs (the files are never read by fake stages)."""
    items = ", ".join(f"{{path: {s.replace(':', '_')}.conll, lang: {s.split(':')[0]}, split: {s.split(':')[1]}}}"
                      for s in sources)
    return f"data.ner=[{items}]"


def _touch(folder, *sources: str) -> None:
    """Empty files for ``_ner``'s paths in ``folder`` (the working directory): a pipeline without a
    generate stage checks that the sources finetune, tune and evaluate read exist (``preflight_inputs``)."""
    for s in sources:
        (folder / f"{s.replace(':', '_')}.conll").touch()


def test_a_language_without_dev_sentences_is_caught_before_the_first_stage(tmp_path):
    """``tune.languages=[wo]`` on a job whose data.ner has no wo dev source stopped tune with
    "no train and dev rows" only after generate, tokenizer and pretrain had run (hours on a
    recipe), and ``--dry-run`` said all was well."""
    fake = FakeStages()
    tune_stages = "pipeline.stages=[generate,tokenizer,pretrain,tune,evaluate,report]"
    cfg = _cfg(tmp_path, _ner("ug:train", "ug:dev"), tune_stages, "tune.languages=[wo]")
    with pytest.raises(PipelineError, match=r"tune\.languages: wo \(no train and no dev\)"):
        run_pipeline(cfg, registry=fake.registry(), log=lambda s: None)
    assert fake.calls == {}, "a stage ran before the config error was found"
    with pytest.raises(PipelineError, match="tune.languages"):
        plan(cfg)
    # a lang code that differs between the train and dev sources of the language asked for
    cfg = _cfg(tmp_path, _ner("uig:train", "ug:dev"), tune_stages, "tune.languages=[ug]")
    with pytest.raises(PipelineError, match=r"ug \(no train\)"):
        run_pipeline(cfg, registry=fake.registry(), log=lambda s: None)
    run_pipeline(_cfg(tmp_path, _ner("ug:train", "ug:dev"), tune_stages, "tune.languages=[ug]"),
                 registry=fake.registry(), log=lambda s: None)
    assert fake.work["tune"] == 1


def test_a_job_without_labelled_data_stops_before_pretraining_not_after(tmp_path):
    """With ``data.ner`` empty, tune (or finetune) stopped only after generate, tokenizer and
    pretrain had run, and ``--dry-run`` listed every stage as one that would run."""
    fake = FakeStages()
    for stages, stage in (("[generate,tokenizer,pretrain,tune,evaluate,report]", "tune"),
                          ("[generate,tokenizer,pretrain,finetune,evaluate,report]", "finetune")):
        cfg = _cfg(tmp_path, "data.ner=[]", f"pipeline.stages={stages}")
        with pytest.raises(PipelineError, match=rf"{stage} selects models on dev sentences, and data.ner is "
                                                r"empty.*pipeline.stages=\[generate,tokenizer,pretrain\]"):
            run_pipeline(cfg, registry=fake.registry(), log=lambda s: None)
        with pytest.raises(PipelineError, match="data.ner is empty"):
            plan(cfg)
    assert fake.calls == {}, "a stage ran before the config error was found"
    with pytest.raises(PipelineError) as first:  # nothing before it to stop at: no empty list offered
        plan(_cfg(tmp_path, "data.ner=[]", "pipeline.stages=[tune,report]"))
    assert "data.ner is empty" in str(first.value) and "pipeline.stages=[]" not in str(first.value)
    run_pipeline(_cfg(tmp_path, "data.ner=[]", "pipeline.stages=[generate,tokenizer,pretrain]"),
                 registry=fake.registry(), log=lambda s: None)
    assert fake.work == {"generate": 1, "tokenizer": 1, "pretrain": 1}


def test_a_language_finetune_would_leave_out_is_named_before_the_first_stage(tmp_path, monkeypatch):
    """A train source whose language has no dev source (``lang: uig`` beside ``lang: ug``) was left
    out of finetune, evaluate and the report without a word, and the run ended with exit 0."""
    monkeypatch.chdir(tmp_path)
    _touch(tmp_path, "uig:train", "ug:dev")
    lines: list[str] = []
    cfg = _cfg(tmp_path, _ner("uig:train", "ug:dev", "sw:train", "sw:dev"))
    run_pipeline(cfg, registry=FakeStages().registry(), log=lines.append)
    warned = [line for line in lines if "warning" in line]
    assert len(warned) == 2 and "['uig']" in warned[0] and "['sw', 'ug']" in warned[0], lines
    assert "dev sentences but no training sentences for ['ug']" in warned[1], lines  # the other half of it
    # --dry-run says it too (a pipeline that does not read the files to name its first folder)
    assert "['uig']" in plan(_cfg(tmp_path, _ner("uig:train", "ug:dev"), "pipeline.stages=[finetune,report]",
                                "finetune.model=preset:micro"))
    lines.clear()
    run_pipeline(_cfg(tmp_path, _ner("ug:train", "ug:dev")), registry=FakeStages().registry(), log=lines.append)
    assert not [line for line in lines if "warning" in line], lines


def test_a_language_with_dev_sentences_but_no_training_ones_is_named(tmp_path, capsys, monkeypatch):
    """``data.ner`` with ug and wo train+dev and only ``{lang: yo, split: dev}`` for yo: the run,
    its dry run and ``lrl finetune`` said nothing, and tune, evaluate and the report covered ug and
    wo alone (no model is trained for yo): "yo" appeared nowhere in the log."""
    import lrl.train.finetune
    from lrl.cli import main

    monkeypatch.chdir(tmp_path)
    _touch(tmp_path, "ug:train", "ug:dev", "wo:train", "wo:dev", "yo:dev", "sw:test", "sw:dev")
    ner = _ner("ug:train", "ug:dev", "wo:train", "wo:dev", "yo:dev")
    tune_stages = "pipeline.stages=[generate,tokenizer,pretrain,tune,evaluate,report]"
    lines: list[str] = []
    run_pipeline(_cfg(tmp_path, ner, tune_stages), registry=FakeStages().registry(), log=lines.append)
    warned = [line for line in lines if "warning" in line]
    assert len(warned) == 1 and "dev sentences but no training sentences for ['yo']: tune trains no model" in \
        warned[0] and "Add a split: train source" in warned[0] and "['ug', 'wo']" in warned[0], lines
    # the dry run (a pipeline that does not read the files to name its first folder)
    unread = ["pipeline.stages=[finetune,evaluate,report]", "finetune.model=preset:micro"]
    assert "for ['yo']: tune trains" in plan(_cfg(tmp_path, ner, *unread, "pipeline.stages=[tune,report]"))
    # a test source alone too; a translate-train target has training rows when generate writes
    # them, and none in a pipeline without generate (finetune then reads data.ner alone)
    said = plan(_cfg(tmp_path, _ner("ug:train", "ug:dev", "sw:test"), *unread))
    assert "test sentences but no training sentences for ['sw']: finetune trains" in said
    translated = "translate={enabled: true, train: {sources: [ug], target: sw, model: {backend: fake}}}"
    sw_dev = _ner("ug:train", "ug:dev", "sw:dev")
    assert "no training sentences for ['sw']" in plan(_cfg(tmp_path, sw_dev, *unread, translated))
    lines.clear()
    run_pipeline(_cfg(tmp_path, sw_dev, translated, "pipeline.stages=[generate,finetune,evaluate]", unread[1]),
                 registry=FakeStages().registry(), log=lines.append)
    assert not [line for line in lines if "no training" in line], lines
    # a joint model is scored on every language's rows (zero-shot), and languages asked for are chosen
    assert "no training" not in plan(_cfg(tmp_path, ner, *unread, "finetune.mode=joint"))
    assert "no training" not in plan(_cfg(tmp_path, ner, *unread, "finetune.languages=[ug,wo]"))
    # lrl finetune run alone (its stage keeps the languages with train and dev rows)
    job = tmp_path / "job.yaml"
    job.write_text(f"{ner.replace('data.ner=', 'data: {ner: ')}}}\n")
    monkeypatch.setattr(lrl.train.finetune, "run_finetune", lambda ctx: str(tmp_path))
    assert main(["finetune", str(job)]) == 0
    assert "no training sentences for ['yo']: finetune trains no model for them" in capsys.readouterr().err


def test_dry_run_says_pretrain_workers_can_never_be_placed_on_the_embedded_ray(tmp_path, monkeypatch):
    """``lrl run JOB --dry-run`` with ``pretrain.num_workers=2 cpus_per_worker=2`` on an embedded Ray
    of 2 CPUs said every stage would run; the run then failed at pretrain (``check_resources``),
    after generate and the tokenizer. The embedded Ray's resources are known from the config and
    the machine, without starting Ray; a cluster's are not, and the plan says it did not check."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # Ray's detection then finds no GPU, on any machine
    big = ("ray.num_cpus=2", "pretrain.num_workers=2", "pretrain.cpus_per_worker=2")
    text = plan(_cfg(tmp_path, *big))
    warned = [line for line in text.splitlines() if "warning: pretrain" in line]
    assert len(warned) == 1 and "can never be placed" in warned[0] and "2 CPUs and 0 GPUs" in warned[0], text
    fits = plan(_cfg(tmp_path, "ray.num_cpus=4", "pretrain.num_workers=2", "pretrain.cpus_per_worker=2"))
    assert "the embedded local Ray would have 4 CPUs and 0 GPUs: they fit" in fits and "warning" not in fits
    # use_gpu=true on a machine without GPUs: Ray Train would wait for a GPU for ever
    gpu = plan(_cfg(tmp_path, "ray.num_cpus=2", "pretrain.use_gpu=true"))
    assert "can never be placed" in gpu and "set pretrain.use_gpu=false" in gpu, gpu
    # no pretrain stage to run: nothing to check
    assert "# pretrain:" not in plan(_cfg(tmp_path, *big, "pipeline.stages=[finetune,report]", "finetune.model=preset:micro"))
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8265")
    joined = plan(_cfg(tmp_path, *big))
    assert "workers not checked against the Ray cluster at http://127.0.0.1:8265" in joined
    assert "can never be placed" not in joined


def test_run_warns_at_its_start_when_pretrain_workers_can_never_be_placed(tmp_path, monkeypatch):
    """A real ``lrl run`` learnt that only when the pretrain stage started, after generate and the
    tokenizer (hours on a recipe); the warning now comes before the first stage."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    lines: list[str] = []
    big = ("ray.num_cpus=2", "pretrain.num_workers=2", "pretrain.cpus_per_worker=2")
    run_pipeline(_cfg(tmp_path, *big), registry=FakeStages().registry(), log=lines.append)
    warned = [i for i, x in enumerate(lines) if "can never be placed" in x]
    first_stage = next(i for i, x in enumerate(lines) if "generate" in x and "warning" not in x)
    assert len(warned) == 1 and warned[0] < first_stage, lines
    lines.clear()
    run_pipeline(_cfg(tmp_path / "fits", "ray.num_cpus=4", "pretrain.num_workers=2", "pretrain.cpus_per_worker=2"),
                 registry=FakeStages().registry(), log=lines.append)
    assert not any("embedded local Ray" in x for x in lines), lines  # only the warning is logged


def test_run_warns_at_its_start_when_a_fine_tuning_task_can_never_be_placed(tmp_path, monkeypatch):
    """``finetune.num_cpus=3`` on an embedded Ray of 2 CPUs stopped the finetune stage only when it
    started, after generate, the tokenizer and pretraining."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    lines: list[str] = []
    run_pipeline(_cfg(tmp_path, "ray.num_cpus=2", "finetune.num_cpus=3"), registry=FakeStages().registry(),
                 log=lines.append)
    warned = [i for i, x in enumerate(lines) if "finetune.num_cpus=3 can never be placed" in x]
    first_stage = next(i for i, x in enumerate(lines) if "generate" in x and "warning" not in x)
    assert len(warned) == 1 and warned[0] < first_stage, lines


_HOLDS_THE_ROOT = """
import sys, time
from lrl.data.root_lock import root_lock
with root_lock(sys.argv[1], sys.argv[2], "lrl run (first)"):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_second_run_on_the_same_output_root_stops_at_once_with_a_clear_error(tmp_path):
    """Two ``lrl run`` of one job on one root: both went on, and the second crashed in
    pretraining (a 30-line ``OSError: Directory not empty`` traceback) on the hidden run folder
    the first was writing. The second now stops before any stage, saying who holds the job; once
    that run is gone (kill -9 too) the job is free again. Another job on the root goes on."""
    import subprocess
    import sys

    from lrl.data.output import RootBusy

    cfg = _cfg(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDS_THE_ROOT, cfg.output.root, cfg.name],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        fake = FakeStages()
        with pytest.raises(RootBusy, match=rf"job '{cfg.name}' is already running on the output root .*\(lrl run "
                                           rf"\(first\), pid {holder.pid} "):
            run_pipeline(cfg, registry=fake.registry(), log=lambda line: None)
        assert fake.calls == {}, "a stage ran beside the other run"
        other = cfg.model_copy(update={"name": "another-job"})
        assert set(run_pipeline(other, registry=FakeStages().registry(), log=lambda line: None).outputs) == set(STAGES)
    finally:
        holder.kill()
        holder.wait()
    result = run_pipeline(cfg, registry=FakeStages().registry(), log=lambda line: None)
    assert set(result.outputs) == set(STAGES)


def test_a_second_lrl_generate_of_a_job_stops_at_once(tmp_path, capsys):
    """Two ``lrl generate`` of one job on one root, 2 s apart, each computed the whole folder (a
    user's audit: 49 s twice); the second now exits at once naming the run that holds the job."""
    import subprocess
    import sys

    from lrl.cli import main
    from lrl.job import packaged_job

    root = str(tmp_path / "runs")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDS_THE_ROOT, root, "quickstart"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["generate", str(packaged_job("quickstart")), f"output.root={root}"]) != 0
        err = capsys.readouterr().err
        assert "job 'quickstart' is already running on the output root" in err and f"pid {holder.pid}" in err
        assert not list((tmp_path / "runs").glob("generate-*"))
    finally:
        holder.kill()
        holder.wait()


def test_pretrain_sequences_longer_than_the_presets_positions_stop_before_the_first_stage(tmp_path):
    """``pretrain.seq_len`` above ``model.max_length`` stopped pretraining once Ray ran, after
    generate and tokenizer; a checkpoint's positions are its own, so only presets are checked."""
    fake = FakeStages()
    cfg = _cfg(tmp_path, "pretrain.seq_len=256", "model.max_length=128")
    with pytest.raises(PipelineError, match=r"pretrain.seq_len=256 exceeds model.max_length=128, the positions of "
                                            r"the micro preset"):
        run_pipeline(cfg, registry=fake.registry(), log=lambda s: None)
    with pytest.raises(PipelineError, match="pretrain.seq_len=256 exceeds"):
        plan(cfg)
    assert fake.calls == {}
    from lrl.pipeline.preflight import check_pretrain_positions

    assert check_pretrain_positions(_cfg(tmp_path, "pretrain.seq_len=256", "model.checkpoint=/some/model"),
                                    ["pretrain"]) == []
    assert check_pretrain_positions(cfg, ["finetune"]) == []


def test_a_missing_tokenizer_base_folder_is_caught_before_the_first_stage(tmp_path, monkeypatch):
    """``tokenizer.base=models/x`` (no such folder) stopped the tokenizer stage only after generate
    had run, on a hub error; its dry run said nothing. The stages that read it: the tokenizer
    stage, or pretraining that trains its tokenizer itself."""
    fake = FakeStages()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    base = ("tokenizer.mode=extend", "tokenizer.base=models/x")
    for stages in ("[generate,tokenizer,pretrain]", "[generate,pretrain]"):
        cfg = _cfg(tmp_path, *base, f"pipeline.stages={stages}")
        with pytest.raises(PipelineError, match=rf"^tokenizer\.base=models/x: no such folder \({tmp_path}/models/x "
                                                "not found; a relative tokenizer.base is read from the working"):
            run_pipeline(cfg, registry=fake.registry(), log=lambda s: None)
        with pytest.raises(PipelineError, match=r"^tokenizer\.base=models/x: no such folder"):
            plan(cfg)
    assert fake.calls == {}, "a stage ran before the config error was found"
    # read by no stage to run: pretrain.tokenizer_path instead of a tokenizer stage
    run_pipeline(_cfg(tmp_path, *base, "pipeline.stages=[generate,pretrain]", f"pretrain.tokenizer_path={tmp_path}"),
                 registry=fake.registry(), log=lambda s: None)
    assert fake.work == {"generate": 1, "pretrain": 1}
