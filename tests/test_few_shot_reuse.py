"""Per language, a ``few_shot`` mapping keys each language by its own k only: a language the mapping
leaves out trains on all its rows, as with ``few_shot`` unset, so its model (finetune) or search
(tune) is taken from such an earlier run. With the whole mapping in every key, ``{ug: 3}`` trained
the wo model again, the same model as before."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from finetune_jobs import job_cfg, write_job

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def job(data_root, tmp_path_factory):
    """20 train / 10 dev sentences of WikiANN ug and wo, and a tiny saved encoder."""
    return write_job(tmp_path_factory.mktemp("fewshotreuse"), data_root, 20, 10)


def _finetune(job, root, *extra) -> Path:
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune

    return Path(run_finetune(StageContext(job_cfg(job, root, ("ug", "wo"), *extra))))


def _trained(out: str) -> set[str]:
    """The groups whose runs printed an evaluation (only runs that trained print one)."""
    return {line.split()[1] for line in out.splitlines() if line.startswith("finetune ") and " seed " in line}


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def test_a_language_the_mapping_leaves_out_is_kept_from_a_run_without_few_shot(job, ray_session, tmp_path, capsys):
    first = _finetune(job, tmp_path)
    assert _trained(capsys.readouterr().out) == {"ug", "wo"}
    second = _finetune(job, tmp_path, "finetune.few_shot={ug: 3}")
    out, err = capsys.readouterr()
    assert _trained(out) == {"ug"}, out  # wo: all its rows, the model the first run trained
    assert f"finetune: wo: trained before with the same settings, data and encoder ({first.name}); kept" in err
    man1, man2 = _manifest(first), _manifest(second)
    assert man2["kept_from_earlier_run"] == ["wo"]
    assert man2["group_keys"]["wo"] == man1["group_keys"]["wo"] != man2["group_keys"]["ug"]
    assert man2["group_keys"]["ug"] != man1["group_keys"]["ug"]
    groups = json.loads((second / "results.json").read_text())["groups"]
    assert groups["wo"] == json.loads((first / "results.json").read_text())["groups"]["wo"]
    # ``mode: per_language`` with {ug: 3}: the ug model trains on 3 sentences, the wo model on all
    # 20; the records say so (results.json, the card's configuration).
    ug, wo = (groups[g]["runs"][0]["info"] for g in ("ug", "wo"))
    assert ug["train_orig_rows_per_lang"] == {"ug": 3} and len(ug["few_shot_ids"]["ug"]) == 3
    assert wo["train_orig_rows_per_lang"] == {"wo": 20} and "few_shot_ids" not in wo
    card = (second / "models/ug/README.md").read_text()
    assert "  few_shot:\n    ug: 3\n" in card, card
    # Another mapping with the same k for ug: ug is kept; wo, now cut, is trained.
    third = _finetune(job, tmp_path, "finetune.few_shot={ug: 3, wo: 2}")
    assert _trained(capsys.readouterr().out) == {"wo"}
    assert _manifest(third)["kept_from_earlier_run"] == ["ug"]
    # Each card lists its own language's k only, as its key: the wo card said {ug: 3, wo: 2}, while
    # the ug card kept from the second run said {ug: 3} (a card is by the run that trained it).
    wo_card, ug_card = ((third / f"models/{g}/README.md").read_text() for g in ("wo", "ug"))
    assert "  few_shot:\n    wo: 2\n  aug_ratio" in wo_card, wo_card
    assert "  few_shot:\n    ug: 3\n  aug_ratio" in ug_card, ug_card
    assert "few_shot: null" in (first / "models/wo/README.md").read_text()
    # An int k is another key for a named language: its table drops the translations into ug of
    # other languages' sentences that a mapping keeps (``finetune_data.few_shot``).
    _finetune(job, tmp_path, "finetune.few_shot=3")
    assert _trained(capsys.readouterr().out) == {"ug", "wo"}


def test_keys_per_language_and_joint(job, tmp_path, monkeypatch):
    """Per language each group's key sees its own k ({lang: k}) or None; a joint group the mapping."""
    import lrl.train.finetune as ft
    import lrl.train.finetune_reuse as reuse
    from lrl.pipeline.stage import StageContext

    class Stop(Exception):
        pass

    def groups_few_shot(*extra) -> dict:
        seen: dict = {}

        def key(settings, group, data_print, model_print):
            seen[group] = settings["finetune"]["few_shot"]
            return "k"

        def stop(*a, **k):
            raise Stop

        monkeypatch.setattr(reuse, "group_key", key)
        monkeypatch.setattr(reuse, "FinishedGroups", stop)
        with pytest.raises(Stop):
            ft.run_finetune(StageContext(job_cfg(job, tmp_path, ("ug", "wo"), *extra)))
        return seen

    assert groups_few_shot("finetune.few_shot={ug: 3}") == {"ug": {"ug": 3}, "wo": None}
    assert groups_few_shot("finetune.few_shot={wo: 2, ug: 3}") == {"ug": {"ug": 3}, "wo": {"wo": 2}}
    assert groups_few_shot("finetune.few_shot=3") == {"ug": 3, "wo": 3}
    assert groups_few_shot() == {"ug": None, "wo": None}
    assert groups_few_shot("finetune.mode=joint", "finetune.few_shot={ug: 3}") == {"joint": {"ug": 3}}


