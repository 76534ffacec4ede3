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
