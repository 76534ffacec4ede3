"""Yoruba written in NFC and in NFD (the same letters, the tone marks and dots below composed or
not) must reach a model as the same pieces wherever lrl builds a tokenizer: FLORES Yoruba has 797
words fully decomposed (5% of its words are not NFC), while WikiANN and mono/yo.txt are NFC."""

from __future__ import annotations

import unicodedata

import pytest


def _yo_sentences(data_root, split: str, n: int) -> list[list[str]]:
    blocks = (data_root / "wikiann" / "yo" / split).read_text(encoding="utf-8").split("\n\n")[:n]
    return [[line.split("\t")[0] for line in b.splitlines() if line.strip()] for b in blocks if b.strip()]


def _nfd(words: list[str]) -> list[str]:
    return [unicodedata.normalize("NFD", w) for w in words]


@pytest.fixture(scope="module")
def yo_words(data_root) -> list[str]:
    """WikiANN yo dev words that NFD writes otherwise (tone marks, dots below)."""
    words = [w for s in _yo_sentences(data_root, "dev", 60) for w in s]
    out = [w for w in words if unicodedata.normalize("NFD", w) != w]
    assert len(out) >= 20
    return out


def test_preset_tokenizer_gives_decomposed_yoruba_the_same_pieces(data_root, yo_words):
    """A ``preset:`` encoder's tokenizer (trained on WikiANN yo train, all NFC) had no Unicode
    normalization: NFD words were other characters, mostly unknown. Fine-tuned preset:tiny on yo
    and scored on the NFD copy of dev, span F1 fell from 25.5 to 2.1 (115 of 489 dev words all
    [UNK], 5 in NFC)."""
    from lrl.train.finetune_scratch import build_scratch_tokenizer

    tok = build_scratch_tokenizer(_yo_sentences(data_root, "train", 100), ["yo"], 2000)
    composed = tok(yo_words, is_split_into_words=True)["input_ids"]
    assert tok(_nfd(yo_words), is_split_into_words=True)["input_ids"] == composed
    assert tok.unk_token_id not in tok("Ọbáfẹ́mi Awólọ́wọ̀")["input_ids"]


def _pipeline_word_starts(tok, text: str) -> int:
    """Pieces that transformers' token-classification pipeline takes for word starts: its rule
    for WordPiece tokenizers is a piece as long as its span of the text."""
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    pieces = tok.convert_ids_to_tokens(enc["input_ids"])
    return sum(len(p) == len(text[a:b]) for p, (a, b) in zip(pieces, enc["offset_mapping"]))


def test_model_card_pipeline_normalizes_the_text_to_nfc(data_root, yo_words):
    """The card's pipeline example fed the text as given: in NFD the composing tokenizer makes
    pieces shorter than their text, and the pipeline glued words to the one before (a WikiANN yo
    preset:tiny tagger: span F1 21.1 through the pipeline on NFC dev text, 3.2 on NFD)."""
    from lrl.evaluate.model_card import CardInfo, render
    from lrl.train.finetune_scratch import build_scratch_tokenizer

    tok = build_scratch_tokenizer(_yo_sentences(data_root, "train", 100), ["yo"], 2000)
    text = " ".join(yo_words)
    assert _pipeline_word_starts(tok, unicodedata.normalize("NFD", text)) < 0.5 * len(yo_words)  # why
    assert _pipeline_word_starts(tok, unicodedata.normalize("NFC", text)) >= len(yo_words)
    use = render(CardInfo(name="yo-ner", languages=["yo"], scores=[])).split("## How to use")[1]
    normalize = use.index('text = unicodedata.normalize("NFC", text)')
    assert "import unicodedata" in use and normalize < use.index("spans = ner(text)")


