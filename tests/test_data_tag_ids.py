"""Integer tags (ids) in JSONL, Parquet and Hugging Face input: named through a ClassLabel or the
source's ``tag_names``, else a reject or an error that names file, line and reason; never a tag
named ``3`` (under ``scheme: tokens`` a POS model of the labels ``B-0`` ... ``B-16``)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lrl.data.config import NerSource
from lrl.data.files import InputError
from lrl.data.readers import read_ner

UPOS_NAMES = ["NOUN", "VERB", "PUNCT"]


def _jsonl(tmp_path, rows: list[dict], name: str = "a.jsonl") -> str:
    (tmp_path / name).write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return str(tmp_path / name)


def _reasons(res) -> list[tuple[int, str]]:
    return [(r["line"], r["reason"]) for r in res.rejects.to_pylist()]


def test_jsonl_integer_tags_without_names_are_rejects_naming_line_and_remedy(tmp_path):
    path = _jsonl(tmp_path, [{"tokens": ["men", "keldim"], "tags": ["PRON", "VERB"]},
                             {"tokens": ["u", "."], "tags": [0, 2]}])
    res = read_ner(NerSource(path=path, lang="ug", scheme="tokens"), None)
    assert res.table.column("tags").to_pylist() == [["B-PRON", "B-VERB"]]  # not also [B-0, B-2]
    assert res.reject_reasons == {"tag id": 1}
    [(line, reason)] = _reasons(res)
    assert line == 2 and reason.startswith("tag id: tag 0 is the number 0, not a tag name") and "tag_names" in reason
    # a file of ids only: one error with file, line and reason (every sentence rejected)
    ids = _jsonl(tmp_path, [{"tokens": ["u"], "tags": [3]}, {"tokens": ["x"], "tags": [1]}], "ids.jsonl")
    with pytest.raises(InputError, match=r"ids\.jsonl: no usable sentence: .*first: line 1: tag id: tag 0 is the "
                                         r"number 3.*give the source tag_names"):
        read_ner(NerSource(path=ids, lang="ug", scheme="tokens"), None)
    with pytest.raises(InputError, match=r"ids\.jsonl:1: tag id: tag 0 is the number 3"):
        read_ner(NerSource(path=ids, lang="ug", scheme="tokens"), None, policy="error")
    # NER JSONL the same way (its ids were "invalid BIO: tag 0 '3' is not O, B-X or I-X")
    with pytest.raises(InputError, match=r"first: line 1: tag id: tag 0 is the number 3"):
        read_ner(NerSource(path=ids, lang="ug"), None)
    floats = _jsonl(tmp_path, [{"tokens": ["u"], "tags": [1.5]}, {"tokens": ["x"], "tags": ["NOUN"]}], "f.jsonl")
    res = read_ner(NerSource(path=floats, lang="ug", scheme="tokens", tag_names=UPOS_NAMES), None)
    assert _reasons(res)[0][1].startswith("tag id: tag 0 is the number 1.5")


def test_jsonl_integer_tags_are_named_through_tag_names(tmp_path):
    path = _jsonl(tmp_path, [{"tokens": ["men", "keldim", "."], "tags": [0, 1, 2]},
                             {"tokens": ["u"], "tags": [7]}, {"tokens": ["bu"], "tags": ["NOUN"]}])
    res = read_ner(NerSource(path=path, lang="ug", scheme="tokens", tag_names=UPOS_NAMES), None)
    assert res.table.column("tags").to_pylist() == [["B-NOUN", "B-VERB", "B-PUNCT"], ["B-NOUN"]]
    assert _reasons(res) == [(2, "tag id: tag 0 is 7, which is no index of the 3 tag names (ids 0-2)")]
    ner = _jsonl(tmp_path, [{"tokens": ["Ali", "keldi"], "ner_tags": [1, 0]},
                            {"tokens": ["Ali", "went"], "tags": [1, 9]}], "ner.jsonl")
    res = read_ner(NerSource(path=ner, lang="ug", tag_names=["O", "B-PER", "I-PER"]), None)
    assert res.table.column("tags").to_pylist() == [["B-PER", "O"]]
    # under iob2 too (it was "invalid BIO: tag 1 '9' is not O, B-X or I-X")
    assert _reasons(res) == [(2, "tag id: tag 1 is 9, which is no index of the 3 tag names (ids 0-2)")]


def test_parquet_and_hf_ids_out_of_range_are_no_tags_under_scheme_tokens(tmp_path):
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                               "tags": datasets.Sequence(datasets.ClassLabel(names=UPOS_NAMES))})
    ds = datasets.Dataset.from_dict({"tokens": [["men", "."], ["u"]], "tags": [[0, 2], [-1]]}, features=feats)
    ds.to_parquet(str(tmp_path / "hf.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    for path, fmt in (("hf.parquet", "auto"), ("saved", "hf")):
        res = read_ner(NerSource(path=str(tmp_path / path), lang="ug", format=fmt, scheme="tokens"), None)
        assert res.table.column("tags").to_pylist() == [["B-NOUN", "B-PUNCT"]], path  # ClassLabel -1 was B--1
        assert res.reject_reasons == {"tag id": 1}, path
    # integer ids a file names nowhere: the Parquet error points at tag_names, which then names them
    pq.write_table(pa.table({"tokens": [["men", "."]], "tags": [[0, 2]]}), tmp_path / "plain.parquet")
    plain = NerSource(path=str(tmp_path / "plain.parquet"), lang="ug", scheme="tokens")
    with pytest.raises(InputError, match=r"plain\.parquet: column 'tags' holds integer tag ids .*tag_names"):
        read_ner(plain, None)
    named = read_ner(plain.model_copy(update={"tag_names": UPOS_NAMES}), None)
    assert named.table.column("tags").to_pylist() == [["B-NOUN", "B-PUNCT"]]
    with pytest.raises(InputError, match=r"hf\.parquet: the file's ClassLabel names .* differ from the source's"):
        read_ner(NerSource(path=str(tmp_path / "hf.parquet"), lang="ug", scheme="tokens", tag_names=["A", "B"]), None)
    with pytest.raises(InputError, match=r"saved: the dataset's ClassLabel names .* differ from the source's"):
        read_ner(NerSource(path=str(tmp_path / "saved"), lang="ug", format="hf", scheme="tokens",
                           tag_names=["A", "B"]), None)  # the ClassLabel silently won for format hf
    # a dataset of plain integer tags (no ClassLabel): "3" was the tag B-3; then every row a reject
    # ("tag id: tag 0 is the number 3"); now the column's type is the error, as for Parquet above
    datasets.Dataset.from_dict({"tokens": [["u"], ["men"]], "tags": [[3], [0]]}).save_to_disk(str(tmp_path / "ints"))
    with pytest.raises(InputError, match=r"ints: column 'tags' holds integer tag ids .*tag_names"):
        read_ner(NerSource(path=str(tmp_path / "ints"), lang="ug", format="hf", scheme="tokens"), None)
    res = read_ner(NerSource(path=str(tmp_path / "ints"), lang="ug", format="hf", scheme="tokens",
                             tag_names=["NOUN", "VERB", "PUNCT", "PRON"]), None)
    assert res.table.column("tags").to_pylist() == [["B-PRON"], ["B-NOUN"]]


def test_a_dataset_without_tag_names_is_named_by_its_features(tmp_path, monkeypatch):
    """The saved dataset's ClassLabel names were compared with the copy ``datasets`` keeps in the
    Arrow table's metadata, and a difference was "differ from the source's tag_names" though the
    source gave none. ``datasets`` rewrites that copy from the features whenever it builds a
    Dataset, so a stale one is made by hand here; the features name the ids. Tag names that the
    source does give are still checked against the features, in the dataset's words."""
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                               "tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER"]))})
    datasets.Dataset.from_dict({"tokens": [["Ali"]], "tags": [[1]]}, features=feats).save_to_disk(str(tmp_path / "d"))
    load = datasets.load_from_disk

    def renamed(path):  # features renamed after the Dataset was built: its table keeps the old names
        ds = load(path)
        ds.info.features = datasets.Features({"tokens": feats["tokens"],
                                              "tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-LOC"]))})
        return ds

    monkeypatch.setattr(datasets, "load_from_disk", renamed)
    src = NerSource(path=str(tmp_path / "d"), lang="ug", format="hf")
    assert read_ner(src, None).table.column("tags").to_pylist() == [["B-LOC"]]
    with pytest.raises(InputError, match=r"d: the dataset's ClassLabel names \['O', 'B-LOC'\] differ from the "
                                         r"source's tag_names \['O', 'B-PER'\]"):
        read_ner(src.model_copy(update={"tag_names": ["O", "B-PER"]}), None)


