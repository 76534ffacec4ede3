"""Sources of several files: a folder or a pattern (``*``, ``?``, ``[...]``) of CoNLL, JSONL or
text shards, on local paths and pyarrow URIs. Files are read in sorted order, ids carry the file,
rejects and file-level errors name the file, and the fingerprint covers every matched file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.fs as pafs
import pytest

import lrl.data.files as files
from lrl.data.config import NerSource, TextSource
from lrl.data.files import InputError, fingerprint
from lrl.data.readers import read_conll, read_ner, read_text_lines


def _blocks(data_root: Path, lang: str, n: int) -> list[str]:
    return (data_root / "wikiann" / lang / "train").read_text(encoding="utf-8").split("\n\n")[:n]


def _shards(data_root: Path, folder: Path, lang: str = "ug", n: int = 3, size: int = 10) -> list[Path]:
    """``n`` CoNLL shards of ``size`` sentences of wikiann/<lang>/train, written out of order."""
    folder.mkdir(parents=True, exist_ok=True)
    blocks = _blocks(data_root, lang, n * size)
    out = []
    for i in reversed(range(n)):
        p = folder / f"{lang}-{i}.conll"
        p.write_text("\n\n".join(blocks[i * size:(i + 1) * size]) + "\n", encoding="utf-8")
        out.append(p)
    return sorted(out)


def test_folder_and_pattern_of_conll_shards(data_root, tmp_path):
    """A folder of CoNLL files was refused ("a folder without Parquet files...") and a pattern was
    "file not found". Now each file is read as its own source would be, in sorted order, its made
    ids carrying its name; hidden files and those of other patterns are left out."""
    shards = _shards(data_root, tmp_path / "corpus")
    (tmp_path / "corpus" / ".DS_Store").write_bytes(b"\x00\x01")
    (tmp_path / "corpus" / "_SUCCESS").write_text("", encoding="utf-8")
    whole = [read_conll(str(p), "ug") for p in shards]
    for path in ("corpus", "corpus/", "corpus/ug-*.conll", "corpus/ug-?.conll", "corpus/ug-[0-2].conll"):
        res = read_ner(NerSource(path=path, lang="ug"), str(tmp_path))
        assert res.table.column("tokens").to_pylist() == [t for w in whole for t in w.table.column("tokens").to_pylist()]
        assert res.table.column("tags").to_pylist() == [t for w in whole for t in w.table.column("tags").to_pylist()]
        ids = res.table.column("id").to_pylist()
        assert ids[:2] == ["ug:train:ug-0.conll:0", "ug:train:ug-0.conll:1"]
        assert ids[10] == "ug:train:ug-1.conll:0" and len(set(ids)) == 30
        assert res.table.column("source")[10].as_py() == f"{tmp_path}/corpus/ug-1.conll#train"
        assert res.source == str(tmp_path / path)
    assert read_ner(NerSource(path="corpus/ug-[12].conll", lang="ug"), str(tmp_path)).table.num_rows == 20
    # One file stays one file: its ids are those of before (the generate output hash relies on it).
    one = read_ner(NerSource(path="corpus/ug-1.conll", lang="ug"), str(tmp_path))
    assert one.table.column("id").to_pylist()[:2] == ["ug:train:0", "ug:train:1"]


def test_nested_folders_jsonl_and_uri_patterns(data_root, tmp_path):
    """Subfolders are read with their relative names; JSONL and gzipped shards by extension; a
    file:// pattern lists through pyarrow as s3:// or gs:// would."""
    blocks = _blocks(data_root, "wo", 12)
    (tmp_path / "c" / "b").mkdir(parents=True)
    (tmp_path / "c" / "a.conll").write_text("\n\n".join(blocks[:4]) + "\n", encoding="utf-8")
    with gzip.open(tmp_path / "c" / "b" / "x.conll.gz", "wt", encoding="utf-8") as f:
        f.write("\n\n".join(blocks[4:8]) + "\n")
    rows = [{"tokens": [ln.split("\t")[0] for ln in b.splitlines()], "tags": [ln.split("\t")[1] for ln in b.splitlines()]}
            for b in blocks[8:]]
    (tmp_path / "c" / "b" / "y.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    res = read_ner(NerSource(path="c", lang="wo"), str(tmp_path))
    ids = res.table.column("id").to_pylist()
    assert [i.rsplit(":", 1)[0] for i in ids[::4]] == ["wo:train:a.conll", "wo:train:b/x.conll.gz", "wo:train:b/y.jsonl"]
    assert res.table.num_rows == 12
    uri = "file://" + str(tmp_path)
    res = read_ner(NerSource(path="c/*/[xy].*", lang="wo"), uri)
    assert res.table.column("id").to_pylist()[0] == "wo:train:b/x.conll.gz:0"
    assert res.table.column("source")[0].as_py() == f"{uri}/c/b/x.conll.gz#train"
    assert res.table.num_rows == 8


def test_rejects_name_their_file_and_every_sentence_rejected_stays_per_file(data_root, tmp_path):
    """A bad line is quarantined with its own file and line; a shard whose every sentence is
    rejected stops the read naming that shard, although the others are fine."""
    shards = _shards(data_root, tmp_path / "s", n=2, size=5)
    with open(shards[1], "a", encoding="utf-8") as f:
        f.write("\nDakar\tI-LOC\n")
    res = read_ner(NerSource(path="s", lang="ug"), str(tmp_path))
    rej = res.rejects.to_pylist()
    assert len(rej) == 1 and rej[0]["source"] == str(shards[1]) and rej[0]["id"] == "ug:train:ug-1.conll:5"
    assert rej[0]["line"] == shards[1].read_text(encoding="utf-8").splitlines().index("Dakar\tI-LOC") + 1
    assert res.reject_reasons == {"invalid BIO": 1} and res.table.num_rows == 10
    with pytest.raises(InputError, match=f"{shards[1]}:{rej[0]['line']}: invalid BIO"):
        read_ner(NerSource(path="s", lang="ug"), str(tmp_path), policy="error")
    (tmp_path / "s" / "ug-2.conll").write_text("a\tI-LOC\n\nb\tI-PER\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"ug-2.conll: no usable sentence: all 2 were rejected"):
        read_ner(NerSource(path="s/*.conll", lang="ug"), str(tmp_path))
    (tmp_path / "s" / "ug-2.conll").write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"ug-2.conll: empty file"):
        read_ner(NerSource(path="s", lang="ug"), str(tmp_path))


def test_ids_repeated_across_files_are_rejects(tmp_path):
    """Given ids are unique within a file (a repeat is a reject); across the files of one source
    too, naming the earlier file, also when a given id is another file's made id."""
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "a.jsonl").write_text(json.dumps({"id": "s1", "tokens": ["a"], "tags": ["O"]}) + "\n"
                                            + json.dumps({"tokens": ["b"], "tags": ["O"]}) + "\n", encoding="utf-8")
    (tmp_path / "j" / "b.jsonl").write_text(json.dumps({"id": "s1", "tokens": ["c"], "tags": ["O"]}) + "\n"
                                            + json.dumps({"id": "ug:train:a.jsonl:1", "tokens": ["d"], "tags": ["O"]})
                                            + "\n" + json.dumps({"id": "s2", "tokens": ["e"], "tags": ["O"]}) + "\n",
                                            encoding="utf-8")
    res = read_ner(NerSource(path="j", lang="ug"), str(tmp_path))
    assert res.table.column("id").to_pylist() == ["s1", "ug:train:a.jsonl:1", "s2"]
    a = tmp_path / "j" / "a.jsonl"
    assert res.rejects.column("reason").to_pylist() == [f"duplicate id: 's1' also on line 1 of {a}",
                                                        f"duplicate id: 'ug:train:a.jsonl:1' also on line 2 of {a}"]


