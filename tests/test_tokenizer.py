"""Tokenizer training: tag tokens atomic, BERT specials, NFKC without lowercasing, HF round trip,
statistics, and the ``lrl tokenizer`` stage end to end."""

from __future__ import annotations

import json

import pytest

from lrl.model.config import TokenizerConfig
from lrl.model.tokenizer import (
    SPECIAL_TOKENS,
    char_stats,
    lang_tag,
    tag_langs,
    tokenizer_stats,
    train_tokenizer,
)

UG = ["ئوتلاق ياۋا مۈشۈكى گۆشخور ھايۋان", "يىلپىز مۈشۈك ئائىلىسىگە تەۋە", "ئۇيغۇرچە ۋىكىپىدىيە"] * 40
WO = ["Dafa am ay kilifa ci réew mi", "Ñoom ñépp dañu dem Ndakaaru", "Wolof làkk la"] * 40


def _lines(path, n):
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("# doc"):
            out.append(line.strip())
        if len(out) >= n:
            break
    return out


def test_lang_tag_uses_iso_codes():
    assert lang_tag("ug") == "[ug]"
    assert lang_tag("uig_Arab") == "[uig_Arab]"
    with pytest.raises(ValueError, match="ISO 639"):
        lang_tag("Uyghur")


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_trained_tokenizer_has_specials_and_atomic_tags(kind, tmp_path):
    from transformers import AutoTokenizer

    tok = train_tokenizer({"ug": UG, "wo": WO}, TokenizerConfig(type=kind, vocab_size=150, min_frequency=1))
    assert tok.convert_ids_to_tokens(list(range(7))) == SPECIAL_TOKENS + ["[ug]", "[wo]"]
    assert tag_langs(tok) == ["ug", "wo"]
    ids = tok("[ug] " + UG[0] + " [wo]")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert ids[1] == tok.convert_tokens_to_ids("[ug]") and ids[-2] == tok.convert_tokens_to_ids("[wo]")
    # glued to text a tag is still one token (special tokens are matched before pre-tokenization)
    assert tok.convert_tokens_to_ids("[wo]") in tok("x[wo]y")["input_ids"]

    tok.save_pretrained(tmp_path)
    back = AutoTokenizer.from_pretrained(tmp_path)
    for text in (UG[1], WO[1], "[wo] " + WO[2]):
        assert back(text)["input_ids"] == tok(text)["input_ids"]
    assert back.mask_token == "[MASK]" and back.pad_token_id == 0
    assert tag_langs(back) == ["ug", "wo"]


def test_unigram_keeps_punctuation_glued_and_decodes_back():
    """Metaspace before Punctuation: ``la,`` is ``▁la`` + ``,``. In the other order every
    punctuation mark got a ``▁`` of its own (often an extra piece) and decoding put a space
    before it, so text did not round-trip."""
    lines = [f"Wolof làkk la, ci Senegaal (ak Gàmbi). Dafa am ay kilifa {i}." for i in range(60)] + WO
    tok = train_tokenizer({"wo": lines}, TokenizerConfig(type="unigram", vocab_size=150, min_frequency=1))
    text = "Wolof làkk la, ci Senegaal (ak Gàmbi)."
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    pieces = tok.convert_ids_to_tokens(ids)
    assert pieces[pieces.index(",") - 1] != "▁"  # no word marker of its own before the comma


def test_default_normalization_keeps_case_and_uyghur_letters():
    tok = train_tokenizer({"ug": UG, "wo": WO}, TokenizerConfig(vocab_size=200, min_frequency=1))
    norm = tok.backend_tokenizer.normalizer
    assert norm.normalize_str("Dafa") == "Dafa"  # no lowercasing
    assert norm.normalize_str("ئۇ") == "ئۇ"  # U+0626 keeps its hamza (accent stripping would drop it)
    assert norm.normalize_str("ﻻ") == "لا"  # NFKC folds presentation forms
    lower = train_tokenizer({"wo": WO}, TokenizerConfig(vocab_size=100, min_frequency=1, lowercase=True))
    assert lower.backend_tokenizer.normalizer.normalize_str("Dafa") == "dafa"


