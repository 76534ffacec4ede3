"""Every committed job config loads and validates, opens with the exact command that runs it, and
names inputs that exist in the shared data; the generated config reference is up to date."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lrl.job import load_job, packaged_job
from lrl.pipeline.reference import main as reference_main
from lrl.pipeline.reference import markdown

REPO = Path(__file__).resolve().parent.parent
JOBS = sorted((REPO / "jobs").glob("*.yaml"))
COMMITTED = JOBS + [p for p in [packaged_job("quickstart")] if p.is_file()]


def test_the_recipes_exist():
    assert {p.name for p in JOBS} >= {"wikiann_ug.yaml", "multilingual.yaml", "minilm_ug.yaml", "minilm_yo.yaml"}


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_config_validates(path):
    cfg = load_job(path)
    assert cfg.pipeline.stages, path
    assert cfg.data.ner, f"{path.name}: a pipeline needs labelled data"


@pytest.mark.parametrize("path", JOBS, ids=lambda p: p.name)
def test_recipe_opens_with_its_exact_command(path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = re.fullmatch(r"# (lrl run (\S+)( .*)?)", first)
    assert m, f"{path.name}: first line must be '# lrl run jobs/{path.name} ...', got {first!r}"
    assert m.group(2) == f"jobs/{path.name}"
    assert "data.root=../shared/data" in first


@pytest.mark.parametrize("path", JOBS, ids=lambda p: p.name)
def test_recipe_inputs_exist_in_the_shared_data(path, data_root):
    cfg = load_job(path, [f"data.root={data_root}"])
    missing = [s.path for s in [*cfg.data.ner, *cfg.data.text] if not (data_root / s.path).exists()]
    missing += [c for c in cfg.pretrain.aux.conllu if not (data_root / c).exists()]
    assert not missing, f"{path.name}: inputs not found under {data_root}: {missing}"
    splits = {(s.lang, s.split) for s in cfg.data.ner}
    for lang in {s.lang for s in cfg.data.ner}:
        assert (lang, "dev") in splits and (lang, "train") in splits, f"{lang}: needs train and dev"
        assert (lang, "test") not in splits or lang not in ("ug", "wo"), "ug/wo test splits are held out"


def test_recipes_are_what_the_issue_asks_for():
    ug = load_job(REPO / "jobs" / "wikiann_ug.yaml")
    assert ug.pretrain.aux.conllu and ug.augment.ops and "tune" in ug.pipeline.stages
    assert {s.lang for s in ug.data.ner} == {"ug"} and ug.tune.languages == ["ug"]
    multi = load_job(REPO / "jobs" / "multilingual.yaml")
    langs = {"ug", "wo", "am", "ig", "rw", "sw", "yo"}
    assert {s.lang for s in multi.data.ner} == langs and {s.lang for s in multi.data.text} == langs
    assert 0 < multi.pretrain.alpha < 1 and set(multi.tune.languages) == langs
    for cfg in (ug, multi):
        assert not cfg.model.trust_remote_code


@pytest.mark.parametrize("path", JOBS, ids=lambda p: p.name)
def test_recipe_dry_runs(path, data_root, tmp_path):
    """``lrl run JOB --dry-run`` on each recipe (offline: a hub id stands for itself) plans every stage."""
    from lrl.pipeline.runner import plan

    cfg = load_job(path, [f"data.root={data_root}", f"output.root={tmp_path}"])
    out = plan(cfg)
    assert all(re.search(rf"^#   {s} +run", out, re.M) for s in cfg.pipeline.stages), out


def test_the_yoruba_transfer_recipe():
    """The README's Yoruba advice took six data.* overrides on jobs/minilm_ug.yaml, and the report
    was still titled "WikiANN Uyghur": jobs/minilm_yo.yaml is that job for Yoruba, accents kept."""
    yo, ug = (load_job(REPO / "jobs" / f"minilm_{x}.yaml") for x in ("yo", "ug"))
    assert {s.lang for s in [*yo.data.ner, *yo.data.text]} == {"yo"}
    assert {s.split for s in yo.data.ner} == {"train", "dev", "test"} and yo.evaluate.splits == ["dev", "test"]
    assert yo.tokenizer.mode == "extend" and yo.tokenizer.keep_accents and not ug.tokenizer.keep_accents
    assert yo.tokenizer.base == yo.model.checkpoint == ug.model.checkpoint
    assert "Yoruba" in yo.report.title and "Uyghur" not in yo.report.title and yo.name == "minilm-yo"
    assert yo.pipeline.stages == ug.pipeline.stages
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "`lrl run jobs/minilm_yo.yaml data.root=../shared/data`" in readme


def test_config_reference_is_up_to_date():
    doc = REPO / "docs" / "config.md"
    assert doc.is_file(), "docs/config.md missing: python -m lrl.pipeline.reference docs/config.md"
    assert doc.read_text(encoding="utf-8") == markdown(), (
        "docs/config.md is stale: regenerate with python -m lrl.pipeline.reference docs/config.md")


def test_reference_covers_every_field_and_check_mode(tmp_path):
    from lrl.config import describe
    from lrl.job import JobConfig

    text = markdown()
    for key, *_ in describe(JobConfig):
        assert f"`{key}`" in text, key
    target = tmp_path / "config.md"
    assert reference_main(["--check", str(target)]) == 1
    assert reference_main([str(target)]) == 0 and reference_main(["--check", str(target)]) == 0
