"""Freezing really keeps weights fixed; layer-wise LR decay gives the expected rates."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def _tiny(layers: int = 3):
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    conf = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                      intermediate_size=32, num_labels=3)
    return BertForTokenClassification(conf)


def test_frozen_parameters_stay_unchanged_and_others_change():
    from lrl.model.freeze import freeze, param_groups, snapshot

    model = _tiny()
    n = freeze(model, embeddings=True, bottom_layers=2)
    assert n > 0
    before = snapshot(model)
    opt = torch.optim.AdamW(param_groups(model, 1e-2, 0.9, 0.01), lr=1e-2)
    ids = torch.randint(0, 50, (4, 7))
    for _ in range(3):
        loss = model(input_ids=ids, labels=torch.randint(0, 3, (4, 7))).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = dict(model.named_parameters())
    for name, old in before.items():
        frozen = name.startswith("bert.embeddings.") or any(f"encoder.layer.{i}." in name for i in (0, 1))
        same = torch.equal(old, after[name].detach())
        if frozen:
            assert same and not after[name].requires_grad, name
        elif name.endswith(".weight") and "LayerNorm" not in name:
            assert not same, f"{name} did not train"


def test_layer_wise_lr_decay_rates():
    from lrl.model.freeze import param_groups

    groups = {g["name"]: g["lr"] for g in param_groups(_tiny(3), 1.0, 0.5, 0.0, head_lr=2.0)}
    assert groups["depth0"] == 1.0 and groups["depth2"] == 0.25  # top layer, bottom layer
    assert groups["depth3"] == 0.125  # embeddings
    assert groups["head"] == 2.0


def test_freezing_more_layers_than_exist_is_an_error():
    from lrl.model.freeze import freeze

    with pytest.raises(ValueError, match="has 3 layers"):
        freeze(_tiny(3), embeddings=False, bottom_layers=4)


def test_non_encoder_model_is_rejected_clearly():
    from lrl.model.freeze import find_parts

    with pytest.raises(ValueError, match="cannot find embeddings"):
        find_parts(torch.nn.Linear(2, 2))


def test_base_model_parameters_outside_the_layers_train_with_the_embeddings():
    """DeBERTa-v2's shared relative-position embeddings (and their LayerNorm) and ELECTRA's
    embedding projection sit in the base model but outside ``embeddings`` and the layers: they were
    grouped as head and trained at ``head_lr`` (here 20x the embeddings' rate), not layer-decayed."""
    from transformers import (
        DebertaV2Config,
        DebertaV2ForTokenClassification,
        ElectraConfig,
        ElectraForTokenClassification,
    )

    from lrl.model.freeze import param_groups

    sizes = {"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 32, "num_labels": 3}
    models = [DebertaV2ForTokenClassification(DebertaV2Config(**sizes, relative_attention=True,
                                                              norm_rel_ebd="layer_norm")),
              ElectraForTokenClassification(ElectraConfig(**sizes, embedding_size=8))]
    for model in models:
        groups = param_groups(model, 1.0, 0.5, 0.01, head_lr=5.0)
        names = {id(p): n for n, p in model.named_parameters()}
        head = sorted(names[id(p)] for g in groups if g["name"] == "head" for p in g["params"])
        assert head == ["classifier.bias", "classifier.weight"], head
        listed = [id(p) for g in groups for p in g["params"]]
        assert sorted(listed) == sorted(names) and len(set(listed)) == len(listed)  # each exactly once
        rate = {names[id(p)]: g["lr"] for g in groups for p in g["params"]}
        extra = [n for n in names.values() if "rel_embeddings" in n or "embeddings_project" in n]
        assert extra and all(rate[n] == 0.25 for n in extra)  # the embeddings' lr * decay**2


def _modernbert():
    from transformers import ModernBertConfig, ModernBertForTokenClassification

    torch.manual_seed(0)
    conf = ModernBertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=32, num_labels=3, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                            cls_token_id=1, sep_token_id=2)
    return ModernBertForTokenClassification(conf)


def test_modernbert_layers_are_found_frozen_and_layer_decayed():
    """ModernBERT (and the multilingual mmBERT) keeps its layers on the base model (``model.layers``),
    not under ``encoder``: ``find_parts`` failed, and fine-tuning one stopped at once, even with
    nothing frozen (``train_tagger`` always calls ``freeze`` and ``param_groups``)."""
    from lrl.model.freeze import freeze, param_groups, snapshot

    model = _modernbert()
    groups = param_groups(model, 1.0, 0.5, 0.01, head_lr=4.0)
    rate = {k: g["lr"] for g in groups for p in g["params"] for k, q in model.named_parameters() if q is p}
    assert len(rate) == len(list(model.parameters()))
    # final_norm normalises the top layer's output: it trains with the top layer, not the embeddings.
    assert rate["model.final_norm.weight"] == 1.0 and rate["classifier.weight"] == 4.0
    assert {rate[k] for k in rate if k.startswith("model.layers.1.")} == {1.0}
    assert {rate[k] for k in rate if k.startswith("model.layers.0.")} == {0.5}
    assert {rate[k] for k in rate if k.startswith("model.embeddings.")} == {0.25}
    n = freeze(model, embeddings=True, bottom_layers=1)
    frozen = [k for k in dict(model.named_parameters()) if k.startswith(("model.embeddings.", "model.layers.0."))]
    assert frozen and n == sum(p.numel() for k, p in model.named_parameters() if k in frozen)
    groups = param_groups(model, 1.0, 0.5, 0.01, head_lr=4.0)
    before = snapshot(model)
    opt = torch.optim.AdamW(groups, lr=1.0)
    for _ in range(2):
        loss = model(input_ids=torch.randint(3, 50, (2, 6)), labels=torch.randint(0, 3, (2, 6))).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = dict(model.named_parameters())
    assert all(torch.equal(before[k], after[k].detach()) for k in frozen)
    assert not torch.equal(before["model.layers.1.mlp.Wo.weight"], after["model.layers.1.mlp.Wo.weight"].detach())


def test_an_encoder_of_another_layout_trains_when_nothing_is_frozen():
    """ALBERT shares one layer group, so there are no layers to freeze or decay: without either it
    trains (every base parameter at ``lr``); asking for them is an error naming the settings."""
    from transformers import AlbertConfig, AlbertForTokenClassification

    from lrl.model.freeze import freeze, param_groups

    model = AlbertForTokenClassification(AlbertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                                                      num_attention_heads=2, intermediate_size=32,
                                                      embedding_size=8, num_labels=3))
    assert freeze(model, embeddings=False, bottom_layers=0) == 0
    groups = param_groups(model, 1.0, 1.0, 0.01, head_lr=3.0)
    rate = {k: g["lr"] for g in groups for p in g["params"] for k, q in model.named_parameters() if q is p}
    assert len(rate) == len(list(model.parameters()))
    assert {k for k, v in rate.items() if v == 3.0} == {"classifier.weight", "classifier.bias"}
    assert all(v == 1.0 for k, v in rate.items() if k.startswith("albert."))
    for call in (lambda: freeze(model, embeddings=True, bottom_layers=0),
                 lambda: param_groups(model, 1.0, 0.9, 0.01)):
        with pytest.raises(ValueError, match="AlbertForTokenClassification: cannot find .*layer_lr_decay"):
            call()