def test_no_match_and_split_named_files_are_clear_errors(data_root, tmp_path):
    """A pattern or folder naming no input is an error naming it (and data.root); a folder whose
    files are named as other splits (wikiann/wo holds train and dev) is refused: read as one
    train source, its dev sentences became training data."""
    with pytest.raises(InputError, match=r"/nothing-\*\.conll: no file matches this pattern \(the relative path"):
        read_ner(NerSource(path="nothing-*.conll", lang="ug"), str(tmp_path))
    with pytest.raises(InputError, match=r"/t/\*\.txt: no file matches this pattern"):
        read_text_lines(TextSource(path="t/*.txt", lang="ug"), str(tmp_path))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".hidden").write_text("x\tO\n", encoding="utf-8")
    with pytest.raises(InputError, match="empty: the folder holds no input files"):
        read_ner(NerSource(path="empty", lang="ug"), str(tmp_path))
    with pytest.raises(InputError, match=r"wikiann/wo: holds files named as other splits than 'train' \(dev\)"):
        read_ner(NerSource(path="wikiann/wo", lang="wo"), str(data_root))
    dev = read_ner(NerSource(path="wikiann/wo/d*", lang="wo", split="dev"), str(data_root))
    assert dev.table.num_rows == 120 and dev.table.column("id")[0].as_py() == "wo:dev:dev:0"


