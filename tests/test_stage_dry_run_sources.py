"""The stage commands check ``data.ner`` against the data as ``lrl run`` and its ``--dry-run`` do
(``lrl.pipeline.preflight_inputs.check_sources``, with ``alone``): ``lrl evaluate JOB --dry-run
evaluate.splits=[tst]`` exited 0, and ``lrl evaluate JOB evaluate.splits=[tst]`` said another
error after listing the models (or that ``evaluate.model`` was unset); ``lrl finetune|tune|evaluate
--dry-run`` with a missing dev file passed, and the command stopped on it."""

from __future__ import annotations

import re

import pytest

from lrl import cli
from lrl.job import packaged_job

SPLITS = (r"lrl evaluate: error: evaluate.splits=\['tst'\]: no data.ner source has such a split \(theirs: "
          r"\['dev', 'train'\]\), so the evaluate stage would score nothing; name a split the data has\n$")


def _main(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:  # a stage command's --dry-run exits from where the config is loaded
        return int(exc.code or 0)


def _model(tmp_path) -> str:
    """A folder that passes the model-folder checks (config.json); no weights: nothing may load it."""
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    return str(model)


@pytest.mark.parametrize("dry", [["--dry-run"], []])
@pytest.mark.parametrize("model", [True, False])
def test_lrl_evaluate_stops_on_splits_the_data_lacks_before_any_model(tmp_path, capsys, monkeypatch, dry, model):
    import lrl.evaluate.command

    def no_models(path):
        raise AssertionError("models were looked for before the split was named")

    monkeypatch.setattr(lrl.evaluate.command, "model_folders", no_models)
    job = str(packaged_job("quickstart"))
    setting = [f"evaluate.model={_model(tmp_path)}"] if model else []  # unset: the split is named first
    rc = _main(["evaluate", job, f"output.root={tmp_path / 'runs'}", "evaluate.splits=[tst]", *setting, *dry])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert re.fullmatch(SPLITS, err), err
    # a split of several that the data has: the dry run passes (no test split in the sample)
    if dry and model:
        assert _main(["evaluate", job, f"output.root={tmp_path / 'runs'}", "evaluate.splits=[dev, test]",
                      *setting, *dry]) == 0


@pytest.mark.parametrize("stage", ["finetune", "tune", "evaluate"])
def test_stage_dry_run_names_a_missing_source_the_command_reads(tmp_path, capsys, stage):
    job = str(packaged_job("quickstart"))
    model = _model(tmp_path)
    base = [stage, job, f"output.root={tmp_path / 'runs'}", f"finetune.model={model}", f"evaluate.model={model}"]
    rc = _main([*base, "data.ner[1].path=nope.conll", "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith(f"lrl {stage}: error: data.ner names inputs that do not exist, which the stages to run "
                          f"would stop on: data.ner[1] (lang ug, split dev), read by {stage}: "), err
    assert "nope.conll: dev file not found" in err and len(err.splitlines()) == 1, err
    # The command alone reads the training sources even with a generate stage in pipeline.stages
    # (it gets no generate output; only finetune.data replaces them): lrl run's dry run skips them.
    train = "data.ner[0].path=nope.conll"
    if stage != "evaluate":
        assert _main([*base, train, "--dry-run"]) == 2
        assert "data.ner[0] (lang ug, split train)" in capsys.readouterr().err
    else:  # evaluate reads no training split
        assert _main([*base, train, "--dry-run"]) == 0
        capsys.readouterr()
    assert _main([*base, "--dry-run"]) == 0  # the sample's own files: no error
