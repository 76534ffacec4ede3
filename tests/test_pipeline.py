"""``lrl run`` with fake stages: skipping, resuming after a crash, --from/--only, state file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_fakes import STAGES, FakeStages, _cfg

from lrl.config import ConfigError
from lrl.job import load_job
from lrl.pipeline.runner import PipelineError, load_state, plan, run_pipeline, state_path


def test_rerun_skips_every_finished_stage(tmp_path):
    fake = FakeStages()
    logs: list[str] = []
    first = run_pipeline(_cfg(tmp_path), registry=fake.registry(), log=logs.append)
    assert fake.work == {s: 1 for s in STAGES}
    assert sum(": done in " in m for m in logs) == len(STAGES) and not any("reused" in m for m in logs)
    logs.clear()
    second = run_pipeline(_cfg(tmp_path), registry=fake.registry(), log=logs.append)
    # the log says the rerun reused each stage's folder ("done in 0.00 s" read as if it had run)
    assert sum(": reused (finished " in m for m in logs) == len(STAGES) and not any(": done in" in m for m in logs)
    assert fake.work == {s: 1 for s in STAGES}, "a stage did work on the second run"
    assert fake.calls == {s: 2 for s in STAGES}
    assert second.outputs == first.outputs
    # each stage saw the outputs of all earlier stages
    report_up = json.loads((Path(first.outputs["report"]) / "upstream.json").read_text())
    assert set(report_up) == set(STAGES[:-1])


def test_upstream_change_rehashes_downstream_only(tmp_path):
    fake = FakeStages()
    a = run_pipeline(_cfg(tmp_path), registry=fake.registry(), log=lambda s: None)
    b = run_pipeline(_cfg(tmp_path, "pretrain.steps=7"), registry=fake.registry(), log=lambda s: None)
    for s in ("generate", "tokenizer"):
        assert a.outputs[s] == b.outputs[s]
    for s in ("pretrain", "finetune", "evaluate", "report"):
        assert a.outputs[s] != b.outputs[s], f"{s} kept its hash although pretrain changed"
    assert fake.work["generate"] == 1 and fake.work["finetune"] == 2


def test_crash_keeps_earlier_outputs_and_rerun_resumes(tmp_path):
    fake = FakeStages(fail_once="pretrain")
    with pytest.raises(RuntimeError, match="pretrain crashed"):
        run_pipeline(_cfg(tmp_path), registry=fake.registry(), log=lambda s: None)
    state = load_state(state_path(_cfg(tmp_path)))
    assert set(state["stages"]) == {"generate", "tokenizer"}
    leftovers = [p.name for p in (tmp_path / "runs").iterdir() if p.name.startswith(".pretrain")]
    assert leftovers, "the crashed stage should have left only a temporary folder"
    assert not list((tmp_path / "runs").glob("pretrain-*"))
    run_pipeline(_cfg(tmp_path), registry=fake.registry(), log=lambda s: None)
    assert fake.work == {"generate": 1, "tokenizer": 1, "pretrain": 2, "finetune": 1,
                         "evaluate": 1, "report": 1}


def test_from_and_only_reuse_recorded_upstream(tmp_path):
    fake = FakeStages()
    first = run_pipeline(_cfg(tmp_path), registry=fake.registry(), log=lambda s: None)
    only = run_pipeline(_cfg(tmp_path, "finetune.epochs=9"), only="finetune",
                        registry=fake.registry(), log=lambda s: None)
    assert [t.stage for t in only.timings] == ["finetune"]
    assert only.outputs["pretrain"] == first.outputs["pretrain"]
    assert only.outputs["finetune"] != first.outputs["finetune"]
    assert fake.calls["generate"] == 1 and fake.calls["evaluate"] == 1
    frm = run_pipeline(_cfg(tmp_path), start="evaluate", registry=fake.registry(), log=lambda s: None)
    assert [t.stage for t in frm.timings] == ["evaluate", "report"]
    # the state recorded the --only finetune output, so evaluate now reads that one
    up = json.loads((Path(frm.outputs["evaluate"]) / "upstream.json").read_text())
    assert up["finetune"] == only.outputs["finetune"]


def test_from_finds_the_recorded_outputs_in_a_moved_runs_folder(tmp_path):
    """The state file records absolute paths: after the runs folder moved, --from said "no
    finished output of 'generate' is recorded" although every folder was there."""
    import shutil

    fake = FakeStages()
    first = run_pipeline(_cfg(tmp_path / "a"), registry=fake.registry(), log=lambda s: None)
    shutil.move(str(tmp_path / "a"), str(tmp_path / "b"))
    frm = run_pipeline(_cfg(tmp_path / "b"), start="finetune", registry=fake.registry(), log=lambda s: None)
    assert [t.stage for t in frm.timings] == ["finetune", "evaluate", "report"]
    assert frm.outputs["pretrain"] == first.outputs["pretrain"].replace(str(tmp_path / "a"), str(tmp_path / "b"))
    assert fake.work["pretrain"] == 1
    # a copy on the same machine uses its own folders, not the original's (still there)
    shutil.copytree(tmp_path / "b", tmp_path / "c")
    copy = run_pipeline(_cfg(tmp_path / "c"), start="evaluate", registry=fake.registry(), log=lambda s: None)
    for stage in ("pretrain", "finetune"):  # finetune's folder was recorded in b, where it still is
        assert copy.outputs[stage] == frm.outputs[stage].replace(str(tmp_path / "b"), str(tmp_path / "c")), stage



