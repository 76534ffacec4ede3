"""A CRF head decodes a sentence longer than ``max_length`` pieces as one sequence, not chunk by chunk.

Each chunk of a long sentence used to be decoded by its own Viterbi pass, a continuation chunk
starting open (it may begin inside an entity). Such a chunk could start with ``I-X`` right after a
chunk that ended in ``O``: a tag that continues no span, which the CRF's closed transitions are
there to forbid (the MiniLM recipe on WikiANN ug dev, sentences of 163 and 140 pieces at
``max_length`` 128). ``predict_tags`` now joins a sentence's word emissions from all its chunks and
decodes them in one pass.
"""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
WORDS = ["alma", "kitab", "derya", "tagh", "shehir", "bagh", "yol", "kun", "ay", "su", "ot", "qar"]
MAX_LENGTH = 12  # [CLS] [ug] [SEP] + 9 pieces: the long sentences below need 2 or 3 chunks


def _sentence(n: int, shift: int) -> list[str]:
    return [WORDS[(i * 5 + shift) % len(WORDS)] for i in range(n)]


SENTENCES = [_sentence(n, k) for k, n in enumerate((14, 3, 20, 7, 16, 1, 11))]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> str:
    from lrl.train.finetune_scratch import build_scratch_encoder

    return build_scratch_encoder(tmp_path_factory.mktemp("enc"), SENTENCES * 3, ["ug"], vocab_size=120,
                                 hidden=16, layers=1, heads=2)


def _tagger(encoder: str):
    """A CRF tagger built as ``train_tagger`` builds one from its config."""
    from lrl.train.finetune_config import FinetuneConfig
    from lrl.train.finetune_model import Tagger

    cfg = FinetuneConfig(head="crf", max_length=MAX_LENGTH)
    torch.manual_seed(0)
    return Tagger.from_encoder(encoder, LABELS, cfg.head, cfg.dropout, cfg.max_length, cfg.lang_tag)


def _chunks(tagger):
    from lrl.train.align import encode

    chunks, _ = encode(tagger.tokenizer, SENTENCES, None, tagger.max_length, ["ug"] * len(SENTENCES))
    per_sentence = [sum(c.sentence == i for c in chunks) for i in range(len(SENTENCES))]
    assert max(per_sentence) in (2, 3) and min(per_sentence) == 1  # long and short sentences mixed
    return chunks, per_sentence


@torch.no_grad()
def _chunk_emissions(tagger, chunk) -> torch.Tensor:
    """The word emissions ``[n_words, L]`` of one chunk, fed alone."""
    from lrl.train.finetune_model import collate

    batch = collate([chunk], tagger.tokenizer.pad_token_id, "cpu", tagger.lang_types)
    return tagger.word_emissions(batch)[0, : len(chunk.first)].float()


def _valid_iob2(tags: list[str]) -> bool:
    """No ``I-X`` that continues no span (after ``O``, another type, or first in the sentence)."""
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            return False
        prev = tag
    return True


def test_a_long_sentence_is_one_viterbi_pass_over_its_chunks_emissions(encoder):
    """``predict_tags`` (small batches, so a sentence's chunks are in different ones) gives, for
    every sentence, the Viterbi path over the word emissions of all its chunks put together."""
    from lrl.evaluate.predict import predict_tags

    tagger = _tagger(encoder)
    with torch.no_grad():
        for p in (tagger.crf.start, tagger.crf.end, tagger.crf.trans):
            p.normal_()
    for m in tagger.modules():
        m.eval()
    chunks, per_sentence = _chunks(tagger)
    expected = []
    for i, words in enumerate(SENTENCES):
        em = torch.cat([_chunk_emissions(tagger, c) for c in chunks if c.sentence == i])
        assert em.shape[0] == len(words)
        (path,) = tagger.crf.decode(em.unsqueeze(0), torch.ones(1, len(words), dtype=torch.bool))
        expected.append([LABELS[j] for j in path])
    got, stats = predict_tags(tagger, SENTENCES, ["ug"] * len(SENTENCES), batch_size=2)
    assert stats.split_sentences == sum(n > 1 for n in per_sentence)
    assert got == expected
    assert all(_valid_iob2(tags) for tags in got)


def test_no_i_tag_after_o_across_a_chunk_boundary(encoder):
    """Every word's emissions favour ``I-PER`` (+3) over ``O`` (0) and ``B-X`` (-5), and ``I-PER``
    after ``I-PER`` costs 10. A sentence may not start with ``I-PER`` nor put it after ``O``, so
    its best path is all ``O`` (``B-PER I-PER`` scores -2). Chunk by chunk, each continuation
    chunk started open and so began with ``I-PER`` right after an ``O``."""
    from lrl.evaluate.predict import predict_tags
    from lrl.train.finetune_model import collate

    tagger = _tagger(encoder)
    head = tagger.model.classifier
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([0.0, -5.0, -5.0, -5.0, 3.0]))
        tagger.crf.trans[LABELS.index("I-PER"), LABELS.index("I-PER")] = -10.0
    for m in tagger.modules():
        m.eval()
    chunks, per_sentence = _chunks(tagger)
    # The construction: decoded chunk by chunk (open start on continuation chunks), the joined
    # tags of every long sentence hold an I-PER after an O.
    batch = collate(chunks, tagger.tokenizer.pad_token_id, "cpu", tagger.lang_types)
    with torch.no_grad():
        paths = tagger.crf.decode(tagger.word_emissions(batch), batch["word_mask"], batch["continues"])
    per_chunk = [[] for _ in SENTENCES]
    for c, path in zip(chunks, paths):
        per_chunk[c.sentence] += [LABELS[j] for j in path]
    long = [i for i, n in enumerate(per_sentence) if n > 1]
    assert long and not any(_valid_iob2(per_chunk[i]) for i in long)

    got, _ = predict_tags(tagger, SENTENCES, ["ug"] * len(SENTENCES), batch_size=3)
    assert all(_valid_iob2(tags) for tags in got)
    assert got == [["O"] * len(s) for s in SENTENCES]


def test_the_linear_head_still_takes_each_words_best_label(encoder):
    """Without a CRF nothing is decoded: each word gets its own argmax, chunk by chunk as before."""
    from lrl.evaluate.predict import predict_tags
    from lrl.train.finetune_model import Tagger

    torch.manual_seed(0)
    tagger = Tagger.from_encoder(encoder, LABELS, "linear", None, MAX_LENGTH)
    for m in tagger.modules():
        m.eval()
    chunks, _ = _chunks(tagger)
    expected = []
    for i in range(len(SENTENCES)):
        em = torch.cat([_chunk_emissions(tagger, c) for c in chunks if c.sentence == i])
        expected.append([LABELS[j] for j in em.argmax(-1).tolist()])
    got, _ = predict_tags(tagger, SENTENCES, ["ug"] * len(SENTENCES), batch_size=2)
    assert got == expected


def test_evaluations_of_crf_models_are_named_by_the_decoding(tmp_path):
    """Evaluate folders of CRF models made by chunk-wise decoding are not reused; linear ones are."""
    from lrl.evaluate.command import CRF_DECODING, _decoding

    (tmp_path / "crf").mkdir()
    (tmp_path / "crf" / "crf.safetensors").write_bytes(b"x")
    (tmp_path / "linear").mkdir()
    assert _decoding({"ug": str(tmp_path / "crf"), "wo": str(tmp_path / "linear")}) == {"crf_decoding": CRF_DECODING}
    assert _decoding({"wo": str(tmp_path / "linear")}) == {}