def test_stats_count_unknown_pieces_and_words():
    tok = train_tokenizer({"wo": WO}, TokenizerConfig(vocab_size=120, min_frequency=1))
    known = tokenizer_stats(tok, WO[:3])
    assert known["unk_rate"] == 0.0 and known["words"] == 15
    assert known["pieces_per_word"] >= 1.0
    unknown = tokenizer_stats(tok, ["Dafa 漢字 ci"])  # Han characters never seen: one unknown word of 3
    assert unknown["unk_word_rate"] == pytest.approx(1 / 3)
    assert 0 < unknown["unk_rate"] < 1
    assert char_stats(["ab cde"]) == {"unk_rate": 0.0, "unk_word_rate": 0.0, "pieces_per_word": 2.5,
                                      "pieces": 5, "words": 2}


def test_tokenizer_stage_trains_and_is_idempotent(tmp_path, data_root):
    from transformers import AutoTokenizer

    from lrl.job import load_job
    from lrl.model.command import run_tokenizer
    from lrl.pipeline.stage import StageContext

    cfg = load_job(None, [f"data.root={data_root}", f"output.root={tmp_path}",
                          "data.text=[{path: mono/ug.txt, lang: ug, max_lines: 1500},"
                          " {path: mono/wo.txt, lang: wo, max_lines: 1500}]",
                          "tokenizer.vocab_size=1500", "tokenizer.eval_lines=200"])
    path = run_tokenizer(StageContext(cfg))
    stats = json.loads((tmp_path / path.rsplit("/", 1)[1] / "stats.json").read_text())
    assert set(stats["langs"]) == {"ug", "wo"}
    for s in stats["langs"].values():
        # scored on pretraining's held-out slice (5% of the rows, whole documents), not trained on
        assert 50 <= s["eval_lines"] == min(200, s["pretrain_heldout_lines"])
        assert 1200 <= s["train_lines"] and s["train_lines"] + s["pretrain_heldout_lines"] <= 1500
        # trained subwords are far shorter than characters per word
        assert s["after"]["pieces_per_word"] < s["before"]["pieces_per_word"] / 1.5
    tok = AutoTokenizer.from_pretrained(path)
    assert len(tok) == 1500 and tag_langs(tok) == ["ug", "wo"]
    # names transformers 4 knows too (tests/test_model_folder.py)
    conf = json.loads((tmp_path / path.rsplit("/", 1)[1] / "tokenizer_config.json").read_text())
    assert conf["tokenizer_class"] == "PreTrainedTokenizerFast" and conf["additional_special_tokens"] == ["[ug]", "[wo]"]
    mtime = (tmp_path / path.rsplit("/", 1)[1] / "manifest.json").stat().st_mtime
    assert run_tokenizer(StageContext(cfg)) == path
    assert (tmp_path / path.rsplit("/", 1)[1] / "manifest.json").stat().st_mtime == mtime