def test_text_folder_and_pattern_of_gzipped_shards(data_root, tmp_path):
    """Text shards: ids ``lang:<file>:line`` as for a single file, ``max_lines`` over all files,
    and each file's own empty-file check."""
    lines = (data_root / "mono" / "wo.txt").read_text(encoding="utf-8").split("\n")[:60]
    (tmp_path / "mono").mkdir()
    for i in range(3):
        with gzip.open(tmp_path / "mono" / f"wo-{i}.txt.gz", "wt", encoding="utf-8") as f:
            f.write("\n".join(lines[i * 20:(i + 1) * 20]) + "\n")
    one = tmp_path / "wo.txt"
    one.write_text("\n".join(lines) + "\n", encoding="utf-8")
    single = read_text_lines(TextSource(path=str(one), lang="wo"), None)
    for path in ("mono", "mono/*.txt.gz"):
        t = read_text_lines(TextSource(path=path, lang="wo"), str(tmp_path))
        assert t.column("text").to_pylist() == single.column("text").to_pylist()
        ids = t.column("id").to_pylist()
        assert len(set(ids)) == len(ids) and ids[-1].startswith("wo:wo-2.txt.gz:")
        assert set(t.column("source").to_pylist()) == {f"{tmp_path}/mono/wo-{i}.txt.gz" for i in range(3)}
    capped = read_text_lines(TextSource(path="mono", lang="wo", max_lines=25), str(tmp_path))
    assert capped.column("text").to_pylist() == single.column("text").to_pylist()[:25]
    with gzip.open(tmp_path / "mono" / "wo-3.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n\n")
    with pytest.raises(InputError, match="wo-3.txt.gz: empty file"):
        read_text_lines(TextSource(path="mono", lang="wo"), str(tmp_path))


