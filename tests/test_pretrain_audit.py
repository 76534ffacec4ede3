"""Audit of pretraining inputs on real data: auxiliary (UD XPOS) batches carry no padding columns
beyond their longest sentence, and cutting them leaves the tagging loss unchanged."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def ud_setup(tmp_path_factory, data_root):
    from transformers import AutoTokenizer

    from lrl.data.conllu import read_conllu, tag_set
    from lrl.model.config import TokenizerConfig
    from lrl.model.tokenizer import train_tokenizer
    from lrl.train.pretrain_aux import tagging_arrays

    sents = read_conllu(str(data_root / "ud" / "ug" / "train.conllu"))[:200]
    tok = train_tokenizer({"ug": [" ".join(s.words) for s in sents]},
                          TokenizerConfig(vocab_size=400, min_frequency=1))
    path = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(str(path))
    tok = AutoTokenizer.from_pretrained(str(path))
    labels = tag_set(sents, "xpos")
    arrays = tagging_arrays(sents, "xpos", labels, tok, tok.convert_tokens_to_ids("[ug]"), 128)
    return tok, labels, arrays


def test_aux_batches_are_cut_after_their_longest_sentence(ud_setup):
    """Every treebank sentence was padded to seq_len (128): 16 UD Uyghur sentences filled 28% of
    their batch, and an aux step cost nearly an MLM step. The batch now ends at its longest row."""
    from lrl.train.pretrain_aux import as_tensor_batch
    from lrl.train.pretrain_mlm import IGNORE

    tok, _, arrays = ud_setup
    pad = tok.pad_token_id
    lengths = (arrays["input_ids"] != pad).sum(axis=1)
    assert lengths[:56].max() < 128  # these batches have room to cut (else the test proves nothing)
    for idx in (np.arange(16), np.arange(40, 56), np.array([int(lengths.argmin()), 3])):
        b = as_tensor_batch(arrays, idx, pad)
        width = int(lengths[idx].max())
        assert b["input_ids"].shape == b["labels"].shape == b["attention_mask"].shape == (len(idx), width)
        full = arrays["input_ids"][idx]
        assert np.array_equal(b["input_ids"].numpy(), full[:, :width])
        assert (full[:, width:] == pad).all() and (arrays["labels"][idx][:, width:] == IGNORE).all()
        assert torch.equal(b["attention_mask"], (b["input_ids"] != pad).long())
        assert int((b["labels"] != IGNORE).sum()) == int((arrays["labels"][idx] != IGNORE).sum())


def test_cut_aux_batch_gives_the_padded_batchs_loss(ud_setup):
    from lrl.model.build import build_mlm_model
    from lrl.model.config import ModelConfig
    from lrl.train.pretrain_aux import as_tensor_batch, build_module

    tok, labels, arrays = ud_setup
    torch.manual_seed(0)
    module = build_module(build_mlm_model(ModelConfig(preset="micro", max_length=128), tok, ["ug"]),
                          len(labels)).eval()
    idx = np.arange(8, 24)
    cut = as_tensor_batch(arrays, idx, tok.pad_token_id)
    ids = torch.as_tensor(arrays["input_ids"][idx], dtype=torch.long)
    padded = {"input_ids": ids, "attention_mask": (ids != tok.pad_token_id).long(),
              "labels": torch.as_tensor(arrays["labels"][idx])}
    assert cut["input_ids"].shape[1] < padded["input_ids"].shape[1]
    with torch.no_grad():
        a = module(**cut, kind=1).item()
        b = module(**padded, kind=1).item()
    assert a == pytest.approx(b, rel=1e-5)


def test_aux_language_without_an_embedding_row_stops_before_training(ud_setup, tmp_path):
    """With ``model.lang_embedding`` the auxiliary steps use aux.lang's embedding row: a language
    the model was not built for failed in every worker at its first auxiliary step."""
    import pyarrow as pa

    from lrl.config import ConfigError
    from lrl.model.build import build_mlm_model
    from lrl.model.config import ModelConfig
    from lrl.train.pretrain import fit
    from lrl.train.pretrain_config import PretrainConfig

    tok = ud_setup[0]
    tok_dir, model_dir = tmp_path / "tok", tmp_path / "model"
    tok.save_pretrained(str(tok_dir))
    build_mlm_model(ModelConfig(preset="tiny", lang_embedding=True, max_length=32), tok, ["ug", "wo"]).save_pretrained(
        str(model_dir))
    table = pa.table({"lang": ["ug"], "text": ["bir ikki"]})
    cfg = PretrainConfig(seq_len=32, aux={"conllu": ["ud.conllu"], "lang": "kk"})
    with pytest.raises(ConfigError, match=r"pretrain.aux.lang='kk' has no row in the model's language embedding"):
        fit(cfg, 0, table, str(tok_dir), str(model_dir), str(tmp_path / "out"), str(tmp_path / "run"),
            aux_paths=["ud.conllu"])