def test_tokenizer_stage_reads_generate_text(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lrl.job import load_job
    from lrl.model.command import run_tokenizer
    from lrl.pipeline.stage import StageContext

    gen = tmp_path / "generate-x"
    for lang, lines in (("ug", UG), ("wo", WO)):
        (gen / "text" / f"lang={lang}").mkdir(parents=True)
        pq.write_table(pa.table({"id": [str(i) for i in range(len(lines))], "text": lines}),
                       gen / "text" / f"lang={lang}" / "part-0.parquet")
    cfg = load_job(None, [f"output.root={tmp_path}/runs", "tokenizer.vocab_size=150", "tokenizer.min_frequency=1"])
    path = run_tokenizer(StageContext(cfg, {"generate": str(gen)}))
    manifest = json.loads((tmp_path / "runs" / path.rsplit("/", 1)[1] / "manifest.json").read_text())
    assert manifest["source"] == "generate" and manifest["langs"] == ["ug", "wo"]


def test_tokenizer_stage_without_text_is_a_clear_error(tmp_path):
    from lrl.data.files import InputError
    from lrl.job import load_job
    from lrl.model.command import run_tokenizer
    from lrl.pipeline.stage import StageContext

    with pytest.raises(InputError, match="data.text"):
        run_tokenizer(StageContext(load_job(None, [f"output.root={tmp_path}"])))


def test_extend_mode_needs_a_base():
    from lrl.config import ConfigError
    from lrl.job import load_job

    with pytest.raises(ConfigError, match="tokenizer.base"):
        load_job(None, ["tokenizer.mode=extend"])


def test_tag_id_names_a_missing_language():
    from lrl.model.tokenizer import tag_id

    tok = train_tokenizer({"wo": WO}, TokenizerConfig(vocab_size=100, min_frequency=1))
    assert tag_id(tok, "wo") == 5
    with pytest.raises(ValueError, match=r"no tag token \[ug\]"):
        tag_id(tok, "ug")


def test_lrl_tokenizer_command_extends_a_base(tmp_path, capsys):
    """Pulse test of the entry point: ``lrl tokenizer CONFIG overrides`` in extend mode."""
    from transformers import AutoTokenizer

    from lrl.cli import main

    base = train_tokenizer({"wo": WO}, TokenizerConfig(vocab_size=100, min_frequency=1))
    base.save_pretrained(tmp_path / "base")
    (tmp_path / "ug.txt").write_text("# doc x\n" + "\n".join(UG) + "\n", encoding="utf-8")
    (tmp_path / "job.yaml").write_text(
        "data:\n  text:\n    - {path: ug.txt, lang: ug}\n"
        f"output:\n  root: {tmp_path / 'runs'}\n", encoding="utf-8")
    rc = main(["tokenizer", str(tmp_path / "job.yaml"), "tokenizer.mode=extend",
               f"tokenizer.base={tmp_path / 'base'}", "tokenizer.vocab_size=150", "tokenizer.min_frequency=1",
               "tokenizer.eval_lines=20"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"before = {tmp_path / 'base'}" in printed and "ug: unk" in printed
    (out,) = (tmp_path / "runs").glob("tokenizer-*")
    stats = json.loads((out / "stats.json").read_text())["langs"]["ug"]
    assert stats["before"]["unk_rate"] > 0.3 and stats["after"]["unk_rate"] == 0.0
    tok = AutoTokenizer.from_pretrained(out)
    assert all(tok.convert_tokens_to_ids(t) == i for t, i in base.get_vocab().items())
    added = (out / "added_tokens.txt").read_text(encoding="utf-8").split()
    assert added[-1] == "[ug]" and len(tok) == len(base) + len(added)


def test_lrl_tokenizer_command_names_a_bad_base_without_a_traceback(tmp_path, capsys):
    """A missing base folder surfaced as transformers' "Repo id must use alphanumeric chars"
    and a base of the wrong kind as a ValueError traceback; both are now one-line CLI errors."""
    from lrl.cli import main

    base = train_tokenizer({"wo": WO}, TokenizerConfig(vocab_size=100, min_frequency=1))
    base.save_pretrained(tmp_path / "base")
    (tmp_path / "ug.txt").write_text("\n".join(UG) + "\n", encoding="utf-8")
    (tmp_path / "job.yaml").write_text(
        "data:\n  text:\n    - {path: ug.txt, lang: ug}\n"
        f"output:\n  root: {tmp_path / 'runs'}\n", encoding="utf-8")
    job = [str(tmp_path / "job.yaml"), "tokenizer.mode=extend", "tokenizer.min_frequency=1"]
    assert main(["tokenizer", *job, f"tokenizer.base={tmp_path / 'nope'}"]) == 2
    err = capsys.readouterr().err  # a path, not a hub id: transformers' hub-id wording was noise
    assert f"tokenizer.base={tmp_path / 'nope'}: no such folder" in err and "Repo id" not in err
    assert main(["tokenizer", *job, f"tokenizer.base={tmp_path / 'base'}", "tokenizer.type=unigram"]) == 2
    assert "tokenizer.type=unigram but the base tokenizer is wordpiece" in capsys.readouterr().err


def test_a_base_under_home_is_loaded_and_hashed_as_its_folder(tmp_path, monkeypatch, capsys):
    """``tokenizer.base=~/base``: the checks expand ``~`` (a folder, so no error before the stage),
    but the stage handed "~/base" to transformers, which took it for a hub id: "cannot load a
    tokenizer (not a tokenizer folder): Repo id must use alphanumeric chars", of a tokenizer folder.
    Loaded and hashed as the folder it names (an edited base must not reuse the old output)."""
    from lrl.cli import main
    from lrl.model.command import _base_fingerprint

    monkeypatch.setenv("HOME", str(tmp_path))
    base = train_tokenizer({"wo": WO}, TokenizerConfig(vocab_size=100, min_frequency=1))
    base.save_pretrained(tmp_path / "base")
    (tmp_path / "ug.txt").write_text("\n".join(UG) + "\n", encoding="utf-8")
    (tmp_path / "job.yaml").write_text("data:\n  text:\n    - {path: ug.txt, lang: ug}\n"
                                       f"output:\n  root: {tmp_path / 'runs'}\n", encoding="utf-8")
    assert main(["tokenizer", str(tmp_path / "job.yaml"), "tokenizer.mode=extend", "tokenizer.base=~/base",
                 "tokenizer.vocab_size=150", "tokenizer.min_frequency=1", "tokenizer.eval_lines=20"]) == 0, \
        capsys.readouterr().err
    assert "before = ~/base" in capsys.readouterr().out
    assert _base_fingerprint("~/base") == _base_fingerprint(str(tmp_path / "base")) != "~/base"


def test_a_missing_relative_base_is_a_path_error_not_a_hub_one(tmp_path, monkeypatch, capsys):
    """``tokenizer.base=models/x`` (no such folder) was taken for a hub id: a minute of retries, then
    "couldn't connect to 'https://huggingface.co'", no folder named. A value no hub id can be is a
    one-line error naming the folder as resolved, from ``lrl tokenizer`` and ``lrl pretrain`` and
    their dry runs; a bare ``a/b`` may be a hub id, and its hub error says no such folder exists."""
    from lrl.cli import main
    from lrl.data.local_or_hub import looks_like_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()  # models/x: a folder of models/, not the hub's org "models"
    assert not any(map(looks_like_path, ("bert-base-multilingual-cased", "org/name", "xlm-roberta-base")))
    assert all(map(looks_like_path, ("models/x", "~/x", "../x", "/x", "a/b/c", "a b", "a--b/c")))
    (tmp_path / "ug.txt").write_text("\n".join(UG) + "\n", encoding="utf-8")
    (tmp_path / "job.yaml").write_text("data:\n  text:\n    - {path: ug.txt, lang: ug}\n"
                                       f"output:\n  root: {tmp_path / 'runs'}\n", encoding="utf-8")
    for base, resolved in (("models/x", "models/x"), ("./y", "y"), ("lib/models/x", "lib/models/x")):
        for command, dry in (("tokenizer", []), ("tokenizer", ["--dry-run"]), ("pretrain", ["--dry-run"])):
            assert main([command, "job.yaml", "tokenizer.mode=extend", f"tokenizer.base={base}", *dry]) == 2
            err = capsys.readouterr().err
            assert err == (f"lrl {command}: error: tokenizer.base={base}: no such folder ({tmp_path}/{resolved} not "
                           f"found; a relative tokenizer.base is read from the working folder {tmp_path})\n"), err
    assert main(["tokenizer", "job.yaml", "tokenizer.mode=extend", "tokenizer.base=org/name"]) == 2  # offline
    err = capsys.readouterr().err
    assert err.startswith(f"lrl tokenizer: error: tokenizer.base=org/name: no local folder {tmp_path}/org/name (a "
                          f"relative tokenizer.base is read from the working folder {tmp_path}), and as a Hugging "
                          "Face hub id it cannot be loaded") and err.count("\n") == 1, err


def test_unigram_mask_token_takes_the_space_before_it(tmp_path):
    """With Metaspace the space before ``[MASK]`` became a bare ``▁`` piece, so fill-mask asked
    for a piece after a word marker (training masks ``▁word`` pieces whole). Like XLM-R's
    ``<mask>``, the mask token now absorbs the space on its left, also after a save and load."""
    from transformers import AutoTokenizer

    tok = train_tokenizer({"wo": WO}, TokenizerConfig(type="unigram", vocab_size=100, min_frequency=1))
    tok.save_pretrained(tmp_path)
    for t in (tok, AutoTokenizer.from_pretrained(tmp_path)):
        ids = t("Wolof [MASK] la", add_special_tokens=False)["input_ids"]
        at = ids.index(t.mask_token_id)
        assert t.convert_ids_to_tokens(ids[at - 1]) != "▁", t.convert_ids_to_tokens(ids)
        assert t.mask_token_id == 4


@pytest.mark.parametrize("kind", ["unigram", "wordpiece"])
def test_whitespace_runs_make_no_pieces(kind, tmp_path):
    """Metaspace turned every extra space into a bare ``▁`` piece: masakhane's sw.txt has 120
    lines padded with ~9000 spaces, which packed into hundreds of sequences of nothing but ``▁``.
    Runs of whitespace normalise to one space, in the saved tokenizer too."""
    from transformers import AutoTokenizer

    padded = "Dafa am ay kilifa" + " " * 500 + "ci réew mi   "
    tok = train_tokenizer({"wo": WO + [padded] * 5}, TokenizerConfig(type=kind, vocab_size=150, min_frequency=1))
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    for t in (tok, again):
        ids = t(padded, add_special_tokens=False)["input_ids"]
        assert ids == t("Dafa am ay kilifa ci réew mi", add_special_tokens=False)["input_ids"]
        assert t.decode(ids) == "Dafa am ay kilifa ci réew mi"
    assert tokenizer_stats(tok, [padded])["pieces"] == tokenizer_stats(tok, ["Dafa am ay kilifa ci réew mi"])["pieces"]


def test_wordpiece_training_is_reproducible(data_root):
    """The WordPiece trainer's hash-order ids for ``##c`` pieces break merge ties: the same lines
    gave another vocabulary on every run (5 of 5 different on 2,000 ug + 2,000 wo lines)."""
    texts = {lang: (data_root / "mono" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()[:600]
             for lang in ("ug", "wo")}
    cfg = TokenizerConfig(type="wordpiece", vocab_size=1500)
    vocabs = [train_tokenizer(texts, cfg).get_vocab() for _ in range(4)]
    assert all(v == vocabs[0] for v in vocabs[1:])
    tok = train_tokenizer(texts, cfg)
    assert len(tok) == 1500 and tok.convert_ids_to_tokens([0, 5, 6]) == ["[PAD]", "[ug]", "[wo]"]
    # the ##c pieces listed for training are ordinary pieces, not special tokens
    assert not any(t.startswith("##") for t in tok.all_special_tokens)
    ids = tok("##a yaxshi")["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True).replace(" ", "") == "##ayaxshi"


def test_extension_stats_say_what_the_base_normalizer_erases(tmp_path, capsys):
    """An extended base keeps its normalizer: an uncased, accent-stripping one (MiniLM's kind)
    drops the hamza of Uyghur ئ (U+0626 -> ي) and Wolof's ñ/é, and stats.json said nothing of it.
    Arabic presentation forms, which such a normalizer leaves as they are, are counted too."""
    from lrl.cli import main
    from lrl.model.tokenizer import normalizer_effect

    base = train_tokenizer({"wo": WO}, TokenizerConfig(vocab_size=100, min_frequency=1, lowercase=True,
                                                       strip_accents=True))
    base.save_pretrained(tmp_path / "base")
    (tmp_path / "ug.txt").write_text("\n".join(UG) + "\n", encoding="utf-8")
    (tmp_path / "job.yaml").write_text(
        "data:\n  text:\n    - {path: ug.txt, lang: ug}\n"
        f"output:\n  root: {tmp_path / 'runs'}\n", encoding="utf-8")
    assert main(["tokenizer", str(tmp_path / "job.yaml"), "tokenizer.mode=extend", f"tokenizer.base={tmp_path / 'base'}",
                 "tokenizer.vocab_size=150", "tokenizer.min_frequency=1", "tokenizer.eval_lines=20"]) == 0
    assert "of ug words beyond case (removes ئ" in capsys.readouterr().out
    (out,) = (tmp_path / "runs").glob("tokenizer-*")
    norm = json.loads((out / "stats.json").read_text())["langs"]["ug"]["normalizer"]
    # 3 of the 11 words of the three lines (pretraining's held-out rows, all repeats of training
    # lines, leave the mix of the scored lines a little uneven)
    assert norm["words_changed_beyond_case"] == pytest.approx(3 / 11, abs=0.01) and "ئ" in norm["chars_removed"]
    wo = normalizer_effect(base, ["Ñoom ñépp réew", "ﺯﯙﺭﯛ"])
    assert wo["words_changed"] == pytest.approx(3 / 4) and {"ñ", "é"} <= set(wo["chars_removed"])
    cased = train_tokenizer({"wo": WO}, TokenizerConfig(vocab_size=100, min_frequency=1))
    assert normalizer_effect(cased, ["Ñoom ñépp ﺯﯙﺭﯛ"]) == {
        "words_changed": 0.0, "words_changed_beyond_case": 0.0, "forms_merged": 0, "chars_removed": {},
        "words_not_nfkc": 0.0}
    assert normalizer_effect(base, ["ﺯﯙﺭﯛ"])["words_not_nfkc"] == 0.0  # NFKC comes first in trained ones
