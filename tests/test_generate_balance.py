"""Nothing lost, nothing silently dropped: per language, the sentences and text lines read equal
the read rows written plus the read rows rejected, counted from the files on disk; the manifest
says so (``balance``), and a step that drops rows instead of rejecting them fails the stage."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from lrl.job import load_job

# One file with every kind of bad line, each in its own sentence after a good one.
BAD = ("Ali\tB-PER\nwent\tO\n\n"
       "New\tYork\tB-LOC\n\n"          # another column count
       "\tB-PER\n\n"                   # empty token
       "x\tO\nAli\tI-PER\n\n"          # I- after O
       "Ali\tU-PER\n\n"                # not BIO
       "\ufeff-DOCSTART-\tO\n\n"       # a BOM at a line start (files joined with cat): not a sentence
       "Kano\tB-LOC\r\ncity\tO\r\n\r\n"  # CRLF
       "Dakar\tB-LOC")                 # no final newline
BAD_SENTENCES, BAD_KEPT = 7, 3


def _job(data_root: Path, tmp_path: Path, *extra: str):
    ug = tmp_path / "ug.conll"
    ug.write_text("\n\n".join((data_root / "wikiann/ug/train").read_text(encoding="utf-8").split("\n\n")[:40]) + "\n",
                  encoding="utf-8")
    bad = tmp_path / "bad.conll"
    bad.write_bytes(BAD.encode())
    text = tmp_path / "wo.txt"
    text.write_text("# doc A\none line\n\n# doctors say\none line\n", encoding="utf-8")
    return load_job(None, [
        f"data.ner=[{{path: {ug}, lang: ug}}, {{path: {bad}, lang: wo}}]",
        f"data.text=[{{path: {text}, lang: wo}}]", "augment.ops=[swap]", "augment.neighbours.enabled=false",
        "filter.ops=[dedup]", "filter.scope=all", f"output.root={tmp_path / 'runs'}", *extra])


def test_rows_read_equal_rows_written_plus_rejected_per_language(ray_session, data_root, tmp_path):
    from lrl.generate.stage import run_generate
    from lrl.generate.write import read_rows
    from lrl.pipeline.stage import StageContext

    path = run_generate(StageContext(_job(data_root, tmp_path)), quiet=True)
    m = json.loads((Path(path) / "manifest.json").read_text())
    data, rejects, text = read_rows(path), read_rows(path, "rejects"), read_rows(path, "text")
    wo = data.filter(pa.compute.equal(data.column("lang"), "wo"))
    assert sorted(t[0] for t, op in zip(wo.column("tokens").to_pylist(), wo.column("op").to_pylist())
                  if op == "orig") == ["Ali", "Dakar", "Kano"]
    reader = Counter(r["lang"] for r in rejects.to_pylist() if r["line"] is not None)
    assert reader == {"wo": BAD_SENTENCES - BAD_KEPT}
    # From the files: orig rows written + read rows rejected (by a reader or a filter) = read.
    orig = Counter(r["lang"] for r in data.select(["lang", "op"]).to_pylist() if r["op"] == "orig")
    rejected_orig = Counter(r["lang"] for r in rejects.to_pylist()
                            if r["line"] is not None or (r["op"] == "orig" and r["tokens"] is not None))
    assert orig["ug"] + rejected_orig["ug"] == 40 and orig["wo"] + rejected_orig["wo"] == BAD_SENTENCES
    text_rejected = sum(1 for r in rejects.to_pylist() if r["tokens"] is None and r["line"] is None)
    assert text.num_rows + text_rejected == 3 and text_rejected == 1  # "one line" twice: a duplicate
    assert m["balance"] == {
        "ner/ug": {"read": 40, "written": orig["ug"], "rejected": rejected_orig["ug"]},
        "ner/wo": {"read": BAD_SENTENCES, "written": orig["wo"], "rejected": rejected_orig["wo"]},
        "text/wo": {"read": 3, "written": 2, "rejected": 1}}
    assert sum(m["rejects_per_lang_origin"].values()) == rejects.num_rows == m["rejects_total"]
    assert m["rejects_per_lang_origin"]["wo/read"] == BAD_SENTENCES - BAD_KEPT


class _DropFirst:
    """A broken step: drops each block's first row instead of marking it rejected."""

    name = "drop_first"

    def apply(self, ds):
        return ds.map_batches(lambda t: t.slice(1), batch_format="pyarrow", batch_size=None)


