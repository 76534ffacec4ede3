"""CoNLL-U reader (UPOS/XPOS) on the UD Uyghur treebank and on malformed input."""

import re

import pytest

from lrl.data.conllu import read_conllu, tag_set
from lrl.data.files import InputError


def test_reads_uyghur_treebank(data_root):
    sents = read_conllu(str(data_root / "ud" / "ug" / "train.conllu"))
    assert len(sents) == 1656
    first = sents[0]
    assert first.sent_id == "s1801" and first.words[0] == "نەشپۈت"
    assert first.upos[:3] == ["NOUN", "NUM", "NOUN"] and first.xpos[:3] == ["N", "M", "N"]
    assert all(len(s.words) == len(s.upos) == len(s.xpos) for s in sents)
    upos = tag_set(sents, "upos")
    assert {"NOUN", "VERB", "PUNCT"} <= set(upos) and len(upos) <= 17


def _write(tmp_path, body: str):
    p = tmp_path / "x.conllu"
    p.write_text(body, encoding="utf-8")
    return str(p)


def test_skips_multiword_ranges_and_empty_nodes(tmp_path):
    row = "\t".join
    body = "\n".join([
        "# sent_id = a",
        row(["1-2", "ab", "_", "_", "_", "_", "_", "_", "_", "_"]),
        row(["1", "a", "a", "DET", "D", "_", "2", "det", "_", "_"]),
        row(["2", "b", "b", "NOUN", "N", "_", "0", "root", "_", "_"]),
        row(["2.1", "e", "_", "_", "_", "_", "_", "_", "_", "_"]),
        "", ""])
    (s,) = read_conllu(_write(tmp_path, body))
    assert s.words == ["a", "b"] and s.tags("xpos") == ["D", "N"]


def test_bad_line_names_file_and_line(tmp_path):
    body = "# sent_id = a\n1\ta\ta\tDET\n"
    with pytest.raises(InputError, match=r"x.conllu:2: expected 10"):
        read_conllu(_write(tmp_path, body))


def test_word_ids_out_of_sequence(tmp_path):
    cols = ["_"] * 8
    body = "\t".join(["1", "a"] + cols) + "\n" + "\t".join(["3", "b"] + cols) + "\n"
    with pytest.raises(InputError, match=r":2: word id 3 out of sequence"):
        read_conllu(_write(tmp_path, body))


@pytest.mark.parametrize("wid", ["2.", "-2", "2-", "a-b"])
def test_a_damaged_word_id_is_an_error_not_a_skipped_line(tmp_path, wid):
    """Only ``N-M`` ranges and ``N.M`` empty nodes are skipped: any id with ``-`` or ``.`` was, so
    a word line whose id was damaged vanished with its tag and no error."""
    cols = ["_"] * 8
    body = "\t".join(["1", "a"] + cols) + "\n" + "\t".join([wid, "b"] + cols) + "\n"
    with pytest.raises(InputError, match=rf":2: word id {re.escape(repr(wid))} is not a number"):
        read_conllu(_write(tmp_path, body))


def test_tag_set_of_a_column_without_any_tag_is_an_error(tmp_path):
    """pretrain.aux.column: xpos on a treebank without XPOS trained the aux head on the one label
    ``_``: a loss of 0 and no signal, without a word."""
    cols = ["_", "_", "0", "root", "_", "_"]
    sents = read_conllu(_write(tmp_path, "\t".join(["1", "a", "a", "NOUN"] + cols) + "\n"))
    assert tag_set(sents, "upos") == ["NOUN"]
    with pytest.raises(InputError, match=r"column xpos is '_' \(no tag\) on every word of the 1 sentences.*\(upos\)"):
        tag_set(sents, "xpos")


def test_ranges_or_empty_nodes_without_their_words_are_an_error(tmp_path):
    """A sentence of only a range or an empty node vanished without a word, and a range past the
    sentence's last word (a sentence cut short) passed."""
    def row(wid, form):
        return "\t".join([wid, form] + ["_"] * 8)
    only = "# sent_id = a\n" + row("1.1", "e") + "\n\n# sent_id = b\n" + row("1", "y") + "\n\n"
    with pytest.raises(InputError, match=r"x\.conllu:2: sentence without word lines"):
        read_conllu(_write(tmp_path, only))
    cut = "# sent_id = a\n" + row("1", "x") + "\n" + row("2-3", "du") + "\n" + row("2", "d") + "\n\n"
    with pytest.raises(InputError, match=r"x\.conllu:3: the multi-word token range ends at word 3, but the sentence has 2"):
        read_conllu(_write(tmp_path, cut))
