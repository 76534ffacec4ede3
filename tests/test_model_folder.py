"""The saved tagger folder as other transformers versions read it (``Tagger.save``)."""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("transformers")


def test_saved_tokenizer_config_loads_in_transformers_4_and_5(tmp_path):
    """transformers 5 wrote ``tokenizer_class: TokenizersBackend`` and the tag tokens as a list under
    ``extra_special_tokens``: transformers 4.57.1 loaded the model but failed on the tokenizer
    ("Tokenizer class TokenizersBackend does not exist", then "'list' object has no attribute
    'keys'"). The names both versions know are written instead, and lrl (5) still finds the tags."""
    from transformers import AutoTokenizer

    from lrl.model.tokenizer import tag_langs
    from lrl.train.align import lang_tag_ids
    from lrl.train.finetune_model import Tagger
    from lrl.train.finetune_scratch import build_scratch_encoder

    sents = [["Ürümchi", "is", "in", "Xinjiang", "."], ["Aziz", "went", "to", "Kashgar", "."]] * 20
    enc = build_scratch_encoder(tmp_path / "enc", sents, ["ug", "wo"], vocab_size=120, hidden=16, layers=1)
    Tagger.from_encoder(enc, ["O", "B-LOC", "I-LOC"], max_length=32).save(str(tmp_path / "model"))
    conf = json.loads((tmp_path / "model" / "tokenizer_config.json").read_text())
    assert conf["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert conf["additional_special_tokens"] == ["[ug]", "[wo]"] and "extra_special_tokens" not in conf
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "model"))
    assert tag_langs(tok) == ["ug", "wo"] and lang_tag_ids(tok, "ug") == [tok.convert_tokens_to_ids("[ug]")]
    tagger = Tagger.load(str(tmp_path / "model"))
    assert tagger.labels == ["O", "B-LOC", "I-LOC"] and tagger.max_length == 32


def test_a_truncated_weights_file_is_a_config_error_naming_the_folder(tmp_path):
    """A truncated or corrupt model.safetensors (or crf.safetensors) raised safetensors' own
    SafetensorError, not an OSError, as a raw traceback from finetune and evaluate."""
    import shutil

    from lrl.config import ConfigError
    from lrl.train.finetune_model import CRF_FILE, Tagger
    from lrl.train.finetune_scratch import build_scratch_encoder

    sents = [["Kashgar", "is", "far", "."], ["Aziz", "went", "home", "."]] * 10
    enc = build_scratch_encoder(tmp_path / "enc", sents, ["ug"], vocab_size=80, hidden=16, layers=1)
    Tagger.from_encoder(enc, ["O", "B-LOC", "I-LOC"], "crf", max_length=16).save(str(tmp_path / "model"))
    shutil.copytree(tmp_path / "model", tmp_path / "model_crf")

    def cut(path, keep: int) -> None:
        path.write_bytes(path.read_bytes()[:keep])

    at = re.escape(str(tmp_path))
    cut(tmp_path / "enc" / "model.safetensors", 100)  # inside the header
    with pytest.raises(ConfigError, match=rf"encoder folder {at}/enc: cannot read its model\.safetensors "
                                          r"\(truncated or corrupt file\?\)"):
        Tagger.from_encoder(enc, ["O", "B-LOC", "I-LOC"], max_length=16)
    weights = tmp_path / "model" / "model.safetensors"
    cut(weights, weights.stat().st_size - 50)  # the header whole, the tensors short
    with pytest.raises(ConfigError, match=rf"model folder {at}/model: cannot read its model\.safetensors"):
        Tagger.load(str(tmp_path / "model"))
    cut(tmp_path / "model_crf" / CRF_FILE, 20)
    with pytest.raises(ConfigError, match=rf"model folder {at}/model_crf: cannot read its crf\.safetensors"):
        Tagger.load(str(tmp_path / "model_crf"))


def test_pretraining_workers_name_a_truncated_model_folder(tmp_path):
    """pretrain's Ray Train workers load the model to train (pretrain.model_path or the stage's
    initial model): a truncated model.safetensors was safetensors' SafetensorError in Ray Train's
    error, not a ConfigError, which the driver shows in one line (``worker_config_error``)."""
    from lrl.config import ConfigError
    from lrl.train.finetune_scratch import build_scratch_encoder
    from lrl.train.pretrain_loop import load_mlm

    sents = [["Kashgar", "is", "far", "."], ["Aziz", "went", "home", "."]] * 10
    enc = build_scratch_encoder(tmp_path / "enc", sents, ["ug"], vocab_size=80, hidden=16, layers=1)
    assert load_mlm(enc).config.hidden_size == 16
    weights = tmp_path / "enc" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-50])
    with pytest.raises(ConfigError, match=rf"^pretrain model folder {re.escape(str(tmp_path))}/enc: cannot read "
                                          r"its model\.safetensors \(truncated or corrupt file\?\)"):
        load_mlm(enc)