def test_from_warns_about_changed_settings_the_reused_outputs_lack(tmp_path):
    """``--from finetune pretrain.steps=7`` reused the recorded pretrain output (built with the old
    steps) and said nothing: the run looked as if the new setting had been applied."""
    fake = FakeStages()
    run_pipeline(_cfg(tmp_path), registry=fake.registry(), log=lambda s: None)
    lines: list[str] = []
    run_pipeline(_cfg(tmp_path, "pretrain.steps=7", "finetune.epochs=9"), start="finetune",
                 registry=fake.registry(), log=lines.append)
    warned = [line for line in lines if "warning" in line]
    assert len(warned) == 1 and "pretrain.steps" in warned[0], lines
    # settings kept out of the output hashes (run control) change no output: not worth a warning
    assert "pretrain.report_every" not in plan(_cfg(tmp_path, "pretrain.steps=7", "pretrain.report_every=3"),
                                               start="evaluate")
    assert "finetune.epochs" not in warned[0], "a setting of a stage that runs is applied: no warning"
    # the settings of the stages that run may change freely
    lines.clear()
    run_pipeline(_cfg(tmp_path, "finetune.epochs=3"), only="finetune", registry=fake.registry(), log=lines.append)
    assert not [line for line in lines if "warning" in line], lines
    # the dry run says the same before anything runs; a whole float as the user wrote it
    assert "pretrain.steps" in plan(_cfg(tmp_path, "pretrain.steps=7"), start="evaluate")
    said = plan(_cfg(tmp_path, "finetune.epochs=2"), start="evaluate")
    assert "finetune.epochs (recorded 3, now 2)" in said, said
    # a stage run on reused outputs is recorded with the settings they carry: going on with the
    # old pretrain.steps (what the reused pretrain output has) warns of nothing
    lines.clear()
    run_pipeline(_cfg(tmp_path, "pretrain.steps=7"), only="finetune", registry=fake.registry(), log=lines.append)
    lines.clear()
    run_pipeline(_cfg(tmp_path), start="evaluate", registry=fake.registry(), log=lines.append)
    assert not [line for line in lines if "warning" in line], lines


def test_from_without_recorded_upstream_is_a_clear_error(tmp_path):
    with pytest.raises(PipelineError, match="no finished output of 'generate'"):
        run_pipeline(_cfg(tmp_path), start="pretrain", registry=FakeStages().registry(), log=lambda s: None)
    with pytest.raises(PipelineError, match="not in pipeline.stages"):
        run_pipeline(_cfg(tmp_path), only="tune", registry=FakeStages().registry(), log=lambda s: None)


def test_state_file_is_valid_json_after_each_stage(tmp_path):
    fake = FakeStages()
    res = run_pipeline(_cfg(tmp_path), registry=fake.registry(), log=lambda s: None)
    state = json.loads(Path(res.state_file).read_text())
    assert state["stages"]["report"]["path"] == res.outputs["report"]
    assert not list(Path(res.state_file).parent.glob(".pipeline-*.tmp"))


def test_timings_and_overhead_are_reported(tmp_path):
    lines: list[str] = []
    res = run_pipeline(_cfg(tmp_path), registry=FakeStages().registry(), log=lines.append)
    assert [t.stage for t in res.timings] == STAGES
    assert res.total_s >= res.stage_s
    assert "overhead" in lines[-1] and "% of" in lines[-1]


def test_stage_without_manifest_is_rejected(tmp_path):
    reg = FakeStages().registry()
    reg["generate"] = lambda ctx: str(tmp_path)
    with pytest.raises(PipelineError, match="no manifest.json"):
        run_pipeline(_cfg(tmp_path), registry=reg, log=lambda s: None)


