"""``lrl finetune|tune|evaluate JOB --dry-run`` without a model to read: the command alone gets no
upstream output and stops on it (README: "finetune and tune need finetune.model, evaluate needs
evaluate.model ... its --dry-run names them"), while its dry run said only "unset (under lrl run:
...)" and exited 0 with no word that the command would stop."""

from __future__ import annotations

import pytest

from lrl import cli
from lrl.job import packaged_job


def _dry_run(argv: list[str], capsys) -> str:
    try:
        rc = cli.main(argv)
    except SystemExit as exc:  # a stage command's --dry-run exits from where the config is loaded
        rc = int(exc.code or 0)
    assert rc == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(("stage", "key"), [("finetune", "finetune.model"),
                                            ("tune", "tune.model_path or finetune.model"),
                                            ("evaluate", "evaluate.model")])
def test_stage_dry_run_warns_that_the_stage_alone_has_no_model(tmp_path, capsys, stage, key):
    job = str(packaged_job("quickstart"))
    root = f"output.root={tmp_path / 'runs'}"
    out = _dry_run([stage, job, root, "--dry-run"], capsys)
    assert f"# warning: lrl {stage} runs the stage alone and reads no earlier run's output: it would stop " \
           f"because {key} is unset" in out
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    setting = "evaluate.model" if stage == "evaluate" else "finetune.model"
    assert "would stop because" not in _dry_run([stage, job, root, f"{setting}={model}", "--dry-run"], capsys)
