"""Language ID verdicts carry the detected language as data beside the reject reason: comparing a
row with its parent (``failure_kind``) read it back out of the reason text, which broke silently
whenever the reason's wording changed."""

from __future__ import annotations

from lrl.data.schema import text_table
from lrl.generate.filters.lid import LangIdFilter, Verdict, failure_kind
from lrl.generate.translate.columns import widen

ENGLISH = "The committee met on Tuesday morning to discuss the budget for the coming year and the new school."


def _rows(text: str, lang: str):
    return widen(text_table([{"id": f"{lang}:0", "lang": lang, "text": text, "op": "translate",
                              "parent_id": "en:0"}]))


def test_a_verdict_names_the_detected_language_and_keeps_the_reason_text():
    table = _rows(ENGLISH, "sw")
    [verdict] = LangIdFilter(["sw"], candidates=[]).verdicts(table, [True])
    assert verdict.detected == "en" and failure_kind(verdict) == "en"
    assert verdict.reason.startswith("lid: detected en (") and verdict.reason.endswith("), expected sw")
    failed = LangIdFilter(["sw"], candidates=[]).failed(table).to_pylist()
    assert [(r["reason"], r["how"]) for r in failed] == [(verdict.reason, "en")]
    assert LangIdFilter(["sw"], candidates=[]).reasons(table) == [verdict.reason]


def test_low_probability_is_its_own_kind():
    table = _rows(ENGLISH, "en")
    [verdict] = LangIdFilter(["en"], candidates=[], min_prob=1.1).verdicts(table, [True])
    assert verdict.detected is None and failure_kind(verdict) == "low probability"
    assert verdict.reason.startswith("lid: en probability ") and verdict.reason.endswith(" < 1.1")


def test_the_kind_does_not_depend_on_the_reason_wording():
    assert failure_kind(Verdict("langid says English", "en")) == "en"
    assert failure_kind(Verdict("lid: detected en (0.93), expected sw")) == "low probability"
