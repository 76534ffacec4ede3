"""End to end: the generate stage on the session Ray over a slice of real data, its output
layout and manifest, idempotent re-runs, no finished-looking leftovers, and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from lrl.data.bio import bio_problems
from lrl.job import load_job

SLICE = 60  # sentences per language: small enough for a few seconds on 2 cores


def _slice(data_root: Path, tmp_path: Path, lang: str, n: int = SLICE) -> str:
    """The first ``n`` sentences of wikiann/<lang>/train as a CoNLL file in tmp_path."""
    blocks = (data_root / "wikiann" / lang / "train").read_text(encoding="utf-8").split("\n\n")[:n]
    out = tmp_path / "in" / f"{lang}.conll"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return str(out)


def _job(data_root, tmp_path, *extra: str):
    ug, wo = _slice(data_root, tmp_path, "ug"), _slice(data_root, tmp_path, "wo")
    bad = tmp_path / "in" / "bad.conll"
    bad.write_text("Ali\tB-PER\n\nDakar\tI-LOC\n\nx\n", encoding="utf-8")  # 1 ok, 1 bad BIO, 1 no tag
    return load_job(None, [
        f"data.ner=[{{path: {ug}, lang: ug}}, {{path: {wo}, lang: wo}}, {{path: {bad}, lang: wo, split: extra}},"
        " {path: wikiann/wo/dev, lang: wo, split: dev}]", f"data.root={data_root}",  # relative: resolved
        f"data.text=[{{path: {data_root / 'mono' / 'wo.txt'}, lang: wo, max_lines: 300}}]",
        "augment.ops=[swap, mention]", "augment.neighbours.enabled=false",
        f"output.root={tmp_path / 'runs'}", *extra,
    ])


def _files(folder: str) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in Path(folder).rglob("*") if p.is_file()}


def test_generate_end_to_end_and_rerun_does_nothing(ray_session, data_root, tmp_path, capsys):
    from lrl.generate.stage import run_generate, stage_output
    from lrl.generate.write import read_rows
    from lrl.pipeline.stage import StageContext

    cfg = _job(data_root, tmp_path)
    path = run_generate(StageContext(cfg))
    assert Path(path).name == f"generate-{stage_output(cfg).hash}"
    out = capsys.readouterr().out
    assert "generate: " + path in out
    m = json.loads((Path(path) / "manifest.json").read_text())
    # Input rows are every sentence read: the 2 the reader rejected were left out of them (and
    # counted in the rejects), so the summary's counts did not add up.
    assert m["input_read"] == 2 * SLICE + 3 and m["input_rejected"] == 2
    assert f"input rows {2 * SLICE + 3}, output rows {m['output_rows']}, rejects 2 (2 on reading)," in out

    data = read_rows(path)
    assert set(data.column("lang").to_pylist()) == {"ug", "wo"}
    assert sorted(p.name for p in (Path(path) / "data").iterdir()) == ["lang=ug", "lang=wo"]
    ids = data.column("id").to_pylist()
    assert len(ids) == len(set(ids)), "duplicate row ids"
    ops = data.column("op").to_pylist()
    assert {"orig", "swap", "mention"} <= set(ops)
    assert ops.count("orig") == 2 * SLICE + 1
    # Every generated row names its parent and seed, and keeps valid BIO.
    rows = data.to_pylist()
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        assert not bio_problems(r["tags"]) and len(r["tokens"]) == len(r["tags"])
        if r["op"] != "orig":
            assert r["parent_id"] in by_id and r["seed"] is not None
            assert by_id[r["parent_id"]]["lang"] == r["lang"]

    # Manifest counts agree with the files.
    assert m["stage"] == "generate" and m["input_rows"] == 2 * SLICE + 1
    assert m["output_rows"] == len(rows)
    assert m["rows_per_op"] == {op: ops.count(op) for op in sorted(set(ops))}
    assert m["rows_per_lang"]["ug"] == sum(r["lang"] == "ug" for r in rows)
    assert m["rejects_per_reason"] == {"invalid BIO": 1, "tag missing": 1}
    assert m["inputs"]["ner"][2]["reject_reasons"] == {"invalid BIO": 1, "tag missing": 1}
    assert m["inputs"]["ner"][2]["repaired"] == 0  # quarantine policy: nothing changed
    assert m["text_rows"] == 300 and m["labels"] == ["LOC", "ORG", "PER"]
    assert m["config"]["augment"]["ops"] == ["swap", "mention"]
    # The dev source is held out: not augmented, not in data/ (it scores models later).
    # As configured, relative to data.root, which the manifest names (no absolute path: the
    # folder is the same under another root, lrl.generate.sources).
    assert m["inputs"]["held_out"] == ["wikiann/wo/dev#dev"] and m["data_root"] == str(data_root)
    assert not any(":dev:" in i for i in ids) and len(m["inputs"]["ner"]) == 3
    assert m["versions"]["ray"] and m["wall_time_s"] > 0
    rejects = read_rows(path, "rejects")
    assert sorted(r.split(":")[0] for r in rejects.column("reason").to_pylist()) == ["invalid BIO", "tag missing"]
    assert all(line >= 1 for line in rejects.column("line").to_pylist())
    text = read_rows(path, "text")
    assert text.num_rows == 300 and set(text.column("lang").to_pylist()) == {"wo"}

    # Re-run with the same config and inputs: same folder, nothing rewritten, no Ray work.
    before = _files(path)
    assert run_generate(StageContext(cfg)) == path
    assert _files(path) == before
    # Nothing that looks finished besides the one folder, no temporary leftovers.
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [Path(path).name]


def test_changed_config_or_input_gives_a_new_folder(data_root, tmp_path, monkeypatch):
    from lrl.generate import stage
    from lrl.generate.stage import stage_output

    cfg = _job(data_root, tmp_path)
    base = stage_output(cfg).path
    with monkeypatch.context() as m:  # code that makes other rows: outputs of older code are not reused
        m.setattr(stage, "ROWS_VERSION", stage.ROWS_VERSION + 1)
        assert stage_output(cfg).path != base
    assert stage_output(_job(data_root, tmp_path, "augment.ops=[swap]")).path != base
    assert stage_output(_job(data_root, tmp_path, "ray.num_cpus=1")).path == base  # ray does not shape data
    with open(tmp_path / "in" / "ug.conll", "a", encoding="utf-8") as f:
        f.write("\nyeni\tO\n")
    assert stage_output(cfg).path != base


def test_edited_lexicon_gives_a_new_folder(data_root, tmp_path):
    """A synonym lexicon shapes the rows like any input: editing it must not return the old output."""
    from lrl.generate.stage import stage_output

    lex = tmp_path / "ug.tsv"
    lex.write_text("ۋە\tبىلەن\n", encoding="utf-8")
    cfg = _job(data_root, tmp_path, "augment.ops=[synonym]", f"augment.lexicons={{ug: {lex}}}")
    base = stage_output(cfg).path
    lex.write_text("ۋە\tھەم\n", encoding="utf-8")
    assert stage_output(cfg).path != base


def test_failed_run_leaves_nothing_that_looks_finished(ray_session, data_root, tmp_path):
    from lrl.generate.stage import run_generate
    from lrl.pipeline.stage import StageContext

    class Boom:
        name = "boom"

        def apply(self, ds):
            def fail(batch):
                raise RuntimeError("killed mid-job")

            return ds.map_batches(fail, batch_format="pyarrow")

    cfg = _job(data_root, tmp_path)
    with pytest.raises(Exception, match="killed mid-job"):
        run_generate(StageContext(cfg), extra_steps=[Boom()])
    runs = tmp_path / "runs"
    leftovers = list(runs.iterdir()) if runs.exists() else []
    assert not [p for p in leftovers if not p.name.startswith(".")]  # only hidden temporaries, if any
    assert not list(runs.rglob("manifest.json"))


def test_duplicate_ids_across_sources_are_an_error(data_root, tmp_path):
    from lrl.data.files import InputError
    from lrl.generate.stage import read_inputs

    ug = _slice(data_root, tmp_path, "ug", 5)
    cfg = load_job(None, [f"data.ner=[{{path: {ug}, lang: ug}}, {{path: {ug}, lang: ug}}]"])
    with pytest.raises(InputError, match="also occurs in .*split"):
        read_inputs(cfg)


def test_text_files_with_clashing_ids_are_an_error(data_root, tmp_path):
    """Text row ids are lang:file name:line; two text files of a language with the same name (in
    different folders) gave rows the same ids, and dedup then rejected unique rows by id."""
    from lrl.data.files import InputError
    from lrl.generate.stage import read_inputs

    ug = _slice(data_root, tmp_path, "ug", 5)
    for folder in ("wiki", "news"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "ug.txt").write_text(f"{folder} bir\n{folder} ikki\n", encoding="utf-8")
    cfg = load_job(None, [f"data.ner=[{{path: {ug}, lang: ug}}]",
                          f"data.text=[{{path: {tmp_path / 'wiki' / 'ug.txt'}, lang: ug}},"
                          f" {{path: {tmp_path / 'news' / 'ug.txt'}, lang: ug}}]"])
    with pytest.raises(InputError, match=r"news/ug\.txt: text row id 'ug:ug\.txt:1' also comes from .*wiki/ug\.txt"):
        read_inputs(cfg)


def test_cli_generate_prints_path_and_summary(ray_session, data_root, tmp_path, capsys):
    from lrl.cli import main

    ug = _slice(data_root, tmp_path, "ug", 20)
    job = tmp_path / "job.yaml"
    job.write_text(f"data:\n  ner:\n    - {{path: in/ug.conll, lang: ug}}\noutput:\n  root: {tmp_path / 'out'}\n"
                   "augment:\n  ops: [shuffle]\n", encoding="utf-8")
    assert os.path.exists(ug)
    assert main(["generate", str(job), "augment.copies=2"]) == 0
    out = capsys.readouterr().out
    assert "generate: " + str(tmp_path / "out" / "generate-") in out and "rows_per_op: orig=20" in out
    (folder,) = (tmp_path / "out").glob("generate-*")  # beside the job's lock file (.lrl-job.lock)
    assert pq.read_table(folder / "data").num_rows == json.loads((folder / "manifest.json").read_text())["output_rows"]
    assert main(["generate", str(job), "augment.copies=2"]) == 0
    assert "(reused: finished " in capsys.readouterr().out
    assert main(["generate", str(job), "data.ner.0.path=in/missing.conll"]) == 2
    assert "missing.conll: file not found" in capsys.readouterr().err


@pytest.mark.slow
def test_generate_with_back_translation_and_filters(ray_session, data_root, tmp_path):
    """The whole chain with the MT steps (fake translator) and filters: back-translated rows in
    data/ and text/, duplicates moved to rejects/ with their reason and counted."""
    from lrl.generate.stage import run_generate
    from lrl.generate.write import read_rows
    from lrl.pipeline.stage import StageContext

    cfg = _job(data_root, tmp_path, "translate.enabled=true",
               "translate.backtranslate={lang: wo, pivot: en, to_pivot: {backend: fake}, from_pivot: {backend: fake}}",
               "filter.ops=[dedup]")
    path = run_generate(StageContext(cfg), quiet=True)
    m = json.loads((Path(path) / "manifest.json").read_text())
    assert m["steps"][0] == "backtranslate" and m["steps"][-1] == "dedup"
    data, text, rejects = read_rows(path), read_rows(path, "text"), read_rows(path, "rejects")
    rej_ops = rejects.column("op").to_pylist()
    # Every back-translated labelled row is either kept or rejected (the fake translator round-trips
    # to the original text, so dedup rejects most of them as duplicates).
    assert data.column("op").to_pylist().count("backtranslate") + rej_ops.count("backtranslate") > 0
    # Text: 300 originals + 300 back-translations, each kept in text/ or rejected with a reason.
    text_rejects = rejects.filter(pc.and_(pc.is_null(rejects["tokens"]), pc.is_null(rejects["line"])))
    assert text.num_rows == m["text_rows"] and text.num_rows + text_rejects.num_rows == 600
    assert len({" ".join(t.split()).casefold() for t in text.column("text").to_pylist()}) == text.num_rows
    kept = [(lang, " ".join(t).casefold()) for lang, t in zip(data.column("lang").to_pylist(),
                                                              data.column("tokens").to_pylist())]
    assert len(set(kept)) == len(kept)  # no duplicates left in data/
    reasons = [r.split(":")[0] for r in rejects.column("reason").to_pylist()]
    assert m["rejects_per_reason"] == {k: reasons.count(k) for k in sorted(set(reasons))}
    assert m["rejects_per_reason"]["duplicate"] > 0 and m["rejects_total"] == rejects.num_rows


def test_a_second_run_of_the_same_config_keeps_the_first_finished_output(tmp_path):
    """Two runs of one config (a retried job while the first still runs): the later commit deleted
    the finished folder that the first run's next stages were already reading."""
    from lrl.data.output import StageOutput

    first, second = (StageOutput(str(tmp_path), "generate", {"x": 1}) for _ in range(2))
    for out, name in ((first, "a"), (second, "b")):
        (Path(out.tmp) / f"{name}.parquet").write_bytes(b"rows")
    path = first.commit({"run": "first"})
    assert second.commit({"run": "second"}) == path
    assert (Path(path) / "a.parquet").exists() and first.manifest()["run"] == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == [Path(path).name]  # second's tmp removed


