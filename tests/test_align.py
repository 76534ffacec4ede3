"""Sub-word alignment: first piece labelled, and predictions map back to every original token."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

WORDS = ["salam", "dunya", "bir", "ikki", "üch", "Ürümchi", "shehiri"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    from lrl.train.finetune_scratch import build_scratch_encoder

    # A tiny vocabulary (little more than the alphabet) so that long words split into many pieces.
    # Every letter also appears word-inside once, so that unseen words split instead of becoming [UNK].
    corpus = [WORDS] * 3 + [["x" + "".join(WORDS)]]
    path = build_scratch_encoder(tmp_path_factory.mktemp("tok"), corpus, ["ug"], vocab_size=50,
                                 hidden=16, layers=1)
    return AutoTokenizer.from_pretrained(path)


def _round_trip(tokenizer, sentences, max_length, langs=None):
    from lrl.train.align import IGNORE, encode, merge_predictions

    labels = [list(range(len(s))) for s in sentences]  # word index as label: any mix-up shows
    chunks, stats = encode(tokenizer, sentences, labels, max_length, langs)
    preds = []
    for c in chunks:
        assert len(c.input_ids) <= max_length
        assert sum(lab != IGNORE for lab in c.labels) == len(c.first)  # only first pieces labelled
        preds.append([c.labels[pos] for pos, _ in c.first])
    return merge_predictions(chunks, preds, [len(s) for s in sentences]), labels, chunks, stats


def test_many_piece_and_unknown_tokens_map_back_exactly(tokenizer):
    sent = ["Ürümchishehirisalamdunya", "☃", "\u200b", "", "salam", "x\x07", "\x07", "dunya"]
    got, labels, chunks, stats = _round_trip(tokenizer, [sent], max_length=64)
    assert got == labels
    pieces = tokenizer([sent[0]], is_split_into_words=True, add_special_tokens=False).input_ids
    assert len(pieces) >= 4  # really a many-piece token
    assert stats.empty_words == 3  # zero-width space, empty string and a bare control char
    assert stats.unk_words >= 1  # the snowman
    assert len(chunks) == 1 and len(chunks[0].first) == len(sent)


def test_long_sentences_are_chunked_at_word_boundaries_not_truncated(tokenizer):
    sents = [WORDS * 6, ["salam"], WORDS[::-1] * 3]
    got, labels, chunks, stats = _round_trip(tokenizer, sents, max_length=16, langs=["ug"] * 3)
    assert got == labels
    assert stats.split_sentences == 2 and len(chunks) > 3
    tag = tokenizer.convert_tokens_to_ids("[ug]")
    assert all(c.input_ids[:2] == [tokenizer.cls_token_id, tag] for c in chunks)
    assert all(c.input_ids[-1] == tokenizer.sep_token_id for c in chunks)


def test_a_token_longer_than_a_chunk_keeps_its_first_pieces(tokenizer):
    sent = ["salam", "Ürümchi" * 10, "dunya"]
    got, labels, chunks, stats = _round_trip(tokenizer, [sent], max_length=8)
    assert got == labels and stats.cut_words == 1


def test_no_lang_tag_when_the_tokenizer_lacks_it(tokenizer):
    from lrl.train.align import encode, lang_tag_ids

    assert lang_tag_ids(tokenizer, "wo") == []
    chunks, _ = encode(tokenizer, [["salam"]], None, 32, ["wo"])
    assert chunks[0].input_ids[1] != tokenizer.convert_tokens_to_ids("[ug]")
    chunks_off, _ = encode(tokenizer, [["salam"]], None, 32, ["ug"], use_lang_tag=False)
    assert len(chunks_off[0].input_ids) == len(chunks[0].input_ids)


def test_merge_refuses_missing_predictions(tokenizer):
    from lrl.train.align import encode, merge_predictions

    chunks, _ = encode(tokenizer, [["salam", "dunya"]], None, 32)
    with pytest.raises(AssertionError):
        merge_predictions(chunks, [[0]], [2])


def test_round_trip_property_on_random_sentences(tokenizer):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    # Letters the tokenizer knows, letters it does not (-> [UNK]) and characters it drops entirely.
    alphabet = st.sampled_from(list("salmdunyabirkhüÜe") + ["☃", "Ω", "\u200b", "\x07", "-", "."])
    words = st.text(alphabet, min_size=0, max_size=30)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.lists(words, min_size=1, max_size=25), min_size=1, max_size=4), st.integers(4, 40))
    def check(sentences, max_length):
        got, labels, _, stats = _round_trip(tokenizer, sentences, max_length)
        assert got == labels and stats.words == sum(map(len, sentences))

    check()
