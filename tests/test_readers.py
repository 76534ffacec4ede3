"""Every reader on every NER file of the shared WikiANN data (converted in tmp_path for the
formats the data does not come in), plus the text and parallel readers on real corpora."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lrl.data.bio import bio_problems
from lrl.data.config import NerSource, TextSource
from lrl.data.files import InputError
from lrl.data.readers import (
    read_conll,
    read_hf,
    read_jsonl,
    read_ner,
    read_parallel,
    read_parquet_ner,
    read_text_lines,
)

REPO = Path(__file__).resolve().parent.parent
_ROOT = Path(os.environ.get("LRL_DATA_ROOT", REPO.parent / "shared" / "data"))
# Collected from the data when present; the fallback list keeps ids stable (tests then skip).
NER_FILES = sorted(str(p.relative_to(_ROOT / "wikiann")) for p in (_ROOT / "wikiann").glob("*/*")) or [
    f"{lang}/{split}" for lang in ("am", "ig", "rw", "sw", "yo") for split in ("train", "dev", "test")
] + ["ug/train", "ug/dev", "wo/train", "wo/dev"]
READERS = ["conll", "jsonl", "parquet", "hf"]


def sentences_in(path: Path) -> list[tuple[list[str], list[str]]]:
    """An independent parse of the token<TAB>tag format (what every reader must agree with)."""
    out, toks, tags = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if toks:
                out.append((toks, tags))
            toks, tags = [], []
            continue
        tok, tag = line.rsplit("\t", 1) if "\t" in line else line.rsplit(" ", 1)
        toks.append(tok.strip())
        tags.append(tag.strip())
    return out


def convert(fmt: str, sents: list, tmp_path: Path) -> Path:
    """Write ``sents`` in format ``fmt`` under tmp_path (for the non-CoNLL readers)."""
    if fmt == "jsonl":
        p = tmp_path / "x.jsonl"
        p.write_text("".join(json.dumps({"tokens": t, "tags": g}, ensure_ascii=False) + "\n" for t, g in sents),
                     encoding="utf-8")
    elif fmt == "parquet":
        p = tmp_path / "x.parquet"
        pq.write_table(pa.table({"tokens": [t for t, _ in sents], "tags": [g for _, g in sents]}), p)
    else:
        import datasets

        names = sorted({tag for _, g in sents for tag in g} | {"O"})
        features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                      "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
        ds = datasets.Dataset.from_dict({"tokens": [t for t, _ in sents],
                                         "ner_tags": [[names.index(x) for x in g] for _, g in sents]},
                                        features=features)
        p = tmp_path / "hf"
        datasets.DatasetDict({"train": ds}).save_to_disk(str(p))
    return p


@pytest.mark.parametrize("fmt", READERS)
@pytest.mark.parametrize("rel", NER_FILES)
def test_reader_on_every_wikiann_file(data_root, tmp_path, rel, fmt):
    src = data_root / "wikiann" / rel
    lang = rel.split("/")[0]
    expected = sentences_in(src)
    assert expected, f"{src} has no sentences"
    path = src if fmt == "conll" else convert(fmt, expected, tmp_path)
    reader = {"conll": read_conll, "jsonl": read_jsonl, "parquet": read_parquet_ner, "hf": read_hf}[fmt]
    res = reader(str(path), lang, "train", "error")
    assert res.rejects.num_rows == 0
    assert res.table.num_rows == len(expected)
    assert res.table.column("tokens").to_pylist() == [t for t, _ in expected]
    assert res.table.column("tags").to_pylist() == [g for _, g in expected]
    assert set(res.table.column("lang").to_pylist()) == {lang}
    assert len(set(res.table.column("id").to_pylist())) == res.table.num_rows
    assert not any(bio_problems(g) for g in res.table.column("tags").to_pylist())


def test_read_ner_dispatches_by_extension_and_format(data_root, tmp_path):
    sents = sentences_in(data_root / "wikiann" / "wo" / "dev")
    for fmt in ("jsonl", "parquet", "hf"):
        (tmp_path / fmt).mkdir()
        p = convert(fmt, sents, tmp_path / fmt)
        src = NerSource(path=p.name, lang="wo", split="train", format="hf" if fmt == "hf" else "auto")
        res = read_ner(src, str(p.parent), labels=["PER", "ORG", "LOC"])
        assert res.table.num_rows == len(sents), fmt


def test_hf_reader_picks_split_and_rejects_missing_split(data_root, tmp_path):
    import datasets

    p = convert("hf", sentences_in(data_root / "wikiann" / "yo" / "dev"), tmp_path)
    dd = datasets.load_from_disk(str(p))
    datasets.DatasetDict({"validation": dd["train"].select(range(7))}).save_to_disk(str(tmp_path / "v"))
    assert read_hf(str(tmp_path / "v"), "yo", "validation").table.num_rows == 7
    with pytest.raises(InputError, match="no split 'train'"):
        read_hf(str(tmp_path / "v"), "yo", "train")


def test_hf_hub_id_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "wikiann" must not be a local folder
    with pytest.raises(InputError, match=r"wikiann: cannot load Hugging Face dataset \(config 'ug'\)"):
        read_ner(NerSource(path="wikiann", lang="ug", format="hf", hf_config="ug"), str(tmp_path))


def test_an_hf_path_no_hub_id_can_be_is_a_folder_error_not_a_hub_one(tmp_path, monkeypatch):
    """``format: hf`` with ``corpora/ug_hf`` (``corpora/`` under data.root) or ``./ug_hf`` that is no
    save_to_disk folder went to ``load_dataset`` as a hub id: "Couldn't reach 'corpora/ug_hf' on
    the Hub" (after retries, with a network), naming no folder. It is an error naming the folder
    and data.root, for a dev source from the generate stage before its work (``check_held_out``),
    not from finetune after pretraining. A hub id (``org/name``) is still left to ``load_dataset``."""
    from lrl.generate.stage import check_held_out
    from lrl.job import load_job

    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpora" / "plain").mkdir(parents=True)  # a folder, but not one save_to_disk wrote
    for path, name, what in (("corpora/ug_hf", "corpora/ug_hf", "no such folder"), ("./ug_hf", "ug_hf", "no such folder"),
                             ("corpora/plain", "corpora/plain", "not a folder written by datasets.save_to_disk")):
        with pytest.raises(InputError, match=rf"^{tmp_path}/{name}: {what}.*; format: hf reads such a folder or a "
                                             rf"Hugging Face hub id, which {path} cannot be \(the relative path"):
            read_ner(NerSource(path=path, lang="ug", format="hf"), str(tmp_path))
    dev = "data.ner=[{path: corpora/ug_hf, lang: ug, format: hf, split: dev}]"
    with pytest.raises(InputError, match=rf"^{tmp_path}/corpora/ug_hf: no such folder"):
        check_held_out(load_job(None, [f"data.root={tmp_path}", dev]))
    check_held_out(load_job(None, [f"data.root={tmp_path}", dev.replace("corpora/ug_hf", "org/name")]))



def test_a_training_hf_path_no_hub_id_can_be_is_named_by_the_dry_run(tmp_path, monkeypatch):
    """The held-out sources were checked when the generate stage named its folder (its dry run
    too), the training ones only once it read them: ``lrl run --dry-run`` passed ``./ug_hf``."""
    from lrl.generate.stage import stage_output
    from lrl.job import load_job

    monkeypatch.chdir(tmp_path)
    train = "data.ner=[{path: ./ug_hf, lang: ug, format: hf, split: train}]"
    with pytest.raises(InputError, match=rf"^{tmp_path}/ug_hf: no such folder.*format: hf reads such a folder"):
        stage_output(load_job(None, [f"data.root={tmp_path}", train, f"output.root={tmp_path / 'runs'}"]))
    stage_output(load_job(None, [f"data.root={tmp_path}", train.replace("./ug_hf", "org/name")]))  # a hub id

def test_reader_takes_pyarrow_uris(data_root):
    uri = "file://" + str(data_root / "wikiann" / "wo" / "dev")
    assert read_conll(uri, "wo").table.num_rows == len(sentences_in(data_root / "wikiann" / "wo" / "dev"))


@pytest.mark.parametrize("name", ["wo.txt", "yo.txt", "am.txt"])
def test_text_reader_on_real_corpora(data_root, name):
    path = data_root / "mono" / name
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    expected = [ln for ln in lines if ln and not ln.startswith("# doc")]
    table = read_text_lines(TextSource(path=name, lang=name[:2]), str(data_root / "mono"))
    assert table.num_rows == len(expected)
    assert table.column("text").to_pylist() == expected
    # Each row belongs to the document opened by the last "# doc" line above it (None before any).
    docs, doc = [], None
    for ln in lines:
        if ln.startswith("# doc"):
            doc = ln[5:].strip()
        elif ln:
            docs.append(doc)
    assert table.column("doc").to_pylist() == docs
    limited = read_text_lines(TextSource(path=name, lang=name[:2], max_lines=10), str(data_root / "mono"))
    assert limited.column("text").to_pylist() == expected[:10]


def test_parallel_reader_on_flores(data_root, tmp_path):
    d = data_root / "parallel" / "flores200_devtest"
    eng, uig = next(d.glob("*eng_Latn*")), next(d.glob("*uig_Arab*"))
    table = read_parallel(str(eng), str(uig), "en", "ug")
    assert table.num_rows == 1012
    assert table.column("src")[5].as_py() == eng.read_text(encoding="utf-8").splitlines()[5]
    assert table.column("tgt")[5].as_py() == uig.read_text(encoding="utf-8").splitlines()[5]
    short = tmp_path / "short.txt"
    short.write_text("one line\n", encoding="utf-8")
    with pytest.raises(InputError, match="not line-aligned"):
        read_parallel(str(eng), str(short), "en", "ug")


def test_parallel_files_empty_or_blank_on_one_side_are_an_error(tmp_path):
    """Two empty files gave an empty table, and a line blank on one side a pair with an empty side."""
    en, ug = tmp_path / "en.txt", tmp_path / "ug.txt"
    en.write_text("", encoding="utf-8")
    ug.write_text("", encoding="utf-8")
    with pytest.raises(InputError, match=r"en\.txt: empty file \(no lines\), and so is .*ug\.txt"):
        read_parallel(str(en), str(ug), "en", "ug")
    en.write_text("one\ntwo\nthree\nfour\n", encoding="utf-8")
    ug.write_text("bir\n\nuch\n \n", encoding="utf-8")
    with pytest.raises(InputError, match=r"ug\.txt:2: blank line, but line 2 of .*en\.txt is not: .*\(2 such line"):
        read_parallel(str(en), str(ug), "en", "ug")
    en.write_text("one\n\nthree\n\n", encoding="utf-8")  # blank on both sides: aligned, kept as before
    assert read_parallel(str(en), str(ug), "en", "ug").num_rows == 4


def test_hf_reader_rejects_class_label_minus_one(tmp_path):
    """-1 is the datasets library's "no label" ClassLabel value: it must not index the last name."""
    import datasets

    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    datasets.Dataset.from_dict({"tokens": [["Ali"], ["in", "Kano"]], "ner_tags": [[1], [0, -1]]},
                               features=features).save_to_disk(str(tmp_path / "hf"))
    res = read_hf(str(tmp_path / "hf"), "yo", policy="repair")
    assert res.table.column("tags").to_pylist() == [["B-PER"]]
    assert res.rejects.column("line").to_pylist() == [2]
    assert "-1" in res.rejects.column("reason")[0].as_py()