def test_fingerprint_covers_every_matched_file(data_root, tmp_path, monkeypatch):
    """The stage hashes name outputs by input fingerprints: a pattern was "file not found", and a
    remote folder's fingerprint was its entry's size and mtime ("None-None" on object stores),
    whatever files it held. Adding or changing a shard must give another fingerprint."""
    shards = _shards(data_root, tmp_path / "c", n=2)
    pattern, single = str(tmp_path / "c" / "ug-*.conll"), fingerprint(str(shards[0]))
    before, folder = fingerprint(pattern), fingerprint(str(tmp_path / "c"))
    assert fingerprint(str(shards[0])) == single  # one file: as before
    assert fingerprint("file://" + pattern) == before
    (tmp_path / "c" / "ug-2.conll").write_text("yeni\tO\n", encoding="utf-8")
    assert fingerprint(pattern) != before and fingerprint(str(tmp_path / "c")) != folder
    (tmp_path / "c" / "other.conll").write_text("x\tO\n", encoding="utf-8")
    after = fingerprint(pattern)
    assert fingerprint(pattern) == after  # files outside the pattern do not count
    shards[1].write_text("x\tO\n", encoding="utf-8")
    assert fingerprint(pattern) != after

    mock = pafs._MockFileSystem()  # an object store: no local paths, entries listed by prefix
    mock.create_dir("bucket/shards")
    for name in ("a.conll", "b.conll"):
        with mock.open_output_stream(f"bucket/shards/{name}") as f:
            f.write(b"Ali\tB-PER\n")
    monkeypatch.setattr(files, "filesystem", lambda p: (mock, p.split("://", 1)[1]))
    remote = fingerprint("mock://bucket/shards")
    remote_pattern = fingerprint("mock://bucket/shards/*.conll")
    with mock.open_output_stream("bucket/shards/c.conll") as f:
        f.write(b"Dakar\tB-LOC\n")
    assert fingerprint("mock://bucket/shards") != remote
    assert fingerprint("mock://bucket/shards/*.conll") != remote_pattern


def test_generate_on_a_folder_source(ray_session, data_root, tmp_path):
    """``lrl generate`` on a folder of CoNLL shards of one language and split (before, each shard
    had to be its own source with an invented split name) and a pattern of text shards; adding a
    shard gives a new output folder."""
    from lrl.generate.stage import read_inputs, run_generate, stage_output
    from lrl.generate.write import read_rows
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    _shards(data_root, tmp_path / "ug", n=3, size=10)
    (tmp_path / "mono").mkdir()
    lines = (data_root / "mono" / "ug.txt").read_text(encoding="utf-8").split("\n")[:80]
    for i in range(2):
        (tmp_path / "mono" / f"ug-{i}.txt").write_text("\n".join(lines[i * 40:(i + 1) * 40]) + "\n", encoding="utf-8")

    def job(*extra):
        return load_job(None, ["data.ner=[{path: ug, lang: ug}]", f"data.root={tmp_path}",
                               "data.text=[{path: mono/ug-*.txt, lang: ug}]", "augment.ops=[swap]",
                               "augment.neighbours.enabled=false", f"output.root={tmp_path / 'runs'}", *extra])

    cfg = job()
    path = run_generate(StageContext(cfg))
    m = json.loads((Path(path) / "manifest.json").read_text())
    data = read_rows(path)
    ids = data.column("id").to_pylist()
    assert len(ids) == len(set(ids)) and m["input_rows"] == 30
    assert {i for i, op in zip(ids, data.column("op").to_pylist()) if op == "orig"} == {
        f"ug:train:ug-{f}.conll:{n}" for f in range(3) for n in range(10)}
    assert m["inputs"]["ner"][0]["path"] == "ug" and m["data_root"] == str(tmp_path)  # relative to data.root
    assert {s.split("#")[0] for s in data.column("source").to_pylist()} == {f"ug/ug-{f}.conll" for f in range(3)}
    text_ids = read_rows(path, "text").column("id").to_pylist()
    assert {i.split(":")[1] for i in text_ids} == {"ug-0.txt", "ug-1.txt"}

    (tmp_path / "ug" / "ug-3.conll").write_text("yeni\tO\n", encoding="utf-8")
    assert stage_output(cfg).path != path
    (tmp_path / "mono" / "ug-2.txt").write_text("yeni\n", encoding="utf-8")
    (tmp_path / "ug-1.txt").write_text("x\n", encoding="utf-8")
    # The text id check sees each file of a pattern: ug-1.txt from two sources would share ids.
    with pytest.raises(InputError, match=r"text row id 'ug:ug-1.txt:1' also comes from .*mono/ug-1.txt"):
        read_inputs(job("data.text=[{path: mono/ug-*.txt, lang: ug}, {path: ug-1.txt, lang: ug}]"))
