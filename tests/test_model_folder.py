"""The saved tagger folder as other transformers versions read it (``Tagger.save``)."""

from __future__ import annotations

import json

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
