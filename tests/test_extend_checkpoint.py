"""Growing a checkpoint to an extended tokenizer needs the checkpoint's own tokenizer."""

from __future__ import annotations

import pytest

from lrl.model.build import build_mlm_model
from lrl.model.config import ModelConfig
from lrl.model.extend import load_tokenizer


def test_checkpoint_without_tokenizer_is_refused_not_overwritten(en_ug_tokenizers, tmp_path):
    # transformers 5 loads a folder with only config.json + weights as an empty 5-token BERT
    # tokenizer; taken as "the old tokenizer", every row past the specials counted as new and was
    # overwritten with the mean of [UNK]'s row (silently).
    base, ext = en_ug_tokenizers
    model = build_mlm_model(ModelConfig(preset="tiny"), base, ["en"])
    model.save_pretrained(tmp_path / "ckpt")  # weights only, no tokenizer
    with pytest.raises(OSError, match="no tokenizer files"):
        load_tokenizer(str(tmp_path / "ckpt"))
    with pytest.raises(ValueError, match="no tokenizer of its own"):
        build_mlm_model(ModelConfig(preset="tiny", checkpoint=str(tmp_path / "ckpt")), ext, ["en", "ug"])


def test_checkpoint_with_tokenizer_keeps_its_rows(en_ug_tokenizers, tmp_path):
    import torch

    base, ext = en_ug_tokenizers
    model = build_mlm_model(ModelConfig(preset="tiny"), base, ["en"])
    model.save_pretrained(tmp_path / "ckpt")
    base.save_pretrained(tmp_path / "ckpt")
    old = model.get_input_embeddings().weight.detach().clone()
    grown = build_mlm_model(ModelConfig(preset="tiny", checkpoint=str(tmp_path / "ckpt")), ext, ["en", "ug"])
    w = grown.get_input_embeddings().weight.detach()
    assert w.shape[0] == len(ext) > old.shape[0]
    assert torch.equal(w[: old.shape[0]], old)
