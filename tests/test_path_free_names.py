"""Output names that hold no user's path where the content is hashed already: a model or data
folder moved or copied elsewhere keeps the finetune, tune and ``lrl evaluate --model --data``
outputs it made (each trained or evaluated again), while changed content still names another.
The names are taken from the stages as they run, stopped where the output folder is named (no
Ray). A job that sets none of these keeps its name: ``tests/test_finetune_hash.py`` pins it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from finetune_jobs import job_cfg, write_job

pytest.importorskip("transformers")


class _Stop(Exception):
    """Raised where the stage names its output: nothing after that is needed."""


@pytest.fixture(scope="module")
def job(data_root, tmp_path_factory):
    """20 train / 10 dev sentences of WikiANN ug and wo, and a tiny saved encoder (``enc``)."""
    return write_job(tmp_path_factory.mktemp("pathfree"), data_root, 20, 10)


def _name(module, run, monkeypatch) -> str:
    """The hash of the output folder ``run()`` names through ``module.StageOutput``."""
    from lrl.data.output import StageOutput

    seen: list[str] = []

    class Capture(StageOutput):  # not module.StageOutput: an earlier call's Capture may be there
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            seen.append(self.hash)
            raise _Stop

    monkeypatch.setattr(module, "StageOutput", Capture)
    with pytest.raises(_Stop):
        run()
    return seen[0]


def _finetune(cfg, monkeypatch) -> str:
    import lrl.train.finetune as ft
    from lrl.pipeline.stage import StageContext

    return _name(ft, lambda: ft.run_finetune(StageContext(cfg)), monkeypatch)


def _tune(cfg, monkeypatch) -> str:
    import lrl.tune.stage as tune
    from lrl.pipeline.stage import StageContext

    return _name(tune, lambda: tune.run_tune(StageContext(cfg)), monkeypatch)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _other_weights(folder: Path) -> None:
    """The same encoder with one weight changed: another model in the same place."""
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name] + 1
    save_file(weights, folder / "model.safetensors")


def _generated(folder: Path, job: Path, rows: int) -> Path:
    """A generate output's ``data/`` folder of ``rows`` ug training sentences."""
    import pyarrow.parquet as pq

    from lrl.data.readers import read_conll

    (folder / "data").mkdir(parents=True)
    pq.write_table(read_conll(str(job / "ug_train.conll"), "ug", "train").table.slice(0, rows),
                   folder / "data" / "part-0.parquet")
    return folder


def test_the_finetune_output_is_named_by_the_encoders_content_not_its_folder(job, tmp_path, monkeypatch):
    a, b = _copy(job / "enc", tmp_path / "a" / "enc"), _copy(job / "enc", tmp_path / "b" / "moved")
    names = [_finetune(job_cfg(job, tmp_path / "runs", ("ug",), f"finetune.model={m}"), monkeypatch) for m in (a, b)]
    assert names[0] == names[1]
    _other_weights(b)
    assert _finetune(job_cfg(job, tmp_path / "runs", ("ug",), f"finetune.model={b}"), monkeypatch) != names[0]


def test_the_finetune_output_is_named_by_the_generated_rows_not_their_folder(job, tmp_path, monkeypatch):
    a, b, c = (_generated(tmp_path / name, job, rows) for name, rows in (("a", 20), ("b", 20), ("c", 19)))
    names = [_finetune(job_cfg(job, tmp_path / "runs", ("ug",), f"finetune.data={d}"), monkeypatch) for d in (a, b, c)]
    assert names[0] == names[1] != names[2]


