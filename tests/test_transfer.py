"""Transfer of an existing encoder-only checkpoint (MiniLM-shaped: a sentence-transformers
``BertModel`` save, no masked-LM head, uncased WordPiece) to a new language: the head it gets,
checkpoints missing encoder weights, and the pretrained folder loading with the Auto classes."""

from __future__ import annotations

import json

import pytest
from tiny_corpora import EN, UG

from lrl.model.build import build_mlm_model
from lrl.model.config import ModelConfig, TokenizerConfig
from lrl.model.extend import extend_tokenizer
from lrl.model.tokenizer import train_tokenizer


def _encoder_only(path, base, layers: int = 2):
    """A MiniLM-shaped folder: ``BertModel`` weights (encoder + pooler, no ``cls.*``) and its tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    conf = BertConfig(vocab_size=len(base), hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=64)
    enc = BertModel(conf)
    enc.save_pretrained(path)
    base.save_pretrained(path)
    return enc


def test_encoder_only_checkpoint_gets_a_fresh_tied_head_and_says_so(en_ug_tokenizers, tmp_path, caplog):
    import logging

    import torch

    base, ext = en_ug_tokenizers
    enc = _encoder_only(tmp_path / "ckpt", base)
    said: list[str] = []  # what transformers logs (its own handler, which caplog does not see)
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    logging.getLogger("transformers").addHandler(handler)
    try:
        model = build_mlm_model(ModelConfig(checkpoint=str(tmp_path / "ckpt"), max_length=64), ext, ["ug"])
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    err = caplog.text
    assert "has no masked-LM head" in err and "decoder tied to the word embeddings" in err
    assert "2 tensors of the checkpoint are not used by a masked LM (pooler.dense.bias, pooler.dense.weight)" in err
    # transformers' own report (a key table, and "This checkpoint seem corrupted" for the absent
    # decoder bias) is not printed beside lrl's lines: it read as a broken download
    assert not [m for m in said if "LOAD REPORT" in m or "corrupted" in m], said
    # The encoder is the checkpoint's; the head is BERT's fresh one, its decoder the (grown) embeddings.
    assert torch.equal(model.bert.encoder.layer[1].output.dense.weight, enc.encoder.layer[1].output.dense.weight)
    head = model.cls.predictions
    assert head.decoder.weight is model.get_input_embeddings().weight
    assert head.decoder.weight.shape[0] == len(ext)
    assert torch.count_nonzero(head.bias) == 0
    assert torch.allclose(head.transform.LayerNorm.weight, torch.ones(32))


def test_origin_of_the_weights_is_recorded_for_later_stages(en_ug_tokenizers, tmp_path):
    from lrl.train.pretrain import _started_from

    base, ext = en_ug_tokenizers
    _encoder_only(tmp_path / "ckpt", base)
    (tmp_path / "ckpt" / "README.md").write_text("---\nlicense: apache-2.0\nlanguage: en\n---\n# MiniLM\n")
    model = build_mlm_model(ModelConfig(checkpoint=str(tmp_path / "ckpt"), max_length=64), ext, ["ug"])
    model.save_pretrained(tmp_path / "init")
    got = _started_from(str(tmp_path / "init"))
    assert got == {"checkpoint": str(tmp_path / "ckpt"), "license": "apache-2.0", "mlm_head": "fresh",
                   "new_embedding_rows": len(ext) - len(base)}
    # continuing from that folder (with its tokenizer) keeps the chain and finds the head there
    ext.save_pretrained(tmp_path / "init")
    again = build_mlm_model(ModelConfig(checkpoint=str(tmp_path / "init"), max_length=64), ext, ["ug"])
    assert again.config.lrl_init["mlm_head"] == "checkpoint" and again.config.lrl_init["new_embedding_rows"] == 0
    assert again.config.lrl_init["from"] == got
    assert _started_from(str(tmp_path / "ckpt")) is None  # not built here


def test_checkpoint_missing_encoder_weights_is_refused(en_ug_tokenizers, tmp_path):
    # A config that asks for more layers than the weights hold: transformers initialised the third
    # layer at random and only listed it in its load report.
    base, ext = en_ug_tokenizers
    _encoder_only(tmp_path / "ckpt", base, layers=2)
    conf = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    conf["num_hidden_layers"] = 3
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(conf))
    with pytest.raises(ValueError, match="encoder weights are missing"):
        build_mlm_model(ModelConfig(checkpoint=str(tmp_path / "ckpt"), max_length=64), ext, ["ug"])


@pytest.fixture(scope="module")
def uncased():
    """A BERT-uncased-like base (``BertNormalizer``: lowercase, accents stripped, as MiniLM's) that
    has seen the Arabic letters ي and ا but never ئ (its own normalizer turns ئ into ي)."""
    from tokenizers import normalizers

    tok = train_tokenizer({"en": EN + ["يا ياي"] * 20}, TokenizerConfig(vocab_size=90, min_frequency=1))
    tok.backend_tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    return tok


def test_extending_an_uncased_base_keeps_the_hamza_of_new_language_letters(uncased):
    from lrl.model.extend import OldPieces

    norm = uncased.backend_tokenizer.normalizer
    assert norm.normalize_str("ئۇ") == "يۇ"  # what MiniLM's normalizer does to 22% of Uyghur words
    ext, added = extend_tokenizer(uncased, {"ug": UG}, TokenizerConfig(mode="extend", base="x", vocab_size=60,
                                                                      min_frequency=1))
    new = ext.backend_tokenizer.normalizer
    assert new.normalize_str("ئۇيغۇرچە ئائىلىسىگە") == "ئۇيغۇرچە ئائىلىسىگە"
    assert any("ئ" in p for p in added)
    # everything else still normalizes as the base does, so the base's pieces keep matching
    for text in ["Café Ñandú ÇA", "naïve  Straße\tx", "مَرحبا", "한국어", "中文 text"]:
        assert new.normalize_str(text) == norm.normalize_str(text), text
    # a new piece with ئ starts from the base's row of what the base reads there (ي), not [UNK]
    assert OldPieces(uncased)("ئ") == [uncased.convert_tokens_to_ids("ي")]
    # English-only text leaves the base's normalizer as it was
    en, _ = extend_tokenizer(uncased, {"en": ["zebra quokka"] * 5}, TokenizerConfig(mode="extend", base="x",
                                                                                  vocab_size=40, min_frequency=1))
    assert en.backend_tokenizer.normalizer.normalize_str("ئۇ") == "يۇ"


def test_a_corrupt_checkpoint_file_is_one_line_naming_the_folder(en_ug_tokenizers, tmp_path):
    """A truncated model.safetensors raised safetensors' own error (not an OSError) as a traceback."""
    from lrl.config import ConfigError

    base, ext = en_ug_tokenizers
    _encoder_only(tmp_path / "ckpt", base)
    weights = tmp_path / "ckpt" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ConfigError, match=r"model.checkpoint=.*ckpt: cannot read its model.safetensors \(truncated"):
        build_mlm_model(ModelConfig(checkpoint=str(tmp_path / "ckpt"), max_length=64), ext, ["ug"])
