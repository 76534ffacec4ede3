"""Label projection by markers: exact round trips with the fake translator, repairs, rejections.

Pure Python (no Ray, no model), so these run in well under a second each.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrl.generate.mt_config import FakeMTConfig, MTModelConfig, ProjectionConfig, TranslateConfig
from lrl.generate.translate.fake import FakeTranslator
from lrl.generate.translate.markers import Entity, MarkerStyle, spans_from_tags
from lrl.generate.translate.project import Projector

PATTERN = ProjectionConfig().token_pattern
# Multi-token (John Smith, New York City) and adjacent (Paris | France) entities.
TOKENS = "John Smith visited New York City and Paris France yesterday .".split()
TAGS = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-LOC", "O", "B-ORG", "B-LOC", "O", "O"]


def run(style: str, fake: FakeMTConfig, tokens=TOKENS, tags=TAGS, seed: int = 0, **proj):
    ms = MarkerStyle(style)
    text, ents = ms.mark(tokens, tags)
    tr = FakeTranslator(fake, seed)
    return Projector(ms, PATTERN, **proj)(tr.one(text), ents, tr.translate([e.text for e in ents]))


@pytest.mark.parametrize("style", ["square", "numbered"])
def test_round_trip_keeps_spans_and_types(style):
    res = run(style, FakeMTConfig(mode="reverse"))
    assert res.reject is None and res.repairs == []
    assert res.tokens == [t[::-1] for t in TOKENS]
    assert res.tags == TAGS


def test_mark_wraps_each_entity():
    text, ents = MarkerStyle("numbered").mark(TOKENS, TAGS)
    assert text.startswith("<e0> John Smith </e0> visited <e1> New York City </e1>")
    assert "<e2> Paris </e2> <e3> France </e3>" in text
    assert [(e.type, e.text) for e in ents] == [("PER", "John Smith"), ("LOC", "New York City"),
                                                ("ORG", "Paris"), ("LOC", "France")]
    # Source brackets must not be taken for markers.
    text, _ = MarkerStyle("square").mark(["a", "[", "b", "]"], ["O", "O", "B-PER", "O"])
    assert text == "a ( [ b ] )"


@pytest.mark.parametrize("style", ["square", "numbered"])
def test_reordered_sentence_gets_types_right(style):
    res = run(style, FakeMTConfig(mode="reverse", reorder=True))
    assert res.reject is None
    toks = [t[::-1] for t in reversed(TOKENS)]
    assert res.tokens == toks
    # Reversed word order: spans reversed too, each keeping its own type.
    assert res.tags == ["O", "O", "B-LOC", "B-ORG", "O", "B-LOC", "I-LOC", "I-LOC", "O", "B-PER", "I-PER"]
    if style == "square":
        assert "reordered" in res.repairs


@pytest.mark.parametrize("style", ["square", "numbered"])
@pytest.mark.parametrize("fault", ["drop_marker_rate", "glue_marker_rate", "garble_marker_rate", "move_marker_rate"])
def test_broken_markers_are_repaired(style, fault):
    res = run(style, FakeMTConfig(mode="reverse", **{fault: 1.0}))
    assert res.reject is None, res.reject
    ents = [(s, e, t) for s, e, t in spans_from_tags(res.tags)]
    assert [t for *_, t in ents] == ["PER", "LOC", "ORG", "LOC"]
    words = [" ".join(res.tokens[s:e]) for s, e, _ in ents]
    assert words == ["nhoJ htimS", "weN kroY ytiC", "siraP", "ecnarF"]
    if fault != "glue_marker_rate":  # glued markers are found as they are, no repair needed
        assert res.repairs


@pytest.mark.parametrize("style", ["square", "numbered"])
def test_lost_markers_without_fuzzy_are_rejected(style):
    res = run(style, FakeMTConfig(drop_marker_rate=1.0), fuzzy=False)
    assert res.reject is not None and res.reject.startswith("projection:")
    assert "lost" in res.reject


def test_entity_missing_from_translation_is_rejected():
    ms = MarkerStyle("numbered")
    ents = [Entity(0, "PER", "John"), Entity(1, "LOC", "Paris")]
    res = Projector(ms, PATTERN)("<e0> nhoJ </e0> went home .", ents, ["nhoJ", "siraP"])
    assert res.reject == "projection: entity lost (LOC 'Paris')"


def test_dangling_marker_is_closed_over_the_entity_length():
    ms = MarkerStyle("numbered")
    ents = [Entity(0, "LOC", "New York")]
    # The close marker is lost and the separate translation differs (no fuzzy match).
    res = Projector(ms, PATTERN)("we saw <e0> Nueva Yorke today", ents, ["Zzz Qqq"])
    assert res.reject is None and res.repairs == ["dangling"]
    assert res.tags == ["O", "O", "B-LOC", "I-LOC", "O"]


def test_extra_square_spans_are_rejected():
    ms = MarkerStyle("square")
    res = Projector(ms, PATTERN)("[ a ] and [ b ]", [Entity(0, "PER", "a")], ["a"])
    assert res.reject == "projection: 2 marked spans for 1 entities"


def test_empty_translation_is_rejected():
    res = Projector(MarkerStyle("square"), PATTERN)("  [ ] ", [Entity(0, "PER", "a")], ["a"])
    assert res.reject == "projection: empty translation"


def test_marker_inside_a_word_splits_it():
    ms = MarkerStyle("square")
    res = Projector(ms, PATTERN)("men [Paris]ta turdim .", [Entity(0, "LOC", "Paris")], None)
    assert res.tokens == ["men", "Paris", "ta", "turdim", "."]
    assert res.tags == ["O", "B-LOC", "O", "O", "O"]
    res = Projector(ms, PATTERN, split_at_markers=False)("men [Paris]ta turdim .", [Entity(0, "LOC", "Paris")])
    assert res.tokens == ["men", "Parista", "turdim", "."] and res.tags[1] == "B-LOC"


def test_full_width_brackets_and_spaced_numbered_markers_are_found():
    res = Projector(MarkerStyle("square"), PATTERN)("【 Paris 】 city", [Entity(0, "LOC", "Paris")])
    assert res.tags == ["B-LOC", "O"]
    res = Projector(MarkerStyle("numbered"), PATTERN)("< E0 > Paris < / e0 > city", [Entity(0, "LOC", "Paris")])
    assert res.tags == ["B-LOC", "O"]


TAG = st.sampled_from(["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG"])
WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(WORD, TAG), min_size=1, max_size=12), st.sampled_from(["square", "numbered"]))
def test_identity_translation_round_trips_any_sentence(pairs, style):
    tokens = [w for w, _ in pairs]
    tags = [t for _, t in pairs]
    expected = ["O"] * len(tags)  # canonical IOB2 of the input (a stray I- starts a span)
    for s, e, t in spans_from_tags(tags):
        expected[s:e] = ["B-" + t] + ["I-" + t] * (e - s - 1)
    res = run(style, FakeMTConfig(mode="identity"), tokens, tags)
    if res.reject and style == "square":  # one text with two types: order alone would decide
        assert res.reject.startswith("projection_ambiguous:")
        return
    assert res.reject is None and res.tokens == tokens and res.tags == expected


def test_config_validation():
    cfg = TranslateConfig.model_validate(
        {"enabled": True, "train": {"sources": ["en"], "target": "ug", "model": {"backend": "fake"}},
         "projection": {"markers": "numbered"}})
    assert cfg.train is not None and cfg.train.model.backend == "fake"
    with pytest.raises(ValueError, match="needs `model`"):
        MTModelConfig(backend="hf")
    with pytest.raises(ValueError, match="not a valid regex"):
        ProjectionConfig(token_pattern="(")
    with pytest.raises(ValueError, match="ISO 639"):
        TranslateConfig.model_validate({"train": {"target": "Uyghur", "model": {"backend": "fake"}}})
    # An empty sources list crashed the step inside Ray (IndexError); a pivot equal to the
    # language made only copies, every one rejected as a duplicate after two model passes.
    fake = {"backend": "fake"}
    with pytest.raises(ValueError, match="sources is empty"):
        TranslateConfig.model_validate({"train": {"sources": [], "target": "ug", "model": fake}})
    with pytest.raises(ValueError, match="twice"):
        TranslateConfig.model_validate({"train": {"sources": ["sw", "sw"], "target": "ug", "model": fake}})
    with pytest.raises(ValueError, match="pivot 'ug' is the language"):
        TranslateConfig.model_validate({"backtranslate": {"lang": "ug", "pivot": "ug", "to_pivot": fake,
                                                          "from_pivot": fake}})


def test_combining_marks_stay_inside_their_word():
    """Yoruba writes tones with combining marks (ẹ́ = ẹ + U+0301, no precomposed form): 16% of
    FLORES yo words have one. ``\\w`` does not match marks, so the default pattern cut
    ``mẹ́rin`` into ``mẹ``, ``́``, ``rin`` and a projected entity into several tokens."""
    word = "mẹ\u0301rin"
    place = "O\u0323\u0300yo\u0323\u0301"  # Ọ̀yọ́, decomposed
    res = Projector(MarkerStyle("square"), PATTERN)(f"{word} [ {place} ] , ẹ̀ .", [Entity(0, "LOC", place)])
    assert res.reject is None
    assert res.tokens == [word, place, ",", "ẹ̀", "."]
    assert res.tags == ["O", "B-LOC", "O", "O", "O"]


@pytest.mark.parametrize("style", ["square", "numbered"])
def test_punctuation_pulled_into_a_span_is_left_out(style):
    """MT moves markers over neighbouring punctuation ("[ Papa Yohane XIII . ]"): the full stop
    became I-PER (4% of WikiANN sw sentences with a moved marker). Edge punctuation the source
    entity does not have is left outside the span; the entity's own punctuation stays."""
    ms = MarkerStyle(style)
    out = f"na {ms.open(0)} Papa Yohane XIII . {ms.close(0)} ( {ms.open(1)} - Voi {ms.close(1)} )"
    res = Projector(ms, PATTERN)(out, [Entity(0, "PER", "Papa Yohane XIII"), Entity(1, "LOC", "Voi")])
    assert res.tokens == ["na", "Papa", "Yohane", "XIII", ".", "(", "-", "Voi", ")"]
    assert res.tags == ["O", "B-PER", "I-PER", "I-PER", "O", "O", "O", "B-LOC", "O"]
    res = Projector(ms, PATTERN)(f"{ms.open(0)} ( SMC ) {ms.close(0)} .", [Entity(0, "ORG", "( SMC )")])
    assert res.tags == ["B-ORG", "I-ORG", "I-ORG", "O"]
    res = Projector(ms, PATTERN)(f"{ms.open(0)} . {ms.close(0)} x", [Entity(0, "ORG", "AT&T")])
    assert res.tags == ["B-ORG", "O"]  # nothing but punctuation: kept rather than lost