def test_tune_keeps_the_search_of_a_language_the_mapping_leaves_out(job, ray_session, tmp_path, monkeypatch):
    from lrl.pipeline.stage import StageContext
    from lrl.tune import stage

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        if report:
            report({"step": 1, "dev_f1": cfg.lr})
        return SimpleNamespace(dev_f1=cfg.lr, per_type={}, per_lang={}, history=[], model_dir=None)

    searched: list[str] = []
    real = stage.search_language
    monkeypatch.setattr(stage, "search_language", lambda lang, *a, **k: searched.append(lang) or real(lang, *a, **k))
    opts = ("tune.languages=[ug, wo]", "tune.num_samples=1", "tune.save_best=false")
    first = Path(stage.run_tune(StageContext(job_cfg(job, tmp_path, ("ug", "wo"), *opts)), train_fn=stand_in))
    assert searched == ["ug", "wo"]
    second = Path(stage.run_tune(StageContext(job_cfg(job, tmp_path, ("ug", "wo"), *opts, "finetune.few_shot={ug: 3}")),
                                 train_fn=stand_in))
    assert second != first and searched == ["ug", "wo", "ug"]  # wo: as without few-shot
    man1, man2 = _manifest(first), _manifest(second)
    assert man2["kept_from_earlier_run"] == ["wo"]
    assert man2["language_keys"]["wo"] == man1["language_keys"]["wo"]
    assert man2["language_keys"]["ug"] != man1["language_keys"]["ug"]


def test_tune_cards_list_the_language_own_few_shot(job, ray_session, tmp_path):
    """A retrained best model's card lists its own language's k only, as its search's key: the wo
    card of a {ug: 3} search said {ug: 3} (wo trains on all its rows), and the same search kept by a
    run with few_shot unset then showed that card in it."""
    from lrl.pipeline.stage import StageContext
    from lrl.tune import stage

    def stand_in(cfg, model_path, train, dev, *, seed, out_dir=None, report=None):
        if report:
            report({"step": 1, "dev_f1": cfg.lr})
        if out_dir:  # a model folder for the card to go in
            (Path(out_dir) / "config.json").write_text("{}")
        return SimpleNamespace(dev_f1=cfg.lr, per_type={}, per_lang={}, history=[], model_dir=None)

    opts = ("tune.languages=[ug, wo]", "tune.num_samples=1", "finetune.few_shot={ug: 3}")
    out = Path(stage.run_tune(StageContext(job_cfg(job, tmp_path, ("ug", "wo"), *opts)), train_fn=stand_in))
    wo_card, ug_card = ((out / f"models/{g}/README.md").read_text() for g in ("wo", "ug"))
    assert "  few_shot: null\n" in wo_card, wo_card
    assert "  few_shot:\n    ug: 3\n" in ug_card, ug_card
