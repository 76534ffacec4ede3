"""``lrl run`` without a generate stage: the ``data.ner`` sources the stages to run will read are
checked before the first stage (``lrl.pipeline.preflight_inputs.check_sources``)."""

from __future__ import annotations

import pytest
from pipeline_fakes import FakeStages, _cfg

from lrl.data.files import InputError
from lrl.pipeline.runner import PipelineError, plan, run_pipeline

#: The minilm_ug/minilm_yo pipeline: no generate stage.
NO_GENERATE = "pipeline.stages=[tokenizer,pretrain,finetune,evaluate,report]"


def _sources(tmp_path, *extra: str) -> tuple[str, str]:
    """data.ner: the fakes' ug train and dev files and ``extra`` sources (YAML flow mappings); data.text."""
    ner = tmp_path / "ner"
    ner.mkdir(exist_ok=True)
    for split in ("train", "dev"):
        (ner / f"ug-{split}.conll").write_text("Qeshqer\tB-LOC\nshehiri\tO\n", encoding="utf-8")
    (ner / "ug.txt").write_text("Qeshqer shehiri\n", encoding="utf-8")  # the tokenizer stage's, for dry runs
    return ("data.ner=[{path: ner/ug-train.conll, lang: ug, split: train}, "
            "{path: ner/ug-dev.conll, lang: ug, split: dev}" + "".join(f", {e}" for e in extra) + "]",
            "data.text=[{path: ner/ug.txt, lang: ug}]")


def test_a_missing_source_stops_the_run_and_its_dry_run_before_the_first_stage(tmp_path):
    """A missing ``nope.conll`` and a missing ``./nope_hf`` (``format: hf``) passed ``lrl run
    --dry-run``, and the run stopped on them only at finetune, after the tokenizer and pretraining
    stages (hours). The error names each source: its index, its path as resolved, the reason."""
    root = f"data.root={tmp_path}"
    for extra, match in (
            ("{path: nope.conll, lang: ug, split: train}",
             rf"data.ner\[2\] \(lang ug, split train\), read by finetune: {tmp_path}/nope.conll: train file not "
             r"found \(the relative path nope.conll was resolved against data.root"),
            ("{path: ./nope_hf, lang: ug, split: dev, format: hf}",
             rf"data.ner\[2\] \(lang ug, split dev\), read by finetune and evaluate: {tmp_path}/nope_hf: no such "
             "folder; format: hf reads"),
            ("{path: ner/yo-*.conll, lang: ug, split: test}",
             rf"data.ner\[2\] \(lang ug, split test\), read by evaluate: {tmp_path}/ner/yo-\*.conll: no file "
             "matches this pattern")):
        cfg = _cfg(tmp_path, root, *_sources(tmp_path, extra), NO_GENERATE)
        fake = FakeStages()
        with pytest.raises(PipelineError, match=r"^data.ner names inputs that do not exist.*" + match):
            run_pipeline(cfg, registry=fake.registry(), log=lambda s: None)
        assert fake.calls == {}, "a stage ran before the missing source was named"
        with pytest.raises(PipelineError, match=match):
            plan(cfg)
    # two missing sources: both named in the one error
    cfg = _cfg(tmp_path, root, *_sources(tmp_path, "{path: a.conll, lang: ug, split: train}",
                                        "{path: b.conll, lang: ug, split: dev}"), NO_GENERATE)
    with pytest.raises(PipelineError, match=r"data.ner\[2\] .*a.conll: train file not found.*; data.ner\[3\] .*"
                                            "b.conll: dev file not found"):
        plan(cfg)


def test_only_sources_a_stage_to_run_reads_are_checked(tmp_path):
    """A source no stage to run reads stops nothing: a training source when finetune trains on a
    generate output (``finetune.data``), a split evaluate does not score, every source when no
    stage reading them runs, a hub id (``format: hf``). A generate stage to run checks them itself."""
    root = f"data.root={tmp_path}"
    gen = tmp_path / "generate-0"
    gen.mkdir()
    for extra, settings in (
            ("{path: nope.conll, lang: ug, split: train}", [f"finetune.data={gen}"]),
            ("{path: nope.conll, lang: ug, split: test}", ["evaluate.splits=[dev]"]),
            ("{path: nope.conll, lang: ug, split: dev}", ["pipeline.stages=[tokenizer,pretrain]"]),
            ("{path: org/name, lang: ug, split: dev, format: hf}", [])):
        out = plan(_cfg(tmp_path, root, *_sources(tmp_path, extra), NO_GENERATE, *settings))
        assert "do not exist" not in out, out
    cfg = _cfg(tmp_path, root, *_sources(tmp_path, "{path: nope.conll, lang: ug, split: dev}"))  # with generate
    with pytest.raises(InputError, match=rf"^{tmp_path}/nope.conll: dev file not found"):  # generate's own check
        plan(cfg)


