"""Strict span F1 ignores stray ``I-X`` predictions (no hit, no false positive); the evaluate stage
records and prints the conlleval-style F1 beside it when they occur (audit of 2026-12-01: a tiny
WikiANN yo model, 62.7 strict against 49.6 conlleval)."""

from __future__ import annotations

import json

import pytest

GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
PRED = [["B-PER", "I-PER", "O", "I-ORG"], ["B-ORG", "O"]]  # the I-ORG continues no ORG span


def test_strict_f1_ignores_a_stray_inside_tag_and_the_note_measures_it():
    from lrl.evaluate.metrics import conlleval_note, span_scores

    assert span_scores(GOLD, PRED)["precision"] == 1.0  # the stray I-ORG is no false positive
    note = conlleval_note(GOLD, PRED)
    assert note["stray_inside_tags"] == 1
    # conlleval: predicted PER, ORG(I-ORG read as a span), ORG = 3; right 2 of 3 gold: P 2/3, R 2/3
    assert note["f1_conlleval"] == pytest.approx(2 / 3)
    assert conlleval_note(GOLD, [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]) == {}


def test_evaluate_prints_the_conlleval_f1_when_predictions_hold_stray_tags(tmp_path, capsys):
    from lrl.evaluate.command import print_scores

    (tmp_path / "metrics.json").write_text(json.dumps({"models": {"yo": {"dev": {
        "f1": 0.627, "precision": 0.66, "recall": 0.598, "sentences": 100,
        "stray_inside_tags": 62, "f1_conlleval": 0.496}}}}))
    print_scores(str(tmp_path))
    out = capsys.readouterr().out
    assert "62 predicted I- tag(s) continue no span" in out and "conlleval-style F1 49.6" in out