def test_tag_names_config_checks_and_dump(tmp_path):
    with pytest.raises(ValueError, match=r"tag_names: \['NOUN'\] listed more than once"):
        NerSource(path="a.jsonl", lang="ug", tag_names=["NOUN", "VERB", "NOUN"])
    with pytest.raises(ValueError, match="tag_names is empty"):
        NerSource(path="a.jsonl", lang="ug", tag_names=[])
    with pytest.raises(ValueError, match="tag_names applies to JSONL, Parquet and Hugging Face input"):
        NerSource(path="a.conll", lang="ug", format="conll", tag_names=["O"])
    (tmp_path / "a.conll").write_text("men\tPRON\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"a\.conll: tag_names applies to JSONL"):
        read_ner(NerSource(path=str(tmp_path / "a.conll"), lang="ug", scheme="tokens", tag_names=["PRON"]), None)
    # left out of the dump when unset: the generate stage's output name stays that of older jobs
    assert "tag_names" not in NerSource(path="a.jsonl", lang="ug").model_dump()
    assert NerSource(path="a.jsonl", lang="ug", tag_names=["O"]).model_dump()["tag_names"] == ["O"]


def test_a_float_tag_with_tag_names_is_not_sent_to_tag_names():
    """With tag_names given, a float id said "give the source tag_names", which it had."""
    from lrl.data.tag_ids import named_tags

    tags, why = named_tags([1.0], ["NOUN", "VERB"], "tokens")
    assert tags is None and why == "tag id: tag 0 is the number 1.0, not an integer id of the 2 tag names"
