"""Output roots on an object store (s3://), end to end against a local S3 server (``s3_store``):
the stages write their folders in place there, and only the manifest marks them finished."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from test_generate import _slice

from lrl.config import ConfigError
from lrl.job import load_job


def _listing(uri: str) -> dict[str, int]:
    fs, inner = pafs.FileSystem.from_uri(uri)
    infos = fs.get_file_info(pafs.FileSelector(inner, recursive=True))
    return {i.path: i.mtime_ns for i in infos if i.type == pafs.FileType.File}


def test_generate_writes_an_s3_root_and_a_rerun_does_nothing(ray_session, s3_store, data_root, tmp_path):
    from lrl.generate.stage import run_generate, stage_output
    from lrl.generate.write import read_rows
    from lrl.pipeline.stage import StageContext

    root = s3_store.bucket() + "/runs"
    ug = _slice(data_root, tmp_path, "ug", 40)
    cfg = load_job(None, [f"data.ner=[{{path: {ug}, lang: ug}}]", "augment.ops=[swap]",
                          "augment.neighbours.enabled=false", f"output.root={root}"])
    path = run_generate(StageContext(cfg), quiet=True)
    assert path == f"{root}/generate-{stage_output(cfg).hash}"
    fs, inner = pafs.FileSystem.from_uri(path)
    with fs.open_input_stream(f"{inner}/manifest.json") as f:
        m = json.loads(f.read())
    rows = read_rows(path)
    assert rows.num_rows == m["output_rows"] and m["input_rows"] == 40
    assert set(rows.column("op").to_pylist()) == {"orig", "swap"}
    before = _listing(root)
    assert run_generate(StageContext(cfg), quiet=True) == path
    assert _listing(root) == before


def _files(uri: str) -> set[str]:
    """The files under ``uri``, relative to it."""
    fs, inner = pafs.FileSystem.from_uri(uri)
    infos = fs.get_file_info(pafs.FileSelector(inner, recursive=True, allow_not_found=True))
    return {i.path.removeprefix(inner.rstrip("/") + "/") for i in infos if i.type == pafs.FileType.File}


def _no_local_uri_folder(cwd) -> None:
    """os.makedirs or Path on an s3:// string made a local folder "s3:" in the working directory."""
    assert not (cwd / "s3:").exists(), "a local folder named after the URI was written"


def test_tokenizer_stage_writes_an_s3_root_and_the_command_reads_it(s3_store, tmp_path, monkeypatch, capsys):
    """It wrote through a local path only: "s3://...: this stage needs a local path" (a ValueError
    with a traceback) at the end of its work."""
    from pretrain_jobs import _job

    from lrl.cli import main
    from lrl.model.command import run_tokenizer
    from lrl.pipeline.stage import StageContext

    root = s3_store.bucket() + "/runs"
    job = _job(tmp_path, {})
    monkeypatch.chdir(tmp_path)
    path = run_tokenizer(StageContext(load_job(job, [f"output.root={root}"])))
    assert path.startswith(root + "/tokenizer-")
    assert {"tokenizer.json", "stats.json", "manifest.json"} <= _files(path)
    capsys.readouterr()
    assert main(["tokenizer", str(job), f"output.root={root}"]) == 0
    out = capsys.readouterr().out
    assert f"tokenizer: {path}" in out and "ug: unk" in out and "(reused: finished" in out
    _no_local_uri_folder(tmp_path)