def test_entity_marked_twice_is_rejected_not_one_long_span():
    """Numbered markers paired the first open with the last close: an entity the model marked
    twice became one LOC span over every word between ("Paris is big and Paris")."""
    ms, ents = MarkerStyle("numbered"), [Entity(0, "LOC", "Paris")]
    out = "<e0> Paris </e0> is big and <e0> Paris </e0> is old"
    for tr in (["Paris"], [""], None):  # with, without a usable entity translation
        res = Projector(ms, PATTERN)(out, ents, tr)
        assert res.reject == "projection: entity marked 2 times (LOC 'Paris')", tr
    # One stray extra marker: the entity counts as lost and is looked up by its translation.
    res = Projector(ms, PATTERN)("<e0> Paris <e0> is big </e0> ok", ents, ["Paris"])
    assert res.tags == ["B-LOC", "O", "O", "O"] and "duplicate_marker" in res.repairs
    assert Projector(ms, PATTERN)("<e0> Paris <e0> is big </e0> ok", ents, ["Zzz"]).reject is not None


@pytest.mark.parametrize("mangled", ["<e0/>", "<\\e0>", "«/e0»", "e0>", "＜/e0＞", "</e>", "</0>", "<e/>"])
def test_mangled_numbered_markers_leave_no_debris(mangled):
    """A close marker the pattern does not take (``<e0/>``) stayed in the text: the accepted row
    had tokens ``<`` ``e0`` ``/`` ``>`` tagged O."""
    ms, ents = MarkerStyle("numbered"), [Entity(0, "LOC", "Paris")]
    res = Projector(ms, PATTERN)(f"we saw <e0> Paris {mangled}today", ents, ["Paris"])
    assert res.reject is None and "mangled_marker" in res.repairs
    assert res.tokens == ["we", "saw", "Paris", "today"] and res.tags == ["O", "O", "B-LOC", "O"]
    # Source text that looked like a marker was escaped to ‹ › and stays as it was.
    text, _ = ms.mark(["see", "<e0>", "Paris"], ["O", "O", "B-LOC"])
    assert ms.find(text)[0] == "see ‹e0›  Paris "


