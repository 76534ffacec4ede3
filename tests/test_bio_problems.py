"""The BIO checker gives structured problems (``TagProblem``: the tag's index, message and kind):
the collector took the token index, and the reject kind, back out of the message text, which broke
silently whenever a message's wording changed."""

from __future__ import annotations

import dataclasses
import re

import pytest

import lrl.data.bio as bio
from lrl.data.bio import BioError, TagProblem, bio_problems, check_tags
from lrl.data.readers import read_conll


def test_problems_carry_index_kind_and_the_same_messages():
    problems = bio_problems(["O", "I-PER", "B-FOO", "X"], labels=["PER"])
    assert [(p.index, p.kind) for p in problems] == [(1, "invalid BIO"), (2, "unknown label"),
                                                     (3, "invalid BIO")]
    # The messages and reasons are the texts of before; str() is the message (``evaluate.predict``
    # formats ``f"invalid BIO: {problems[0]}"``).
    assert [str(p) for p in problems] == ["tag 1 'I-PER' follows 'O' (I- without B-)",
                                          "tag 2 'B-FOO': unknown label 'FOO'",
                                          "tag 3 'X' is not O, B-X or I-X"]
    assert problems[1].reason == "unknown label: tag 2 'B-FOO': unknown label 'FOO'"
    assert not bio_problems(["B-PER", "I-PER", "O"])


def test_check_tags_hands_over_the_tag_at_fault():
    quarantined = check_tags(["O", "B-FOO"], "quarantine", ["PER"], "f:1")
    assert quarantined.reject == "unknown label: tag 1 'B-FOO': unknown label 'FOO'"
    assert quarantined.problem == TagProblem(1, "tag 1 'B-FOO': unknown label 'FOO'", "unknown label")
    repaired = check_tags(["I-PER", "X"], "repair", None, "f:1")
    assert repaired.reject == "invalid BIO: tag 1 'X' is not O, B-X or I-X" and repaired.problem.index == 1
    with pytest.raises(BioError, match=r"^f:1: invalid BIO: tag 0 'I-PER' follows 'O'") as err:
        check_tags(["I-PER"], "error", None, "f:1")
    assert err.value.problem.index == 0


def test_the_kind_is_data_not_a_word_found_in_the_message(tmp_path):
    """A malformed tag whose text holds "unknown label" was counted as an unknown label."""
    path = tmp_path / "odd.conll"
    path.write_text("a\tO\n\nb\tX unknown label\n", encoding="utf-8")
    res = read_conll(str(path), "ug")
    assert res.reject_reasons == {"invalid BIO": 1}
    assert res.rejects.column("reason").to_pylist() == [
        "invalid BIO: tag 0 'X unknown label' is not O, B-X or I-X (line 3)"]


def test_the_token_line_does_not_depend_on_the_message_wording(tmp_path, monkeypatch):
    """The collector names the offending token's own line from the problem's index: reworded,
    the message no longer says "tag 2", and the line is still found."""
    original = bio.bio_problems

    def reworded(tags, labels=None):
        return [dataclasses.replace(p, message=f"the tag of token #{p.index + 1} is wrong")
                for p in original(tags, labels)]

    monkeypatch.setattr(bio, "bio_problems", reworded)
    path = tmp_path / "bad.conll"
    path.write_text("a\tO\n\nc\tO\nd\tO\ne\tB-FOO\n", encoding="utf-8")
    [reject] = read_conll(str(path), "ug", labels=["PER"]).rejects.to_pylist()
    assert reject["line"] == 3 and reject["reason"] == "unknown label: the tag of token #3 is wrong (line 5)"
    with pytest.raises(BioError, match=rf"^{re.escape(str(path))}:5: unknown label: the tag of token #3"):
        read_conll(str(path), "ug", labels=["PER"], policy="error")
