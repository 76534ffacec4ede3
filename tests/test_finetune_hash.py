"""The finetune stage's output name and group keys: a default config keeps the names it had (users'
folders), and settings that change nothing in the output (run control; ``select_by`` with one dev
language) neither rename the folder nor train again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from finetune_jobs import job_cfg, write_job

pytest.importorskip("transformers")

#: The names of a default per-language job (finetune.model set, the ``_cfg`` overrides below) as
#: the code named them before run control was left out: pinned so existing folders keep theirs.
DEFAULT_STAGE_HASH = "ab3756080dc5"
DEFAULT_GROUP_HASH = "3b41c1f0e801"
#: The same with ``finetune.dropout=0.2`` (a BERT encoder: the dropout keys it has were set before).
DROPOUT_HASHES = ("6350a35bc9cc", "f5992710dc8d")

#: ``finetune.few_shot=5``, per language (ug) and joint (ug, wo): as named before a mapping was allowed.
FEW_SHOT_HASHES = ("88b70fb5162d", "b25631790dfb")
FEW_SHOT_JOINT_HASHES = ("0798f46f19f0", "881f4e6704ba")


class _Stop(Exception):
    """Raised where the stage would start Ray: the names are known by then."""


@pytest.fixture(scope="module")
def job(data_root, tmp_path_factory):
    """20 train / 10 dev sentences of WikiANN ug and wo, and a tiny saved encoder."""
    return write_job(tmp_path_factory.mktemp("fthash"), data_root, 20, 10)


_cfg = job_cfg


def _names(cfg, monkeypatch) -> tuple[str, str]:
    """(stage hash without the inputs and the encoder's path, the groups' settings hash) of ``cfg``,
    taken from the stage as it runs, stopped before Ray starts."""
    import lrl.train.finetune as ft
    import lrl.train.finetune_reuse as reuse
    from lrl.config import config_hash
    from lrl.pipeline.stage import StageContext

    seen: dict = {}

    class Capture(ft.StageOutput):
        def __init__(self, root, stage, config, inputs=None):
            seen["stage"] = json.loads(json.dumps(config))
            super().__init__(root, stage, config, inputs)

    def key(settings, group, data_print, model_print):
        seen.setdefault("groups", {})[group] = settings
        return "k"

    def stop(*a, **k):
        raise _Stop

    monkeypatch.setattr(ft, "StageOutput", Capture)
    monkeypatch.setattr(reuse, "group_key", key)
    monkeypatch.setattr(reuse, "FinishedGroups", stop)
    with pytest.raises(_Stop):
        ft.run_finetune(StageContext(cfg))
    seen["stage"]["finetune"]["model"] = "ENC"  # a temporary folder: another path each session
    return config_hash("finetune", seen["stage"]), config_hash("group", seen["groups"])


def test_a_default_config_keeps_its_names(job, tmp_path, monkeypatch):
    assert _names(_cfg(job, tmp_path, ("ug",)), monkeypatch) == (DEFAULT_STAGE_HASH, DEFAULT_GROUP_HASH)


def test_dropout_on_a_bert_encoder_keeps_its_names(job, tmp_path, monkeypatch):
    """The longer table of dropout keys (``finetune_dropout``) changes nothing for an encoder whose
    keys were all set before: its output keeps its name."""
    assert _names(_cfg(job, tmp_path, ("ug",), "finetune.dropout=0.2"), monkeypatch) == DROPOUT_HASHES


@pytest.mark.parametrize("extra", [("finetune.threads=3",), ("finetune.num_cpus=2",),
                                   ("finetune.select_by=language_mean",)])
def test_settings_that_change_no_output_keep_the_names(job, tmp_path, monkeypatch, extra):
    """Threads and reserved CPUs change no weight (``threads`` also follows ``num_cpus``); with one
    dev language ``select_by``'s two figures are one. Each named another folder and trained again."""
    assert _names(_cfg(job, tmp_path, ("ug",), *extra), monkeypatch) == (DEFAULT_STAGE_HASH, DEFAULT_GROUP_HASH)


def test_select_by_still_names_joint_outputs(job, tmp_path, monkeypatch):
    joint = [_names(_cfg(job, tmp_path, ("ug", "wo"), "finetune.mode=joint", *a), monkeypatch)[0]
             for a in ((), ("finetune.select_by=language_mean",))]
    assert joint[0] != joint[1]


def test_a_changed_run_control_or_select_by_trains_nothing(job, ray_session, tmp_path, capsys):
    """Per language, threads, num_cpus and select_by: the first folder, trained once; nothing in
    it names them (the card listed threads and num_cpus, results.json the select_by set)."""
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune

    first = Path(run_finetune(StageContext(_cfg(job, tmp_path, ("ug",)))))
    capsys.readouterr()
    again = Path(run_finetune(StageContext(_cfg(job, tmp_path, ("ug",), "finetune.threads=1", "finetune.num_cpus=2",
                                                "finetune.select_by=language_mean"))))
    assert again == first and " seed " not in capsys.readouterr().out  # nothing trained
    card = (first / "models/ug/README.md").read_text()
    assert "sampling_alpha" in card and "num_cpus" not in card and "threads" not in card
    assert json.loads((first / "results.json").read_text())["select_by"] == "pooled"


def test_an_int_few_shot_keeps_its_names_and_a_mapping_names_its_own(job, tmp_path, monkeypatch):
    """``few_shot`` may be a mapping language -> k: an int (and unset) keep the folders they had; a
    mapping is another job, named the same whatever order its languages are written in."""
    ug = ("ug",)
    assert _names(_cfg(job, tmp_path, ug, "finetune.few_shot=5"), monkeypatch) == FEW_SHOT_HASHES
    joint = ("ug", "wo")
    assert _names(_cfg(job, tmp_path, joint, "finetune.few_shot=5", "finetune.mode=joint"),
                  monkeypatch) == FEW_SHOT_JOINT_HASHES
    mapped = _names(_cfg(job, tmp_path, joint, "finetune.few_shot={wo: 3, ug: 5}", "finetune.mode=joint"), monkeypatch)
    assert mapped == _names(_cfg(job, tmp_path, joint, "finetune.few_shot={ug: 5, wo: 3}", "finetune.mode=joint"),
                            monkeypatch)
    assert mapped[0] not in (FEW_SHOT_JOINT_HASHES[0], _names(_cfg(job, tmp_path, joint, "finetune.mode=joint"),
                                                              monkeypatch)[0])
