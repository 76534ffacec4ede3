"""``lrl evaluate|finetune JOB --dry-run`` that stops on its checks (``evaluate.splits=[tst]``, a
missing dev file) printed the whole resolved config (~330 lines) on stdout before its one-line
error, as a dry run that passed does; ``lrl run --dry-run`` makes its plan first and prints only the
error (user audit of the stage commands' dry runs)."""

from __future__ import annotations

import shutil

from test_cli import _main  # a stage command's --dry-run exits from where the config is loaded

from lrl.job import packaged_job


def test_a_stage_dry_run_that_stops_prints_only_its_error(tmp_path, capsys):
    job = packaged_job("quickstart")
    data = tmp_path / "data"
    shutil.copytree(job.parent / "sample", data)
    (data / "ner" / "sw" / "dev.conll").unlink()
    common = [f"output.root={tmp_path / 'runs'}", f"evaluate.model={tmp_path}"]
    ner = ("data.ner=[{path: ner/ug/train.conll, lang: ug, split: train}, {path: ner/ug/dev.conll, lang: ug, "
           "split: dev}, {path: ner/sw/train.conll, lang: sw, split: train}, {path: ner/sw/dev.conll, lang: sw, "
           "split: dev}]")
    for stage, extra, said in (
            ("evaluate", ["evaluate.splits=[tst]"], "lrl evaluate: error: evaluate.splits=['tst']: no data.ner source"),
            ("finetune", [f"data.root={data}", ner], "lrl finetune: error: data.ner names inputs that do not exist"),
            ("evaluate", [f"data.root={data}", ner], "lrl evaluate: error: data.ner names inputs that do not exist")):
        assert _main([stage, str(job), *common, *extra, "--dry-run"]) == 2
        captured = capsys.readouterr()
        assert captured.out == "", captured.out[-300:]
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(said), captured.err
    # the sample job as it is: the dry runs pass and print the config and the plan
    for stage in ("evaluate", "finetune"):
        assert _main([stage, str(job), *common, "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "name: quickstart" in out
        assert f"# lrl {stage} --dry-run: nothing was run" in out


def test_evaluate_dry_run_lists_only_the_sources_it_reads(tmp_path, capsys):
    """``lrl evaluate JOB --dry-run`` listed every data.ner source under "reads", the train files
    too, which evaluate never opens (it reads the splits of ``evaluate.splits``); finetune alone
    reads both."""
    job = packaged_job("quickstart")
    common = [f"output.root={tmp_path / 'runs'}", f"evaluate.model={tmp_path}", "--dry-run"]
    assert _main(["evaluate", str(job), *common]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("#   data.ner:"))
    assert line.count("(dev)") == 2 and "(train)" not in line, line
    assert _main(["finetune", str(job), *common]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("#   data.ner:"))
    assert line.count("(dev)") == 2 and line.count("(train)") == 2, line