def test_run_control_settings_change_neither_rows_nor_folder(ray_session, data_root, tmp_path):
    """``augment.batch_size``/``compute``/``num_actors`` and ``oversample.batch_size``/``chunk_rows``
    (``RUN_CONTROL``) schedule the work: run both ways, the rows are the same, so the folder name
    leaves them out and a changed value reuses the finished output (a changed oversample slice
    size regenerated every row)."""
    from lrl.generate.stage import RUN_CONTROL, run_generate, stage_output
    from lrl.generate.write import read_rows
    from lrl.pipeline.stage import StageContext

    assert RUN_CONTROL == {"augment": {"batch_size", "compute", "num_actors"}, "oversample": {"batch_size", "chunk_rows"}}
    ops = "augment.ops=[insert, swap, delete, mention, labelwise, shuffle]"
    over = ("oversample.enabled=true", "oversample.target_per_lang=60", "oversample.min_sentences_per_type=12")
    a = _job(data_root, tmp_path, ops, "augment.copies=2", *over)
    # Another root: the same hash there is a folder of its own, so b really runs.
    b = _job(data_root, tmp_path, ops, "augment.copies=2", "augment.batch_size=7", "augment.compute=actors",
             "augment.num_actors=1", *over, "oversample.batch_size=5", "oversample.chunk_rows=3",
             f"output.root={tmp_path / 'runs_b'}")
    assert stage_output(a).hash == stage_output(b).hash
    assert stage_output(_job(data_root, tmp_path, ops, "augment.copies=3")).hash != stage_output(a).hash
    pa_, pb = run_generate(StageContext(a), quiet=True), run_generate(StageContext(b), quiet=True)
    assert pa_ != pb
    def rows(path: str, kind: str) -> list[dict]:
        # By id, then whole content: reject rows may have no id.
        return sorted(read_rows(path, kind).to_pylist(), key=lambda r: (r.get("id") or "", json.dumps(r, sort_keys=True)))

    for kind in ("data", "rejects", "text"):
        ra = rows(pa_, kind)
        assert ra == rows(pb, kind), kind
    assert {r["op"] for r in rows(pa_, "data")} >= {"orig", "oversample", "insert", "swap", "delete", "mention",
                                                     "labelwise", "shuffle"}
    # A changed setting finds the finished folder: nothing regenerated.
    before = _files(pa_)
    c = _job(data_root, tmp_path, ops, "augment.copies=2", "augment.batch_size=3", *over, "oversample.chunk_rows=9")
    assert run_generate(StageContext(c), quiet=True) == pa_ and _files(pa_) == before



def test_a_task_whose_node_cannot_see_the_stage_folder_stops_instead_of_writing_its_own(tmp_path):
    """The driver creates the stage's temporary folder before any task writes. A task on a node
    without that folder (an output.root that is not shared, on a node an autoscaler added after the
    preflight probe) created a private copy there, and its rows were missing from the output: the
    stage failed only at its end, with "generate lost or invented rows"."""
    import pyarrow as pa

    from lrl.generate.write import PartWriter

    batch = pa.table({"id": ["ug:1"], "lang": ["ug"], "tokens": [["a"]], "tags": [["O"]]})
    missing = tmp_path / "runs" / ".generate-0123456789ab.tmp-deadbeef"
    with pytest.raises(RuntimeError, match=r"does not exist on node .*output\.root is not shared by every node"):
        PartWriter(str(missing))(batch)
    assert not missing.exists()  # nothing written on this node's own disk
    missing.mkdir(parents=True)
    assert PartWriter(str(missing))(batch).column("rows").to_pylist() == [1]
