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


def test_final_loss_after_a_report_is_the_reported_window_not_null():
    """A run stopped by ``time_limit_s`` right after a report step has no step in its final
    window: its final loss was null (``loss -`` in the summary) after 100 trained steps."""
    from lrl.train.pretrain_loop import LossWindow

    w = LossWindow()
    assert w.means() == (None, None)  # nothing trained yet
    w.mlm += [2.0, 4.0]
    w.end_step()
    w.aux.append(1.0)
    w.end_step()
    assert w.means() == (3.0, 1.0)
    w.reset()  # a report covered both steps; the loop then stops
    assert w.means() == (3.0, 1.0)
    w.mlm.append(5.0)
    w.end_step()  # one more step: its own window, with no auxiliary step in it
    assert w.means() == (5.0, None)