def test_square_spans_go_to_entities_only_on_evidence():
    """With a pair lost and translations unlike the marked text (all similarities 0), the one
    span went to the last entity: "[ John ] went to Paris ]" gave John LOC and Paris PER."""
    ms = MarkerStyle("square")
    ents = [Entity(0, "PER", "John"), Entity(1, "LOC", "Paris")]
    res = Projector(ms, PATTERN)("[ John ] went to Paris ] today", ents, ["Qqq", "Zzz"])
    assert res.reject is not None and res.reject.startswith("projection: entity lost")
    # With evidence the lost pair is still repaired.
    res = Projector(ms, PATTERN)("[ John ] went to Paris today", ents, ["John", "Paris"])
    assert res.tags == ["B-PER", "O", "O", "B-LOC", "O"]


def test_ambiguous_square_markers_are_rejected():
    """Reversed brackets with no fuzzy match labelled the word before the lone ``]`` ("saw");
    nested brackets labelled only the inner word ("New" O, "York" B-LOC)."""
    ms, loc = MarkerStyle("square"), [Entity(0, "LOC", "Paris")]
    res = Projector(ms, PATTERN)("we saw ] Paris [ today", loc, ["Zzzz"])
    assert res.reject == "projection: entity lost (LOC 'Paris')"
    assert Projector(ms, PATTERN)("we saw ] Paris [ today", loc, ["Paris"]).tags == ["O", "O", "B-LOC", "O"]
    res = Projector(ms, PATTERN)("[ New [ York ] ] is big", [Entity(0, "LOC", "New York")], ["Zzz Qqq"])
    assert res.reject == "projection: 2 marked spans for 1 entities"
    # A close lost inside a sentence with two entities is still repaired from its lone open.
    res = Projector(ms, PATTERN)("Jon ] went to [ Paris today", [Entity(0, "PER", "John"), Entity(1, "LOC", "Paris")],
                                 ["Qqq", "Zzz"])
    assert res.tags == ["B-PER", "O", "O", "B-LOC", "O"]


