"""Model cards: Hugging Face front matter, data, config and scores with ± sd."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrl.evaluate.model_card import CardInfo, Score, read_front_matter, render, write_model_card


def _info() -> CardInfo:
    return CardInfo(name="demo-ug-ner", languages=["ug"], license="cc-by-sa-4.0",
                    scores=[Score("ug", "overall", 0.8123, 0.0155, 3), Score("ug", "PER", 0.9, 0.01, 3)],
                    config={"finetune": {"lr": 5e-4, "epochs": 3}}, base_model="runs/pretrain-abc/model",
                    data=[{"source": "wikiann/ug/train", "lang": "ug", "split": "train", "sentences": 1603}],
                    labels=["O", "B-PER", "I-PER"], datasets={"ug": {"type": "unimelb-nlp/wikiann", "config": "ug"}})


def test_card_front_matter_as_the_hub_expects(tmp_path):
    path = write_model_card(tmp_path, _info())
    assert path == str(tmp_path / "README.md")  # a str, as on an object store
    text = Path(path).read_text()
    fm = read_front_matter(text)
    assert fm["language"] == ["ug"] and fm["license"] == "cc-by-sa-4.0"
    assert fm["pipeline_tag"] == "token-classification" and "ner" in fm["tags"]
    assert fm["metrics"] == ["seqeval"]
    assert "base_model" not in fm  # a local path is no hub id
    result = fm["model-index"][0]["results"][0]
    assert result["metrics"][0]["value"] == pytest.approx(81.23)


def test_card_with_an_unsettled_license_names_none_and_says_why():
    """``license: other`` alone is incomplete Hub metadata (it asks for ``license_name``); lrl does
    not know the data's license, so the header names none and the body says what to do."""
    info = _info()
    info.license = "other"
    text = render(info)
    fm = read_front_matter(text)
    assert fm["license"] == "other" and fm["license_name"] == "unspecified"
    assert "## License" in text and "set `report.license`" in text
    settled = render(_info())
    assert "license_name" not in read_front_matter(settled) and "## License" not in settled


def test_card_body_has_scores_with_sd_data_and_config():
    text = render(_info())
    assert "| ug | overall | dev | 81.2 | 1.6 | 3 |" in text
    assert "| ug | PER | dev | 90.0 | 1.0 | 3 |" in text
    assert "| wikiann/ug/train | ug | train | 1603 |" in text
    assert "lr: 0.0005" in text and "## Intended use" in text and "## Limitations" in text


def test_card_needs_an_existing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_model_card(tmp_path / "missing", _info())
    with pytest.raises(ValueError, match="front matter"):
        read_front_matter("# no header")


def test_card_how_to_use_names_language_tags_and_crf(tmp_path):
    """What lrl does around the model (tag tokens, CRF decoding) must reach plain transformers users."""
    import json

    (tmp_path / "lrl_tagger.json").write_text(json.dumps({"head": "crf", "lang_tags": {"ug": "[ug]", "wo": "[wo]"}}))
    text = Path(write_model_card(tmp_path, _info())).read_text()
    use = text.split("## How to use")[1]
    assert '"[ug]"' in use and '"[wo]"' in use and "CRF" in use
    assert "[ug]" not in render(_info()).split("## How to use")[1]  # no tags recorded: none mentioned


def test_card_shows_no_sd_for_a_single_run():
    """``mean_sd`` stores sd 0 for n=1; the card printed "± 0.0" for a single seed."""
    info = _info()
    info.scores = [Score("ug", "overall", 0.5, 0.0, 1), Score("ug", "PER", 0.25, 0.0, 2)]
    text = render(info)
    assert "| ug | overall | dev | 50.0 | — | 1 |" in text
    assert "| ug | PER | dev | 25.0 | 0.0 | 2 |" in text  # two runs that agree: a real 0


def test_card_pipeline_use_matches_first_piece_training():
    """Only each word's first piece is trained, so the card's pipeline call must aggregate with
    "first" (WikiANN ug dev: 52.5 span F1 with "simple" against 66.1) and chunk long texts; with a
    language tag it must also drop the tag's own prediction and shift the offsets back."""
    info = _info()
    info.tagger = {"lang_tags": {"ug": "[ug]"}, "max_length": 64}
    use = render(info).split("## How to use")[1]
    assert 'pipeline("token-classification", model=PATH, aggregation_strategy="first", stride=16)' in use
    assert 'prefix = "[ug] "' in use and 'e["start"] >= len(prefix)' in use
    info.tagger = {}
    plain = render(info).split("## How to use")[1]
    assert 'aggregation_strategy="first", stride=32)' in plain and "spans = ner(text)" in plain


