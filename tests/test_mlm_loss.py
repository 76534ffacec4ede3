"""The fused vocabulary projection + cross-entropy (lrl.train.mlm_loss) against the plain path."""

from __future__ import annotations

import pytest
import torch

import lrl.train.mlm_loss as mlm_loss
from lrl.train.mlm_loss import FusedMLMHead, linear_cross_entropy


def _inputs(n=37, d=16, vocab=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, d, generator=g).requires_grad_()
    w = (torch.randn(vocab, d, generator=g) * 0.3).requires_grad_()
    b = (torch.randn(vocab, generator=g) * 0.1).requires_grad_()
    y = torch.randint(0, vocab, (n,), generator=g)
    return h, w, b, y


def _loss_and_grads(fn, h, w, b, y, autocast=False):
    for t in (h, w, b):
        t.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = fn(h, w, b, y)
    (loss * 3.0).backward()  # a non-unit upstream gradient
    return loss.detach(), h.grad.clone(), w.grad.clone(), b.grad.clone()


def _plain(h, w, b, y):
    return torch.nn.functional.cross_entropy(torch.nn.functional.linear(h, w, b).float(), y)


@pytest.mark.parametrize("chunk_values", [1 << 20, 200])  # one chunk; chunks of 4 rows
def test_fused_loss_and_gradients_equal_the_plain_path_in_fp32(monkeypatch, chunk_values):
    monkeypatch.setattr(mlm_loss, "_CHUNK_VALUES", chunk_values)
    h, w, b, y = _inputs()
    want = _loss_and_grads(_plain, h, w, b, y)
    got = _loss_and_grads(linear_cross_entropy, h, w, b, y)
    for g, x in zip(got, want):
        assert g.dtype == x.dtype and g.shape == x.shape
        torch.testing.assert_close(g, x, rtol=1e-5, atol=1e-6)


def test_fused_loss_under_bf16_autocast_matches_the_plain_path_and_keeps_fp32_gradients(monkeypatch):
    monkeypatch.setattr(mlm_loss, "_CHUNK_VALUES", 500)  # chunks of 4 rows
    h, w, b, y = _inputs(n=64, d=32, vocab=120)
    want = _loss_and_grads(_plain, h, w, b, y, autocast=True)
    got = _loss_and_grads(linear_cross_entropy, h, w, b, y, autocast=True)
    assert got[0].item() == pytest.approx(want[0].item(), rel=2e-3)
    for g, x in zip(got[1:], want[1:]):
        assert g.dtype == torch.float32  # the parameters' dtype, as autocast gives
        assert (g - x).abs().max().item() <= 0.02 * x.abs().max().item()


def test_chunks_are_cache_sized_for_small_models_and_twice_the_hidden_size_for_large_vocabularies():
    from lrl.train.mlm_loss import rows_per_chunk

    assert rows_per_chunk(624, 128, 8000) == 131  # micro preset: 2^20 values
    assert rows_per_chunk(2000, 384, 30522) == 768  # MiniLM: its 11.7M weights are out of cache
    # 256 x 512 tokens, 15% masked, hidden 768, 250k vocabulary: 13 chunks of 1,536 rows, not
    # 82 of 241 rows, each adding a [250k x 768] product into the fp32 weight gradient
    assert rows_per_chunk(1000, 256, 250_002) == 512  # 4 before: 16x slower than the plain path
    assert rows_per_chunk(19660, 768, 250_002) == 1536
    assert rows_per_chunk(3, 8, 10**9) == 3  # never more rows than there are


def test_a_target_with_underflowing_probability_gets_its_exact_loss():
    """softmax(x)[y] is 0 in fp32 when x[y] is ~200 below the max; -log(0) would be inf."""
    h, w, b, y = _inputs(n=4, d=8, vocab=10)
    with torch.no_grad():
        b[0] = 300.0
        y[:] = torch.tensor([3, 0, 5, 0])
    want = _loss_and_grads(_plain, h, w, b, y)
    got = _loss_and_grads(linear_cross_entropy, h, w, b, y)
    assert torch.isfinite(got[0]) and want[0].item() > 100
    for g, x in zip(got, want):
        torch.testing.assert_close(g, x, rtol=1e-5, atol=1e-5)


