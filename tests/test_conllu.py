"""CoNLL-U reader (UPOS/XPOS) on the UD Uyghur treebank and on malformed input."""

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
