"""``lrl run --from/--only`` after the inputs' content changed under the same settings: a ``data.root``
pointed at another dataset of the same layout (v1 -> v2), or an input edited in place, reused outputs
built from the old data without a word, since a changed ``data.root`` alone is no settings drift
(``lrl.pipeline.settings_drift.LOCATION_ONLY``). The state now keeps each stage's input prints
(``lrl.pipeline.input_drift``) and the runner compares them."""

from __future__ import annotations

import json
import shutil

from pipeline_fakes import STAGES, FakeStages

from lrl.job import load_job
from lrl.pipeline.input_drift import Prints, changed_inputs
from lrl.pipeline.runner import load_state, plan, run_pipeline, save_state, state_path

ROWS = "Qeshqer\tB-LOC\nshehiri\tO\n"


def _data(root, train: str = ROWS) -> None:
    (root / "ner").mkdir(parents=True)
    (root / "ner" / "ug-train.conll").write_text(train, encoding="utf-8")
    (root / "ner" / "ug-dev.conll").write_text(ROWS, encoding="utf-8")


def _cfg(tmp_path, root):
    return load_job(None, [f"output.root={tmp_path / 'runs'}", f"pipeline.stages={STAGES}".replace("'", ""),
                           f"data.root={root}", "data.ner=[{path: ner/ug-train.conll, lang: ug, split: train}, "
                           "{path: ner/ug-dev.conll, lang: ug, split: dev}]"])


def _warnings(lines: list[str]) -> list[str]:
    return [line for line in lines if "warning" in line]


def _first_run(tmp_path, root) -> FakeStages:
    fake = FakeStages()
    run_pipeline(_cfg(tmp_path, root), registry=fake.registry(), log=lambda s: None)
    return fake


def test_the_same_data_under_a_new_root_is_no_drift(tmp_path):
    old = tmp_path / "a"
    _data(old)
    fake = _first_run(tmp_path, old)
    shutil.copytree(old, tmp_path / "b", copy_function=shutil.copy)  # new mtimes: read, found the same
    shutil.move(str(old), str(tmp_path / "c"))
    for new in (tmp_path / "b", tmp_path / "c"):
        lines: list[str] = []
        run_pipeline(_cfg(tmp_path, new), start="finetune", registry=fake.registry(), log=lines.append)
        assert not _warnings(lines), lines
        assert "built from other contents" not in plan(_cfg(tmp_path, new), start="evaluate")


def test_an_input_edited_in_place_is_drift_named_by_its_relative_path(tmp_path):
    root = tmp_path / "a"
    _data(root)
    fake = _first_run(tmp_path, root)
    (root / "ner" / "ug-train.conll").write_text("Qeshqer\tB-LOC\n", encoding="utf-8")
    lines: list[str] = []
    run_pipeline(_cfg(tmp_path, root), only="finetune", registry=fake.registry(), log=lines.append)
    warned = _warnings(lines)
    assert len(warned) == 1 and "data.ner ner/ug-train.conll (train)" in warned[0], lines
    assert "generate, tokenizer, pretrain" in warned[0] and "ug-dev" not in warned[0], warned
    said = plan(_cfg(tmp_path, root), start="evaluate")
    assert "built from other contents" in said and "ner/ug-train.conll" in said, said


def test_another_dataset_of_the_same_layout_is_drift(tmp_path):
    _data(tmp_path / "v1")
    _data(tmp_path / "v2", train="Qeshqer\tB-PER\nshehiri\tO\n")  # same size, other tags
    fake = _first_run(tmp_path, tmp_path / "v1")
    lines: list[str] = []
    run_pipeline(_cfg(tmp_path, tmp_path / "v2"), start="evaluate", registry=fake.registry(), log=lines.append)
    warned = _warnings(lines)
    assert len(warned) == 1 and "ner/ug-train.conll (train)" in warned[0], lines
    # The dev file: finetune's own input, the same in both; read here, as evaluate reads it.
    assert "ug-dev" not in warned[0] and "finetune" in warned[0], warned