def test_a_modernbert_folder_fine_tunes_with_frozen_parts_and_dropout(data_root, tmp_path):
    """End to end: ``train_tagger`` on a ModernBERT folder stopped in ``find_parts`` before any
    step; ``finetune.dropout`` now also sets its hidden (MLP, embedding) dropout."""
    from safetensors.torch import load_file
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    from lrl.data.readers import read_conll
    from lrl.train.finetune_config import FinetuneConfig
    from lrl.train.finetune_model import Tagger
    from lrl.train.finetune_scratch import build_scratch_tokenizer
    from lrl.train.tagger import train_tagger

    train = read_conll(str(data_root / "wikiann/wo/train"), "wo", "train").table.slice(0, 48)
    dev = read_conll(str(data_root / "wikiann/wo/dev"), "wo", "dev").table.slice(0, 16)
    tok = build_scratch_tokenizer(train.column("tokens").to_pylist(), ["wo"], 300)
    tok.save_pretrained(str(tmp_path / "enc"))
    ids = {k: tok.convert_tokens_to_ids(t) for k, t in (("pad", "[PAD]"), ("cls", "[CLS]"), ("sep", "[SEP]"))}
    torch.manual_seed(0)
    ModernBertForMaskedLM(ModernBertConfig(
        vocab_size=len(tok), hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64, pad_token_id=ids["pad"], bos_token_id=ids["cls"], eos_token_id=ids["sep"],
        cls_token_id=ids["cls"], sep_token_id=ids["sep"])).save_pretrained(str(tmp_path / "enc"))
    cfg = FinetuneConfig(max_steps=2, batch_size=8, lr=1e-2, max_length=32, freeze_embeddings=True,
                         freeze_layers=1, dropout=0.2, head="crf")
    res = train_tagger(cfg, str(tmp_path / "enc"), train, dev, seed=0, out_dir=str(tmp_path / "out"))
    before, after = load_file(str(tmp_path / "enc/model.safetensors")), load_file(str(tmp_path / "out/model.safetensors"))
    frozen = [k for k in after if k.startswith(("model.embeddings.", "model.layers.0."))]
    assert frozen and res.info["frozen_params"] == sum(after[k].numel() for k in frozen)
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["model.layers.1.mlp.Wo.weight"], after["model.layers.1.mlp.Wo.weight"])
    conf = Tagger.load(str(tmp_path / "out")).model.config
    assert (conf.mlp_dropout, conf.embedding_dropout, conf.attention_dropout) == (0.2, 0.2, 0.2)