def test_auto_format_reads_folders(data_root, tmp_path):
    """A folder of Parquet files and a save_to_disk folder are read with format: auto."""
    sents = sentences_in(data_root / "wikiann" / "wo" / "dev")
    (tmp_path / "pq").mkdir()
    pq.write_table(pa.table({"tokens": [t for t, _ in sents[:5]], "tags": [g for _, g in sents[:5]]}),
                   tmp_path / "pq" / "a.parquet")
    pq.write_table(pa.table({"tokens": [t for t, _ in sents[5:]], "tags": [g for _, g in sents[5:]]}),
                   tmp_path / "pq" / "b.parquet")
    assert read_ner(NerSource(path="pq", lang="wo"), str(tmp_path)).table.num_rows == len(sents)
    convert("hf", sents, tmp_path)
    assert read_ner(NerSource(path="hf", lang="wo"), str(tmp_path)).table.num_rows == len(sents)
    # A folder of CoNLL files is read file by file (tests/test_readers_many.py), but not one that
    # holds other splits' files: WikiANN's wo folder would put dev and test into training data.
    with pytest.raises(InputError, match=r"wikiann/wo: holds files named as other splits than 'train' \(dev\)"):
        read_ner(NerSource(path="wikiann/wo", lang="wo"), str(data_root))