def test_pretrain_trains_from_and_into_an_s3_root(ray_session, s3_store, tmp_path, monkeypatch, capsys):
    """Its Ray Train run folder was made with os.makedirs (a local "s3:" folder), the initial model
    saved there, and the model copied out of the checkpoint through a local path (ValueError).
    Now the checkpoints are Ray Train's storage on the object store, the workers read the
    tokenizer and initial model from there."""
    from pretrain_jobs import _job
    from transformers import AutoModelForMaskedLM

    from lrl.cli import main
    from lrl.data.remote import local_folder
    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain import run_pretrain

    root = s3_store.bucket() + "/runs"
    job = _job(tmp_path, {"steps": 2, "checkpoint_every": 1, "keep_checkpoints": True})
    monkeypatch.chdir(tmp_path)
    path = run_pretrain(StageContext(load_job(job, [f"output.root={root}"])))
    assert path.startswith(root + "/pretrain-")
    assert {"model.safetensors", "config.json", "tokenizer.json", "metrics.json", "manifest.json",
            "README.md"} <= _files(path)  # the model card too (lrl.evaluate.pretrain_card)
    AutoModelForMaskedLM.from_pretrained(local_folder(path))
    fs, inner = pafs.FileSystem.from_uri(f"{path}/manifest.json")
    with fs.open_input_stream(inner) as f:
        m = json.loads(f.read())
    assert m["steps"] == 2 and m["checkpoints"] == f"{root}/.{path.rsplit('/', 1)[1]}.ray"
    kept = _files(m["checkpoints"])
    assert any(f.startswith("pretrain/checkpoint_") for f in kept) and "init/config.json" in kept
    capsys.readouterr()
    assert main(["pretrain", str(job), f"output.root={root}"]) == 0
    assert "(reused: finished" in capsys.readouterr().out
    _no_local_uri_folder(tmp_path)


def _read(uri: str) -> bytes:
    fs, inner = pafs.FileSystem.from_uri(uri)
    with fs.open_input_stream(inner) as f:
        return f.read()


def _ner_job(tmp_path, data_root, root: str, *extra: str):
    """WikiANN ug, 80 train / 20 dev sentences, tiny models and few steps, outputs under ``root``."""
    from test_tune import _slice as _sentences

    _sentences(data_root / "wikiann/ug/train", tmp_path / "train.conll", 80)
    _sentences(data_root / "wikiann/ug/dev", tmp_path / "dev.conll", 20)
    return load_job(None, [f"output.root={root}", f"data.root={tmp_path}",
                           "data.ner=[{path: train.conll, lang: ug, split: train}, {path: dev.conll, lang: ug, split: dev}]",
                           "finetune.max_steps=4", "finetune.eval_every=2", "finetune.batch_size=16",
                           "finetune.max_length=48", "finetune.num_cpus=1", "evaluate.seeds=[0]", *extra])


def test_finetune_evaluate_and_report_read_and_write_an_s3_root(ray_session, s3_store, data_root, tmp_path,
                                                               monkeypatch, capsys):
    """finetune: the preset encoder was cached in a local folder "s3:/.../encoders" and the model
    cards were skipped on object stores; evaluate found no model in an s3 finetune output; the
    report read no s3 file (every section "not run") and wrote through a local path."""
    from lrl.cli import main
    from lrl.evaluate import report_data
    from lrl.evaluate.command import run_evaluate
    from lrl.evaluate.model_card import read_front_matter
    from lrl.evaluate.report import run_report
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune

    root = s3_store.bucket() + "/runs"
    monkeypatch.chdir(tmp_path)
    cfg = _ner_job(tmp_path, data_root, root, "finetune.model=preset:tiny")
    ft = run_finetune(StageContext(cfg))
    assert ft.startswith(root + "/finetune-")
    assert {"results.json", "models/ug/model.safetensors", "models/ug/README.md"} <= _files(ft)
    assert read_front_matter(_read(f"{ft}/models/ug/README.md").decode())["language"] == ["ug"]
    assert any(f.endswith("/config.json") for f in _files(f"{root}/encoders"))  # the preset, cached there
    assert not [f for f in _files(root) if f.startswith(".finetune-")]  # no finished parts left behind
    capsys.readouterr()
    ev = run_evaluate(StageContext(cfg, {"finetune": ft}), quiet=True)
    assert {"metrics.json", "predictions/ug/dev.parquet", "predictions/ug/dev.conll"} <= _files(ev)
    metrics = json.loads(_read(f"{ev}/metrics.json"))
    assert metrics["models"]["ug"]["dev"]["sentences"] == 20 and "ug" in metrics["seeds_dev"]
    assert main(["evaluate", "--model", ft, "--data", str(tmp_path / "dev.conll"), "--lang", "ug",
                 "--out", root]) == 0
    assert "ug [data]: F1" in capsys.readouterr().out
    rep = run_report(StageContext(cfg, {"finetune": ft, "evaluate": ev}))
    assert "<html" in _read(f"{rep}/report.html").decode()[:2000].lower()
    assert report_data.finetune_scores(ft) is not None and list(report_data.confusions(ev, 100)) == ["ug [dev]"]
    # a folder the user names on s3 is checked as a local one is (a typo was a quiet "not run")
    with pytest.raises(ConfigError, match="not found"):
        run_report(StageContext(load_job(None, [f"output.root={root}", f"report.finetune={root}/finetune-typo"])))
    with pytest.raises(ConfigError, match="no results.json"):
        run_report(StageContext(load_job(None, [f"output.root={root}", f"report.finetune={ev}"])))
    _no_local_uri_folder(tmp_path)


