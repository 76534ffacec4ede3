"""``finetune.dropout`` reaches the dropout keys of every encoder family a token classifier is
built on (Funnel, ALBERT and T5-style encoders kept the checkpoint's), warns when a config has
none, and renames only the outputs whose training it changes. Tiny configs, built offline."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")

SIZES = {"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
         "intermediate_size": 32}


def _config(kind: str):
    import transformers as tf

    if kind == "funnel":
        return tf.FunnelConfig(vocab_size=50, block_sizes=[1, 1], d_model=16, n_head=2, d_head=8, d_inner=32)
    if kind in ("t5", "mt5", "umt5"):
        cls = {"t5": tf.T5Config, "mt5": tf.MT5Config, "umt5": tf.UMT5Config}[kind]
        return cls(vocab_size=50, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2)
    if kind == "distilbert":
        return tf.DistilBertConfig(vocab_size=50, dim=16, n_layers=2, n_heads=2, hidden_dim=32)
    if kind == "xlm":
        return tf.XLMConfig(vocab_size=50, emb_dim=16, n_layers=2, n_heads=2)
    cls = {"albert": tf.AlbertConfig, "electra": tf.ElectraConfig, "deberta-v2": tf.DebertaV2Config,
           "modernbert": tf.ModernBertConfig, "bert": tf.BertConfig}[kind]
    extra = {"embedding_size": 8} if kind in ("albert", "electra") else {}
    if kind == "modernbert":  # its default special ids lie beyond a 50-piece vocabulary
        extra = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "cls_token_id": 1, "sep_token_id": 2}
    return cls(**SIZES, **extra)


#: Per family, the keys that must carry ``finetune.dropout`` (the brief's list of each family).
EXPECTED = {
    "funnel": {"hidden_dropout", "attention_dropout", "activation_dropout"},
    "albert": {"hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout_prob"},
    "t5": {"dropout_rate", "classifier_dropout"},
    "mt5": {"dropout_rate", "classifier_dropout"},
    "umt5": {"dropout_rate", "classifier_dropout"},
    "distilbert": {"dropout", "attention_dropout"},
    "xlm": {"dropout", "attention_dropout"},
    "electra": {"hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"},
    "deberta-v2": {"hidden_dropout_prob", "attention_probs_dropout_prob"},
    "modernbert": {"attention_dropout", "mlp_dropout", "embedding_dropout", "classifier_dropout"},
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_dropout_reaches_every_family_and_its_modules(kind, capsys):
    """Each family's keys are set, and every dropout module of the token classifier built on the
    config drops with the setting (Funnel, ALBERT, T5, MT5 and UMT5 kept the checkpoint's)."""
    from transformers import AutoModelForTokenClassification

    from lrl.train.finetune_dropout import apply_dropout

    conf = _config(kind)
    conf.num_labels = 3
    keys = apply_dropout(conf, 0.37, "enc")
    assert EXPECTED[kind] <= set(keys) and all(getattr(conf, k) == 0.37 for k in EXPECTED[kind])
    assert capsys.readouterr().err == ""
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_config(conf)
    drops = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops and set(drops) == {0.37}, (kind, sorted(set(drops)))


def test_no_dropout_setting_keeps_the_checkpoints():
    from lrl.train.finetune_dropout import apply_dropout

    conf = _config("funnel")
    assert apply_dropout(conf, None, "enc") == [] and conf.hidden_dropout == 0.1


def test_a_config_without_a_known_key_is_named_in_one_line(capsys):
    """Set but reaching nothing: one warning line from the stage's driver (``unreached``), not a
    setting ignored without a word, and not one line per Ray task (``apply_dropout`` is silent)."""
    from transformers import PretrainedConfig

    from lrl.train.finetune_dropout import apply_dropout, unreached

    assert apply_dropout(PretrainedConfig(), 0.2, "/models/odd") == [] and not capsys.readouterr().err
    line = unreached({"model_type": "not-a-model"}, 0.2, "/models/odd")
    assert "\n" not in line and line.startswith("warning: finetune.dropout=0.2: the encoder /models/odd (not-a-model)")
    assert unreached({"model_type": "t5"}, 0.2, "x") is None  # dropout_rate from the type's defaults
    assert unreached({"model_type": "not-a-model"}, None, "x") is None and unreached({}, 0.2, "x") is None
    assert unreached({"model_type": "x"}, 0.3, "e", "tune.space.dropout").startswith("warning: tune.space.dropout=0.3")


@pytest.mark.parametrize(("config", "renamed"), [
    ({"model_type": "funnel"}, True), ({"model_type": "albert"}, True), ({"model_type": "t5"}, True),
    ({"model_type": "umt5"}, True), ({"model_type": "bert"}, False), ({"model_type": "modernbert"}, False),
    ({"model_type": "distilbert"}, False), ({"model_type": "xlm-roberta"}, False), ({}, False),
    ({"model_type": "not-a-model", "dropout_rate": 0.1}, True)])
def test_only_encoders_the_new_keys_reach_rename_the_output(config, renamed):
    """``save_pretrained`` leaves default values out of config.json: a T5 folder names no
    ``dropout_rate``, so the model type's defaults count too. Unset dropout renames nothing."""
    from lrl.train.finetune_dropout import dropout_version

    assert bool(dropout_version(config, 0.2)) is renamed
    assert dropout_version(config, None) == {}


def test_a_funnel_folder_gets_the_dropout_when_loaded(data_root, tmp_path):
    """Through ``Tagger.from_encoder``, as fine-tuning loads an encoder folder."""
    from transformers import FunnelConfig, FunnelForMaskedLM

    from lrl.data.readers import read_conll
    from lrl.train.finetune_model import Tagger
    from lrl.train.finetune_scratch import build_scratch_tokenizer

    train = read_conll(str(data_root / "wikiann/wo/train"), "wo", "train").table.slice(0, 16)
    tok = build_scratch_tokenizer(train.column("tokens").to_pylist(), ["wo"], 200)
    tok.save_pretrained(str(tmp_path / "enc"))
    FunnelForMaskedLM(FunnelConfig(vocab_size=len(tok), block_sizes=[1, 1], d_model=16, n_head=2, d_head=8,
                                   d_inner=32, pad_token_id=tok.pad_token_id)).save_pretrained(str(tmp_path / "enc"))
    tagger = Tagger.from_encoder(str(tmp_path / "enc"), ["O", "B-PER", "I-PER"], dropout=0.25, max_length=32)
    conf = tagger.model.config
    assert (conf.hidden_dropout, conf.attention_dropout, conf.activation_dropout) == (0.25, 0.25, 0.25)
    assert {m.p for m in tagger.model.modules() if isinstance(m, torch.nn.Dropout)} == {0.25}