def test_unchanged_inputs_are_not_read_again_and_old_states_say_nothing(tmp_path):
    root = tmp_path / "a"
    _data(root)
    fake = _first_run(tmp_path, root)
    cfg = _cfg(tmp_path, root)
    state = load_state(state_path(cfg))
    prints = Prints(state)
    assert changed_inputs(state, cfg, STAGES[:4], prints) == {} and prints.hashed == 0
    assert prints.stage(cfg, "generate") == state["stages"]["generate"]["inputs"] and prints.hashed == 0
    # A state written before input prints were recorded: no check, as for unrecorded configs.
    for rec in state["stages"].values():
        rec.pop("inputs")
    save_state(state_path(cfg), state)
    (root / "ner" / "ug-train.conll").write_text("Qeshqer\tO\n", encoding="utf-8")
    lines: list[str] = []
    run_pipeline(cfg, start="evaluate", registry=fake.registry(), log=lines.append)
    assert not _warnings(lines), lines
    assert "inputs" in json.loads(open(state_path(cfg)).read())["stages"]["evaluate"]


def test_inputs_that_name_pretrain_and_generate_outputs_are_recorded_and_file_urls_stamped(tmp_path):
    """Review: pretrain's ``aux.conllu`` and a relative DeepSpeed config file, and a translate model
    folder under ``data.root``, are hashed into their stages' names, but were not recorded: an
    edit in place (or another root of the same layout) was reused by --from without a word. A
    ``file://`` input was read in full on every run (no stamp)."""
    from lrl.pipeline.input_drift import stage_inputs

    root = tmp_path / "data"
    _data(root)
    (root / "ud.conllu").write_text("1\tQeshqer\t_\tPROPN\tN\t_\t0\troot\t_\t_\n\n", encoding="utf-8")
    (root / "ds.json").write_text("{}", encoding="utf-8")
    (root / "mt" / "sw-ug").mkdir(parents=True)
    (root / "mt" / "sw-ug" / "config.json").write_text("{}", encoding="utf-8")
    cfg = load_job(None, [f"data.root={root}", "data.ner=[{path: ner/ug-train.conll, lang: sw}]",
                          "pretrain.aux.conllu=[ud.conllu]", "pretrain.deepspeed.config_file=ds.json",
                          "translate.enabled=true", "translate.train={sources: [sw], target: ug, model: {model: mt/sw-ug}}"])
    assert stage_inputs(cfg, "pretrain") == {
        "pretrain.aux.conllu ud.conllu": str(root / "ud.conllu"),
        "pretrain.deepspeed.config_file ds.json": str(root / "ds.json")}
    assert stage_inputs(cfg, "generate")["translate.train mt/sw-ug"] == str(root / "mt" / "sw-ug")
    prints = Prints({})
    url = f"file://{root / 'ner' / 'ug-train.conll'}"
    first = prints.of(url)
    assert first["stamp"] and Prints({"stages": {"x": {"inputs": {"k": first}}}}).of(url) == first
    assert prints.hashed == 1


def test_a_deleted_input_that_only_reused_stages_read_is_named(tmp_path):
    """User audit: a training file deleted (or a ``data.root`` without it) and ``--from finetune``
    reused generate's output built from it without a word: the reading stage, which was to "say
    why", does not run. Inputs the stages to run read are still theirs to stop on (preflight)."""
    root = tmp_path / "a"
    _data(root)
    fake = _first_run(tmp_path, root)
    (root / "ner" / "ug-train.conll").unlink()
    lines: list[str] = []
    run_pipeline(_cfg(tmp_path, root), start="finetune", registry=fake.registry(), log=lines.append)
    warned = _warnings(lines)
    assert len(warned) == 1 and "cannot be read now" in warned[0], lines
    assert "data.ner ner/ug-train.conll (train)" in warned[0] and "ug-dev" not in warned[0], warned
    assert "generate, tokenizer, pretrain were" in warned[0], warned
    said = plan(_cfg(tmp_path, root), start="evaluate")
    assert "cannot be read now" in said and "generate, tokenizer, pretrain, finetune were" in said, said
