"""Device checks a dry run (``lrl generate --dry-run``) and the command line (``lrl evaluate
--device``) make, on a CPU-only machine (no GPU has been available to this project): GPUs are
stood in for where the code asks for them."""

from __future__ import annotations

import json

import pytest
import yaml

from lrl import cli
from lrl.config import ConfigError
from lrl.job import packaged_job

#: A translate-train section over the quickstart job's Swahili rows (a hub id: nothing is loaded).
TRAIN = "translate.train={sources: [sw], target: ug, model: {model: org/sw-ug, num_gpus: %s%s}}"


def _main(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:  # a stage command's --dry-run exits from where the config is loaded
        return int(exc.code or 0)


@pytest.fixture(autouse=True)
def on_the_hub(monkeypatch):
    """The hub ids here (``org/sw-ug``) are taken to be on the hub: offline, the driver's model
    check (``lrl.generate.translate.preflight``), which dry runs make as the run does, stops on them."""
    from lrl.generate.translate import preflight

    monkeypatch.setattr(preflight, "hub_problem", lambda model_id: None)


@pytest.fixture
def no_ray(monkeypatch):
    """A dry run must not start Ray: starting it fails the test."""
    import ray

    import lrl.runtime

    def refuse(*args, **kwargs):
        raise AssertionError("a dry run started Ray")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(lrl.runtime, "init_ray", refuse)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the embedded Ray would have no GPU, GPU machine or not


def _dry_generate(tmp_path, capsys, *overrides: str) -> str:
    root = tmp_path / "runs"
    args = ["generate", str(packaged_job("quickstart")), f"output.root={root}", "ray.num_cpus=2",
            "translate.enabled=true", *overrides, "--dry-run"]
    assert _main(args) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert yaml.safe_load(captured.out)["name"] == "quickstart", "the plan must keep the printed config valid YAML"
    assert not root.exists(), "a dry run wrote something"
    return captured.out


@pytest.mark.parametrize("gpus, extra, says", [
    (1, "", "translate.train.model: 1 actor(s) of 1 GPU and 1 CPU, 0 of which fit on the Ray cluster now "
            "(0 GPUs on 1 node(s)); the embedded local Ray never grows"),
    (2, "", "translate.train.model.num_gpus=2: an actor runs its model on one GPU"),
    (0, ", dtype: float16", "translate.train.model.dtype=float16 needs a GPU"),
])
def test_generate_dry_run_says_a_translation_pool_cannot_run(no_ray, tmp_path, capsys, gpus, extra, says):
    """``lrl generate JOB --dry-run`` printed the plan and exit 0 for MT settings the stage stops on
    once Ray runs (``num_gpus: 1`` on a machine without a GPU: a pool that can never be placed), or
    as it builds the pool: the dry run said nothing of them."""
    out = _dry_generate(tmp_path, capsys, TRAIN % (gpus, extra))
    line = next((x for x in out.splitlines() if says in x), None)
    assert line is not None and line.startswith("# warning: ")
    assert "The generate stage would stop with this error when it starts" in line


def test_generate_dry_run_says_what_the_run_says(no_ray, tmp_path, capsys, monkeypatch):
    """The dry run asks the stage's own check (``check_pool``) of the embedded Ray it would start;
    the real run gives the same error on a Ray of the same resources."""
    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate import ops

    out = _dry_generate(tmp_path, capsys, TRAIN % (1, ""))
    with pytest.raises(ConfigError) as real:
        ops.check_pool(MTModelConfig(model="org/sw-ug", num_gpus=1), "translate.train.model",
                       [{"CPU": 2.0}], embedded=True)  # what ray.nodes() gives of the embedded Ray
    assert f"# warning: {real.value}. The generate stage" in out
    # a machine with a GPU: the pool fits, and the dry run says so
    import lrl.pipeline.preflight as preflight

    monkeypatch.setattr(preflight, "embedded_resources", lambda ray_cfg: (2, 1))
    out = _dry_generate(tmp_path, capsys, TRAIN % (1, ""))
    assert ("# translate.train.model: 1 actor(s) of 1 GPU and 1 CPU; the embedded local Ray would have 2 CPUs "
            "and 1 GPUs: they fit") in out and "warning" not in out
    # a CPU pool that takes every CPU: the stage's stall warning
    out = _dry_generate(tmp_path, capsys, TRAIN % (0, ", num_actors: 2"))
    assert "# warning: translate: 2 actors x 1.00 CPUs take all 2 CPUs of the cluster" in out


def test_generate_dry_run_checks_back_translation_and_leaves_a_cluster_alone(no_ray, tmp_path, capsys,
                                                                            monkeypatch):
    bt = ("translate.backtranslate={lang: ug, pivot: en, to_pivot: {model: org/ug-en, num_gpus: 1.5}, "
          "from_pivot: {model: org/en-ug}}")
    out = _dry_generate(tmp_path, capsys, bt)
    assert "# warning: translate.backtranslate.to_pivot.num_gpus=1.5" in out
    assert "from_pivot" not in out.split("# lrl generate --dry-run")[1]  # a CPU pool of 1 CPU on 2: nothing to say
    # a cluster is not joined: its placement is the stage's to check, the settings are checked here
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    out = _dry_generate(tmp_path, capsys, TRAIN % (1, ""), bt)
    assert "# translate: actors not checked against the Ray cluster at ray://head:10001" in out
    assert "0 of which fit" not in out and "to_pivot.num_gpus=1.5" in out


def test_run_dry_run_says_it_too(no_ray, tmp_path, capsys):
    """``lrl run --dry-run`` makes the same translation check as ``lrl generate --dry-run``."""
    root = tmp_path / "runs"
    assert _main(["run", str(packaged_job("quickstart")), f"output.root={root}", "ray.num_cpus=2",
                  "translate.enabled=true", TRAIN % (1, ""), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "translate.train.model: 1 actor(s) of 1 GPU and 1 CPU, 0 of which fit" in out
    assert not root.exists()


def test_the_run_gives_the_pools_error_from_the_same_check(ray_session):
    """Guard for the refactor: the stage's check (Ray running) still stops a pool that never fits."""
    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate import ops

    if ray_session.cluster_resources().get("GPU"):
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match=r"translate.train.model: 1 actor\(s\) .* 0 of which fit .*never grows"):
        ops._check_gpus(MTModelConfig(model="org/sw-ug", num_gpus=1), "translate.train.model")


def _model_and_data(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (tmp_path / "dev.conll").write_text("Ali\tB-PER\nkeldi\tO\n", encoding="utf-8")
    return ["evaluate", "--model", str(model), "--data", str(tmp_path / "dev.conll"), "--lang", "ug",
            "--out", str(tmp_path / "runs")]


@pytest.mark.parametrize("device, says", [
    ("auto", "lrl evaluate: error: --device: 'auto': use cpu, cuda or cuda:N"),
    ("cuda", "lrl evaluate: error: --device=cuda, but the process running the evaluate stage (the driver: lrl "
             "itself, not a Ray worker) sees 0 GPU(s)"),
])
def test_evaluate_model_mode_device_is_checked_as_the_config_field(tmp_path, monkeypatch, capsys, device, says):
    """``lrl evaluate --model M --data D`` predicted on the CPU, always: it had no config to set
    ``evaluate.device`` in (a dotted ``evaluate.device=cuda`` was read as the CONFIG path)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _main([*_model_and_data(tmp_path), "--device", device]) == 2
    assert says in capsys.readouterr().err
    assert not list((tmp_path / "runs").glob("evaluate-*/metrics.json"))


def test_evaluate_model_mode_predicts_on_the_device_asked_for(tmp_path, monkeypatch, capsys):
    import torch

    import lrl.evaluate.command as command

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    used = []

    def fake_evaluate(model_dir, table, out_dir, name, batch_size=64, device="cpu", files_root=None):
        used.append(device)
        return {"f1": 0.5, "precision": 0.5, "recall": 0.5, "sentences": table.num_rows}

    monkeypatch.setattr(command, "evaluate_model", fake_evaluate)
    args = _model_and_data(tmp_path)
    assert _main(args) == 0 and _main([*args, "--device", "cuda:0"]) == 0
    assert used == ["cpu", "cuda:0"]
    # predictions of another device are another output, as evaluate.device makes them in the stage
    folders = [line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines() if line.startswith("evaluate: ")]
    assert len(set(folders)) == 2
    assert all(json.loads(open(f"{f}/metrics.json").read())["models"] for f in folders)
    # with CONFIG the flag sets evaluate.device (validated and shown as the config field)
    job = tmp_path / "job.yaml"
    job.write_text("data:\n  ner:\n    - {path: dev.conll, lang: ug, split: dev}\n", encoding="utf-8")
    assert _main(["evaluate", str(job), "evaluate.device=cpu", "--device", "cuda:0", "--dry-run"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["evaluate"]["device"] == "cuda:0"
    assert _main(["evaluate", str(job), "--device", "gpu", "--dry-run"]) == 2
    assert "use cpu, cuda or cuda:N" in capsys.readouterr().err