def test_line_separators_inside_lines_do_not_break_alignment(tmp_path):
    """Only \\n, \\r\\n or \\r end a line, as in editors: U+2028 or U+0085 inside a sentence
    neither splits it nor misaligns parallel files or text line numbers."""
    (tmp_path / "en.txt").write_bytes("one\r\ntwo\u2028halves\rthree\n".encode())
    (tmp_path / "ug.txt").write_text("bir\nikki\nuch\x85x\n", encoding="utf-8")
    table = read_parallel(str(tmp_path / "en.txt"), str(tmp_path / "ug.txt"), "en", "ug")
    assert table.column("src").to_pylist() == ["one", "two\u2028halves", "three"]
    assert table.column("tgt").to_pylist() == ["bir", "ikki", "uch\x85x"]
    text = read_text_lines(TextSource(path="en.txt", lang="en"), str(tmp_path))
    assert text.column("id").to_pylist() == ["en:en.txt:1", "en:en.txt:2", "en:en.txt:3"]


def test_rejects_found_before_a_sentence_is_built_get_ids(tmp_path):
    """A tag-missing sentence is rejected before it has an id; its reject row had id None, so a
    quarantined row could not be named (the manifest and rejects files key rows by id)."""
    from lrl.data.readers import read_conll

    f = tmp_path / "a.conll"
    f.write_text("Ali\tB-PER\n\nx\n\nKano\tB-LOC\n", encoding="utf-8")
    res = read_conll(str(f), "wo")
    assert res.rejects.column("id").to_pylist() == ["wo:train:1"]
    assert res.table.column("id").to_pylist() == ["wo:train:0", "wo:train:2"]


