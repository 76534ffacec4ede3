"""The finished pretraining folder is usable as it is: its tokenizer's length limit is the
model's, so Hugging Face pipelines truncate instead of crashing in the position embeddings."""

from __future__ import annotations

import shutil
import types

WO = ["Wolof làkk la ci Senegaal ak Gàmbi", "Dakar mooy péeyu Senegaal", "Xale yi dem nañu lekool ci suba"]


def _final_folder(tmp_path, monkeypatch, positions: int):
    """``pretrain_loop._final_save`` of a tiny BERT with ``positions`` positions (no Ray Train run)."""
    import ray.train
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from lrl.model.config import TokenizerConfig
    from lrl.model.tokenizer import train_tokenizer
    from lrl.train.pretrain_config import PretrainConfig
    from lrl.train.pretrain_loop import _final_save

    tok = train_tokenizer({"wo": WO * 20}, TokenizerConfig(vocab_size=60, min_frequency=1))
    assert tok.model_max_length == 512
    torch.manual_seed(0)
    mlm = BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=positions))
    engine = types.SimpleNamespace(module=torch.nn.ModuleDict({"mlm": mlm}))
    out = tmp_path / "final"
    monkeypatch.setattr(ray.train, "report", lambda metrics, checkpoint=None: shutil.copytree(checkpoint.path, out))
    monkeypatch.setattr(ray.train, "get_checkpoint", lambda: None)
    _final_save(engine, None, tok, None, {"step": 1}, 0, PretrainConfig(engine="torch", precision="fp32"))
    assert tok.model_max_length == 512  # the worker's tokenizer is left as it was
    return out / "model"


def test_fill_mask_on_a_long_text_truncates_to_the_models_positions(tmp_path, monkeypatch):
    """A model built with ``model.max_length=64`` was saved beside a tokenizer that said 512: the
    fill-mask pipeline on a 245-piece text failed ("The expanded size of the tensor (245) must
    match the existing size (64)") even with ``truncation=True``."""
    from transformers import AutoTokenizer, pipeline

    folder = _final_folder(tmp_path, monkeypatch, positions=32)
    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.model_max_length == 32
    fill = pipeline("fill-mask", model=str(folder))
    text = "[wo] Dakar [MASK] péeyu Senegaal " + " ".join(WO * 10)
    assert len(tok(text)["input_ids"]) > 32
    best = fill(text, top_k=1, tokenizer_kwargs={"truncation": True})
    assert best and best[0]["token_str"]


def test_a_tokenizer_limit_below_the_models_is_kept(tmp_path):
    """Only a limit above the positions is lowered (a base saved with 128 stays 128)."""
    from transformers import AutoTokenizer

    from lrl.model.config import TokenizerConfig
    from lrl.model.tokenizer import save_tokenizer, train_tokenizer

    tok = train_tokenizer({"wo": WO * 20}, TokenizerConfig(vocab_size=60, min_frequency=1))
    tok.model_max_length = 128
    save_tokenizer(tok, tmp_path / "a", max_positions=512)
    save_tokenizer(tok, tmp_path / "b")
    assert AutoTokenizer.from_pretrained(tmp_path / "a").model_max_length == 128
    assert AutoTokenizer.from_pretrained(tmp_path / "b").model_max_length == 128