def test_card_says_where_plain_transformers_differs_from_the_scores():
    """Checked against lrl evaluate on WikiANN ug dev: the card's pipeline gave the same words on
    short sentences but counted a lone I-X as an entity (4.6 points of span F1 for a tiny model)
    and lost the tag in the windows of long texts; its manual snippet fed long sentences whole."""
    info = _info()
    info.tagger = {"lang_tags": {"ug": "[ug]"}, "max_length": 64}
    use = render(info).split("## How to use")[1]
    assert "# more than 64 pieces: split the words into runs" in use
    assert "`I-X` that follows no `X`" in use and "lack the language tag" in use
    info.tagger = {}
    plain = render(info).split("## How to use")[1]
    assert "`I-X` that follows no `X`" in plain and "language tag" not in plain


def test_card_names_the_checkpoint_an_lrl_encoder_started_from(tmp_path):
    """A MiniLM transfer's card said "Started from: <the run's pretrain folder>" and named neither
    MiniLM nor its license; the encoder's config (lrl_init, written by lrl.model.build) knows both."""
    import json
    from dataclasses import replace

    enc = tmp_path / "pretrain-abc" / "model"
    enc.mkdir(parents=True)
    init = {"checkpoint": "sentence-transformers/all-MiniLM-L6-v2", "license": "apache-2.0",
            "mlm_head": "fresh", "new_embedding_rows": 6712}
    (enc / "config.json").write_text(json.dumps({"model_type": "bert", "lrl_init": init}))
    info = replace(_info(), base_model=str(enc))
    text = render(info)
    assert ("That model continued pretraining from `sentence-transformers/all-MiniLM-L6-v2` (license: apache-2.0); "
            "its masked-LM head was trained from scratch; 6712 embedding rows were added") in text
    assert read_front_matter(text)["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert "continued pretraining" not in render(_info())  # no lrl_init: nothing claimed


def test_card_states_the_saved_checkpoints_own_dev_score(tmp_path):
    """The folder holds the best seed, but the card gave only the mean over seeds: WikiANN ug dev,
    2 seeds, card 69.4 while ``lrl evaluate`` scored the saved model 70.7. Both are stated now, in
    the body and in the model-index (the mean stays first)."""
    import json

    (tmp_path / "lrl_tagger.json").write_text(json.dumps({"dev_f1": 0.7073, "seed": 1, "labels": ["O"]}))
    text = Path(write_model_card(tmp_path, _info())).read_text()
    metrics = read_front_matter(text)["model-index"][0]["results"][0]["metrics"]
    assert [m["value"] for m in metrics] == [pytest.approx(81.23), pytest.approx(70.73)]
    assert "this checkpoint: seed 1" in metrics[1]["name"]
    assert "the run of seed 1, kept as the best on dev of the 3 runs: its own dev F1 is 70.7" in text
    one = _info()
    one.scores = [Score("ug", "overall", 0.7073, 0.0, 1)]
    single = Path(write_model_card(tmp_path, one)).read_text()  # one seed: the mean is the model's own
    assert "this checkpoint" not in single and "kept as the best" not in single


def test_card_lists_the_labels_of_the_folder_when_not_given(tmp_path):
    """The tune stage's cards had no "Labels:" line (its CardInfo names none); the folder's
    lrl_tagger.json has them."""
    import json
    from dataclasses import replace

    (tmp_path / "lrl_tagger.json").write_text(json.dumps({"labels": ["O", "B-LOC", "I-LOC"]}))
    text = Path(write_model_card(tmp_path, replace(_info(), labels=[]))).read_text()
    assert "Labels: O, B-LOC, I-LOC" in text
    assert "Labels: O, B-PER, I-PER" in Path(write_model_card(tmp_path, _info())).read_text()  # given ones win


def test_card_of_a_preset_encoder_says_it_was_not_pretrained():
    """A ``preset:`` run's card said only "Started from: `/tmp/.../encoders/micro-...`", a scratch
    folder of the run, and nothing of the encoder being randomly initialised."""
    info = _info()
    info.base_model = "preset:micro"
    text = render(info)
    assert "Started from: `preset:micro`, a randomly initialised encoder of that size (no pretraining)" in text
    assert "base_model" not in read_front_matter(text)
