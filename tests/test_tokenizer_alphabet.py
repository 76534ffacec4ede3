"""Trained and extended tokenizers know the punctuation of their text's scripts even where the
training text never writes it (``lrl.model.alphabet``): mono/am.txt has no Ethiopic comma ``፣``,
FLORES Amharic has 686, each one an unknown piece before."""

from __future__ import annotations

import pytest

from lrl.model.config import TokenizerConfig
from lrl.model.tokenizer import train_tokenizer

ETHIOPIC = "፠፡።፣፤፥፦፧፨"


def _lines(path, n: int) -> list[str]:
    return [ln for ln in path.read_text(encoding="utf-8").splitlines()[:n] if ln.strip()]


@pytest.fixture(scope="module")
def texts(data_root) -> dict[str, list[str]]:
    am, yo = _lines(data_root / "mono" / "am.txt", 400), _lines(data_root / "mono" / "yo.txt", 400)
    assert not any(c in line for line in am for c in "፣፤”")  # what the test is about
    return {"am": am, "yo": yo}


@pytest.fixture(scope="module")
def flores_am(data_root) -> list[str]:
    lines = _lines(data_root / "parallel" / "flores200_devtest" / "amh_Ethi.devtest", 60)
    assert sum(line.count("፣") for line in lines) >= 20
    return lines


def _unknown_marks(tok, lines: list[str]) -> int:
    """Unknown pieces that stand for an Ethiopic punctuation mark."""
    out = 0
    for line in lines:
        enc = tok(line, return_offsets_mapping=True)
        out += sum(i == tok.unk_token_id and line[a:b].strip() in ETHIOPIC
                   for i, (a, b) in zip(enc["input_ids"], enc["offset_mapping"]))
    return out


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_trained_tokenizer_knows_ethiopic_punctuation_its_text_lacks(kind, texts, flores_am):
    tok = train_tokenizer(texts, TokenizerConfig(type=kind, vocab_size=1500, min_frequency=2))
    vocab = tok.get_vocab()
    assert all(c in vocab for c in ETHIOPIC + "”“")
    assert _unknown_marks(tok, flores_am) == 0  # was one per ፣ and ፤
    # Only the scripts of the text: no Arabic or Devanagari marks for am + yo.
    assert "،" not in vocab and "।" not in vocab


def test_extended_tokenizer_adds_the_missing_marks(texts, flores_am):
    from lrl.model.extend import extend_tokenizer

    base = train_tokenizer({"yo": texts["yo"]}, TokenizerConfig(vocab_size=600, min_frequency=2))
    ext, added = extend_tokenizer(base, {"am": texts["am"]},
                                  TokenizerConfig(mode="extend", base="x", vocab_size=800, min_frequency=2))
    assert "፣" in added and "፤" in added
    assert _unknown_marks(ext, flores_am) == 0


def test_the_alphabet_is_the_same_on_every_training(texts):
    cfg = TokenizerConfig(vocab_size=1500, min_frequency=2)
    assert train_tokenizer(texts, cfg).get_vocab() == train_tokenizer(texts, cfg).get_vocab()


@pytest.mark.parametrize("mode", ["train", "extend"])
def test_finished_tokenizers_of_the_old_alphabet_rebuild(mode, tmp_path, monkeypatch):
    from lrl.job import load_job
    from lrl.model import command
    from lrl.pipeline.stage import StageContext

    (tmp_path / "am.txt").write_text("ሆነ።\n", encoding="utf-8")
    args = [f"data.root={tmp_path}", f"output.root={tmp_path / 'runs'}", "data.text=[{path: am.txt, lang: am}]",
            f"tokenizer.mode={mode}", f"tokenizer.base={tmp_path}"]
    now = command.stage_output(StageContext(load_job(None, args))).hash
    monkeypatch.setattr(command, "ALPHABET_VERSION", command.ALPHABET_VERSION - 1)
    assert command.stage_output(StageContext(load_job(None, args))).hash != now


def test_a_small_vocabulary_is_not_filled_with_punctuation():
    from lrl.model.alphabet import COMMON, MAX_SHARE

    text = {"yo": ["ọkọ̀ ẹ̀kọ́ ní ilé"] * 5}
    tok = train_tokenizer(text, TokenizerConfig(vocab_size=100, min_frequency=1))
    assert sum(c in tok.get_vocab() for c in COMMON) == int(100 * MAX_SHARE)
    assert "“" in tok.get_vocab() and "”" in tok.get_vocab()  # the most wanted come first