def test_sources_on_an_object_store_are_checked_too(tmp_path, s3_store, monkeypatch):
    """Under an s3:// data.root the same check, with the same filesystem helpers (one request per
    source); a store that cannot be reached from here is a plan line, not an error."""
    import pyarrow.fs as pafs

    import lrl.data.readers

    bucket = s3_store.bucket()
    fs, inner = pafs.FileSystem.from_uri(bucket)
    for split in ("train", "dev"):
        with fs.open_output_stream(f"{inner}/ner/ug-{split}.conll") as f:
            f.write(b"Qeshqer\tB-LOC\nshehiri\tO\n")
    ner, text = _sources(tmp_path)  # the same relative paths, now under the bucket
    settings = [f"data.root={bucket}", text.replace("ner/ug.txt", str(tmp_path / "ner/ug.txt")), NO_GENERATE]
    assert "do not exist" not in plan(_cfg(tmp_path, ner, *settings))
    missing = ner.replace("]", ", {path: ner/ug-test.conll, lang: ug, split: test}]")
    with pytest.raises(PipelineError, match=rf"data.ner\[2\] \(lang ug, split test\), read by evaluate: "
                                            rf"{bucket}/ner/ug-test.conll: test file not found"):
        plan(_cfg(tmp_path, missing, *settings))

    def unreachable(src, root, what):
        raise OSError("connection refused")

    monkeypatch.setattr(lrl.data.readers, "check_source", unreachable)
    out = plan(_cfg(tmp_path, missing, *settings))
    assert f"# data.ner[2] (lang ug, split test), read by evaluate: not checked, {bucket}/ner/ug-test.conll: " \
           "connection refused" in out, out


def test_a_format_hf_source_on_a_store_out_of_reach_is_not_called_missing(tmp_path, monkeypatch):
    """Under an s3:// data.root that cannot be reached from here, a ``format: hf`` source
    (``./ug_hf``, a ``save_to_disk`` folder in the bucket) stopped the dry run with "no such
    folder", where a CoNLL source beside it was a "not checked" plan line: the listing that failed
    was read as an empty answer. A store that answers still names the missing folder."""
    import lrl.data.files

    real = lrl.data.files.filesystem

    def out_of_reach(path):
        if path.startswith("s3://"):
            raise OSError("connection refused")
        return real(path)

    monkeypatch.setattr(lrl.data.files, "filesystem", out_of_reach)
    ner, text = _sources(tmp_path, "{path: ./ug_hf, lang: ug, split: dev, format: hf}")
    text = text.replace("ner/ug.txt", str(tmp_path / "ner/ug.txt"))
    out = plan(_cfg(tmp_path, ner, text, NO_GENERATE, "data.root=s3://bucket"))
    assert "# data.ner[2] (lang ug, split dev), read by finetune and evaluate: not checked, " \
           "s3://bucket/./ug_hf: connection refused" in out, out
    assert "not checked, s3://bucket/ner/ug-train.conll: connection refused" in out, out  # as any source there
    with pytest.raises(PipelineError, match=rf"data.ner\[2\] .*file://{tmp_path}/./ug_hf: no such folder"):
        plan(_cfg(tmp_path, ner, text, NO_GENERATE, f"data.root=file://{tmp_path}"))


def test_evaluate_splits_that_no_source_has_stop_the_run_and_its_dry_run_before_the_first_stage(tmp_path):
    """``evaluate.splits=[tst]``: the evaluate stage said "no data.ner source has a split in
    evaluate.splits" only when it ran, after the tokenizer, pretraining and fine-tuning stages; with
    a generate stage in the pipeline too. A split of several that no source has is skipped, as
    the setting's default ``[dev, test]`` needs for jobs without a test split."""
    root = f"data.root={tmp_path}"
    for stages in (NO_GENERATE, "pipeline.stages=[generate,tokenizer,pretrain,finetune,evaluate,report]"):
        cfg = _cfg(tmp_path, root, *_sources(tmp_path), stages, "evaluate.splits=[tst]")
        fake = FakeStages()
        match = (r"^evaluate.splits=\['tst'\]: no data.ner source has such a split \(theirs: \['dev', 'train'\]\), "
                 "so the evaluate stage would score nothing")
        with pytest.raises(PipelineError, match=match):
            run_pipeline(cfg, registry=fake.registry(), log=lambda s: None)
        assert fake.calls == {}, "a stage ran before the split was named"
        with pytest.raises(PipelineError, match=match):
            plan(cfg)
    # dev and a test split the data lacks: dev is scored, nothing said; no evaluate stage: not looked at
    plan(_cfg(tmp_path, root, *_sources(tmp_path), NO_GENERATE, "evaluate.splits=[dev, test]"))
    plan(_cfg(tmp_path, root, *_sources(tmp_path), "pipeline.stages=[tokenizer]", "evaluate.splits=[tst]"))
