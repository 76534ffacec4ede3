"""Stage folders name what the data is, not where ``data.root`` lies: the same job and files
under another root (a copied runs folder, a job submitted to a Ray cluster, which unpacks the
working dir under ``_ray_pkg_<hash>/``) reuse every finished stage; what generate writes names
its inputs relative to ``data.root`` (``lrl.generate.sources``). The whole pipeline under a
moved root is run by the slow quickstart test (test_quickstart), after the quickstart's own run."""

from __future__ import annotations

import shutil
from pathlib import Path

from lrl.data.text_readers import read_text_lines
from lrl.generate import stage
from lrl.generate.sources import relative, root_prefix
from lrl.job import load_job, packaged_job


def _sample(dest: Path) -> Path:
    """The packaged quickstart job and its sample copied into ``dest``; returns the job file."""
    src = packaged_job("quickstart")
    shutil.copytree(src.parent / "sample", dest / "sample")
    shutil.copy(src, dest / "quickstart.yaml")
    return dest / "quickstart.yaml"


def _generate_name(job: Path, out: Path) -> str:
    return Path(stage.stage_output(load_job(job, [f"output.root={out}"])).path).name


def test_generate_folder_is_the_same_under_another_data_root(tmp_path):
    a, b = _sample(tmp_path / "a"), _sample(tmp_path / "elsewhere" / "b")
    assert _generate_name(a, tmp_path / "out") == _generate_name(b, tmp_path / "out")
    # An explicit data.root, as `lrl run JOB data.root=X` gives it, names the same folder too.
    cfg = load_job(a, [f"output.root={tmp_path / 'out'}", f"data.root={b.parent}"])
    assert Path(stage.stage_output(cfg).path).name == _generate_name(a, tmp_path / "out")


def test_generate_folder_changes_with_an_input_s_content(tmp_path):
    a, b = _sample(tmp_path / "a"), _sample(tmp_path / "b")
    lexicon = b.parent / "sample" / "lexicon" / "ug.tsv"
    lexicon.write_text(lexicon.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert _generate_name(a, tmp_path / "out") != _generate_name(b, tmp_path / "out")
    conll = b.parent / "sample" / "ner" / "sw" / "train.conll"
    shutil.copy(a.parent / "sample" / "lexicon" / "ug.tsv", lexicon)  # back as in a
    assert _generate_name(a, tmp_path / "out") == _generate_name(b, tmp_path / "out")
    conll.write_text(conll.read_text(encoding="utf-8") + "\n", encoding="utf-8")  # other bytes, same rows
    assert _generate_name(a, tmp_path / "out") != _generate_name(b, tmp_path / "out")


def test_inputs_are_keyed_by_their_configured_paths(tmp_path):
    cfg = load_job(_sample(tmp_path / "a"), [f"output.root={tmp_path / 'out'}"])
    keys = stage.input_fingerprints(cfg)
    assert "ner:sample/ner/ug/train.conll#train" in keys and "text:sample/text/ug.txt" in keys
    assert "lexicon:ug:sample/lexicon/ug.tsv" in keys
    assert not any(str(tmp_path) in k for k in keys)


def test_read_rows_name_their_source_relative_to_data_root(tmp_path):
    job = _sample(tmp_path / "a")
    bad = job.parent / "sample" / "ner" / "ug" / "train.conll"
    bad.write_text(bad.read_text(encoding="utf-8") + "\nX\tB-NOPE\n", encoding="utf-8")  # one reader reject
    inputs = stage.read_inputs(load_job(job, [f"output.root={tmp_path / 'out'}"]))
    sources = {s for r in inputs.ner for s in r.table.column("source").to_pylist()}
    assert sources == {"sample/ner/ug/train.conll#train", "sample/ner/sw/train.conll#train"}
    assert [r.source for r in inputs.ner] == ["sample/ner/ug/train.conll", "sample/ner/sw/train.conll"]
    assert set(inputs.ner[0].rejects.column("source").to_pylist()) == {"sample/ner/ug/train.conll"}
    assert {s for t in inputs.texts for s in t.column("source").to_pylist()} == \
        {"sample/text/ug.txt", "sample/text/sw.txt"}
    as_read = [read_text_lines(s, str(job.parent)) for s in load_job(job).data.text]
    assert [t.schema.metadata for t in inputs.texts] == [t.schema.metadata for t in as_read]  # counts kept


def test_relative_paths_leave_absolute_ones_and_uris_alone():
    assert relative("/d/x/y.conll", root_prefix("x/y.conll", "/d")) == "x/y.conll"
    assert relative("/d/x/f/1.conll", root_prefix("x/f", "/d/")) == "x/f/1.conll"
    assert root_prefix("/abs/y.conll", "/d") is None and root_prefix("x", None) is None
    assert relative("s3://b/r/x/y", root_prefix("x/y", "s3://b/r/")) == "x/y"
    assert relative("/other/x", root_prefix("x", "/d")) == "/other/x"


def test_stages_reading_data_text_name_the_same_folder_under_another_root(tmp_path):
    """The tokenizer (and pretraining's text print) from ``data.text``, without generate: named by
    the files' contents and configured paths, so these names did not change with generate's."""
    from lrl.model.command import stage_output as tokenizer_output
    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain_data import load_text

    names, prints = [], []
    for where in ("a", "x/b"):
        cfg = load_job(_sample(tmp_path / where), [f"output.root={tmp_path / 'out'}"])
        names.append(Path(tokenizer_output(StageContext(cfg)).path).name)
        prints.append(load_text(cfg)[1])
    assert names[0] == names[1] and prints[0] == prints[1]


def test_a_relative_translate_model_under_data_root_is_named_by_its_content(tmp_path):
    """``translate.train.model: mt`` is looked up under ``data.root`` first: with the root out of
    the hash, another root's other model named the same folder (its rows translated by the first)."""
    mt = ["translate.enabled=true", "translate.train.sources=[sw]", "translate.train.target=ug",
          "translate.train.model.model=mt", f"output.root={tmp_path / 'out'}"]
    jobs = [_sample(tmp_path / "a"), _sample(tmp_path / "b")]
    for job, weights in zip(jobs, (b"one", b"two")):
        (job.parent / "mt").mkdir()
        (job.parent / "mt" / "model.safetensors").write_bytes(weights)
    names = [Path(stage.stage_output(load_job(j, mt)).path).name for j in jobs]
    assert names[0] != names[1]
    (jobs[1].parent / "mt" / "model.safetensors").write_bytes(b"one")  # the same model: the same name
    assert Path(stage.stage_output(load_job(jobs[1], mt)).path).name == names[0]
    # Without translation (the key is added only for such a model) the two roots share a name.
    assert _generate_name(jobs[0], tmp_path / "out") == _generate_name(jobs[1], tmp_path / "out")