def test_repair_policy_counts_the_sentences_it_changed(tmp_path):
    """Under ``repair`` the kept sentences whose tags changed are counted (the generate manifest
    lists them per input): a repaired label is a change to the user's data and must be visible."""
    from lrl.data.readers import read_conll

    f = tmp_path / "a.conll"
    f.write_text("Ali\tB-PER\n\nDakar\tI-LOC\n\nin\tO\nKano\tI-LOC\n", encoding="utf-8")
    res = read_conll(str(f), "wo", policy="repair")
    assert res.table.num_rows == 3 and res.repaired == 2
    assert read_conll(str(f), "wo", policy="quarantine").repaired == 0


@pytest.mark.parametrize("fmt", ["auto", "explicit"])
def test_every_reader_takes_a_uri_root(data_root, tmp_path, fmt):
    """``data.root`` may be any pyarrow URI (s3://, gs://, file://): a Parquet folder or a
    save_to_disk folder under one was read as a CoNLL file ("is a directory") with format auto,
    and format hf took the folder's name for a hub id (network retries, then an error)."""
    sents = sentences_in(data_root / "wikiann" / "wo" / "dev")
    convert("jsonl", sents, tmp_path)
    convert("hf", sents, tmp_path)
    (tmp_path / "pq").mkdir()
    pq.write_table(pa.table({"tokens": [t for t, _ in sents], "tags": [g for _, g in sents]}), tmp_path / "pq" / "a.parquet")
    (tmp_path / "x.conll").write_text((data_root / "wikiann" / "wo" / "dev").read_text(encoding="utf-8"), encoding="utf-8")
    root = "file://" + str(tmp_path)
    for path, explicit in (("x.conll", "conll"), ("x.jsonl", "jsonl"), ("pq", "parquet"), ("hf", "hf")):
        src = NerSource(path=path, lang="wo", format="auto" if fmt == "auto" else explicit)
        res = read_ner(src, root, "error")
        assert res.table.column("tokens").to_pylist() == [t for t, _ in sents], path
        assert res.table.column("tags").to_pylist() == [g for _, g in sents], path


def test_hf_hub_id_and_config_reach_load_dataset(data_root, tmp_path, monkeypatch):
    """The hub path (``wikiann`` / ``ug``) cannot reach the hub here: ``load_dataset`` is replaced
    by one that returns real WikiANN rows saved to disk, and must be asked for the id and config
    as written (not joined to data.root), with the configured split read."""
    import datasets

    sents = sentences_in(data_root / "wikiann" / "ug" / "dev")
    saved = datasets.load_from_disk(str(convert("hf", sents, tmp_path)))
    calls = []

    def load_dataset(path, name=None, **kwargs):
        calls.append((path, name))
        return datasets.DatasetDict({"validation": saved["train"]})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.chdir(tmp_path)
    src = NerSource(path="wikiann", lang="ug", format="hf", hf_config="ug", split="validation")
    res = read_ner(src, str(data_root), "error")
    assert calls == [("wikiann", "ug")]
    assert res.table.column("tokens").to_pylist() == [t for t, _ in sents]
    assert res.table.column("tags").to_pylist() == [g for _, g in sents]
    assert res.table.column("source")[0].as_py() == "wikiann[ug]#validation"