def test_the_tune_output_is_named_by_content_not_by_folders(job, tmp_path, monkeypatch):
    a, b = _copy(job / "enc", tmp_path / "a" / "enc"), _copy(job / "enc", tmp_path / "b" / "moved")
    names = {}
    for setting in ("tune.model_path", "finetune.model"):
        names[setting] = [_tune(job_cfg(job, tmp_path / "runs", ("ug",), f"{setting}={m}"), monkeypatch) for m in (a, b)]
        assert names[setting][0] == names[setting][1], setting
    gen = [_generated(tmp_path / name, job, rows) for name, rows in (("g1", 20), ("g2", 20), ("g3", 19))]
    data = [_tune(job_cfg(job, tmp_path / "runs", ("ug",), f"finetune.data={d}"), monkeypatch) for d in gen]
    assert data[0] == data[1] != data[2]
    _other_weights(b)
    assert _tune(job_cfg(job, tmp_path / "runs", ("ug",), f"tune.model_path={b}"), monkeypatch) != names["tune.model_path"][0]


def test_unset_and_preset_encoders_keep_the_names_they_had():
    """Only a set folder is left to the inputs: None (the pretrain stage's output, the generate
    stage's rows) and a ``preset:`` name stay in the dump as they were, so those names are kept."""
    from lrl.train.finetune_config import FinetuneConfig
    from lrl.train.finetune_names import BY_CONTENT, by_content

    dump = FinetuneConfig().model_dump(mode="json")
    assert by_content(dump) == dump
    preset = FinetuneConfig(model="preset:tiny").model_dump(mode="json")
    assert by_content(preset) == preset
    assert by_content({**dump, "model": "/x/enc", "data": "/x/gen"}) == {**dump, "model": BY_CONTENT, "data": BY_CONTENT}


def _tagger(folder: Path) -> Path:
    """A scratch encoder that loads as a token classifier trained on ug."""
    from lrl.train.finetune_scratch import build_scratch_encoder

    build_scratch_encoder(folder, [["Dakar", "mooy", "salam"]], ["ug"], vocab_size=80, hidden=16, layers=1)
    cfg = json.loads((folder / "config.json").read_text())
    labels = ["O", "B-LOC", "I-LOC"]
    cfg |= {"id2label": dict(enumerate(labels)), "label2id": {x: i for i, x in enumerate(labels)}}
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "lrl_tagger.json").write_text(json.dumps({"head": "linear", "langs": ["ug"]}))
    return folder


def test_evaluate_model_and_data_are_named_by_content_not_by_path(tmp_path, monkeypatch):
    """``lrl evaluate --model M --data D``: M was named by its path (and its weights), D by its path
    and each file's size and mtime, so a copied or touched folder was evaluated again."""
    from lrl.evaluate import command

    def name(model: Path, data: Path) -> str:
        return _name(command, lambda: command.evaluate_files(str(model), str(data), "ug", str(tmp_path / "runs")),
                     monkeypatch)

    model = _tagger(tmp_path / "a" / "model")
    data = tmp_path / "a" / "dev"
    data.mkdir()
    (data / "part-0.conll").write_text("Dakar\tB-LOC\nmooy\tO\n\nsalam\tO\n", encoding="utf-8")
    first = name(model, data / "part-0.conll")
    moved_model = _copy(model, tmp_path / "b" / "model")
    moved_data = _copy(data, tmp_path / "b" / "dev")
    os.utime(moved_data / "part-0.conll", ns=(1, 1))  # another mtime, the same content
    assert name(moved_model, moved_data / "part-0.conll") == first
    # A parquet folder read as a folder: the same rows in another folder, touched, keep their name.
    import pyarrow.parquet as pq

    from lrl.data.readers import read_conll

    rows = read_conll(str(data / "part-0.conll"), "ug", "dev").table
    for sub in ("p1", "p2"):
        (tmp_path / sub).mkdir()
        pq.write_table(rows, tmp_path / sub / "part-0.parquet")
    os.utime(tmp_path / "p2" / "part-0.parquet", ns=(1, 1))
    assert name(model, tmp_path / "p1") == name(model, tmp_path / "p2")
    (moved_data / "part-0.conll").write_text("Dakar\tB-LOC\nmooy\tO\n", encoding="utf-8")  # other rows
    assert name(moved_model, moved_data / "part-0.conll") != first
    _other_weights(moved_model)
    assert name(moved_model, data / "part-0.conll") != first