def test_tune_searches_an_encoder_on_s3_and_writes_its_cards_there(ray_session, s3_store, data_root, tmp_path,
                                                                   monkeypatch, capsys):
    """resolve_model said "not a Hugging Face model folder" of an encoder on s3, the cards were
    skipped there, and ``lrl tune`` printed no table for an s3 output."""
    from lrl.cli import main
    from lrl.data.readers import read_conll
    from lrl.data.remote import upload_folder
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune_scratch import build_scratch_encoder
    from lrl.tune.stage import run_tune

    root = s3_store.bucket() + "/runs"
    sents = read_conll(str(data_root / "wikiann/ug/train"), "ug").table.column("tokens").to_pylist()[:200]
    upload_folder(build_scratch_encoder(tmp_path / "enc", sents, ["ug"], vocab_size=400, hidden=32, layers=1,
                                        heads=2, max_positions=64), f"{root}/enc")
    monkeypatch.chdir(tmp_path)
    over = [f"tune.model_path={root}/enc", "tune.languages=[ug]", "tune.num_samples=1", "tune.cpus_per_trial=1"]
    cfg = _ner_job(tmp_path, data_root, root, *over)
    path = run_tune(StageContext(cfg))
    assert {"best.json", "trials.json", "results.json", "models/ug/model.safetensors",
            "models/ug/README.md"} <= _files(path)
    assert not [f for f in _files(root) if f.startswith(".tune-")]
    capsys.readouterr()
    assert main(["tune", str(_job_file(tmp_path, cfg))]) == 0
    assert "  ug: dev F1 " in capsys.readouterr().out
    _no_local_uri_folder(tmp_path)


def _job_file(tmp_path, cfg):
    from lrl.config import dump

    f = tmp_path / "job.yaml"
    f.write_text(dump(cfg), encoding="utf-8")
    return f


def test_quickstart_keeps_an_s3_output_and_finds_its_report_there(s3_store, tmp_path, monkeypatch):
    """``--output s3://b/x`` became the local folder ./s3:/b/x, and the report on s3 was "not
    produced" (exit status 1) after a successful run."""
    from lrl.pipeline import quickstart

    monkeypatch.chdir(tmp_path)
    root = s3_store.bucket() + "/qs"
    assert quickstart.load(output=root).output.root == root
    rep = f"{root}/report-0123456789ab"
    assert quickstart.report_file(rep) is None
    fs, inner = pafs.FileSystem.from_uri(f"{rep}/report.html")
    with fs.open_output_stream(inner) as f:
        f.write(b"<html></html>")
    assert quickstart.report_file(rep) == f"{rep}/report.html"
    _no_local_uri_folder(tmp_path)


def test_finished_parts_of_a_stopped_run_wait_on_s3_and_are_found_again(s3_store, tmp_path):
    """``.finetune-<group>-<key>/done.json``: kept on the object store, found by a later run,
    copied into the stage output, removed once it is committed."""
    from lrl.train.finetune_reuse import FinishedGroups

    root = s3_store.bucket() + "/runs"
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    FinishedGroups(root, {"ug": "k1"}).save("ug", {"group": {"model_dir": "models/ug"}}, str(model))
    assert _files(f"{root}/.finetune-ug-k1") == {"done.json", "model/config.json"}
    later = FinishedGroups(root, {"ug": "k1", "sw": "k2"})
    assert later.load("sw") is None and later.load("ug") == {"group": {"model_dir": "models/ug"}}
    later.restore_model("ug", f"{root}/finetune-0123456789ab/models/ug")
    assert _files(f"{root}/finetune-0123456789ab/models/ug") == {"config.json"}
    later.clear()
    assert not _files(f"{root}/.finetune-ug-k1")


