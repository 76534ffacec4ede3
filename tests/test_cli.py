"""The ``lrl`` stage commands' own ``--dry-run``: the resolved config and the stage's plan."""

from __future__ import annotations

import yaml

from lrl import cli
from lrl.job import load_job, packaged_job


def _main(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:  # a stage command's --dry-run exits from where the config is loaded
        return int(exc.code or 0)


def test_stage_dry_run_prints_the_stage_plan(tmp_path, capsys):
    """``lrl generate JOB --dry-run`` printed only the config where ``lrl run --dry-run`` printed a
    plan: nothing said what the stage reads, where it writes or whether its output is reused."""
    from lrl.generate.stage import stage_output

    job = packaged_job("quickstart")
    root = tmp_path / "runs"
    args = ["generate", str(job), f"output.root={root}", "--dry-run"]
    assert _main(args) == 0
    out = capsys.readouterr().out
    assert yaml.safe_load(out)["name"] == "quickstart", "the plan must keep the printed config valid YAML"
    path = stage_output(load_job(job, [f"output.root={root}"])).path
    assert f"# output: {path} (not written yet" in out
    assert f"{job.parent / 'sample/ner/ug/train.conll'} (train)" in out and "data.text" in out
    assert not root.exists(), "a dry run wrote something"
    # a finished folder of the same config and inputs: the stage would reuse it
    (root / path.rsplit("/", 1)[1]).mkdir(parents=True)
    (root / path.rsplit("/", 1)[1] / "manifest.json").write_text("{}")
    assert _main(args) == 0
    assert f"# output: {path} (finished: reused at once" in capsys.readouterr().out
    # a stage whose hash needs its inputs built says where it writes and what lrl run passes it
    assert _main(["finetune", str(job), f"output.root={root}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"# output: {root}/finetune-<hash" in out
    assert "finetune.model: unset (under lrl run: the pretrain stage's output)" in out


def test_stage_plans_cover_every_stage_with_real_config_keys():
    """The plan's table of inputs must follow the stages and the config (a renamed field fails here)."""
    from lrl.job import JobConfig
    from lrl.pipeline.config import ORDER
    from lrl.pipeline.plan import INPUTS, config_value

    assert set(INPUTS) == set(ORDER)
    cfg = JobConfig()
    for stage, inputs in INPUTS.items():
        for key, upstream in inputs:
            config_value(cfg, key)  # AttributeError for a key the config does not have
            assert all(ORDER.index(up) < ORDER.index(stage) for up in upstream), (stage, key)


def test_pipeline_dry_run_reads_the_first_stages_inputs(tmp_path, capsys):
    """``lrl run JOB --dry-run`` with a wrong data.root said every stage would run (exit 0); the run
    then stopped at once on the missing file. The first stage's inputs are read as the run reads them."""
    from lrl.generate.stage import stage_output

    job = packaged_job("quickstart")
    root = tmp_path / "runs"
    assert _main(["run", str(job), f"output.root={root}", "--dry-run"]) == 0
    path = stage_output(load_job(job, [f"output.root={root}"])).path
    assert f"#   generate   run  -> {path} (not written yet)" in capsys.readouterr().out
    assert _main(["run", str(job), f"output.root={root}", f"data.root={tmp_path / 'nowhere'}", "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert "file not found" in captured.err and captured.out == ""


def test_ctrl_c_exits_130_with_a_word_on_what_was_kept(monkeypatch, capsys):
    """Re-raised, a Ctrl-C exited with status 1 once Ray had started: read as a crash."""
    import lrl.cli

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(lrl.cli, "_main", interrupted)
    assert lrl.cli.main(["run", "job.yaml"]) == 130
    assert "lrl run: stopped by Ctrl-C" in capsys.readouterr().err


def test_a_stopped_command_gives_the_callers_ctrl_c_back(monkeypatch):
    """``main`` put back only its caller's SIGTERM handler: after a stop its Ctrl-C handler stayed
    lrl's "already stopping", and a notebook (or pytest) calling ``main`` could no longer be
    interrupted."""
    import signal

    import lrl.cli
    from lrl.signals import begin_stop

    def stops(argv):
        begin_stop()  # as a stage that stopped does: further Ctrl-C wait for the cleanup
        raise KeyboardInterrupt

    def mine(signum, frame):
        pass

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        monkeypatch.setattr(lrl.cli, "_main", stops)
        assert lrl.cli.main(["run", "job.yaml"]) == 130
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        signal.signal(signal.SIGINT, mine)
        assert lrl.cli.main(["run", "job.yaml"]) == 130
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, before)


def test_stage_dry_runs_show_what_lrl_run_checks_first(tmp_path, monkeypatch, capsys):
    """``lrl tune JOB --dry-run`` and ``lrl finetune JOB --dry-run`` exited before the language
    check ``lrl run`` makes (a language with training sentences but no dev ones is left out), and
    ``lrl pretrain JOB --dry-run`` never said its workers could not be placed on the embedded Ray."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    job, root = packaged_job("quickstart"), tmp_path / "runs"
    for name in ("a", "b", "c"):  # files that exist: the dry runs name a missing source the command reads
        (tmp_path / f"{name}.conll").write_text("Qeshqer\tB-LOC\n", encoding="utf-8")
    ner = (f"data.ner=[{{path: {tmp_path}/a.conll, lang: uig, split: train}}, {{path: {tmp_path}/b.conll, lang: ug, "
           f"split: train}}, {{path: {tmp_path}/c.conll, lang: ug, split: dev}}]")
    for stage in ("tune", "finetune"):
        assert _main([stage, str(job), f"output.root={root}", ner, "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert yaml.safe_load(out)["name"] == "quickstart"
        assert f"# warning: data.ner has training sentences but no split: dev source for ['uig']: {stage}" in out
    # a language asked for that has no dev source: the stage would stop at once, so the dry run does
    assert _main(["tune", str(job), f"output.root={root}", ner, "tune.languages=[uig]", "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert "lrl tune: error: tune.languages: uig (no dev)" in captured.err
    big = ["ray.num_cpus=2", "pretrain.num_workers=3"]
    assert _main(["pretrain", str(job), f"output.root={root}", *big, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# warning: pretrain: 3 worker(s) of 1 CPU(s), training on CPU" in out and "can never be placed" in out
    # a fine-tuning task or a trial bigger than the embedded Ray: those stages would stop as they start
    for stage, setting, said in (("finetune", "finetune.num_cpus=3", "finetune.num_cpus=3 can"),
                                 ("tune", "tune.gpus_per_trial=1", "tune.cpus_per_trial=1 and gpus_per_trial=1 can")):
        assert _main([stage, str(job), f"output.root={root}", ner, "ray.num_cpus=2", setting, "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert f"# warning: {stage}: {said} never be placed: the embedded local Ray would have 2 CPUs" in out, out
    assert "can never be placed" not in _dry(job, root, ner, "finetune", "ray.num_cpus=2", "finetune.num_cpus=2")
    assert not root.exists(), "a dry run wrote something"


def _dry(job, root, ner: str, stage: str, *overrides: str) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert _main([stage, str(job), f"output.root={root}", ner, *overrides, "--dry-run"]) == 0
    return buf.getvalue()


def test_help_lists_the_commands_own_config_fields(capsys):
    """Every ``lrl COMMAND --help`` appended all ~340 config fields (950 lines), the lines after a
    field's first flush left: the command's own options scrolled away under the whole reference."""
    assert _main(["generate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "augment.ops (" in out and "data.ner[].path (" in out and "ray.num_cpus (" in out
    assert "pretrain.steps (" not in out and "tune.num_samples (" not in out
    assert "`lrl config`" in out, "the full reference must stay one command away"
    fields = out.split("config fields of this command", 1)[1].split("every config field")[0]
    assert all(line == "" or line.startswith(("  ", "[")) for line in fields.splitlines()[1:]), (
        "a field's description must stay indented under its key")
    assert _main(["tune", "--help"]) == 0
    out = capsys.readouterr().out
    assert "tune.num_samples (" in out and "finetune.lr (" in out and "augment.ops (" not in out
    assert _main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "pipeline.stages (" in out and "augment.ops (" not in out and "--from STAGE" in out
    assert "generate, tokenizer, pretrain, finetune, tune, evaluate, report" in " ".join(out.split()), (
        "--from names its stages")
    # quickstart's --dry-run said "print the resolved config and exit"; it prints the plan too
    assert _main(["quickstart", "--help"]) == 0
    assert "config and the plan" in " ".join(capsys.readouterr().out.split())
    assert _main(["evaluate", "--help"]) == 0  # --model with a stage folder scores every model in it
    assert "each of its models/<name>/ is scored on --data" in " ".join(capsys.readouterr().out.split())


def test_a_missing_config_or_command_is_named_plainly(capsys):
    """``lrl run`` said "the following arguments are required: config, overrides" (overrides are
    optional); an unknown command's list left out ``config``; ``lrl --help`` opened with the
    module's docstring (``The ``lrl`` command. Thin: ...``)."""
    assert _main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.rstrip().endswith("the following arguments are required: config"), err
    assert _main(["confg"]) == 2
    assert "choose from generate, " in (err := capsys.readouterr().err) and err.rstrip().endswith(", config"), err
    assert _main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "``" not in out and "Thin" not in out and "lrl quickstart" in out


def test_a_reader_that_leaves_early_gets_no_traceback():
    """``lrl config | head`` (the reference is ~64 KB) ended in a BrokenPipeError traceback once
    head had its lines and closed the pipe."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "lrl.cli", "config"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first write
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_config_prints_the_sections_asked_for(capsys):
    """``lrl config pretrain`` and ``lrl config --help`` printed all ~940 lines: the arguments were
    ignored, and a misspelt section said nothing."""
    assert _main(["config", "tune"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[tune]") and "tune.num_samples (" in out and "pretrain.steps (" not in out
    assert _main(["config", "--help"]) == 0
    assert "usage: lrl config [-h] [SECTION ...]" in capsys.readouterr().out
    assert _main(["config", "pretrian"]) == 2
    assert "no config section 'pretrian'; choose from name, seed, ray, data" in capsys.readouterr().err
    assert _main(["config"]) == 0
    out = capsys.readouterr().out
    assert "augment.ops (" in out and "pipeline.stages (" in out
