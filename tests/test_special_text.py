"""A special token's string typed in user text ("[MASK]", "[PAD]", a tag "[ug]", a word "[SEP]")
is read as its characters wherever lrl encodes text (pretraining packs, the auxiliary task,
fine-tuning and prediction, tokenizer statistics), and only the outputs whose text holds one get
a new hash (``lrl.model.special_text``)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

pytest.importorskip("transformers")

TYPED = "the cat [MASK] sat [ug] on [PAD] the mat [CLS] [SEP] [en]"


@pytest.fixture(scope="module", params=["wordpiece", "unigram"])
def tok_dir(request, tmp_path_factory) -> str:
    """A saved en + ug tokenizer of each kind lrl trains (tag tokens [en] and [ug])."""
    from tiny_corpora import EN, UG

    from lrl.model.config import TokenizerConfig
    from lrl.model.tokenizer import save_tokenizer, train_tokenizer

    tok = train_tokenizer({"en": EN, "ug": UG}, TokenizerConfig(type=request.param, vocab_size=120, min_frequency=1))
    path = tmp_path_factory.mktemp(request.param)
    save_tokenizer(tok, path)
    return str(path)


def _load(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _special_ids(tok) -> set[int]:
    return set(tok.all_special_ids)


def test_the_folder_names_every_special_token(tok_dir):
    from lrl.model.special_text import folder_specials

    tok = _load(tok_dir)
    assert folder_specials(tok_dir) == set(tok.all_special_tokens) >= {"[MASK]", "[PAD]", "[ug]", "[en]"}


def test_the_specials_of_a_folder_on_an_object_store_are_read_there(tok_dir, s3_store):
    """Encoders and tokenizers on s3 name the key as local ones do (read_json, no copy of the folder)."""
    from lrl.data.remote import upload_folder
    from lrl.model.special_text import folder_specials

    remote = s3_store.bucket() + "/tok"
    upload_folder(tok_dir, remote)
    assert folder_specials(remote) == folder_specials(tok_dir) and folder_specials(s3_store.bucket() + "/none") == set()


def test_packed_sequences_hold_only_the_specials_lrl_adds(tok_dir):
    """A typed "[PAD]" counted as padding (n_tokens, the attention mask), "[MASK]" was a
    protected id never predicted and "[ug]" said another language inside an English sequence."""
    from lrl.train.pretrain_data import pack_batch, pack_local

    tok = _load(tok_dir)
    pad, cls, sep = tok.pad_token_id, tok.cls_token_id, tok.sep_token_id
    en = tok.convert_tokens_to_ids("[en]")
    allowed = {tok.unk_token_id}  # characters the tiny vocabulary lacks ("M", "[") are unknown
    for packed in (pack_batch({"text": [TYPED], "lang": ["en"]}, tok_dir, 64, ["en", "ug"]),
                   pack_local(pa.table({"text": [TYPED], "lang": ["en"]}), tok_dir, 64, ["en", "ug"])["en"]):
        ids = packed["input_ids"][0].tolist()
        n = int(packed["n_tokens"][0])
        assert ids[:2] == [cls, en] and ids[n - 1] == sep and set(ids[n:]) <= {pad}, ids
        inner = ids[2: n - 1]
        assert not (set(inner) & (_special_ids(tok) - allowed)), tok.convert_ids_to_tokens(inner)
        assert len(inner) > len(TYPED.split()), inner  # each typed special is several pieces


def test_a_word_spelling_a_special_token_is_its_characters_when_fine_tuning(tok_dir):
    from lrl.train.align import encode

    tok = _load(tok_dir)
    words = ["the", "[SEP]", "cat", "[MASK]", "[ug]"]
    chunks, stats = encode(tok, [words], [[0, 1, 2, 3, 4]], 64, ["en"])
    ids = chunks[0].input_ids
    assert ids[:2] == [tok.cls_token_id, tok.convert_tokens_to_ids("[en]")] and ids[-1] == tok.sep_token_id
    assert not (set(ids[2:-1]) & (_special_ids(tok) - {tok.unk_token_id})), tok.convert_ids_to_tokens(ids)
    assert len(chunks[0].first) == len(words) and stats.words == len(words)


def test_conllu_words_of_the_auxiliary_task_are_their_characters(tok_dir):
    from lrl.data.conllu import ConlluSentence
    from lrl.train.pretrain_aux import tagging_arrays

    tok = _load(tok_dir)
    sent = ConlluSentence("s1", ["the", "[MASK]", "cat", "[SEP]"], ["DET", "X", "NOUN", "PUNCT"], ["-"] * 4)
    tag = tok.convert_tokens_to_ids("[en]")
    arrays = tagging_arrays([sent], "upos", ["DET", "NOUN", "PUNCT", "X"], tok, tag, 32)
    ids = [i for i in arrays["input_ids"][0].tolist() if i != tok.pad_token_id]
    assert ids[:2] == [tok.cls_token_id, tag] and ids[-1] == tok.sep_token_id
    assert not (set(ids[2:-1]) & (_special_ids(tok) - {tok.unk_token_id})), tok.convert_ids_to_tokens(ids)
    assert (arrays["labels"][0] != -100).sum() == 4  # one label per word, "[MASK]" and "[SEP]" too


def test_tokenizer_statistics_read_a_typed_special_as_characters(tok_dir):
    """stats.json counted a typed "[MASK]" or "[ug]" as one known piece each (4 pieces, none
    unknown, for this line): now the pieces of their characters, as pretraining reads them."""
    from lrl.model.tokenizer import tokenizer_stats

    tok = _load(tok_dir)
    line = "the [MASK] cat [ug]"
    ids = tok(line, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    assert not (set(ids) & (_special_ids(tok) - {tok.unk_token_id}))
    stats = tokenizer_stats(tok, [line])
    assert stats["pieces"] == len(ids) > 4 and stats["unk_rate"] == ids.count(tok.unk_token_id) / len(ids) > 0


def test_pretrain_hash_names_the_key_only_when_the_text_types_a_special(tmp_path, monkeypatch):
    """Every other pretraining keeps its folder (hours of training); one whose text or CoNLL-U
    file holds a special token's string of its tokenizer is trained again."""
    from pretrain_jobs import UG, WO, _job

    from lrl.job import load_job
    from lrl.model.config import TokenizerConfig
    from lrl.model.tokenizer import save_tokenizer, train_tokenizer
    from lrl.pipeline.stage import StageContext
    from lrl.train import pretrain

    tok = tmp_path / "tok"
    save_tokenizer(train_tokenizer({"ug": UG, "wo": WO}, TokenizerConfig(vocab_size=150, min_frequency=1)), tok)
    configs: list[dict] = []
    real = pretrain.StageOutput

    def spy(root, stage, config, inputs=None):
        configs.append(config)
        return real(root, stage, config, inputs)

    monkeypatch.setattr(pretrain, "StageOutput", spy)

    def key(line: str | None = None, conllu: str | None = None):
        job = _job(tmp_path, {}, conllu)
        if line is not None:
            with open(tmp_path / "wo.txt", "a", encoding="utf-8") as f:
                f.write(line + "\n")
        out, _, _ = pretrain.stage_output(StageContext(load_job(str(job)), upstream={"tokenizer": str(tok)}))
        return configs[-1].get("typed_specials"), out.hash

    plain, plain_hash = key()
    assert plain is None
    assert key("Dakar [1] mooy [mask] Senegaal [xx]")[0] is None  # no special token of this tokenizer
    for line in ("Dakar [MASK] Senegaal", "Dakar [ug] Senegaal", "[PAD]"):
        typed, typed_hash = key(line)
        assert typed == 1 and typed_hash != plain_hash, line
    conllu = tmp_path / "aux.conllu"
    conllu.write_text("# text = [ug] x\n1\t[ug]\t_\tX\tFW\t_\t0\troot\t_\t_\n2\tx\t_\tX\tFW\t_\t1\tdep\t_\t_\n\n",
                      encoding="utf-8")
    assert key(conllu=str(conllu))[0] == 1