def _chars_line_by_line(tok, lines: list[str]) -> set[str]:
    """The characters found inside a word, every line pre-tokenized on its own (the reference)."""
    inner: set[str] = set()
    for line in lines:
        text = tok.normalizer.normalize_str(line) if tok.normalizer is not None else line
        for word, _ in tok.pre_tokenizer.pre_tokenize_str(text):
            inner.update(word[1:])
    return inner


@pytest.mark.parametrize("pre", ["bert", "whitespace", "split-then-digits", "metaspace", "digits", "bytelevel"])
def test_inner_characters_from_distinct_words_match_every_line(texts, pre):
    """The character pass pre-tokenizes each distinct word once instead of every line (0.73x
    the time on 50,000 ug lines): the characters it finds inside words must be the same,
    whitespace of every kind and the separators Python splits at but tokenizers do not included."""
    from tokenizers import pre_tokenizers

    from lrl.model.tokenizer import _chars, _normalizer, new_backend

    tok, _ = new_backend("wordpiece", 1000, 1, ["[UNK]"], normalizer=_normalizer(False, False, nfkc=False))
    tok.pre_tokenizer = {"bert": pre_tokenizers.BertPreTokenizer(), "whitespace": pre_tokenizers.Whitespace(),
                         "split-then-digits": pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                                       pre_tokenizers.Digits()]),
                         # these keep whitespace in a piece or split across it: every line as it is
                         "metaspace": pre_tokenizers.Metaspace(prepend_scheme="never"),
                         "digits": pre_tokenizers.Digits(), "bytelevel": pre_tokenizers.ByteLevel()}[pre]
    tok.normalizer = None  # keeps the odd whitespace and separators below as they are
    odd = ["a\u00a0bc d\u3000ef", "gh\x1cij kl\x1fmn", "op\u2028qr st\tuv", "“wx”, yz!", "፣ቀ፤ሀ"]
    lines = texts["am"][:50] + texts["yo"][:50] + odd
    seen, inner = _chars(tok, {"mix": lines})
    assert inner == _chars_line_by_line(tok, lines)
    assert "x" in inner
    if pre in ("bert", "whitespace", "split-then-digits"):
        assert "\u00a0" not in inner and "\u3000" not in inner
    if pre == "bert":  # a word to BERT (no whitespace, no punctuation), not to Whitespace's regex
        assert {"\x1c", "i", "\x1f", "n"} <= inner
    assert seen["\u00a0"] == 1 and sum(seen.values()) == sum(len(x) for x in lines) + len(lines) - 1


def test_no_pre_tokenizing_when_inner_characters_are_not_wanted():
    """Unigram (Metaspace first, so not by word) asks only for the counts: the per-line pass took
    5.8 s instead of 1.6 s on 50,000 mono/ug lines, its result thrown away."""
    from lrl.model.tokenizer import _chars, _normalizer, new_backend

    tok, _ = new_backend("unigram", 1000, 1, ["[UNK]"], normalizer=_normalizer(False, False))
    lines = ["ọkọ̀ ẹ̀kọ́ ní ilé", "ሰላም ዓለም።"]
    seen, inner = _chars(tok, {"mix": lines}, inner_too=False)
    assert inner == set() and seen["ሰ"] == 1


def test_a_sequence_whose_metaspace_marks_only_the_first_word_goes_line_by_line():
    """WhitespaceSplit then Metaspace(prepend_scheme="first") (transformers' Pegasus converter):
    only the text's first word gets "▁", so a word's pieces depend on where it stands."""
    from tokenizers import pre_tokenizers as P

    from lrl.model.tokenizer import _chars, new_backend

    tok, _ = new_backend("wordpiece", 1000, 1, ["[UNK]"])
    tok.normalizer = None
    tok.pre_tokenizer = P.Sequence([P.WhitespaceSplit(), P.Metaspace(prepend_scheme="first")])
    _, inner = _chars(tok, {"mix": ["xa yb", "zc"]})
    assert inner == {"x", "a", "b", "z", "c"}  # "z" starts the second line: "▁zc" line by line