def test_no_rows_gives_a_zero_loss_that_still_backpropagates():
    h, w, b, _ = _inputs()
    loss = linear_cross_entropy(h[:0], w, b, torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and w.grad is not None


def test_without_grad_the_loss_is_the_same_and_no_gradient_is_built():
    h, w, b, y = _inputs()
    with torch.no_grad():
        got = linear_cross_entropy(h, w, b, y)
        want = _plain(h, w, b, y)
    assert not got.requires_grad
    assert got.item() == pytest.approx(want.item(), rel=1e-6)


def _bert():
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    return BertForMaskedLM(BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1,
                                      num_attention_heads=2, intermediate_size=32))


def _roberta():
    from transformers import RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(0)
    return RobertaForMaskedLM(RobertaConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1,
                                            num_attention_heads=2, intermediate_size=32,
                                            max_position_embeddings=40))


@pytest.mark.parametrize("build", [_bert, _roberta])
def test_module_loss_and_gradients_equal_the_models_own_dense_loss(build):
    """build_module's MLM loss (fused, head at masked positions) against the HF model's loss."""
    from lrl.train.pretrain_aux import build_module, mlm_head

    model = build(); model.train()  # noqa: E702
    for m in model.modules():  # dropout off: both forwards must see the same network
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    module = build_module(model, 0)
    assert module._fused is not None
    keys = set(model.state_dict())
    ids = torch.randint(5, 60, (3, 12), generator=torch.Generator().manual_seed(1))
    labels = torch.where(torch.rand(3, 12, generator=torch.Generator().manual_seed(2)) < 0.4, ids,
                         torch.full_like(ids, -100))
    loss = module(ids, torch.ones_like(ids), labels)
    loss.backward()
    fused_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    dense = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
    dense.backward()
    assert loss.item() == pytest.approx(dense.item(), rel=1e-5)
    for name, p in model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(fused_grads[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)
    head = mlm_head(model)
    assert set(model.state_dict()) == keys and isinstance(getattr(head, "predictions", head).decoder,
                                                           torch.nn.Linear)  # the swap is undone


def test_a_head_that_does_more_after_its_projection_is_not_fused():
    """The split is checked against the head's own forward: a head that scales its logits after
    the projection would train a different loss fused, so the plain path is kept."""

    class ScaledHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dense = torch.nn.Linear(8, 8)
            self.decoder = torch.nn.Linear(8, 20)

        def forward(self, x):
            return self.decoder(torch.tanh(self.dense(x))) * 2.0

    class PlainHead(ScaledHead):
        def forward(self, x):
            return self.decoder(torch.tanh(self.dense(x)))

    assert FusedMLMHead.of(ScaledHead()) is None
    fused = FusedMLMHead.of(PlainHead())
    assert fused is not None
    x, y = torch.randn(5, 8), torch.randint(0, 20, (5,))
    want = torch.nn.functional.cross_entropy(fused.head(x), y)
    assert fused.loss(x, y).item() == pytest.approx(want.item(), rel=1e-6)


def test_under_zero3_the_head_runs_its_own_forward_and_no_rows_is_a_zero_loss():
    """ZeRO-3 gathers a partitioned weight only inside its module's forward: the fused path would
    see an empty tensor, so such weights (marked ``ds_numel``) take the head's own logits."""
    head = torch.nn.Sequential()
    head.decoder = torch.nn.Linear(8, 20)
    fused = FusedMLMHead.of(head)
    assert fused is not None
    fused.decoder.weight.ds_numel = 160  # what DeepSpeed ZeRO-3 sets on its parameters
    x, y = torch.randn(5, 8), torch.randint(0, 20, (5,))
    want = torch.nn.functional.cross_entropy(head(x), y)
    assert fused.loss(x, y).item() == pytest.approx(want.item(), rel=1e-6)
    empty = fused.loss(x[:0], y[:0])
    assert empty.item() == 0.0  # no masked token in the batch: not NaN
