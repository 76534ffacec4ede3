"""The model-index of a card names a Hugging Face dataset id in ``dataset.type``, as the Hub spec
(hub-docs ``modelcard.md``) requires, or is left out; it carried the task name ``ner`` there."""

from __future__ import annotations

import pytest

from lrl.evaluate.model_card import CardInfo, Score, card_datasets, read_front_matter, render
from lrl.job import load_job


def _joint(datasets: dict) -> CardInfo:
    return CardInfo(name="demo-joint-ner", languages=["ug", "yo"], license="cc-by-sa-4.0", datasets=datasets,
                    scores=[Score("all", "overall", 0.6, 0.01, 3), Score("ug", "overall", 0.7, 0.02, 3),
                            Score("yo", "overall", 0.2, 0.03, 3), Score("all", "PER", 0.5, 0.1, 3)])


def test_a_card_on_local_files_names_no_dataset_it_does_not_know():
    """WikiANN read from local files has no Hub id: no model-index result (the Hub rejects one
    without a dataset), never the task name as a dataset; the scores stay in the body."""
    text = render(_joint({}))
    fm = read_front_matter(text)
    assert "model-index" not in fm and "datasets" not in fm
    assert "type: ner" not in text.split("\n---", 1)[0]
    assert "| ug | overall | dev | 70.0 | 2.0 | 3 |" in text and "| all | overall | dev | 60.0 | 1.0 | 3 |" in text


def test_the_model_index_names_the_hub_dataset_and_parses_as_the_hub_reads_it():
    from huggingface_hub.repocard_data import model_index_to_eval_results

    wikiann = {lang: {"type": "unimelb-nlp/wikiann", "config": lang} for lang in ("ug", "yo")}
    fm = read_front_matter(render(_joint(wikiann)))
    assert fm["datasets"] == ["unimelb-nlp/wikiann"]
    name, results = model_index_to_eval_results(fm["model-index"])
    assert name == "demo-joint-ner"
    got = {(r.dataset_type, r.dataset_config, r.dataset_split, round(r.metric_value, 2)) for r in results}
    assert got == {("unimelb-nlp/wikiann", None, "dev", 60.0), ("unimelb-nlp/wikiann", "ug", "dev", 70.0),
                   ("unimelb-nlp/wikiann", "yo", "dev", 20.0)}
    assert all(r.task_type == "token-classification" and r.metric_type == "f1" for r in results)
    assert {r.dataset_name for r in results} >= {"unimelb-nlp/wikiann (ug, yo), dev split"}
    # one language from the Hub, one from local files: the joint 'all' score names no single dataset
    fm = read_front_matter(render(_joint({"ug": wikiann["ug"]})))
    assert [r["dataset"]["config"] for r in fm["model-index"][0]["results"]] == ["ug"]


def test_card_datasets_takes_hub_ids_of_the_dev_sources_only(tmp_path):
    saved = tmp_path / "yo_saved"
    saved.mkdir()
    (saved / "state.json").write_text("{}")  # what save_to_disk writes: a folder the reader loads
    cfg = load_job(None, [f"data.root={tmp_path}", "data.ner=["
                          "{path: wikiann/ug/dev, lang: ug, format: conll, split: dev},"
                          "{path: unimelb-nlp/wikiann, lang: sw, format: hf, hf_config: sw, split: dev},"
                          "{path: unimelb-nlp/wikiann, lang: sw, format: hf, hf_config: sw, split: train},"
                          "{path: yo_saved, lang: yo, format: hf, split: dev}]"])
    assert card_datasets(cfg, ["ug", "sw", "yo"]) == {"sw": {"type": "unimelb-nlp/wikiann", "config": "sw"}}
    assert card_datasets(cfg, ["ug"]) == {}


def test_card_datasets_calls_a_path_a_hub_id_exactly_when_the_reader_does(tmp_path, monkeypatch):
    """The card had its own rule (an existing folder under data.root, or a name the hub regex
    took): ``wikiann`` with a data.root that holds a wikiann folder of CoNLL files, which
    ``read_ner`` loads from the hub, was left out; ``corpora/ug_hf`` with a local ``corpora/``,
    which the reader refuses as a missing folder, was named a hub dataset. Both now follow
    ``lrl.data.local_or_hub``."""
    from lrl.data.config import NerSource
    from lrl.data.files import InputError
    from lrl.data.readers import read_ner

    monkeypatch.chdir(tmp_path)
    (tmp_path / "root" / "wikiann" / "ug").mkdir(parents=True)  # CoNLL files, not a save_to_disk folder
    (tmp_path / "root" / "corpora").mkdir()
    cfg = load_job(None, [f"data.root={tmp_path / 'root'}", "data.ner=["
                          "{path: wikiann, lang: ug, format: hf, hf_config: ug, split: dev},"
                          "{path: corpora/ug_hf, lang: yo, format: hf, split: dev},"
                          "{path: a--b, lang: wo, format: hf, split: dev}]"])
    assert card_datasets(cfg, ["ug", "yo", "wo"]) == {"ug": {"type": "wikiann", "config": "ug"}}
    for src in cfg.data.ner[1:]:  # what the reader says of the two the card leaves out
        with pytest.raises(InputError, match="no such folder; format: hf reads such a folder or a Hugging Face hub id"):
            read_ner(src, cfg.data.root)
    with pytest.raises(InputError, match="wikiann: cannot load Hugging Face dataset"):  # offline: the hub was asked
        read_ner(NerSource(path="wikiann", lang="ug", format="hf", hf_config="ug"), cfg.data.root)


def test_a_joint_checkpoints_own_score_is_not_put_under_one_language():
    """ug from the Hub and yo local: the joint score has no dataset, so results[0] is ug's, and
    the joint checkpoint's pooled dev F1 was listed there as "this checkpoint"."""
    info = _joint({"ug": {"type": "unimelb-nlp/wikiann", "config": "ug"}})
    info.tagger = {"dev_f1": 0.62, "seed": 1}
    [result] = read_front_matter(render(info))["model-index"][0]["results"]
    assert result["dataset"]["config"] == "ug"
    assert not any("this checkpoint" in m["name"] for m in result["metrics"])
    both = _joint({lang: {"type": "unimelb-nlp/wikiann", "config": lang} for lang in ("ug", "yo")})
    both.tagger = {"dev_f1": 0.62, "seed": 1}
    first = read_front_matter(render(both))["model-index"][0]["results"][0]
    assert any("this checkpoint: seed 1" in m["name"] and m["value"] == 62.0 for m in first["metrics"])
