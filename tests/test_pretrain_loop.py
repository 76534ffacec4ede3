"""Pieces of the per-worker pretraining loop that need no Ray Train run."""

from __future__ import annotations

import json

import pytest


def test_loss_of_a_window_without_mlm_steps_is_null_not_nan():
    """steps=3 with the aux objective every 3rd step: the last window held only an aux step, and
    the reported MLM loss was 0/0 = NaN, written as NaN (invalid JSON) into manifest.json."""
    from lrl.train.pretrain_loop import window_mean

    assert window_mean([2.0, 4.0]) == pytest.approx(3.0)
    assert window_mean([]) is None
    json.loads(json.dumps({"loss": window_mean([]), "aux_loss": window_mean([1.5])}, allow_nan=False))
