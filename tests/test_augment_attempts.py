"""Every augmentation attempt is counted: per op and language, the attempts (``copies`` per kept
row), the rows generated and each attempt that made none by its reason, carried from the Ray
tasks to ``manifest.json`` (``augment_attempts``) through the writer's result rows."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from lrl.data.schema import NER_SCHEMA, REJECT
from lrl.generate.augment.op import AugmentOp, generated_table
from lrl.generate.augment.resources import AugmentResources
from lrl.generate.augment.seeds import row_key
from lrl.job import load_job

#: The reasons an attempt made no row (``lrl.generate.augment.op.TALLY`` after attempts, generated).
REASONS = ("not_applicable", "unchanged", "repeats_copy", "equals_input")


class _ScriptedOp(AugmentOp):
    """An op whose outcome the first token decides: ``na`` not applicable, ``same`` unchanged,
    ``const`` the same row every copy, ``dup`` an input row, anything else a new row per copy."""

    name = "scripted"

    def edit(self, tokens: list[str], tags: list[str], lang: str, rng: random.Random):
        first = tokens[0]
        if first == "na":
            return None
        if first == "same":
            return tokens, tags
        if first == "const":
            return ["c", "c"], ["O", "O"]
        if first == "dup":
            return ["ok", "x"], ["O", "O"]  # the first row's content
        return tokens + [str(rng.random())], tags + ["O"]


def _rows() -> pa.Table:
    rows = [("xx", ["ok", "x"]), ("xx", ["na"]), ("xx", ["same", "y"]), ("xx", ["const"]), ("xx", ["dup", "z"]),
            ("yy", ["na", "q"]), ("yy", ["ok", "q"]), ("xx", ["ok", "w"])]
    table = pa.Table.from_pylist(
        [{"id": f"{lang}:{i}", "lang": lang, "tokens": toks, "tags": ["O"] * len(toks), "op": "orig"}
         for i, (lang, toks) in enumerate(rows)], schema=NER_SCHEMA)
    reject = [None] * (table.num_rows - 1) + ["a filter said so"]  # the last row is rejected
    return table.append_column(REJECT, pa.array(reject, pa.string()))


def test_every_attempt_is_counted_by_its_reason():
    from lrl.generate.augment.op import TALLY

    table = _rows()
    originals = {lang: frozenset(row_key(r["tokens"], r["tags"]) for r in table.to_pylist() if r["lang"] == lang)
                 for lang in ("xx", "yy")}
    op = _ScriptedOp(None, AugmentResources(originals=originals), job_seed=3, copies=3)
    tallies: dict[tuple[str, str], list[int]] = {}
    out = generated_table(table, [op], tallies)
    assert out.equals(generated_table(table, [op]))  # counting changes no row
    got = {key: dict(zip(TALLY, t)) for key, t in tallies.items()}
    # xx: 5 kept rows x 3 copies (the rejected row is not tried): "ok x" 3 rows, "na" 3 not
    # applicable, "same y" 3 unchanged, "const" 1 row and 2 repeats of it; "dup z"'s first copy
    # equals the input row "ok x" and its two later copies repeat it. yy: 2 rows x 3.
    assert got == {
        ("scripted", "xx"): {"attempts": 15, "generated": 3 + 1, "not_applicable": 3, "unchanged": 3,
                             "repeats_copy": 2 + 2, "equals_input": 1},
        ("scripted", "yy"): {"attempts": 6, "generated": 3, "not_applicable": 3, "unchanged": 0,
                             "repeats_copy": 0, "equals_input": 0},
    }
    assert Counter(out.column("lang").to_pylist()) == {"xx": 4, "yy": 3}


def _job(wikiann_slice, tmp_path: Path, n: int, *extra: str):
    ug, wo = wikiann_slice("ug", n), wikiann_slice("wo", n)
    return load_job(None, [f"data.ner=[{{path: {ug}, lang: ug}}, {{path: {wo}, lang: wo}}]",
                           "augment.neighbours.enabled=false", f"output.root={tmp_path / 'runs'}", *extra])


def _run(cfg, quiet: bool = True) -> tuple[str, dict]:
    from lrl.generate.stage import run_generate
    from lrl.pipeline.stage import StageContext

    path = run_generate(StageContext(cfg), quiet=quiet)
    return path, json.loads((Path(path) / "manifest.json").read_text())


def _consistent(m: dict) -> None:
    for op, langs in m["augment_attempts"].items():
        for lang, c in langs.items():
            assert c["attempts"] == c["generated"] + sum(c[r] for r in REASONS), (op, lang, c)
            assert c["generated"] == c["written"] + c["rejected"], (op, lang, c)
            assert c["written"] == m["rows_per_lang_op"].get(f"{lang}/{op}", 0), (op, lang)
        assert sum(c["written"] for c in langs.values()) == m["rows_per_op"].get(op, 0), op


def test_manifest_counts_every_attempt_and_a_rerun_counts_the_same(ray_session, wikiann_slice, tmp_path, capsys):
    from lrl.generate.stage import summary

    ops = ["augment.ops=[swap, delete, mention]", "augment.copies=3"]
    path, m = _run(_job(wikiann_slice, tmp_path, 60, *ops), quiet=False)
    att = m["augment_attempts"]
    assert set(att) == {"swap", "delete", "mention"} and all(set(langs) == {"ug", "wo"} for langs in att.values())
    for op, langs in att.items():
        for lang, c in langs.items():
            assert c["attempts"] == 3 * m["rows_per_lang_op"][f"{lang}/orig"] == 3 * 60, (op, lang)
            assert c["rejected"] == 0  # no filter
    _consistent(m)
    # The slices have sentences with fewer than 2 O tokens, short sentences with few variants and
    # entity-only sentences: every reason but "unchanged" occurs.
    total = Counter()
    for langs in att.values():
        for c in langs.values():
            total.update({r: c[r] for r in REASONS})
    assert total["not_applicable"] > 0 and total["repeats_copy"] > 0 and total["equals_input"] > 0, total
    assert sum(c["not_applicable"] for c in att["swap"].values()) > 0
    printed = capsys.readouterr().out
    assert "augment attempts -> generated: " in printed and "swap 360 -> " in printed
    assert summary(path, m) in printed

    # Another schedule (actors, 7-row slices) in another root: the same rows, the same counts.
    _, m2 = _run(_job(wikiann_slice, tmp_path, 60, *ops, "augment.compute=actors", "augment.num_actors=1",
                      "augment.batch_size=7", f"output.root={tmp_path / 'runs_b'}"))
    assert m2["augment_attempts"] == att and m2["rows_per_lang_op"] == m["rows_per_lang_op"]


def test_attempts_after_oversampling_and_with_a_filter(ray_session, wikiann_slice, tmp_path):
    # Augmentation runs after oversampling: every copy is tried too. Dedup then rejects some
    # generated rows (and read rows): generated = written + rejected, counted from the files.
    from lrl.generate.write import read_rows

    path, m = _run(_job(wikiann_slice, tmp_path, 30, "augment.ops=[swap, shuffle]", "augment.copies=2",
                        "oversample.enabled=true", "oversample.target_per_lang=75",
                        "filter.ops=[dedup]", "filter.scope=all"))
    assert m["steps"][:2] == ["oversample", "augment"]
    _consistent(m)
    rejects = read_rows(path, "rejects").to_pylist()
    for lang in ("ug", "wo"):
        # The rows that reached augmentation: originals and copies, written or rejected after it.
        entered = sum(n for k, n in m["rows_per_lang_op"].items() if k in (f"{lang}/orig", f"{lang}/oversample"))
        entered += sum(r["lang"] == lang and r["op"] in ("orig", "oversample") for r in rejects)
        assert entered == m["oversample"]["rows_after"][lang] == 75
        for op in ("swap", "shuffle"):
            c = m["augment_attempts"][op][lang]
            assert c["attempts"] == 2 * entered, (op, lang)
            assert c["rejected"] == sum(r["lang"] == lang and r["op"] == op for r in rejects), (op, lang)
    assert sum(c["rejected"] for langs in m["augment_attempts"].values() for c in langs.values()) > 0


class _DropCounts:
    """A broken step: rebuilds each batch from the NER columns only, losing the attempt counts."""

    name = "drop_counts"

    def apply(self, ds):
        from lrl.data.schema import conform

        return ds.map_batches(lambda t: conform(t, NER_SCHEMA.append(pa.field(REJECT, pa.string()))),
                              batch_format="pyarrow", batch_size=None)


def test_lost_attempt_counts_fail_the_stage(ray_session, wikiann_slice, tmp_path):
    from lrl.generate.stage import run_generate
    from lrl.pipeline.stage import StageContext

    cfg = _job(wikiann_slice, tmp_path, 10, "augment.ops=[swap]")
    with pytest.raises(RuntimeError, match="lost or invented augmented rows"):
        run_generate(StageContext(cfg), extra_steps=[_DropCounts()], quiet=True)
