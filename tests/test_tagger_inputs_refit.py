"""A tagger fine-tuned from a one-language folder (whose tokenizer adds that language's tag and type
id, ``lrl.train.tagger_inputs``) keeps no such inputs in its own tokenizer unless it too is of one
language; and a language without a tag token counts as a language."""

import json

import pyarrow as pa
import pytest
from test_tagger_inputs import WO, _train, encoder, ug  # noqa: F401  (fixtures)


def _tokens(path: str, words: list[str]) -> list[str]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    return tok.convert_ids_to_tokens(tok(words, is_split_into_words=True)["input_ids"])


def test_a_joint_model_tuned_from_a_one_language_folder_drops_its_tag(ug, encoder, tmp_path):  # noqa: F811
    one = _train(ug, encoder, tmp_path / "ug")
    assert json.loads((tmp_path / "ug" / "lrl_tagger.json").read_text())["inputs_in_tokenizer"] is True
    joint = _train(ug, one, tmp_path / "joint", langs=("ug", "wo"))
    meta = json.loads((tmp_path / "joint" / "lrl_tagger.json").read_text())
    assert "inputs_in_tokenizer" not in meta
    # the card tells users to put [ug] first: the tokenizer must not add it as well
    assert _tokens(joint, ["[ug]", "a"])[:3] == ["[CLS]", "[ug]", "a"]
    config = json.loads((tmp_path / "joint" / "tokenizer_config.json").read_text())
    assert "token_type_ids" not in config.get("model_input_names", [])


def test_a_language_without_a_tag_token_makes_a_joint_model(ug, tmp_path, tmp_path_factory):  # noqa: F811
    """ug has a tag token, kk none and no language embedding: lrl feeds kk rows untagged, so the
    folder's tokenizer may not put [ug] in front of every text."""
    from lrl.model.build import build_mlm_model
    from lrl.model.config import ModelConfig, TokenizerConfig
    from lrl.model.tokenizer import save_tokenizer, train_tokenizer
    from lrl.train.finetune_config import FinetuneConfig
    from lrl.train.tagger import train_tagger

    lines = [" ".join(t) for t in ug[0].column("tokens").to_pylist()]
    tok = train_tokenizer({"ug": lines, "wo": WO}, TokenizerConfig(vocab_size=400, min_frequency=1))
    enc = tmp_path_factory.mktemp("enc0")
    build_mlm_model(ModelConfig(preset="tiny", max_length=64), tok, ["wo", "ug"]).save_pretrained(str(enc))
    save_tokenizer(tok, enc)

    def kk(t: pa.Table) -> pa.Table:
        return t.set_column(t.schema.get_field_index("lang"), "lang",
                            pa.array(["kk" if i % 2 else "ug" for i in range(t.num_rows)]))

    cfg = FinetuneConfig(max_steps=1, batch_size=8, eval_every=1, max_length=64)
    path = train_tagger(cfg, str(enc), kk(ug[0]), kk(ug[1]), seed=0, out_dir=str(tmp_path / "m")).model_dir
    meta = json.loads((tmp_path / "m" / "lrl_tagger.json").read_text())
    assert meta["lang_tags"] == {"ug": "[ug]"} and "inputs_in_tokenizer" not in meta
    assert _tokens(path, ["a"])[1] != "[ug]"


@pytest.mark.parametrize("baked", [True, False])
def test_removing_leaves_a_plain_template_alone(tmp_path, encoder, baked):  # noqa: F811
    import shutil

    from lrl.train.tagger_inputs import add_inputs_to_tokenizer, remove_inputs_from_tokenizer

    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{encoder}/{f}", tmp_path / f)
    plain = (tmp_path / "tokenizer.json").read_text()
    if baked:
        assert add_inputs_to_tokenizer(tmp_path, "[wo]", 1)
    assert remove_inputs_from_tokenizer(tmp_path) is baked
    assert _tokens(str(tmp_path), ["a"])[:1] == ["[CLS]"] and _tokens(str(tmp_path), ["a"])[1] != "[wo]"
    if not baked:
        assert (tmp_path / "tokenizer.json").read_text() == plain