def test_square_markers_turned_into_other_brackets_leave_no_debris():
    # The model wrote { } (or ( )) for our [ ]: they were tokens of the accepted row.
    ms = MarkerStyle("square")
    text, ents = ms.mark(TOKENS, TAGS)
    tr = FakeTranslator(FakeMTConfig(mode="reverse", garble_marker_rate=1.0))
    res = Projector(ms, PATTERN)(tr.one(text), ents, tr.translate([e.text for e in ents]), " ".join(TOKENS))
    assert res.reject is None
    assert res.tokens == [t[::-1] for t in TOKENS] and res.tags == TAGS
    assert "mangled_marker" in res.repairs


def test_brackets_of_the_source_sentence_stay():
    ms = MarkerStyle("square")
    ents = [Entity(0, "PER", "John")]
    out = "( [ nhoJ ] ) saw { it } ( again )"
    # The source had parentheses (its own [ ] are sent as ( ) too), not braces: only braces go.
    for source in ["( John ) saw it again", "[ John ] saw it again"]:
        res = Projector(ms, PATTERN)(out, ents, ["nhoJ"], source)
        assert res.tokens == ["(", "nhoJ", ")", "saw", "it", "(", "again", ")"]
        assert res.tags == ["O", "B-PER", "O", "O", "O", "O", "O", "O"]
    res = Projector(ms, PATTERN)("( [ nhoJ ] ) saw it", ents, ["nhoJ"], "John saw it")
    assert res.tokens == ["nhoJ", "saw", "it"] and res.repairs == ["mangled_marker", "mangled_marker"]


def test_swapped_marker_numbers_follow_the_entities_translations():
    ms = MarkerStyle("numbered")
    ents = [Entity(0, "PER", "John"), Entity(1, "LOC", "Paris")]
    # The model put e0 around Paris and e1 around John: by the numbers, Paris was PER.
    res = Projector(ms, PATTERN)("<e0> Parij </e0> ko <e1> Jean </e1> .", ents, ["Jean", "Parij"])
    assert res.tags == ["B-LOC", "O", "B-PER", "O"] and res.repairs == ["renumbered"]
    # Weak evidence (no span like another entity's translation) keeps the numbers.
    res = Projector(ms, PATTERN)("<e0> Xyz </e0> ko <e1> Qqq </e1> .", ents, ["Jean", "Parij"])
    assert res.tags == ["B-PER", "O", "B-LOC", "O"] and res.repairs == []


