"""``lrl run --from/--only`` after the data moved: the stages name their outputs by each input's
path relative to ``data.root`` and its content, not by where the root lies, so a new ``data.root``
holding the same files is no settings drift (``lrl.pipeline.settings_drift.LOCATION_ONLY``). It was
warned of as one ("data.root (recorded ..., now ...)"), asking for a rebuild that would make the
same folders again."""

from __future__ import annotations

import shutil

from pipeline_fakes import STAGES, FakeStages

from lrl.job import load_job
from lrl.pipeline.runner import plan, run_pipeline


def _data(root) -> None:
    """The fakes' ug train and dev files under ``root/ner``."""
    (root / "ner").mkdir(parents=True)
    for split in ("train", "dev"):
        (root / "ner" / f"ug-{split}.conll").write_text("Qeshqer\tB-LOC\nshehiri\tO\n", encoding="utf-8")


def _cfg(tmp_path, root, train: str = "ner/ug-train.conll", *extra: str):
    """A job whose ``data.ner`` paths are relative to ``data.root=root``."""
    return load_job(None, [f"output.root={tmp_path / 'runs'}", f"pipeline.stages={STAGES}".replace("'", ""),
                           f"data.root={root}", f"data.ner=[{{path: {train}, lang: ug, split: train}}, "
                           "{path: ner/ug-dev.conll, lang: ug, split: dev}]", *extra])


def _warnings(lines: list[str]) -> list[str]:
    return [line for line in lines if "warning" in line]


def test_a_moved_data_root_is_no_drift_but_a_changed_relative_path_is(tmp_path):
    old, new = tmp_path / "a", tmp_path / "b"
    _data(old)
    fake = FakeStages()
    run_pipeline(_cfg(tmp_path, old), registry=fake.registry(), log=lambda s: None)
    shutil.move(str(old), str(new))  # the data moved: the same files under another root

    lines: list[str] = []
    run_pipeline(_cfg(tmp_path, new), start="finetune", registry=fake.registry(), log=lines.append)
    assert not _warnings(lines), lines
    said = plan(_cfg(tmp_path, new), start="evaluate")
    assert "recorded with other settings" not in said and "data.root (recorded" not in said, said

    # A relative input path that changed is still drift, with or without a new root: the reused
    # outputs were built from the file of the old path.
    (new / "ner" / "ug-train2.conll").write_text("Qeshqer\tB-LOC\n", encoding="utf-8")
    lines.clear()
    run_pipeline(_cfg(tmp_path, new, "ner/ug-train2.conll"), only="finetune", registry=fake.registry(),
                 log=lines.append)
    warned = _warnings(lines)
    assert len(warned) == 1 and "data.ner (recorded" in warned[0] and "ug-train.conll" in warned[0], lines
    assert "data.root" not in warned[0], warned
    # Any other data setting that shapes the outputs still warns beside a new root too.
    shutil.copytree(new, tmp_path / "c")
    said = plan(_cfg(tmp_path, tmp_path / "c", "ner/ug-train.conll", "data.bio_policy=repair"), start="evaluate")
    assert "data.bio_policy (recorded" in said and "data.root (recorded" not in said, said
