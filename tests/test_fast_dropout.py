"""CPU dropout with 3 elements' randomness per draw (lrl.train.fast_dropout)."""

from __future__ import annotations

import json

import pytest
import torch

from lrl.train.fast_dropout import KERNEL, FastDropout, fast_dropout, use_fast_dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.02])
def test_it_drops_the_share_asked_and_keeps_the_expected_value(p):
    torch.manual_seed(0)
    x = torch.ones(300_001)  # not a multiple of 3: the last draw is cut
    y = fast_dropout(x, p)
    kept = y != 0
    n = x.numel()
    sd = (n * p * (1 - p)) ** 0.5
    assert abs(int((~kept).sum()) - n * p) < 5 * sd  # binomial: within 5 standard deviations
    scale = y[kept].unique()
    assert scale.numel() == 1 and abs(float(scale) - 1 / (1 - p)) < 1e-4
    assert abs(float(y.mean()) - 1.0) < 5 * sd / n / (1 - p) + 1e-3


def test_the_mask_has_no_pattern_across_the_three_numbers_of_a_draw():
    """Each 48-bit draw feeds 3 elements: a bias in one of the 16-bit slots would show as a
    different drop rate at positions 0, 1, 2 modulo 3."""
    torch.manual_seed(1)
    y = fast_dropout(torch.ones(3 * 200_000), 0.3).view(-1, 3)
    rates = (y == 0).float().mean(0)
    assert torch.all((rates - 0.3).abs() < 0.005), rates


def test_eval_mode_zero_and_full_rates_and_the_gradient():
    x = torch.randn(4, 7, requires_grad=True)
    assert fast_dropout(x, 0.1, training=False) is x and fast_dropout(x, 0.0) is x
    assert torch.equal(fast_dropout(x, 1.0), torch.zeros_like(x))
    torch.manual_seed(2)
    y = fast_dropout(x, 0.4)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.where(y != 0, y / x, torch.zeros_like(x)).detach())


def test_the_same_seed_gives_the_same_mask_and_bf16_stays_bf16():
    x = torch.randn(64, 33, dtype=torch.bfloat16)
    torch.manual_seed(3)
    a = fast_dropout(x, 0.1)
    torch.manual_seed(3)
    b = fast_dropout(x, 0.1)
    assert torch.equal(a, b) and a.dtype == torch.bfloat16
    assert not torch.equal(a, fast_dropout(x, 0.1))


def _bert(dropout: float):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    conf = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=32, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    model = BertForMaskedLM(conf)
    model.set_attn_implementation("eager")
    return model


def test_a_bert_gets_every_dropout_swapped_and_computes_the_same_without_dropout(tmp_path):
    from transformers import AutoModelForMaskedLM

    ids = torch.randint(5, 60, (2, 9), generator=torch.Generator().manual_seed(1))
    plain, fast = _bert(0.0), _bert(0.0)
    # embeddings 1 + per layer 2 (hidden) + 1 unused-by-eager attention module + the kernel
    assert use_fast_dropout(fast) == 1 + 2 * 3 + 1
    assert fast.config._attn_implementation == KERNEL
    assert not any(type(m) is torch.nn.Dropout for m in fast.modules())
    plain.train(), fast.train()
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0  # padding: the kernel must get eager's additive mask (sdpa's booleans were added as 1/0)
    torch.testing.assert_close(fast(input_ids=ids, attention_mask=mask).logits,
                               plain(input_ids=ids, attention_mask=mask).logits)
    fast.save_pretrained(tmp_path)
    assert "attn" not in json.dumps(json.loads((tmp_path / "config.json").read_text()))
    again = AutoModelForMaskedLM.from_pretrained(tmp_path)  # a standard model again
    assert again.config._attn_implementation != KERNEL
    assert not any(isinstance(m, FastDropout) for m in again.modules())


def test_a_model_in_eval_mode_stays_in_eval_mode():
    """The new layers were made in training mode: an eval-mode model's outputs changed per call."""
    model = _bert(0.3).eval()
    ids = torch.randint(5, 60, (2, 9))
    with torch.no_grad():
        before = model(input_ids=ids).logits
        use_fast_dropout(model)
        torch.testing.assert_close(model(input_ids=ids).logits, before)
    assert not any(m.training for m in model.modules())


def test_attention_probabilities_are_dropped_by_the_swapped_kernel():
    model = _bert(0.5)
    use_fast_dropout(model)
    model.train()
    seen = []
    layer = model.bert.encoder.layer[0].attention.self
    from transformers import AttentionInterface

    kernel = AttentionInterface()[KERNEL]

    def spy(module, *args, **kwargs):
        out, weights = kernel(module, *args, **kwargs)
        seen.append(weights)
        return out, weights

    AttentionInterface.register("lrl_spy", spy)
    model.set_attn_implementation("lrl_spy")
    model(input_ids=torch.randint(5, 60, (2, 9)))
    assert seen and float((seen[0] == 0).float().mean()) > 0.3  # about half of the probabilities
    assert layer.training