def _same_second(monkeypatch) -> None:
    """S3 keeps mtimes to the second: folders of equal sizes (encoders of one architecture) that
    one ``aws s3 sync`` uploads in the same second have the same fingerprint. Made so here."""
    import pyarrow.fs as pafs

    import lrl.data.output
    import lrl.data.sited_print
    from lrl.data import files

    real = files.fingerprint

    def sizes_only(path: str) -> str:
        if not files.is_uri(path):
            return real(path)
        fs, inner = files.filesystem(path)
        if fs.get_file_info(inner).type == pafs.FileType.File:
            return f"{fs.get_file_info(inner).size}-0"
        found = fs.get_file_info(pafs.FileSelector(inner, recursive=True))
        return ";".join(sorted(f"{i.path.removeprefix(inner)}:{i.size}" for i in found if i.type == pafs.FileType.File))

    for module in (lrl.data.output, lrl.data.sited_print):
        monkeypatch.setattr(module, "fingerprint", sizes_only)


def _flip_a_weight(folder: Path) -> None:
    """Another model in a file of the same size: the last byte of the last weight changed."""
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (folder / "model.safetensors").write_bytes(bytes(data))


def _upload(folder: Path, uri: str) -> str:
    from lrl.data.remote import upload_folder

    upload_folder(str(folder), uri)
    return uri


def test_remote_encoders_of_equal_sizes_keep_their_paths_in_the_name(job, tmp_path, monkeypatch, s3_store):
    """An s3:// encoder outside a stage output is printed by its files' sizes and mtimes: two
    encoders of one architecture uploaded in the same second shared the finetune output once their
    paths left the name (the second trained nothing and answered with the first's models)."""
    _same_second(monkeypatch)
    bucket = s3_store.bucket()
    a = _upload(job / "enc", f"{bucket}/a/enc")
    other = _copy(job / "enc", tmp_path / "other")
    _flip_a_weight(other)  # another model, files of the same sizes
    b = _upload(other, f"{bucket}/b/enc")
    names = [_finetune(job_cfg(job, tmp_path / "runs", ("ug",), f"finetune.model={m}"), monkeypatch) for m in (a, b)]
    assert names[0] != names[1]
    assert _tune(job_cfg(job, tmp_path / "runs", ("ug",), f"tune.model_path={a}"), monkeypatch) != \
        _tune(job_cfg(job, tmp_path / "runs", ("ug",), f"tune.model_path={b}"), monkeypatch)


def test_evaluate_keeps_the_path_of_remote_models_and_data(tmp_path, monkeypatch, s3_store):
    """``lrl evaluate --model s3://...``: the same for two taggers of equal sizes, and for data
    files of equal size, uploaded in the same second (the evaluation of the second reused the first's)."""
    from lrl.data.sited_print import data_print
    from lrl.evaluate import command

    _same_second(monkeypatch)
    bucket = s3_store.bucket()
    model = _tagger(tmp_path / "a" / "model")
    data = tmp_path / "dev.conll"
    data.write_text("Dakar\tB-LOC\nmooy\tO\n\nsalam\tO\n", encoding="utf-8")
    a = _upload(model, f"{bucket}/a/model")
    _flip_a_weight(model)
    b = _upload(model, f"{bucket}/b/model")

    def name(m: str) -> str:
        return _name(command, lambda: command.evaluate_files(m, str(data), "ug", str(tmp_path / "runs")), monkeypatch)

    assert name(a) != name(b)
    other = tmp_path / "test.conll"
    other.write_text("Dakar\tB-PER\nmooy\tO\n\nsalam\tO\n", encoding="utf-8")  # the same size
    x, y = _upload_file(data, f"{bucket}/dev.conll"), _upload_file(other, f"{bucket}/test.conll")
    assert data_print(x) != data_print(y)
    assert data_print(str(data)) == data_print(str(shutil.copy(data, tmp_path / "moved.conll")))  # local: content


def _upload_file(path: Path, uri: str) -> str:
    from lrl.data.files import filesystem

    fs, inner = filesystem(uri)
    with fs.open_output_stream(inner) as f:
        f.write(path.read_bytes())
    return uri