@pytest.mark.parametrize("stages,reason", [
    ("[pretrain,generate]", "out of order"),
    ("[finetune,tune]", "choose finetune or tune"),
    ("[generate,generate]", "listed twice"),
    ("[]", "empty"),
    ("[generat]", "stages.0"),
])
def test_bad_stage_lists_are_rejected_at_load(stages, reason):
    with pytest.raises(ConfigError, match=reason):
        load_job(None, [f"pipeline.stages={stages}"])


def test_submit_pip_and_image_are_exclusive():
    with pytest.raises(ConfigError, match="pip or pipeline.submit.image_uri"):
        load_job(None, ["pipeline.submit.pip=[seqeval]", "pipeline.submit.image_uri=rayproject/ray:2.60.0"])


def _two_stage_job(tmp_path: Path, monkeypatch) -> tuple[FakeStages, Path]:
    """Fake generate and tokenizer stages in the registry, and a job file running both."""
    from lrl.pipeline import runner

    fake = FakeStages()
    monkeypatch.setattr(runner, "REGISTRY", {**runner.REGISTRY, **fake.registry()})
    job = tmp_path / "job.yaml"
    job.write_text(f"name: t\noutput:\n  root: {tmp_path / 'runs'}\npipeline:\n  stages: [generate, tokenizer]\n")
    return fake, job


def test_lrl_run_cli_with_fake_registry(tmp_path, monkeypatch, capsys):
    from lrl import cli

    fake, job = _two_stage_job(tmp_path, monkeypatch)
    assert cli.main(["run", str(job)]) == 0
    assert cli.main(["run", str(job), "--only", "tokenizer"]) == 0
    out = capsys.readouterr().out
    assert "reusing recorded output" in out and "overhead" in out
    assert fake.work == {"generate": 1, "tokenizer": 1}
    assert cli.main(["run", str(job), "--only", "report"]) == 2
    assert "[lrl run] report file:" not in capsys.readouterr().out  # no report stage, no report line