@pytest.mark.parametrize("style", ["square", "numbered"])
def test_markers_in_place_beat_an_entity_translated_differently(style):
    """The entity translated on its own is often another form of it (shorter, uninflected): a
    better-matching window anywhere in the sentence moved correct markers there. With "Church"
    as the entity's own translation the ORG became "Church"; with an uninflected second mention
    the label left the marked, inflected first one (WikiANN sw/ug, 32-76% of rows wrong)."""
    ms = MarkerStyle(style)
    out = f"{ms.open(0)} Church Missionary Society ( CMS ) {ms.close(0)} ilianzishwa"
    res = Projector(ms, PATTERN)(out, [Entity(0, "ORG", "Church Missionary Society ( CMS )")], ["Church"])
    assert res.tags == ["B-ORG"] + ["I-ORG"] * 5 + ["O"] and "moved_marker" not in res.repairs
    out = f"{ms.open(0)} Tailandda {ms.close(0)} 1976 yili , Tailand xanishi"
    res = Projector(ms, PATTERN)(out, [Entity(0, "LOC", "Thailand")], ["Tailand"])
    assert res.tags == ["B-LOC", "O", "O", "O", "O", "O"] and res.repairs == []
    # One pair around two entities (markers between them lost) still gives up the other one.
    ents = [Entity(0, "LOC", "Wilaya ya Kiambu"), Entity(1, "LOC", "Kiambu")]
    out = "[ Wilaya ya Kiambu ( Kiambu ] )" if style == "square" else "<e0> Wilaya ya Kiambu ( Kiambu </e0> )"
    res = Projector(ms, PATTERN)(out, ents, ["Wilaya ya Kiambu", "Kiambu"])
    assert res.tags == ["B-LOC", "I-LOC", "I-LOC", "O", "B-LOC", "O"]
    # Markers that slipped one word are still put back ("[ na Roderick MacKinnon ]").
    out = f"Peter Agre {ms.open(0)} na Roderick MacKinnon {ms.close(0)}"
    res = Projector(ms, PATTERN)(out, [Entity(0, "PER", "Roderick MacKinnon")], ["Roderick MacKinnon"])
    assert res.tags == ["O", "O", "O", "B-PER", "I-PER"] and res.repairs == ["moved_marker"]


@pytest.mark.parametrize("style", ["square", "numbered"])
def test_marker_slipped_inside_a_word_snaps_to_its_edge(style):
    """A close marker inside a word ("New Jers]ey") labelled "Jers" and made "ey" an O token:
    67% of sw WikiANN rows with such a marker. The span takes the whole word when that is more
    like the entity's own translation; a suffix after the entity ("[Paris]te") stays split."""
    ms = MarkerStyle(style)
    ents = [Entity(0, "LOC", "New Jersey")]
    res = Projector(ms, PATTERN)(f"huko {ms.open(0)} New Jers{ms.close(0)}ey leo", ents, ["New Jersey"])
    assert res.tokens == ["huko", "New", "Jersey", "leo"] and res.tags == ["O", "B-LOC", "I-LOC", "O"]
    res = Projector(ms, PATTERN)(f"Ki{ms.open(0)}swahili{ms.close(0)} ni", [Entity(0, "ORG", "Kiswahili")], ["Kiswahili"])
    assert res.tokens == ["Kiswahili", "ni"] and res.tags == ["B-ORG", "O"]
    # Too small a gain for a moved window (a long entity): only the snap repairs it.
    name = "Agbègbè Ìjọba Ìbílẹ̀ Onna"
    res = Projector(ms, PATTERN)(f"{ms.open(0)} {name[:-2]}{ms.close(0)}na .", [Entity(0, "LOC", name)], [name])
    assert res.tokens == name.split() + ["."] and res.tags == ["B-LOC", "I-LOC", "I-LOC", "I-LOC", "O"]
    assert res.repairs == ["snapped_to_word"]
    res = Projector(ms, PATTERN)(f"{ms.open(0)}Paris{ms.close(0)}te", [Entity(0, "LOC", "Paris")], ["Paris"])
    assert res.tokens == ["Paris", "te"] and res.tags == ["B-LOC", "O"] and res.repairs == []


