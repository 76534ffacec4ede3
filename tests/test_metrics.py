"""seqeval strict IOB2 span scores against a hand-computed case; mean ± sd over seeds."""

from __future__ import annotations

import pytest

from lrl.evaluate.metrics import aggregate, mean_sd, scores_by_lang, span_scores

GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-LOC", "I-LOC"]]
PRED = [["B-PER", "I-PER", "O", "B-ORG"], ["I-ORG", "O", "B-LOC", "O"]]


def test_hand_computed_strict_scores():
    # Gold spans: PER(0-2), LOC(3), ORG(0), LOC(2-4) = 4. Predicted (strict IOB2): PER(0-2), ORG(3),
    # LOC(2) — the lone I-ORG starts no span in strict mode — = 3. Correct: PER only.
    s = span_scores(GOLD, PRED)
    assert s["support"] == 4
    assert s["precision"] == pytest.approx(1 / 3)
    assert s["recall"] == pytest.approx(1 / 4)
    assert s["f1"] == pytest.approx(2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))
    assert s["per_type"]["PER"]["f1"] == pytest.approx(1.0)
    assert s["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert s["per_type"]["ORG"]["support"] == 1 and s["per_type"]["ORG"]["precision"] == 0.0


def test_per_language_split():
    s = scores_by_lang(GOLD, PRED, ["ug", "wo"])
    assert s["per_lang"]["ug"]["f1"] == pytest.approx(0.5)  # P 1/2, R 1/2
    assert s["per_lang"]["wo"]["f1"] == 0.0


def test_no_entities_anywhere_is_zero_not_an_error():
    assert span_scores([["O", "O"]], [["O", "O"]])["f1"] == 0.0


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="sentence 0"):
        span_scores([["O"]], [["O", "O"]])


def test_mean_and_sample_sd_over_seeds():
    runs = [{"precision": p, "recall": p, "f1": p, "per_lang": {"ug": {"precision": p, "recall": p, "f1": p}}}
            for p in (0.5, 0.7, 0.9)]
    agg = aggregate(runs)
    assert agg["f1"]["mean"] == pytest.approx(0.7) and agg["f1"]["sd"] == pytest.approx(0.2)
    assert agg["per_lang"]["ug"]["f1"]["n"] == 3
    assert mean_sd([0.4])["sd"] == 0.0


def test_label_gaps_name_types_the_model_and_the_data_do_not_share():
    """A gold DATE a PER/ORG/LOC/MISC model cannot predict is scored as a miss (and said so); the
    model's MISC, absent from the data, is named as well."""
    from lrl.evaluate.metrics import gap_note, label_gaps

    gold = [["B-DATE", "O", "B-PER"], ["B-LOC", "I-LOC"]]
    pred = [["O", "O", "B-PER"], ["B-LOC", "I-LOC"]]
    s = span_scores(gold, pred)
    assert s["per_type"]["DATE"]["support"] == 1 and s["recall"] == pytest.approx(2 / 3)  # still scored
    labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    gaps = label_gaps(labels, s)
    assert gaps == {"unknown_to_model": {"DATE": 1}, "absent_from_data": ["MISC", "ORG"]}
    note = gap_note(gaps)
    assert "DATE (1 gold spans)" in note and "MISC, ORG" in note
    assert label_gaps(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], s)["absent_from_data"] == []
    assert gap_note({"unknown_to_model": {}, "absent_from_data": []}) == ""
