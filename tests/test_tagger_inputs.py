"""A one-language tagger folder's tokenizer adds the language tag and token type id itself
(``lrl.train.tagger_inputs``), so plain transformers and ``pipeline("token-classification")``
feed the model what lrl trained it on; its card then drops the manual tag from its examples."""

import json

import pytest

WO = ["Dafa am ay kilifa ci réew mi", "Ñoom ñépp dañu dem Ndakaaru", "Wolof làkk la"] * 20


@pytest.fixture(scope="module")
def ug(data_root):
    from lrl.data.readers import read_conll

    train = read_conll(str(data_root / "wikiann/ug/train"), "ug", "train").table.slice(0, 60)
    dev = read_conll(str(data_root / "wikiann/ug/dev"), "ug", "dev").table.slice(0, 20)
    return train, dev


@pytest.fixture(scope="module")
def encoder(ug, tmp_path_factory):
    """A tiny encoder with language embeddings and tag tokens for ug and wo."""
    from lrl.model.build import build_mlm_model
    from lrl.model.config import ModelConfig, TokenizerConfig
    from lrl.model.tokenizer import save_tokenizer, train_tokenizer

    lines = [" ".join(t) for t in ug[0].column("tokens").to_pylist()]
    tok = train_tokenizer({"ug": lines, "wo": WO}, TokenizerConfig(vocab_size=400, min_frequency=1))
    model = build_mlm_model(ModelConfig(preset="tiny", lang_embedding=True, max_length=64), tok, ["wo", "ug"])
    out = tmp_path_factory.mktemp("enc")
    model.save_pretrained(str(out))
    save_tokenizer(tok, out)
    return str(out)


def _train(ug, encoder, out, langs=("ug",)):
    from lrl.train.finetune_config import FinetuneConfig
    from lrl.train.tagger import train_tagger

    train, dev = ug
    if "wo" in langs:  # a joint model: some rows relabelled as Wolof
        import pyarrow as pa

        train = train.set_column(train.schema.get_field_index("lang"), "lang",
                                 pa.array(["wo" if i % 2 else "ug" for i in range(train.num_rows)]))
    cfg = FinetuneConfig(max_steps=1, batch_size=8, eval_every=1, max_length=64)
    return train_tagger(cfg, encoder, train, dev, seed=0, out_dir=str(out)).model_dir


def test_the_folders_tokenizer_encodes_as_lrl_does(ug, encoder, tmp_path):
    from transformers import AutoTokenizer, pipeline

    from lrl.train.align import encode
    from lrl.train.finetune_model import Tagger, collate

    path = _train(ug, encoder, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "lrl_tagger.json").read_text())
    assert meta["inputs_in_tokenizer"] is True and meta["lang_tags"] == {"ug": "[ug]"}
    type_id = meta["lang_type_ids"]["ug"]
    tagger = Tagger.load(path)
    plain = AutoTokenizer.from_pretrained(path)
    short = [w for w in ug[1].column("tokens").to_pylist() if len(w) <= 6]
    assert len(short) >= 5
    for words in short:
        chunks, _ = encode(tagger.tokenizer, [words], None, tagger.max_length, ["ug"], True)
        assert len(chunks) == 1
        batch = collate(chunks, tagger.tokenizer.pad_token_id, "cpu", tagger.lang_types)
        enc = plain(words, is_split_into_words=True)
        # what lrl trained and scores with: [CLS] [ug] pieces [SEP], every position of ug's type
        assert enc["input_ids"] == list(chunks[0].input_ids)
        assert enc["token_type_ids"] == batch["token_type_ids"][0].tolist() == [type_id] * len(enc["input_ids"])
    # the pipeline passes them too, and never labels the tag (a special token, offsets (0, 0))
    ner = pipeline("token-classification", model=path, aggregation_strategy="first", stride=16)
    text = " ".join(short[0])
    inputs = ner.tokenizer(text, return_special_tokens_mask=True)
    assert inputs["token_type_ids"][0] == type_id and inputs["special_tokens_mask"][:2] == [1, 1]
    assert all(g["start"] >= 0 and g["word"] for g in ner(text))
    # the card shows no manual tag, no token type ids to pass
    from lrl.evaluate.model_card import CardInfo, render

    card = render(CardInfo(name="t", languages=["ug"], scores=[], labels=tagger.labels, license="other", tagger=meta))
    assert "prefix = " not in card and "pass `token_type_ids`" not in card and '"[ug]", *words' not in card
    assert "the tokenizer puts in what training did: the language tag [ug] after [CLS]" in card