def test_escaped_and_doubled_markers_are_read_as_markers():
    """``&lt;e0&gt;`` (HTML-escaped, as web-trained models write it) and ``[[ x ]]`` (wiki-link
    style): the first left tokens ``&`` ``lt`` ``;`` ``e0`` in an accepted row, the second
    rejected the row (2 marked spans for 1 entity)."""
    ms, ents = MarkerStyle("numbered"), [Entity(0, "LOC", "Paris")]
    res = Projector(ms, PATTERN)("we saw &lt;e0&gt; Paris &lt;/e0&gt; today", ents, ["Zzz"])
    assert res.tokens == ["we", "saw", "Paris", "today"] and res.tags == ["O", "O", "B-LOC", "O"]
    ms, ents = MarkerStyle("square"), [Entity(0, "LOC", "Paris"), Entity(1, "LOC", "France")]
    res = Projector(ms, PATTERN)("we saw [[Paris]] and [[ France ]]", ents, ["Zzz", "Qqq"])
    assert res.tags == ["O", "O", "B-LOC", "O", "B-LOC"] and res.repairs == []
    # Nested markers around different words are still ambiguous.
    res = Projector(ms, PATTERN)("we saw [ [ New ] York ] today", [Entity(0, "LOC", "New York")], ["Zzz"])
    assert res.reject == "projection: 2 marked spans for 1 entities"


def test_a_lone_numbered_marker_places_its_entity_before_a_better_match_elsewhere():
    """With its close marker lost, the entity went to the best match of its own translation in
    the whole sentence: "<e0> Tailandda ... Tailand" labelled the second, unmarked mention (ug
    WikiANN with an inflected first mention: 0.8% of rows with one marker lost)."""
    ms, ents = MarkerStyle("numbered"), [Entity(0, "LOC", "Thailand")]
    for out in ("<e0> Tailandda 1976 yili , Tailand xanishi", "Tailandda </e0> 1976 yili , Tailand xanishi"):
        res = Projector(ms, PATTERN)(out, ents, ["Tailand"])
        assert res.tags == ["B-LOC", "O", "O", "O", "O", "O"] and res.repairs == ["dangling"], out
    # A lone marker next to nothing like the entity: the best match anywhere, as before.
    res = Projector(ms, PATTERN)("<e0> 1976 yili , Tailand xanishi", ents, ["Tailand"])
    assert res.tags == ["O", "O", "O", "B-LOC", "O"] and res.repairs == ["fuzzy"]


@pytest.mark.parametrize("style", ["square", "numbered"])
def test_punctuation_beyond_the_source_entitys_own_is_left_out(style):
    """A source entity ending in punctuation kept whatever punctuation the marker moved over:
    "( Remember Me ) ''" labelled the quote (0.7% of sw WikiANN rows with a slipped marker,
    3.1% of am)."""
    ms = MarkerStyle(style)
    name = "R U Still Down ? ( Remember Me )"
    res = Projector(ms, PATTERN)(f"{ms.open(0)} {name} '' {ms.close(0)} .", [Entity(0, "ORG", name)])
    assert res.tags == ["B-ORG"] + ["I-ORG"] * 8 + ["O", "O", "O"]  # the quote is two tokens
    res = Projector(ms, PATTERN)(f"{ms.open(0)} « Paris » . {ms.close(0)}", [Entity(0, "LOC", "« Paris »")])
    assert res.tags == ["B-LOC", "I-LOC", "I-LOC", "O"]


SAME = "Tanzania ni mwanachama wa baraza la Tanzania leo".split()
SAME_TAGS = ["B-LOC", "O", "O", "O", "O", "O", "B-ORG", "O"]


@pytest.mark.parametrize("reorder", [False, True])
def test_square_markers_reject_one_text_with_two_types(reorder):
    """Square spans of "Tanzania" LOC and "Tanzania" ORG differ only by order: a reordering
    translation swapped their types (the projection filter saw the same multiset of types)."""
    res = run("square", FakeMTConfig(mode="identity", reorder=reorder), SAME, SAME_TAGS)
    assert res.reject is not None and res.reject.startswith("projection_ambiguous:")
    assert "LOC 'Tanzania'" in res.reject and "ORG 'Tanzania'" in res.reject and "numbered" in res.reject
    # Numbered markers keep each mention's type; same text and same type is no ambiguity.
    res = run("numbered", FakeMTConfig(mode="identity", reorder=reorder), SAME, SAME_TAGS)
    expected = list(reversed(SAME_TAGS)) if reorder else SAME_TAGS
    assert res.reject is None and res.tags == expected
    res = run("square", FakeMTConfig(mode="identity", reorder=reorder), SAME, ["B-LOC", *["O"] * 5, "B-LOC", "O"])
    assert res.reject is None and res.tags.count("B-LOC") == 2