def test_pretrain_hash_names_the_form_its_text_was_read_in(tmp_path):
    """With ``pretrain.tokenizer_path`` (a tokenizer that need not NFKC, such as MiniLM's) the
    stage read ``data.text`` in ``data.unicode``'s form but hashed only the files: a run read with
    ``none`` reused the folder trained on NFC text (other ids for every decomposed word)."""
    import yaml
    from pretrain_jobs import _job

    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain import stage_output

    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "tokenizer.json").write_text("{}", encoding="utf-8")  # only fingerprinted here
    job = _job(tmp_path, {"tokenizer_path": str(tok)})
    spec = yaml.safe_load(job.read_text(encoding="utf-8"))

    def hash_with(**data) -> str:
        f = tmp_path / "j.yaml"
        f.write_text(yaml.safe_dump({**spec, "data": {**spec["data"], **data}}, allow_unicode=True), encoding="utf-8")
        return stage_output(StageContext(load_job(str(f), [])))[0].hash

    default = hash_with()
    assert hash_with(unicode="nfc") == default  # finished runs of the default keep their folder
    assert hash_with(unicode="none") != default


def test_evaluate_data_reads_parquet_tokens_composed_as_conll(tmp_path):
    """``lrl evaluate --data``: a CoNLL file's tokens were composed to NFC, a Parquet file's kept
    as given, so the same decomposed Yoruba sentence reached the tagger as other pieces (and was
    written back otherwise) depending on the file's format."""
    import pyarrow.parquet as pq

    from lrl.data.schema import ner_table
    from lrl.evaluate.predict import read_labelled

    words = _nfd(["Ọbáfẹ́mi", "Awólọ́wọ̀", "jẹ́"])
    (tmp_path / "d.conll").write_text(f"{words[0]}\tB-PER\n{words[1]}\tI-PER\n{words[2]}\tO\n", encoding="utf-8")
    pq.write_table(ner_table([{"id": "a", "lang": "yo", "tokens": words, "tags": ["B-PER", "I-PER", "O"]}]),
                   tmp_path / "d.parquet")
    conll = read_labelled(str(tmp_path / "d.conll"), "yo")[0].column("tokens").to_pylist()
    parquet = read_labelled(str(tmp_path / "d.parquet"), None)[0].column("tokens").to_pylist()
    assert parquet == conll == [[unicodedata.normalize("NFC", w) for w in words]]


def test_preset_tokenizer_knows_punctuation_its_rows_never_write(data_root):
    """A ``preset:`` tokenizer knew only the characters of its NER rows: WikiANN yo train never
    writes a curly quote, so any later ``“Ọba”`` was one unknown word. It now gets the tokenizer
    stage's punctuation alphabet (``lrl.model.alphabet``)."""
    from lrl.train.finetune_scratch import build_scratch_tokenizer

    tok = build_scratch_tokenizer(_yo_sentences(data_root, "train", 100), ["yo"], 2000)
    assert "”" not in " ".join(w for s in _yo_sentences(data_root, "train", 100) for w in s)
    pieces = tok.tokenize("“Ọba” sọ pé: «bẹ́ẹ̀ ni»!")
    assert tok.unk_token not in pieces and "“" in pieces and "«" in pieces


def test_evaluate_data_parquet_row_with_a_null_token_is_rejected_not_a_crash(tmp_path):
    """Composing the Parquet tokens to NFC met a null token (``None.isascii``) and the command
    died with an AttributeError; the row is now rejected and counted, as a null tag is."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lrl.data.files import InputError
    from lrl.evaluate.predict import read_labelled

    rows = {"tokens": [["Ọba", None], _nfd(["jẹ́"])], "tags": [["B-PER", "O"], ["O"]], "lang": ["yo", "yo"]}
    pq.write_table(pa.table(rows), tmp_path / "d.parquet")
    table, rejected = read_labelled(str(tmp_path / "d.parquet"), None)
    assert rejected == 1 and table.column("tokens").to_pylist() == [[unicodedata.normalize("NFC", "jẹ́")]]
    pq.write_table(pa.table({k: v[:1] for k, v in rows.items()}), tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"null value: token 1 is null"):  # the main readers' words
        read_labelled(str(tmp_path / "bad.parquet"), None)
