"""The finetune stage: a ``finetune.data`` folder that is no generate output, what a run says."""

from __future__ import annotations

import pytest


def test_a_finetune_data_folder_that_is_no_generate_output_is_one_line(data_root, tmp_path):
    """A missing ``finetune.data`` folder, or one without the generate output's ``data/`` (the runs
    folder, another stage's output), ended ``lrl finetune`` in pyarrow's traceback
    ``FileNotFoundError: /nonexistent/data``, and ``lrl run`` found it only when the stage ran."""
    from lrl.config import ConfigError
    from lrl.job import load_job
    from lrl.pipeline.preflight import PreflightError, check_model_folders
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune

    ner = ("data.ner=[{path: wikiann/wo/train, lang: wo, split: train}, "
           "{path: wikiann/wo/dev, lang: wo, split: dev}]")

    def job(data: str):
        return load_job(None, [f"data.root={data_root}", ner, f"output.root={tmp_path / 'runs'}",
                               "finetune.model=preset:tiny", f"finetune.data={data}"])

    missing = job(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"^finetune\.data=.*nowhere: no such folder"):
        run_finetune(StageContext(missing))
    with pytest.raises(PreflightError, match=r"^finetune\.data=.*nowhere: no such folder"):
        check_model_folders(missing, ["finetune"])
    (tmp_path / "other").mkdir()
    with pytest.raises(ConfigError, match=r"^finetune\.data=.*other: no generate output there \(it has no data/"):
        run_finetune(StageContext(job(str(tmp_path / "other"))))


def test_a_run_that_stops_early_says_so(data_root, capsys):
    """Its last progress line was its last evaluation ("step 2/20"): nothing said the run had
    stopped (finetune.patience), nor which evaluation it kept."""
    from lrl.data.readers import read_conll
    from lrl.train.finetune import _train_task
    from lrl.train.finetune_config import FinetuneConfig

    train = read_conll(str(data_root / "wikiann/wo/train"), "wo", "train").table.slice(0, 16)
    dev = read_conll(str(data_root / "wikiann/wo/dev"), "wo", "dev").table.slice(0, 8)
    # lr ~0: the dev F1 never changes, so the second evaluation is no better than the first
    cfg = FinetuneConfig(max_steps=20, eval_every=1, patience=1, lr=1e-12, batch_size=8, max_length=32, threads=1,
                         save_model=False)
    row, _ = _train_task(cfg, "preset:tiny", train, dev, 0, ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"],
                         "wo")
    assert row["info"]["stopped_early"] and row["info"]["steps"] == 2
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == ("finetune wo seed 0: stopped early at step 2/20 (1 evaluation without a better dev F1); "
                       "keeps step 1")
