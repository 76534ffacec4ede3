"""Scoring token-level taggers (``scheme: tokens``, e.g. UD POS) with ``lrl evaluate``: the data
formats it reads, what it says about rows it leaves out, and the wording of a tagger's card."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lrl.data.files import InputError


def _pos_parquet(path, tags):
    pq.write_table(pa.table({"tokens": [["men", "keldim", "."], ["u"]], "tags": tags}), path)


def test_parquet_pos_file_reads_under_scheme_tokens(tmp_path):
    """Read as IOB2, ``NOUN`` is no valid tag, so every row was dropped and the error blamed the
    rows' language; under ``--scheme tokens`` a tag X is the one-token span B-X."""
    from lrl.evaluate.predict import read_labelled

    path = str(tmp_path / "pos.parquet")
    _pos_parquet(path, [["PRON", "VERB", "PUNCT"], ["PRON", "X"]])  # the second row: lengths differ
    table, bad = read_labelled(path, "ug", scheme="tokens")
    assert table.column("tags").to_pylist() == [["B-PRON", "B-VERB", "B-PUNCT"]] and bad == 1
    _pos_parquet(tmp_path / "null.parquet", [["PRON", None, "PUNCT"], ["PRON"]])  # a null tag is a bad row
    assert read_labelled(str(tmp_path / "null.parquet"), "ug", scheme="tokens")[0].num_rows == 1
    with pytest.raises(InputError, match=r"no usable row: all 2 .*'PRON' is not O, B-X or I-X"):
        read_labelled(path, "ug")  # iob2: the file-level mistake is named, not "the language(s) ()"


def test_generate_output_of_pos_rows_is_read_as_spans_under_scheme_tokens(tmp_path):
    """A generate output already holds B-X spans: ``--scheme tokens`` must not read B-NOUN as IOB2
    written into a tokens file (a reject)."""
    from lrl.data.schema import ner_table
    from lrl.evaluate.predict import read_labelled

    rows = [{"id": "a", "lang": "ug", "tokens": ["men", "."], "tags": ["B-PRON", "B-PUNCT"]}]
    pq.write_to_dataset(ner_table(rows), str(tmp_path / "gen/data"), partition_cols=["lang"])
    table, bad = read_labelled(str(tmp_path / "gen"), None, scheme="tokens")
    assert table.column("tags").to_pylist() == [["B-PRON", "B-PUNCT"]] and bad == 0


def test_scores_say_how_many_rows_were_not_scored(tmp_path, capsys):
    """Rows rejected when read were counted only in metrics.json: the printed F1 read as the
    whole file's (a POS file with an IOB2 sentence lost it without a word)."""
    import json

    from lrl.evaluate.command import print_scores

    scores = {"f1": 0.5, "precision": 0.5, "recall": 0.5, "sentences": 5}
    (tmp_path / "metrics.json").write_text(json.dumps({"models": {"ug": {"data": scores}}, "rejected_rows": 2}))
    print_scores(str(tmp_path))
    assert "2 row(s) of the data rejected when read" in capsys.readouterr().out


def test_tagger_card_lists_its_tags_and_says_words_not_entities():
    """A POS tagger's card listed ``O, B-ADJ, I-ADJ, ...`` as its labels, described the pipeline's
    output as entity spans with a note on stray ``I-X`` entities, and blamed WikiANN for the
    license of a model trained on a UD treebank."""
    from lrl.evaluate.model_card import CardInfo, Score, render

    labels = ["O", "B-ADJ", "I-ADJ", "B-NOUN", "I-NOUN", "B-PUNCT", "I-PUNCT"]
    info = CardInfo(name="lrl-ug-tagger", languages=["ug"], scores=[Score("ug", "overall", 0.7)], labels=labels,
                    license="other", task="tokens", tagger={"lang_tags": {"ug": "[ug]"}, "max_length": 64})
    text = render(info)
    assert "Tags (3; the model's label for tag X is `B-X`): ADJ, NOUN, PUNCT" in text and "I-ADJ" not in text
    assert "entity spans" not in text and "`I-X` that follows no `X`" not in text
    assert "WikiANN states none" not in text and "## License" in text
    assert "token accuracy when every token has a gold tag and is predicted one" in text  # not UD's `_`
    assert 'tagger = pipeline("token-classification"' in text and "tagger(prefix + text)" in text
    ner = render(CardInfo(name="n", languages=["ug"], scores=[], labels=["O", "B-PER", "I-PER"], license="other"))
    assert "Labels: O, B-PER, I-PER" in ner and "entity spans" in ner and "WikiANN states none" in ner


def test_column_applies_to_conllu_only(tmp_path):
    """``--column xpos`` with a CoNLL file was ignored: the scores were of its one tag column."""
    from lrl.evaluate.predict import read_labelled

    path = tmp_path / "pos.conll"
    path.write_text("men\tPRON\n", encoding="utf-8")
    assert read_labelled(str(path), "ug", scheme="tokens")[0].column("tags").to_pylist() == [["B-PRON"]]
    with pytest.raises(InputError, match="--column xpos applies to a .conllu file only"):
        read_labelled(str(path), "ug", scheme="tokens", column="xpos")