def test_a_step_that_drops_rows_fails_the_stage(ray_session, data_root, tmp_path):
    from lrl.generate.stage import run_generate, stage_output
    from lrl.pipeline.stage import StageContext

    cfg = _job(data_root, tmp_path, "augment.ops=[]", "filter.ops=[]")
    with pytest.raises(RuntimeError, match=r"lost or invented rows .*'ner/"):
        run_generate(StageContext(cfg), extra_steps=[_DropFirst()], quiet=True)
    assert not stage_output(cfg).done and not list((tmp_path / "runs").iterdir())


def test_translate_train_without_its_sources_balances(ray_session, data_root, tmp_path):
    """``translate.train.keep_source=false`` leaves the source-language rows out by design: the
    balance names them as left out (not lost), and the stage finishes."""
    from lrl.generate.stage import run_generate
    from lrl.pipeline.stage import StageContext

    en = tmp_path / "en.conll"
    en.write_text("John\tB-PER\nwent\tO\n\nParis\tB-LOC\n\n", encoding="utf-8")
    cfg = load_job(None, [f"data.ner=[{{path: {en}, lang: en}}]", "translate.enabled=true",
                          "translate.train={sources: [en], target: ug, model: {backend: fake}, keep_source: false}",
                          "augment.ops=[]", f"output.root={tmp_path / 'runs'}"])
    m = json.loads((Path(run_generate(StageContext(cfg), quiet=True)) / "manifest.json").read_text())
    assert m["balance"]["ner/en"] == {"read": 2, "written": 0, "rejected": 0, "left_out": 2}


def test_translation_repairs_are_counted_in_the_manifest(ray_session, data_root, tmp_path):
    """Rows whose markers projection had to repair (found again by the entity's own translation,
    moved...) were kept with no trace of it: the manifest now counts them per op and kind."""
    import pyarrow.parquet as pq

    from lrl.generate.stage import run_generate
    from lrl.pipeline.stage import StageContext

    en = tmp_path / "en.conll"
    sents = [("John", "B-PER"), ("went", "O"), ("to", "O"), ("Paris", "B-LOC"), ("today", "O")]
    en.write_text("\n\n".join("\n".join(f"{w}{i}\t{t}" if t != "O" else f"{w}\t{t}" for w, t in sents)
                              for i in range(40)) + "\n\n", encoding="utf-8")
    cfg = load_job(None, [f"data.ner=[{{path: {en}, lang: en}}]", "translate.enabled=true",
                          "translate.train={sources: [en], target: ug, keep_source: false, "
                          "model: {backend: fake, fake: {drop_marker_rate: 0.3, move_marker_rate: 0.2}}}",
                          "augment.ops=[swap]", f"output.root={tmp_path / 'runs'}"])
    path = Path(run_generate(StageContext(cfg), quiet=True))
    m = json.loads((path / "manifest.json").read_text())
    fixes = m["translation_repairs"]
    kept = m["rows_per_op"]["translate"]
    assert 0 < fixes["translate/rows_repaired"] <= kept, (fixes, kept)
    assert sum(n for k, n in fixes.items() if k != "translate/rows_repaired") >= fixes["translate/rows_repaired"]
    assert not any(k.startswith("swap/") for k in fixes)  # copies of repaired rows are not repairs
    assert "repairs" not in pq.read_schema(next((path / "data").rglob("*.parquet"))).names
