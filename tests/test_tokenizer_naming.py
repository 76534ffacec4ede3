"""How the tokenizer stage names its folder without more work than the name needs: what the text
holds (``_text_keys``) is read once and cached under the output root (``lrl.model.text_keys_cache``),
and a local ``tokenizer.base`` counts by its files' content, not by where it lies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

LINES = [f"ilé{i} ìwé ọjà {i}" for i in range(60)]


def _ctx(tmp_path, root=None, *overrides):
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    root = root or str(tmp_path / "runs")
    return StageContext(load_job(None, [f"data.root={tmp_path}", f"output.root={root}",
                                        "data.text=[{path: yo.txt, lang: yo}]", "tokenizer.vocab_size=100",
                                        "tokenizer.min_frequency=1", "tokenizer.eval_lines=10", *overrides]))


@pytest.fixture
def loads(monkeypatch):
    """The calls of ``load_text``, the full read of the stage's text."""
    from lrl.train import pretrain_data

    calls = []
    real = pretrain_data.load_text
    monkeypatch.setattr(pretrain_data, "load_text", lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def test_a_finished_output_is_found_again_without_reading_the_text(tmp_path, loads):
    """``run_tokenizer`` of a finished output read all of the text (a download from an object
    store) only to decide two hash keys; its second run reads none of it."""
    from lrl.model.command import run_tokenizer

    (tmp_path / "yo.txt").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    path = run_tokenizer(_ctx(tmp_path), warn=False)
    first = len(loads)  # the naming's scan, whose rows it trained on
    assert run_tokenizer(_ctx(tmp_path), warn=False) == path
    assert len(loads) == first, "the second naming read the text again"
    assert list((tmp_path / "runs" / ".cache" / "tokenizer-text-keys").glob("*.json"))


def test_a_first_run_reads_the_text_once(tmp_path, loads):
    """A first run read all of the text twice: naming the folder scanned it for two hash keys
    (nothing cached yet), then training read it again (a second download from an object store;
    0.6-0.8 s of an 8-20 s stage on mono/ug + mono/wo). It trains on the scan's rows: the same
    folder and files as a run whose naming found the keys cached and read the text for training."""
    from lrl.model import command

    (tmp_path / "yo.txt").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    first = command.run_tokenizer(_ctx(tmp_path), warn=False)
    assert len(loads) == 1, "a first run read the text twice"
    root = str(tmp_path / "cached")
    command.stage_output(_ctx(tmp_path, root), remember=True)  # the keys cached: naming reads nothing
    again = command.run_tokenizer(_ctx(tmp_path, root), warn=False)
    assert len(loads) == 3  # the scan above, then training's own read
    assert Path(again).name == Path(first).name and Path(again).parent != Path(first).parent
    for name in ("tokenizer.json", "tokenizer_config.json", "stats.json"):
        assert Path(again, name).read_bytes() == Path(first, name).read_bytes(), name


def test_the_cache_never_changes_the_name(tmp_path, loads, monkeypatch):
    from lrl.model import command, invisible

    def name(root=None, remember=True):
        return command.stage_output(_ctx(tmp_path, root), remember=remember).hash

    (tmp_path / "yo.txt").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    plain = name(remember=False)
    assert name() == name() == plain == name(str(tmp_path / "other"), remember=False)
    assert len(loads) == 3  # the cached one read nothing
    assert not (tmp_path / "other").exists(), "a naming that remembers nothing (a dry run) wrote"
    # a changed input is scanned again: a format character it now holds renames the output
    (tmp_path / "yo.txt").write_text("\n".join([*LINES, "ilé\u200bìwé"]) + "\n", encoding="utf-8")
    marked = name()
    assert len(loads) == 4 and marked != plain
    assert marked == name(str(tmp_path / "fresh"), remember=False) and len(loads) == 5
    assert name() == marked and len(loads) == 5
    # what the keys are worth is part of what the cache is found by
    monkeypatch.setattr(invisible, "FORMAT_CHARS", invisible.FORMAT_CHARS + 1)
    assert name() != marked and len(loads) == 6
    # a cache file cut short or edited is no result: scanned again, the same name
    monkeypatch.setattr(invisible, "FORMAT_CHARS", invisible.FORMAT_CHARS - 1)
    for f in (tmp_path / "runs" / ".cache" / "tokenizer-text-keys").glob("*.json"):
        f.write_text('{"format_chars": "x"')
    assert name() == marked and len(loads) == 7


def test_a_long_word_is_cached_only_where_it_is_asked_for(tmp_path, loads):
    from lrl.model import command

    base = tmp_path / "base"
    base.mkdir()
    (base / "vocab.txt").write_text("[UNK]\n", encoding="utf-8")
    (tmp_path / "yo.txt").write_text("\n".join([*LINES, "x" * 101]) + "\n", encoding="utf-8")
    extend = ["tokenizer.mode=extend", f"tokenizer.base={base}"]
    seen = []
    for args in ([], extend, [*extend, "tokenizer.max_new_tokens=5"]) * 2:
        seen.append(command.stage_output(_ctx(tmp_path, None, *args), remember=True).hash)
    assert len(loads) == 2 and seen[:3] == seen[3:]  # train and extend without the option: one scan
    fresh = command.stage_output(_ctx(tmp_path, str(tmp_path / "fresh"), *extend, "tokenizer.max_new_tokens=5"))
    assert fresh.hash == seen[2]


def test_the_cache_lives_on_an_s3_root(s3_store, tmp_path, loads):
    import pyarrow.fs as pafs

    from lrl.data.files import filesystem
    from lrl.model import command
    from lrl.model.text_keys_cache import FOLDER

    root = s3_store.bucket() + "/runs"
    (tmp_path / "yo.txt").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    first = command.stage_output(_ctx(tmp_path, root), remember=True).hash
    assert command.stage_output(_ctx(tmp_path, root), remember=True).hash == first and len(loads) == 1
    fs, inner = filesystem(f"{root}/{FOLDER}")
    assert [i for i in fs.get_file_info(pafs.FileSelector(inner)) if i.path.endswith(".json")]
    assert command.stage_output(_ctx(tmp_path, str(tmp_path / "local"))).hash == first


def _base(path):
    path.mkdir(parents=True)
    (path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n", encoding="utf-8")
    (path / "tokenizer_config.json").write_text('{"do_lower_case": false}', encoding="utf-8")
    (path / "model.safetensors").write_bytes(b"\0" * 64)  # weights: not the tokenizer
    return path


def test_a_local_base_is_named_by_its_content_not_its_path(tmp_path):
    """``tokenizer.base`` as a folder: its files were hashed, but its path string too, so a base
    moved or copied elsewhere renamed the output and extended it again."""
    from lrl.model import command

    (tmp_path / "yo.txt").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    a = _base(tmp_path / "a" / "base")
    b = tmp_path / "elsewhere" / "copy"
    shutil.copytree(a, b)

    def name(base):
        return command.stage_output(_ctx(tmp_path, None, "tokenizer.mode=extend", f"tokenizer.base={base}")).hash

    assert name(a) == name(b)
    (b / "model.safetensors").write_bytes(b"\1" * 64)
    assert name(a) == name(b), "the weights are no part of the tokenizer"
    (b / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nb\n", encoding="utf-8")
    assert name(a) != name(b)
    (b / "vocab.txt").write_bytes((a / "vocab.txt").read_bytes())
    (b / "merges.txt").write_text("a b\n", encoding="utf-8")  # read by AutoTokenizer: it counts
    assert name(a) != name(b)
    # hub ids stand for themselves, as before
    assert name("org/one") != name("org/two")


def test_a_local_base_counts_every_file_its_tokenizer_class_reads(tmp_path):
    """A fixed list of file names left out DeBERTa-v3's ``spm.model``: local copies of
    ``microsoft/deberta-v3-base`` and ``mdeberta-v3-base`` (the same tokenizer_config.json) named
    one output, the base's path no longer telling them apart. ``config.json``'s ``model_type``
    chooses the tokenizer's class: it counts, its other fields and the weights do not."""
    from lrl.model import command

    (tmp_path / "yo.txt").write_text("\n".join(LINES) + "\n", encoding="utf-8")

    def deberta(path, vocab: bytes, model_type="deberta-v2", labels=2):
        path.mkdir(parents=True)
        (path / "spm.model").write_bytes(vocab)
        (path / "tokenizer_config.json").write_text('{"do_lower_case": false, "vocab_type": "spm"}')
        (path / "config.json").write_text(f'{{"model_type": "{model_type}", "num_labels": {labels}}}')
        (path / "pytorch_model.bin").write_bytes(vocab * 4)  # weights: not the tokenizer
        return path

    def name(base):
        return command.stage_output(_ctx(tmp_path, None, "tokenizer.mode=extend", "tokenizer.type=unigram",
                                         f"tokenizer.base={base}")).hash

    en = deberta(tmp_path / "deberta-v3-base", b"english pieces")
    multi = deberta(tmp_path / "mdeberta-v3-base", b"multilingual pieces")
    assert name(en) != name(multi)
    assert name(deberta(tmp_path / "labels", b"english pieces", labels=9)) == name(en)
    assert name(deberta(tmp_path / "bert", b"english pieces", model_type="bert")) != name(en)
