"""A token at fault in CoNLL-U or under ``scheme: tokens`` is named by its own line (the error's
``file:line``, and ``(line N)`` at the end of a reject), as a bad CoNLL tag was: the rejects and
errors named only the sentence's first line, and the user had to count words."""

from __future__ import annotations

import re

import pytest

from lrl.data.bio import BioError
from lrl.data.config import NerSource
from lrl.data.conllu import read_conllu
from lrl.data.files import InputError
from lrl.data.readers import read_ner

UPOS = ["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
        "PUNCT", "SCONJ", "SYM", "VERB", "X"]


def _broken(data_root, tmp_path, word: int, column: int, value: str):
    """The first two sentences of ud/ug dev, word ``word`` of the second with ``column`` set to
    ``value``; the path and the broken word's line."""
    blocks = (data_root / "ud/ug/dev.conllu").read_text(encoding="utf-8").split("\n\n")[:2]
    lines = "\n\n".join(blocks).split("\n")
    second = next(i for i, line in enumerate(lines) if not line.strip())  # the blank line between them
    at = next(i for i in range(second, len(lines)) if lines[i].startswith(f"{word}\t"))
    cols = lines[at].split("\t")
    cols[column] = value
    lines[at] = "\t".join(cols)
    path = tmp_path / "broken.conllu"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, at + 1


def test_conllu_records_each_words_line(data_root):
    path = data_root / "ud/ug/dev.conllu"
    lines = path.read_text(encoding="utf-8").splitlines()
    for sent in read_conllu(str(path))[:20]:
        assert sent.line == sent.word_lines[0] and len(sent.word_lines) == len(sent.words)
        assert all(lines[n - 1].split("\t")[1] == w for n, w in zip(sent.word_lines, sent.words))


@pytest.mark.parametrize("column, value, reason, error", [
    (3, "FOO", "unknown label: tag 5 'B-FOO': unknown label 'FOO'", BioError),
    (3, "B-NOUN", "IOB2 tag: tag 5 'B-NOUN' is an IOB2 span tag", InputError),
    (3, " ", "empty tag: tag 5 is ' '", InputError),
    (1, " ", "empty token: token 5 is ' '", InputError),
])
def test_a_bad_word_in_conllu_names_its_own_line(data_root, tmp_path, column, value, reason, error):
    path, at = _broken(data_root, tmp_path, 6, column, value)
    src = NerSource(path=str(path), lang="ug", scheme="tokens")
    res = read_ner(src, None, labels=UPOS)
    [reject] = res.rejects.to_pylist()
    first = read_conllu(str(path))[1].line
    assert reject["line"] == first < at  # kept at the sentence's first word line
    assert reject["reason"].startswith(reason) and reject["reason"].endswith(f" (line {at})")
    with pytest.raises(error, match=rf"^{re.escape(str(path))}:{at}: {re.escape(reason)}"):
        read_ner(src, None, labels=UPOS, policy="error")


def test_a_bad_tag_under_scheme_tokens_in_conll_names_its_own_line(tmp_path):
    path = tmp_path / "pos.conll"
    path.write_text("bi\tDET\n\nDakar\tPROPN\nnekk\tVERB\nAli\tB-PER\n", encoding="utf-8")
    src = NerSource(path=str(path), lang="wo", scheme="tokens")
    [reject] = read_ner(src, None).rejects.to_pylist()
    assert reject["line"] == 3 and reject["reason"].startswith("IOB2 tag: tag 2 'B-PER'")
    assert reject["reason"].endswith("set scheme: iob2 for NER spans (line 5)")
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}:5: IOB2 tag: tag 2 'B-PER'"):
        read_ner(src, None, policy="error")


def test_jsonl_rejects_name_no_token_line(tmp_path):
    """JSONL has one sentence per line: its reasons stay as they were, without ``(line N)``."""
    path = tmp_path / "pos.jsonl"
    rows = ['{"tokens": ["bi"], "tags": ["DET"]}', '{"tokens": ["Ali", "Dem"], "tags": ["O", "B-PER"]}']
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    [reject] = read_ner(NerSource(path=str(path), lang="wo", scheme="tokens"), None).rejects.to_pylist()
    assert reject["line"] == 2 and reject["reason"].endswith("set scheme: iob2 for NER spans")


def test_an_empty_token_in_conll_names_its_own_line(tmp_path):
    """A CoNLL (IOB2) token with no characters is named by its own line too, not the sentence's."""
    path = tmp_path / "ner.conll"
    path.write_text("a\tO\n\nb\tO\n\tB-PER\n", encoding="utf-8")
    src = NerSource(path=str(path), lang="wo")
    [reject] = read_ner(src, None).rejects.to_pylist()
    assert reject["line"] == 3 and reject["reason"] == "empty token: token 1 is '' (line 4)"
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}:4: empty token: token 1 is ''"):
        read_ner(src, None, policy="error")
