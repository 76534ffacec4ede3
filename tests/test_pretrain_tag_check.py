"""A tokenizer given by ``pretrain.tokenizer_path`` without a tag token for a language of the
pretraining text is an error before Ray starts, naming the setting, the folder and the tag
(``lrl.train.pretrain_preflight``)."""

from __future__ import annotations

import pytest

from lrl.config import ConfigError
from lrl.train.pretrain_config import PretrainConfig
from lrl.train.pretrain_preflight import preflight


def test_a_given_tokenizer_without_a_texts_tag_stops_before_ray(tmp_path, en_ug_tokenizers):
    """MiniLM's own folder as pretrain.tokenizer_path got past preflight; the missing [ug] was found
    after Ray had started, by an error that named neither the folder nor the setting."""
    base, _ = en_ug_tokenizers  # tags: [en] only
    folder = tmp_path / "tok"
    base.save_pretrained(str(folder))
    cfg = PretrainConfig(engine="torch", tokenizer_path=str(folder))
    with pytest.raises(ConfigError, match=rf"pretrain.tokenizer_path={folder}: no language tag token \[ug\]"):
        preflight(cfg, ["en", "ug"], str(folder))
    preflight(cfg, ["en"], str(folder))  # every text language has its tag: nothing said
