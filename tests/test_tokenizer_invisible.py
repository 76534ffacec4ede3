"""Invisible format characters in the text of lrl's trained tokenizers (``lrl.model.invisible``):
removed by the normalizer (ZWSP, word joiner, in-line BOM, soft hyphen, bidi controls), the
joiners ZWNJ / ZWJ kept and in the alphabet of joined scripts, and only the outputs of text that
holds such characters renamed."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrl.model.config import TokenizerConfig
from lrl.model.tokenizer import normalizer_effect, tokenizer_stats, train_tokenizer

SAMPLE = Path(__file__).resolve().parent.parent / "platform" / "lrl" / "resources" / "sample"
YO = ["ọkọ̀ ẹ̀kọ́ ní ilé ìwé", "àwọn ọmọ ń lọ sí ọjà", "ilé ìwé wa tóbi", "ọjà ńlá ní ìlú"] * 5
UG = ["بۇ كىتاب ناھايىتى ياخشى", "مەن مەكتەپكە باردىم", "ئۇيغۇر تىلى گۈزەل", "بىز ئۆيدە ئولتۇرىمىز"] * 5
GONE = "\u200b\u2060\ufeff\u00ad\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_the_normalizer_removes_invisible_characters_and_keeps_the_joiners(kind):
    tok = train_tokenizer({"yo": YO}, TokenizerConfig(type=kind, vocab_size=200, min_frequency=1))
    norm = tok.backend_tokenizer.normalizer
    assert norm.normalize_str("ọ" + "ọ".join(GONE) + "ọ") == "ọ" * (len(GONE) + 1)
    assert norm.normalize_str("a\u200cb\u200dc") == "a\u200cb\u200dc"
    assert norm.normalize_str("ilé \u200b ìwé") == "ilé ìwé"  # no double space left behind


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_an_unseen_zero_width_space_makes_no_unknown_word(kind):
    """mono/yo.txt's 72 ZWSP were one [UNK] word each for a WordPiece trained without them."""
    tok = train_tokenizer({"yo": YO}, TokenizerConfig(type=kind, vocab_size=200, min_frequency=1))
    words = [f"il{c}é" for c in GONE]
    assert tokenizer_stats(tok, words)["unk_word_rate"] == 0.0
    assert tokenizer_stats(tok, [" ".join(words)])["pieces"] == tokenizer_stats(tok, ["ilé " * len(GONE)])["pieces"]


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_joiners_join_the_alphabet_of_joined_script_text_that_writes_format_characters(kind):
    """mono/ug.txt writes ZWNJ 37 times, none in its first 3,000 lines: a word of wikiann/ug with
    one was [UNK]. Text without format characters (or in a script they do not join) keeps its
    alphabet, and with it its output folder's name."""
    cfg = TokenizerConfig(type=kind, vocab_size=300, min_frequency=1)
    marked = train_tokenizer({"ug": [*UG, "\u200fئۇيغۇر"]}, cfg)
    vocab = marked.get_vocab()
    assert "\u200c" in vocab and "\u200d" in vocab
    if kind == "wordpiece":
        assert "##\u200c" in vocab and "##\u200d" in vocab
    assert tokenizer_stats(marked, ["ئۇيغۇر\u200cتىلى", "مەن\u200dبىز"])["unk_word_rate"] == 0.0
    plain = train_tokenizer({"ug": UG}, cfg).get_vocab()
    latin = train_tokenizer({"yo": [*YO, "ilé\u200bìwé"]}, cfg).get_vocab()
    assert not any(j in piece for piece in [*plain, *latin] for j in "\u200c\u200d")


def test_the_statistics_count_no_removed_invisible_character_as_a_change():
    """BERT's normalizer (an extended MiniLM) removes every Cf character, as lrl's now removes the
    invisible ones: neither is a change of the word, the joiners BERT drops still are."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    bert = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    bert.normalizer = normalizers.BertNormalizer(clean_text=True, lowercase=False, strip_accents=False)
    bert.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    assert normalizer_effect(bert, ["ilé\u200bìwé ọjà\u2060"])["words_changed"] == 0.0
    assert normalizer_effect(bert, ["ئۇيغۇر\u200cچە"])["words_changed_beyond_case"] == 1.0


def _hash(tmp_path: Path, files: dict[str, str], root: Path | None = None, *args: str) -> str:
    """The tokenizer stage's hash for ``files`` (language: text, written to ``tmp_path``; or, with
    ``root``, language: path under it)."""
    from lrl.job import load_job
    from lrl.model import command
    from lrl.pipeline.stage import StageContext

    if root is None:
        root = tmp_path
        for lang, text in files.items():
            (tmp_path / f"{lang}.txt").write_text(text, encoding="utf-8")
        files = {lang: f"{lang}.txt" for lang in files}
    spec = ", ".join(f"{{path: {path}, lang: {lang}}}" for lang, path in files.items())
    cfg = load_job(None, [f"data.root={root}", f"output.root={tmp_path / 'runs'}", f"data.text=[{spec}]", *args])
    return command.stage_output(StageContext(cfg)).hash


def test_only_text_with_format_characters_renames_the_output(tmp_path, monkeypatch):
    from lrl.model import invisible

    (tmp_path / "m").mkdir()
    (tmp_path / "p").mkdir()
    marked, plain = {"yo": "ilé\u200bìwé\nọjà\n"}, {"yo": "iléìwé\nọjà\n"}
    before = _hash(tmp_path / "m", marked), _hash(tmp_path / "p", plain)
    monkeypatch.setattr(invisible, "FORMAT_CHARS", invisible.FORMAT_CHARS + 1)
    assert _hash(tmp_path / "m", marked) != before[0]
    assert _hash(tmp_path / "p", plain) == before[1]


@pytest.mark.parametrize(("args", "expected"), [
    ((), "f46d5add94c6"),
    (("tokenizer.type=unigram",), "a9364de71b15"),
])
def test_the_shipped_sample_keeps_its_output_name(tmp_path, args, expected):
    """The sample text holds no format character: its tokenizer folder keeps the name it had
    before ``lrl.model.invisible`` (finished quickstart runs are not trained again)."""
    texts = {"ug": "text/ug.txt", "sw": "text/sw.txt"}
    assert _hash(tmp_path, texts, SAMPLE, *args) == expected