def test_lrl_run_names_the_report_file(tmp_path, monkeypatch, capsys):
    """``lrl run`` ended with the stage table; the report's HTML file was named by quickstart only."""
    from lrl import cli
    from lrl.pipeline import runner

    fake = FakeStages()

    def report(ctx):
        path = fake.make("report")(ctx)
        Path(path, "report.html").write_text("<html></html>")
        return path

    monkeypatch.setattr(runner, "REGISTRY", {**runner.REGISTRY, **fake.registry(), "report": report})
    job = tmp_path / "job.yaml"
    job.write_text(f"name: t\noutput:\n  root: {tmp_path / 'runs'}\npipeline:\n  stages: [generate, report]\n")
    assert cli.main(["run", str(job)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("[lrl run] report file: "))
    assert Path(line.split(": ", 1)[1]).name == "report.html" and Path(line.split(": ", 1)[1]).is_file()



def test_overrides_may_follow_options(tmp_path, monkeypatch, capsys):
    """``lrl run JOB --only tokenizer tokenizer.vocab_size=500`` is how people type it: argparse's
    plain parser took the overrides before the option and rejected the ones after it."""
    from lrl import cli

    fake, job = _two_stage_job(tmp_path, monkeypatch)
    assert cli.main(["run", str(job), "seed=2", "--dry-run", "seed=3"]) == 0
    assert "seed: 3\n" in capsys.readouterr().out
    assert cli.main(["run", str(job)]) == 0
    assert cli.main(["run", str(job), "--only", "tokenizer", "tokenizer.vocab_size=500"]) == 0
    assert fake.work == {"generate": 1, "tokenizer": 2}
    assert cli.main(["quickstart", "seed=1", "--output", str(tmp_path / "qs"), "seed=4", "--dry-run"]) == 0
    assert "seed: 4\n" in capsys.readouterr().out


def test_dry_run_checks_from_and_only_and_shows_the_plan(tmp_path, monkeypatch, capsys):
    """``--dry-run`` with ``--from``/``--only`` said all was well (exit 0) where the run itself stops
    at once for want of a recorded upstream output, and never said where outputs and state go."""
    import yaml

    from lrl import cli
    from lrl.pipeline import runner

    fake, job = _two_stage_job(tmp_path, monkeypatch)
    assert cli.main(["run", str(job), "--from", "tokenizer", "--dry-run"]) == 2
    assert "no finished output of 'generate'" in capsys.readouterr().err
    assert cli.main(["run", str(job), "--only", "report", "--dry-run"]) == 2
    assert "not in pipeline.stages" in capsys.readouterr().err
    assert cli.main(["run", str(job)]) == 0
    spath = state_path(load_job(job))
    before = json.loads(Path(spath).read_text())
    capsys.readouterr()
    assert cli.main(["run", str(job), "--from", "tokenizer", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert fake.calls == {"generate": 1, "tokenizer": 1}, "a dry run ran a stage"
    assert json.loads(Path(spath).read_text()) == before
    assert yaml.safe_load(out)["name"] == "t", "the plan must keep the printed config valid YAML"
    assert spath in out
    assert before["stages"]["generate"]["path"] in out and "reuse" in out
    assert "tokenizer" in out and "run" in out
    # a state file out of reach (an object store, offline) does not break a plain dry run
    def unreachable(path):
        raise OSError("Could not resolve host")

    monkeypatch.setattr(runner, "load_state", unreachable)
    assert cli.main(["run", str(job), "--dry-run"]) == 0
    assert "cannot be read from here" in capsys.readouterr().out
    assert cli.main(["run", str(job), "--only", "tokenizer", "--dry-run"]) == 2
    assert "cannot read the pipeline state" in capsys.readouterr().err


def test_real_stages_skip_and_resume_after_a_crash(tmp_path, ray_session):
    """generate and tokenizer for real (packaged sample), then a stage that crashes once: the
    re-run reuses the real outputs without work and resumes at the crashed stage."""
    from lrl.pipeline import quickstart

    cfg = quickstart.load(["augment.ops=[swap]", "oversample.enabled=false", "tokenizer.vocab_size=500",
                           "pipeline.stages=[generate,tokenizer,pretrain]"], str(tmp_path / "runs"))
    fake = FakeStages(fail_once="pretrain")
    reg = {"pretrain": fake.make("pretrain")}
    with pytest.raises(RuntimeError, match="pretrain crashed"):
        run_pipeline(cfg, registry=reg, log=lambda s: None)
    state = load_state(state_path(cfg))
    first = {k: v["path"] for k, v in state["stages"].items()}
    assert set(first) == {"generate", "tokenizer"}
    mtimes = {k: (Path(p) / "manifest.json").stat().st_mtime_ns for k, p in first.items()}
    res = run_pipeline(cfg, registry=reg, log=lambda s: None)
    assert {k: res.outputs[k] for k in first} == first
    assert {k: (Path(p) / "manifest.json").stat().st_mtime_ns for k, p in first.items()} == mtimes
    assert fake.work == {"pretrain": 2}
    assert max(t.seconds for t in res.timings if t.stage != "pretrain") < 5, res.table()


def test_dry_run_names_the_folders_a_run_would_reuse(tmp_path):
    """After generate and tokenizer ran, a dry run said "run" for the tokenizer and pretraining; the
    run reused the tokenizer at once. It now names the tokenizer's finished folder and the folder
    pretraining would write (named by the tokenizer's), reading inputs only."""
    from lrl.pipeline import quickstart
    from lrl.pipeline.runner import plan
    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain import stage_output

    cfg = quickstart.load(["augment.ops=[swap]", "oversample.enabled=false", "tokenizer.vocab_size=500",
                           "pipeline.stages=[generate,tokenizer,pretrain]"], str(tmp_path / "runs"))
    before = plan(cfg)  # nothing known yet: the folders after generate's wait on the stage before them
    assert "tokenizer  run  (folder named once generate has run)\n" in before
    assert "pretrain   run  (folder named once tokenizer has run)\n" in before
    fake = FakeStages()
    res = run_pipeline(cfg, registry={"pretrain": fake.make("pretrain")}, log=lambda s: None)
    text = plan(cfg)
    tok = res.outputs["tokenizer"]
    assert f"tokenizer  run  -> {tok} (finished: reused at once)" in text
    want = stage_output(StageContext(cfg, {"generate": res.outputs["generate"], "tokenizer": tok}))[0].path
    assert f"pretrain   run  -> {want} (not written yet)" in text
    assert not Path(want).exists() and fake.work == {"pretrain": 1}  # the plan ran nothing


def test_dry_run_says_why_a_stage_has_no_folder_yet(tmp_path):
    """``lrl run --dry-run`` listed the stages after the first as a bare "run": their folders are
    named by upstream outputs. The line names the stage it waits on, or says it is named as it runs."""
    run_pipeline(_cfg(tmp_path), registry=FakeStages().registry(), log=lambda s: None)
    text = plan(_cfg(tmp_path))  # the fake generate's folder is not the real one: still to run
    rec = load_state(state_path(_cfg(tmp_path)))["stages"]
    assert f"tokenizer  run  (folder named once generate has run; last recorded: {rec['tokenizer']['path']})" in text
    assert "finetune   run  (folder named once pretrain has run; last recorded" in text
    text = plan(_cfg(tmp_path), start="finetune")  # generate .. pretrain reused: known
    assert "finetune   run  (folder named when the stage runs; last recorded" in text
    assert "evaluate   run  (folder named once finetune has run; last recorded" in text
    text = plan(_cfg(tmp_path), start="tokenizer")  # the fake generate's folder has no text, data.text none
    assert "tokenizer  run  (folder named when the stage runs; its inputs cannot be read here: the tokenizer " \
           "stage needs text" in text


def test_a_relative_output_root_records_absolute_paths(tmp_path, monkeypatch):
    """``output.root=runs`` recorded ``runs/<stage>-<hash>`` in the state: from another working
    directory (a later run, a cluster job) --from/--only looked there and found nothing."""
    state = tmp_path / "state.json"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    cfg = load_job(None, ["output.root=runs", f"pipeline.state={state}", "pipeline.stages=[generate,tokenizer]"])
    first = run_pipeline(cfg, registry=FakeStages().registry(), log=lambda s: None)
    recorded = load_state(str(state))["stages"]["generate"]["path"]
    assert recorded == str(tmp_path / "a" / "runs" / Path(recorded).name)
    assert first.outputs["generate"] == recorded
    monkeypatch.chdir(tmp_path / "b")
    again = run_pipeline(cfg, only="tokenizer", registry=FakeStages().registry(), log=lambda s: None)
    assert again.outputs["generate"] == recorded


def test_every_config_section_is_placed_for_the_drift_warning():
    """A stage (or a section of one) missing from OWN_SECTIONS would be taken for a shared section
    that every reused output depends on, or not be checked at all: each section has one place."""
    from lrl.job import JobConfig
    from lrl.pipeline.config import ORDER
    from lrl.pipeline.settings_drift import ALSO_READ, OWN_SECTIONS, SHARED_SECTIONS, UNSHAPING, flat_config

    assert set(OWN_SECTIONS) == set(ORDER)
    owned = set().union(*OWN_SECTIONS.values())
    for stage in ORDER:
        if stage in JobConfig.model_fields:
            assert stage in OWN_SECTIONS[stage], f"the {stage} stage's own section is missing from OWN_SECTIONS"
    assert set(JobConfig.model_fields) == owned | SHARED_SECTIONS | UNSHAPING
    assert not (owned & SHARED_SECTIONS) and not (owned & UNSHAPING) and not (SHARED_SECTIONS & UNSHAPING)
    keys = flat_config(load_job(None))
    for key, readers in ALSO_READ.items():
        assert key in keys and readers <= set(ORDER), key


def test_evaluation_seeds_shape_the_reused_finetune_output(tmp_path):
    """finetune trains once per ``evaluate.seeds`` seed, so ``--from evaluate evaluate.seeds=[..]``
    reused models of the old seeds without a word (the evaluate section counted as applied)."""
    fake = FakeStages()
    run_pipeline(_cfg(tmp_path), registry=fake.registry(), log=lambda s: None)
    lines: list[str] = []
    run_pipeline(_cfg(tmp_path, "evaluate.seeds=[0,1,2]"), start="evaluate", registry=fake.registry(),
                 log=lines.append)
    warned = [line for line in lines if "warning" in line]
    assert len(warned) == 1 and "evaluate.seeds" in warned[0], lines
    # only the outputs the seeds shaped are named (finetune's), not every reused one
    assert "reused outputs of finetune were recorded" in warned[0], warned
    # the outputs before finetune do not depend on the seeds: rebuilding finetune needs no warning,
    # nor do settings of stages that no reused output depends on
    lines.clear()
    run_pipeline(_cfg(tmp_path, "evaluate.seeds=[0,1,2]", "evaluate.batch_size=7", "report.title=x"),
                 only="finetune", registry=fake.registry(), log=lines.append)
    assert not [line for line in lines if "warning" in line], lines


def test_finetune_run_control_is_no_drift_of_a_reused_finetune_output():
    """``finetune.threads``/``num_cpus`` change nothing a finetune output holds (its name leaves
    them out), so ``--from evaluate`` with another value is not warned of; lr still is."""
    from lrl.job import load_job
    from lrl.pipeline.settings_drift import changed_settings, flat_config

    state = {"stages": {"finetune": {"config": "c0"}}, "configs": {"c0": flat_config(load_job(None, []))}}
    now = load_job(None, ["finetune.threads=1", "finetune.num_cpus=2", "finetune.lr=0.001"])
    assert set(changed_settings(state, now, ["finetune"])) == {"finetune.lr"}
