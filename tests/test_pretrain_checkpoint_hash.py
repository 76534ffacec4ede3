"""``model.checkpoint`` in the pretrain output's name: a local folder counts by its content (as
README says of a model folder of your own), a hub id by its string, and no checkpoint as ever."""
import json
import shutil
from pathlib import Path

from pretrain_jobs import _job

# The names these configs had before a local checkpoint was hashed by content: they must stay.
DEFAULT_HASH = "cf4dc86699c0"
HUB_HASH = "f7d23e30b48d"
PATH_HASH = "8eb94614a54e"  # model.checkpoint=models/base, named by its path string (before this change)


def _stage(tmp_path: Path, model: dict | None = None):
    """The pretrain ``StageOutput`` of the tiny two-language job (micro preset) with ``model``
    settings, over a placeholder tokenizer folder (``stage_output`` loads no model)."""
    import yaml

    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain import stage_output

    job = _job(tmp_path, {})
    if model:
        data = yaml.safe_load(job.read_text(encoding="utf-8"))
        data["model"].update(model)
        job.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    tok = tmp_path / "tok"
    tok.mkdir(exist_ok=True)
    (tok / "tokenizer.json").write_text("{}")
    out, _, _ = stage_output(StageContext(load_job(str(job)), upstream={"tokenizer": str(tok)}))
    return out


def _checkpoint(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "bert"}')
    (path / "model.safetensors").write_bytes(b"\0" * 4096)
    return path


def test_jobs_without_a_local_checkpoint_keep_their_pretrain_names(tmp_path):
    """No checkpoint, and a hub id (hashed by its string: there is no content to read)."""
    assert _stage(tmp_path).hash == DEFAULT_HASH
    assert _stage(tmp_path, {"checkpoint": "org/name"}).hash == HUB_HASH


def test_a_checkpoint_folder_edited_in_place_pretrains_again(tmp_path):
    """Rewritten in place, the folder's path string was the same, and the output made from the old
    weights was reused."""
    ckpt = _checkpoint(tmp_path / "models" / "base")
    before = _stage(tmp_path, {"checkpoint": str(ckpt)}).hash
    (ckpt / "model.safetensors").write_bytes(b"\1" * 4096)
    assert _stage(tmp_path, {"checkpoint": str(ckpt)}).hash != before


def test_a_copied_checkpoint_folder_keeps_the_name(tmp_path, monkeypatch):
    """A byte-identical copy elsewhere (or the same folder named as ``~/...``) is the same start:
    its path string renamed the output and pretrained again."""
    ckpt = _checkpoint(tmp_path / "models" / "base")
    before = _stage(tmp_path, {"checkpoint": str(ckpt)}).hash
    shutil.copytree(ckpt, tmp_path / "elsewhere")
    assert _stage(tmp_path, {"checkpoint": str(tmp_path / "elsewhere")}).hash == before
    monkeypatch.setenv("HOME", str(tmp_path / "models"))
    assert _stage(tmp_path, {"checkpoint": "~/base"}).hash == before


def test_a_finished_output_is_found_after_its_checkpoint_folder_is_deleted(tmp_path, monkeypatch):
    """Deleting the checkpoint folder after pretraining must not lose the finished output (``lrl
    run`` warns and reuses it, ``check_model_folders``): the manifest's recorded print finds it.
    An output from before the print was recorded was named by the path string: still found by it."""
    from lrl.job import load_job
    from lrl.train.pretrain_checkpoint import with_print

    monkeypatch.chdir(tmp_path)
    ckpt = _checkpoint(tmp_path / "models" / "base")
    model = {"checkpoint": "models/base"}
    out = _stage(tmp_path, model)
    assert out.hash != PATH_HASH  # by content while the folder is there
    out.tmp  # noqa: B018
    cfg = load_job(str(tmp_path / "job.yaml"))
    start = with_print({"checkpoint": "models/base", "mlm_head": "checkpoint"}, cfg)  # as run_pretrain records
    assert start is not None and start.get("print")
    out.commit({"started_from": start})
    shutil.rmtree(ckpt)
    assert _stage(tmp_path, model).path == out.path
    shutil.rmtree(out.path)  # no finished output left: the path string's name, as before
    assert _stage(tmp_path, model).hash == PATH_HASH


def test_lrl_pretrain_reuses_its_output_once_the_checkpoint_folder_is_deleted(tmp_path, data_root, monkeypatch):
    """The same through ``lrl pretrain`` (``steps: 0``, no Ray): the manifest it commits records
    the print that finds its folder again, without the checkpoint folder."""
    import yaml
    from test_pretrain_init_only import _encoder_only, _job

    from lrl.cli import main

    monkeypatch.chdir(tmp_path)
    _encoder_only(tmp_path / "ckpt")
    job = _job(tmp_path, tmp_path / "ckpt", data_root)  # a tokenizer extending the checkpoint's
    assert main(["pretrain", str(job)]) == 0
    (folder,) = (tmp_path / "runs").glob("pretrain-*")
    assert json.loads((folder / "manifest.json").read_text())["started_from"]["print"]
    (tok,) = (tmp_path / "runs").glob("tokenizer-*")  # named as a folder: the tokenizer stage reads the checkpoint
    shutil.copytree(tmp_path / "ckpt", tmp_path / "copy")
    jobs = []
    for name, ckpt in (("deleted", "ckpt"), ("copied", "copy")):
        data = yaml.safe_load(job.read_text(encoding="utf-8"))
        data["model"]["checkpoint"] = str(tmp_path / ckpt)
        data["pretrain"]["tokenizer_path"] = str(tok)
        jobs.append(tmp_path / f"{name}.yaml")
        jobs[-1].write_text(yaml.safe_dump(data), encoding="utf-8")
    shutil.rmtree(tmp_path / "ckpt")
    for f in jobs:  # deleted: found by the recorded print; copied: the same content
        assert main(["pretrain", str(f)]) == 0
        assert [folder] == list((tmp_path / "runs").glob("pretrain-*")), f



def test_after_an_edit_in_place_and_a_delete_the_latest_output_is_reused(tmp_path, monkeypatch):
    """A folder pretrained from, rewritten in place, pretrained from again, then deleted: the
    output of what it last held is found (the latest finished), not the older weights' one."""
    from lrl.job import load_job
    from lrl.train.pretrain_checkpoint import checkpoint_print, with_print

    monkeypatch.chdir(tmp_path)
    ckpt = _checkpoint(tmp_path / "models" / "base")
    first = checkpoint_print("models/base")

    def rewrite(byte: int) -> str:
        (ckpt / "model.safetensors").write_bytes(bytes([byte]) * 4096)
        return checkpoint_print("models/base")

    # The second weights print above the first: in the order of the prints the older output came first.
    second = next(b for b in range(1, 256) if rewrite(b) > first)
    model = {"checkpoint": "models/base"}
    outs = []
    for byte, when in ((0, "2026-01-01T00:00:00+0000"), (second, "2026-06-01T00:00:00+0000")):
        rewrite(byte)
        out = _stage(tmp_path, model)
        out.tmp  # noqa: B018
        out.commit({"started_from": with_print({"checkpoint": "models/base"}, load_job(str(tmp_path / "job.yaml")))})
        manifest = Path(out.path) / "manifest.json"  # finished at a known time (within one second, a tie)
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "finished_at": when}))
        outs.append(out)
    assert outs[0].path != outs[1].path
    shutil.rmtree(ckpt)
    assert _stage(tmp_path, model).path == outs[1].path
