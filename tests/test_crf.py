"""The CRF head's Viterbi decoding: exact against brute force, and one host copy per batch."""

from __future__ import annotations

import itertools

import torch

from lrl.model.crf import CRF


@torch.no_grad()
def _brute_force(crf: CRF, em: torch.Tensor, n: int) -> list[int]:
    """The best path of one row by scoring every label sequence of length ``n``."""
    best, best_path = None, None
    for path in itertools.product(range(crf.num_labels), repeat=n):
        s = crf.start[path[0]] + em[0, path[0]] + crf.end[path[-1]]
        for t in range(1, n):
            s = s + crf.trans[path[t - 1], path[t]] + em[t, path[t]]
        if best is None or s > best:
            best, best_path = float(s), list(path)
    return best_path  # type: ignore[return-value]


def test_viterbi_matches_brute_force_on_ragged_batches():
    torch.manual_seed(0)
    crf = CRF(3)
    with torch.no_grad():
        for p in (crf.start, crf.end, crf.trans):
            p.normal_()
    lengths = [5, 1, 3, 4]
    em = torch.randn(len(lengths), 5, 3)
    mask = torch.tensor([[t < n for t in range(5)] for n in lengths])
    got = crf.decode(em, mask)
    assert [len(p) for p in got] == lengths
    assert got == [_brute_force(crf, em[i], n) for i, n in enumerate(lengths)]


def test_viterbi_reads_the_device_once_per_batch_not_once_per_word(monkeypatch):
    """On a GPU every ``int(tensor)`` or ``.item()`` waits for the device: the backtrack used to
    make one such read per word. Count host reads while decoding a 40-word batch."""
    reads = {"n": 0}
    for name in ("__int__", "item", "tolist", "__index__"):
        orig = getattr(torch.Tensor, name)

        def counted(self, *a, _orig=orig, **k):
            reads["n"] += 1
            return _orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    crf = CRF(5)
    em = torch.randn(4, 40, 5)
    mask = torch.ones(4, 40, dtype=torch.bool)
    paths = crf.decode(em, mask)
    assert [len(p) for p in paths] == [40] * 4
    assert reads["n"] <= 3, f"{reads['n']} host reads for one batch"