def _ner(path: Path, sentences: list[list[str]]) -> None:
    path.write_text("\n\n".join("\n".join(f"{w}\tO" for w in s) for s in sentences) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def ner_job(tmp_path_factory) -> Path:
    """ug sentences with a word "[SEP]" in train, wo without any; a scratch encoder (with tags)."""
    from lrl.train.finetune_scratch import build_scratch_encoder

    tmp = tmp_path_factory.mktemp("ner")
    ug = [["bir", "ikki", "[SEP]"], ["salam", "dunya"]]
    wo = [["Dakar", "mooy", "péeyu"], ["Senegaal", "ak", "Gàmbi"]]
    for lang, rows in (("ug", ug), ("wo", wo)):
        _ner(tmp / f"{lang}_train.conll", rows)
        _ner(tmp / f"{lang}_dev.conll", [r for r in rows if "[SEP]" not in r])
        _ner(tmp / f"{lang}_test.conll", rows)
    build_scratch_encoder(tmp / "enc", ug + wo, ["ug", "wo"], vocab_size=80, hidden=16, layers=1)
    return tmp


def _cfg(job: Path, root: Path, *extra: str):
    from lrl.job import load_job

    ner = ", ".join(f"{{path: {job}/{lang}_{split}.conll, lang: {lang}, split: {split}}}"
                    for lang in ("ug", "wo") for split in ("train", "dev", "test"))
    return load_job(None, [f"data.ner=[{ner}]", f"output.root={root}", f"finetune.model={job / 'enc'}",
                           f"tune.model_path={job / 'enc'}", "evaluate.seeds=[0]", *extra])


class _Named(Exception):
    """Raised by the stand-in StageOutput: the stage's hash parts are known, nothing runs."""


@pytest.mark.parametrize("stage", ["finetune", "tune"])
def test_finetune_and_tune_hash_only_the_language_whose_words_type_a_special(ner_job, tmp_path, monkeypatch, stage):
    """Per language: ug's data print changes (a word "[SEP]"), wo's stays, so a finished wo group
    (finetune_reuse, tune.resume) is still taken. Not a file of the data changed: only the
    specials of the encoder's tokenizer name it."""
    import importlib

    from lrl.pipeline.stage import StageContext
    from lrl.tune.splits import fingerprint, language_splits

    module = importlib.import_module("lrl.train.finetune" if stage == "finetune" else "lrl.tune.stage")
    seen: list[dict] = []

    def named(root, name, config, inputs=None):
        seen.append(inputs)
        raise _Named

    monkeypatch.setattr(module, "StageOutput", named)
    cfg = _cfg(ner_job, tmp_path)
    with pytest.raises(_Named):
        (module.run_finetune if stage == "finetune" else module.run_tune)(StageContext(cfg))
    before = fingerprint(language_splits(StageContext(cfg), None, stage))  # as hashed without the fix
    data = seen[0]["data"]
    assert data["wo"] == before["wo"] and data["ug"] != before["ug"], (data, before)


def test_evaluate_hash_names_the_key_only_when_a_word_types_a_special(ner_job, tmp_path, monkeypatch):
    from lrl.evaluate import command
    from lrl.pipeline.stage import StageContext

    seen: list[dict] = []

    def named(root, name, config, inputs=None):
        seen.append(config)
        raise _Named

    monkeypatch.setattr(command, "StageOutput", named)
    for langs, typed in ((["wo"], None), (["ug", "wo"], 1)):
        ner = ", ".join(f"{{path: {ner_job}/{lang}_test.conll, lang: {lang}, split: test}}" for lang in langs)
        from lrl.job import load_job

        cfg = load_job(None, [f"data.ner=[{ner}]", f"output.root={tmp_path}", f"evaluate.model={ner_job / 'enc'}",
                              "evaluate.splits=[test]"])
        with pytest.raises(_Named):
            command.run_evaluate(StageContext(cfg), quiet=True)
        assert seen[-1].get("typed_specials") == typed, langs
    with pytest.raises(_Named):
        command.evaluate_files(str(ner_job / "enc"), str(ner_job / "ug_test.conll"), "ug", str(tmp_path))
    assert seen[-1].get("typed_specials") == 1
    with pytest.raises(_Named):
        command.evaluate_files(str(ner_job / "enc"), str(ner_job / "wo_test.conll"), "wo", str(tmp_path))
    assert "typed_specials" not in seen[-1]


def test_a_special_token_typed_in_a_sentence_is_translated_as_its_characters(tmp_path):
    """A special token's string typed in a source sentence (NLLB's language codes are special
    tokens: "eng_Latn") became that token's id in the middle of the input; the tokenizer's own
    "</s>" still ends it. (The tiny Marian's "</s>" and "<pad>" are also pieces of its Unigram
    vocabulary, which its Metaspace-only pre-tokenizer leaves whole: those the model itself still
    matches, split_special_tokens or not.)"""
    from tiny_corpora import EN, UG

    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate import hf
    from lrl.generate.translate.tiny import build_tiny_marian

    tiny_marian = build_tiny_marian(tmp_path, EN[:3] + UG[:3] + ["Paris is big ."], vocab_size=60)
    t = hf.HFTranslator(MTModelConfig(model=tiny_marian, max_length=48), "en", "ug")
    tok = t.tokenizer
    tok.add_special_tokens({"additional_special_tokens": ["eng_Latn"]})
    code = tok.convert_tokens_to_ids("eng_Latn")
    t.model.resize_token_embeddings(len(tok))  # a row for it, as a real model has
    seen = []
    generate = t.model.generate

    def spy(**kwargs):
        seen.append(kwargs["input_ids"].tolist())
        return generate(**kwargs)

    t.model.generate = spy
    t.translate(["Paris eng_Latn is big ."])
    (ids,) = seen[0]
    assert ids[-1] == tok.eos_token_id and code not in ids and tok.eos_token_id not in ids[:-1], \
        tok.convert_ids_to_tokens(ids)


def test_the_scan_reads_the_text_once_whatever_the_tokens(monkeypatch):
    """A pass per first character and then one per token over the strings holding it: on text whose
    every row holds a "[" ("[1]" citations) that was 14 passes and a copy of the text for lrl's 13
    tokens (5.1 s on 2M rows; the pretrain hash reads it on every run and dry run). Now one pass;
    tokens with regex characters are still literals."""
    import pyarrow.compute as real

    from lrl.model import special_text

    rows = pa.array([f"Dakar [{i}] mooy" for i in range(50)])
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"[{x}]" for x in ("ug", "wo", "am", "yo"))]
    text_passes: list[str] = []

    class Counting:
        def __getattr__(self, name):
            def call(first, *args, **kwargs):
                if pa.types.is_string(getattr(first, "type", None)) and len(first) == len(rows):
                    text_passes.append(name)
                return getattr(real, name)(first, *args, **kwargs)
            return call

    monkeypatch.setattr(special_text, "pc", Counting())
    assert not special_text.holds_specials(rows, specials)
    assert len(text_passes) == 1, text_passes
    assert special_text.holds_specials(pa.array(["x", "a [wo] b"]), specials)
    odd = ["a.b", "(x)", "<s>", "x y", "é|", "\\d"]
    assert not special_text.holds_specials(pa.array(["aXb", "x", "<s", "xy", "é", "1"]), odd)
    for s in odd:
        assert special_text.holds_specials(pa.array(["-", f"-{s}-"]), odd), s