def test_a_joint_folder_keeps_the_manual_tag(ug, encoder, tmp_path):
    """Two languages: the tokenizer cannot know a text's language, so it adds nothing and the card
    tells users to add the tag and type ids."""
    from transformers import AutoTokenizer

    from lrl.evaluate.model_card import CardInfo, render

    path = _train(ug, encoder, tmp_path / "m", langs=("ug", "wo"))
    meta = json.loads((tmp_path / "m" / "lrl_tagger.json").read_text())
    assert "inputs_in_tokenizer" not in meta and set(meta["lang_tags"]) == {"ug", "wo"}
    enc = AutoTokenizer.from_pretrained(path)(["a"], is_split_into_words=True)
    assert AutoTokenizer.from_pretrained(path).convert_ids_to_tokens(enc["input_ids"])[1] != "[ug]"
    card = render(CardInfo(name="t", languages=["ug", "wo"], scores=[], labels=meta["labels"], license="other",
                           tagger=meta))
    assert "prefix = " in card and "pass `token_type_ids`" in card


def test_a_crf_card_leads_with_lrls_decoding():
    from lrl.evaluate.model_card import CardInfo, render

    tagger = {"head": "crf", "lang_tags": {"ug": "[ug]"}, "inputs_in_tokenizer": True, "max_length": 64}
    card = render(CardInfo(name="t", languages=["ug"], scores=[], labels=["O", "B-PER", "I-PER"], license="other",
                           tagger=tagger))
    use = card[card.index("## How to use"):]
    assert use.index("Tagger.load(PATH)") < use.index("AutoModelForTokenClassification")
    assert "predict_tags(tagger, [words], langs=['ug'])" in use and "ignores the CRF's transitions" in use


def test_tokenizers_without_cls_and_sep_are_left_alone(tmp_path):
    from lrl.train.tagger_inputs import add_inputs_to_tokenizer, one_language_inputs

    assert one_language_inputs({"lang_tags": {"ug": "[ug]", "wo": "[wo]"}}) is None
    assert one_language_inputs({"lang_tags": {"ug": "[ug]"}, "lang_type_ids": {"ug": 3}}) == ("[ug]", 3)
    assert one_language_inputs({}) is None
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>"}))
    assert add_inputs_to_tokenizer(tmp_path, "[ug]", 0) is False
    assert (tmp_path / "tokenizer.json").read_text() == "{}"


def test_a_tokenizer_class_that_builds_its_own_template_is_left_alone(tmp_path):
    """transformers 5's ``BertTokenizer`` (the class a transformers 4 BERT or MiniLM folder names,
    with cls/sep in its config) builds BERT's post-processor on load: a baked tag and type id were
    dropped, yet the folder was said to add them (``inputs_in_tokenizer``, a card without the tag)."""
    from transformers import AutoTokenizer, BertTokenizer

    from lrl.train.tagger_inputs import add_inputs_to_tokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[ug]", "bu", "bir"]
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(str(tmp_path))
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config, "cls_token": "[CLS]", "sep_token": "[SEP]"}))
    before = {f: (tmp_path / f).read_bytes() for f in ("tokenizer.json", "tokenizer_config.json")}
    assert add_inputs_to_tokenizer(tmp_path, "[ug]", 1) is False
    assert {f: (tmp_path / f).read_bytes() for f in before} == before
    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    assert tok.convert_ids_to_tokens(tok(["bu"], is_split_into_words=True)["input_ids"]) == ["[CLS]", "bu", "[SEP]"]


def test_the_card_says_later_windows_lack_the_type_id(encoder, tmp_path):
    """The tokenizer gives the template's type ids to the first window of a long text only
    (huggingface/tokenizers#1908): the pipeline's later windows feed the words as type 0. The card of
    a one-language model whose type id is not 0 says so; where it is 0 nothing is lost."""
    import shutil

    from transformers import AutoTokenizer

    from lrl.evaluate.model_card import CardInfo, render
    from lrl.train.tagger_inputs import add_inputs_to_tokenizer

    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{encoder}/{f}", tmp_path / f)
    assert add_inputs_to_tokenizer(tmp_path, "[wo]", 1)
    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    enc = tok(" ".join(WO), truncation=True, max_length=16, stride=4, return_overflowing_tokens=True)
    assert len(enc["input_ids"]) > 1 and all(tok.convert_ids_to_tokens(ids)[:2] == ["[CLS]", "[wo]"]
                                             for ids in enc["input_ids"])
    assert set(enc["token_type_ids"][0]) == {1} and 0 in enc["token_type_ids"][1]  # as the card says

    def card(type_id: int) -> str:
        tagger = {"head": "linear", "lang_tags": {"wo": "[wo]"}, "lang_type_ids": {"wo": type_id},
                  "inputs_in_tokenizer": True, "max_length": 64}
        return render(CardInfo(name="t", languages=["wo"], scores=[], labels=["O", "B-PER", "I-PER"],
                               license="other", tagger=tagger))

    assert "the words get token type id 0, not the language's 1" in card(1) and "tokenizers#1908" in card(1)
    assert "tokenizers#1908" not in card(0)