def test_pretrain_sees_the_checkpoints_of_a_run_folder_on_s3(s3_store):
    """``has_checkpoint`` looked with os.path, which sees no folder on s3: after a config error
    raised in the workers the stage would take the run folder for one without checkpoints and
    remove it, with the checkpoints a rerun resumes from."""
    from lrl.train.pretrain_resume import has_checkpoint

    run = s3_store.bucket() + "/runs/.pretrain-0123456789ab.ray/pretrain"
    assert not has_checkpoint(run)
    fs, inner = pafs.FileSystem.from_uri(f"{run}/checkpoint_2026-01-01_00-00-00.000000/model/config.json")
    with fs.open_output_stream(inner) as f:
        f.write(b"{}")
    assert has_checkpoint(run)


@pytest.mark.slow
def test_pretrain_resumes_a_failed_attempt_from_its_checkpoint_on_s3(ray_session, s3_store, tmp_path, monkeypatch):
    """Ray Train's storage on the object store: the attempt after an injected failure starts from
    the checkpoint stored there (its marker file, ``pretrain.fail_at_step``, is there too)."""
    from pretrain_jobs import _job

    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain import run_pretrain

    root = s3_store.bucket() + "/runs"
    job = _job(tmp_path, {"steps": 2, "checkpoint_every": 1, "fail_at_step": 2})
    monkeypatch.chdir(tmp_path)
    path = run_pretrain(StageContext(load_job(job, [f"output.root={root}"])))
    m = json.loads(_read(f"{path}/manifest.json"))
    assert m["steps"] == 2 and m["attempt_start_steps"] == [0, 1]
    assert not [f for f in _files(root) if f.startswith(".pretrain-")]  # the run folder, removed once committed
    _no_local_uri_folder(tmp_path)


def test_lrl_run_records_its_state_on_s3_and_only_reuses_it(ray_session, s3_store, tmp_path, monkeypatch):
    """``lrl run`` on an s3 root: the state file lives there, and ``--only`` takes the recorded
    upstream outputs from it."""
    from lrl.pipeline import quickstart
    from lrl.pipeline.runner import load_state, plan, run_pipeline, state_path

    root = s3_store.bucket() + "/runs"
    monkeypatch.chdir(tmp_path)
    over = ["pipeline.stages=[generate, tokenizer]", "augment.ops=[swap]"]
    cfg = quickstart.load(over, output=root)
    first = run_pipeline(cfg, log=lambda s: None)
    assert state_path(cfg).startswith(root + "/pipeline-")
    assert set(load_state(state_path(cfg))["stages"]) == {"generate", "tokenizer"}
    assert f"state file: {state_path(cfg)} (exists)" in plan(cfg, only="tokenizer")
    again = run_pipeline(quickstart.load([*over, "tokenizer.vocab_size=300"], output=root), only="tokenizer",
                         log=lambda s: None)
    assert again.outputs["generate"] == first.outputs["generate"]
    assert again.outputs["tokenizer"] != first.outputs["tokenizer"] and again.outputs["tokenizer"].startswith(root)
    _no_local_uri_folder(tmp_path)


def test_local_folder_copies_once_fetches_a_rewritten_folder_again_and_prunes_old_copies(s3_store, tmp_path,
                                                                                         monkeypatch):
    from lrl.data import remote
    from lrl.data.files import InputError

    cache = tmp_path / "cache"
    monkeypatch.setenv(remote.CACHE_ENV, str(cache))
    uri = s3_store.bucket() + "/runs/tokenizer-0123456789ab"
    fs, inner = pafs.FileSystem.from_uri(uri)

    def write(name: str, text: str) -> None:
        with fs.open_output_stream(f"{inner}/{name}") as f:
            f.write(text.encode())

    write("a.json", "1")
    first = remote.local_folder(uri)
    assert Path(first, "a.json").read_text() == "1" and remote.local_folder(uri) == first
    write("a.json", "22")  # the folder rebuilt under the same name: not the old copy
    second = remote.local_folder(uri)
    assert second != first and Path(second, "a.json").read_text() == "22"
    old = cache / "pretrain-0123456789ab-0000000000000000"
    old.mkdir()
    os.utime(old, (0, 0))  # unused for long: removed at the next fetch, the recent copies kept
    write("b.json", "3")
    remote.local_folder(uri)
    assert not old.exists() and Path(first).is_dir()
    with pytest.raises(InputError, match="no such folder"):
        remote.local_folder(uri + "-missing")
