"""Oversampling is an NER operation: in a job that reads POS rows (``data.ner[].scheme: tokens``)
beside entity-tagged ones, the POS rows pass once and neither count toward a target nor give
entity types; and the entity types that the filters leave below ``min_sentences_per_type`` are
recorded and said, read in enough sentences or not, with the reject kinds that took them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from lrl.config import ConfigError
from lrl.data.schema import NER_SCHEMA, ner_table
from lrl.generate.config import OversampleConfig
from lrl.generate.oversample import oversample_batch, oversample_steps, plan_oversample
from lrl.job import load_job

NER, UD = "ner.conll#train", "ud.conllu#train"
#: (lang, source) of the POS rows below: yo has a POS source beside its NER one, ug only POS.
TOKENS = frozenset({("yo", UD), ("ug", UD)})


def _mixed() -> pa.Table:
    """10 yo NER rows (8 with PER, 2 with ORG), 6 yo POS rows (one with the rare tag INTJ) and 4 ug
    POS rows, as the readers make them (a POS tag X is read as ``B-X``)."""
    rows = [("yo", NER, ["B-PER", "O"])] * 8 + [("yo", NER, ["B-ORG", "O"])] * 2
    rows += [("yo", UD, ["B-NOUN", "B-VERB"])] * 5 + [("yo", UD, ["B-INTJ", "B-NOUN"])]
    rows += [("ug", UD, ["B-NOUN", "B-VERB"])] * 4
    return ner_table([{"id": f"{lang}:{source}:{i}", "lang": lang, "tokens": ["w"] * len(tags), "tags": tags,
                       "source": source, "op": "orig"} for i, (lang, source, tags) in enumerate(rows)])


def _stream(table: pa.Table, plan) -> pa.Table:
    return pa.concat_tables([part for i in range(0, table.num_rows, 5)
                             for part in oversample_batch(table.slice(i, 5), plan)])


def test_pos_rows_pass_once_and_give_no_types():
    """A yo POS row (``B-NOUN`` on every word) counted toward yo's target of 20 and took copies; its
    rare tag INTJ was taken for a rare entity type, and ug (POS only) was brought up to 20 too."""
    table = _mixed()
    cfg = OversampleConfig(enabled=True, target_per_lang=20, min_sentences_per_type=5)
    plan = plan_oversample(cfg, table, seed=1, tokens=TOKENS)
    assert plan.before == {"yo": 10} and plan.after == {"yo": 20} and plan.targets == {"yo": 20}
    assert plan.rare == {"yo": ("ORG",)} and plan.types_after["yo"]["ORG"] >= 5  # PER (8) is not rare
    assert plan.token_rows == {"ug": 4, "yo": 6}
    out = _stream(table, plan)
    pos = out.filter(pa.compute.equal(out.column("source"), UD))
    assert pos.num_rows == 10 and set(pos.column("op").to_pylist()) == {"orig"}  # each POS row once
    ner = [r for r in out.to_pylist() if r["source"] == NER]
    assert len(ner) == 20 and sum("B-ORG" in r["tags"] for r in ner) == plan.types_after["yo"]["ORG"]
    weights = plan.expected_rows(table)
    assert list(weights[10:]) == [1.0] * 10 and all(weights[:10] > 1)  # blocks cut by output rows
    # Counted as entity rows (no tokens given), the same table is planned as before: what changed.
    old = plan_oversample(cfg, table, seed=1)
    assert old.before == {"ug": 4, "yo": 16} and "INTJ" in old.rare["yo"] and old.after["ug"] == 20


def test_steps_record_pos_rows_and_refuse_a_job_of_pos_rows_only():
    table = _mixed()
    cfg = load_job(None, ["oversample.enabled=true", "oversample.target_per_lang=20"])
    (step,) = oversample_steps(cfg, table, TOKENS)
    entry = step.manifest()["oversample"]
    assert entry["rows_before"] == {"yo": 10} and entry["token_scheme_rows"] == {"ug": 4, "yo": 6}
    pos_only = table.filter(pa.compute.equal(table.column("source"), UD))
    with pytest.raises(ConfigError, match=r"every data\.ner training source has scheme: tokens.*"
                                          r"set oversample\.enabled=false"):
        oversample_steps(cfg, pos_only, TOKENS)
    # A language target naming a POS-only language, and a POS tag given as a rare entity type.
    ug = load_job(None, ["oversample.enabled=true", "oversample.target_per_lang={ug: 20}"])
    with pytest.raises(ConfigError, match=r"names \['ug'\].*\['ug'\] only have rows read under scheme: tokens"):
        oversample_steps(ug, table, TOKENS)
    intj = load_job(None, ["oversample.enabled=true", "oversample.min_sentences_per_type=5",
                           "oversample.rare_types=[INTJ]"])
    with pytest.raises(ConfigError, match=r"rare_types \['INTJ'\]: no sentence.*\['ORG', 'PER'\]"):
        oversample_steps(intj, table, TOKENS)


def _write(folder: Path, data: list[dict], rejects: list[dict]) -> None:
    from lrl.generate.write import REJECTED_SCHEMA, write_partitioned

    write_partitioned(ner_table(data), f"{folder}/data", NER_SCHEMA, "part")
    write_partitioned(pa.Table.from_pylist(rejects, schema=REJECTED_SCHEMA), f"{folder}/rejects",
                      REJECTED_SCHEMA, "part")


def test_types_the_filters_leave_below_the_minimum_are_recorded(tmp_path):
    """yo ORG read in 6 sentences (min 5: no copy planned, so not a rare type), 4 rejected as
    duplicates: 2 written and no word of it; only the types the plan copied were counted on disk.
    A POS row's tag (NOUN, once) is no entity type, and PER (6) stays above the minimum."""
    from lrl.generate.manifest import missed_types_line, oversample_on_disk

    def row(i: int, tags: list[str], source: str = NER, op: str = "orig") -> dict:
        return {"id": f"r{i}", "lang": "yo", "tokens": ["w"] * len(tags), "tags": tags, "source": source, "op": op}

    data = [row(i, ["B-PER"]) for i in range(5)] + [row(5, ["B-ORG", "B-PER"]), row(6, ["B-ORG"])]
    data += [row(7, ["B-NOUN"], UD), row(8, ["B-ORG"], op="swap")]  # generated rows are not counted
    dup = [{**row(10 + i, ["B-ORG"]), "reason": "duplicate: of r6"} for i in range(3)]
    dup.append({**row(20, ["B-ORG"], op="oversample"), "reason": "duplicate: of r6"})
    note = {"rows_before": {"yo": 12}, "rows_after": {"yo": 12}, "targets": {}, "missed_targets": {},
            "rare_type_sentences": {}, "missed_rare_types": {}}
    lang_op = {"yo/orig": 8, "yo/swap": 1}
    _write(tmp_path / "fires", data, dup)
    out = oversample_on_disk(note, lang_op, str(tmp_path / "fires"), 5, None, frozenset({("yo", UD)}))
    assert out["missed_rare_types"] == {"yo": {"ORG": {"target": 5, "reached": 2, "rejected": {"duplicate": 4}}}}
    assert "rare_type_sentences_written" not in out  # no type was rare in the plan
    assert missed_types_line({"oversample": out}) == ("  warning: rare types below oversample.min_sentences_per_type: "
                                                     "yo ORG 2 of 5 (rejected: duplicate 4)")
    from lrl.evaluate.report_generate import _oversample_tables  # the report's table says the same

    html = "\n".join(_oversample_tables(out))
    assert "below oversample.min_sentences_per_type on disk" in html and "<td>duplicate 4</td>" in html
    # rare_types: the types min_sentences_per_type considers; the others are not counted.
    assert oversample_on_disk(note, lang_op, str(tmp_path / "fires"), 5, ["PER"])["missed_rare_types"] == {}
    # Without the POS sources, their tags were counted as entity types (NOUN 1 of 5).
    assert "NOUN" in oversample_on_disk(note, lang_op, str(tmp_path / "fires"), 5)["missed_rare_types"]["yo"]
    # Counts that stay at the minimum: nothing recorded, nothing said.
    _write(tmp_path / "holds", data + [row(30 + i, ["B-ORG"]) for i in range(3)], dup[:1])
    out = oversample_on_disk(note, lang_op, str(tmp_path / "holds"), 5, None, frozenset({("yo", UD)}))
    assert out["missed_rare_types"] == {} and missed_types_line({"oversample": out}) is None


def test_a_mixed_job_passes_pos_rows_and_says_which_types_dedup_took_below(ray_session, data_root, tmp_path,
                                                                        capsys):
    """WikiANN wo (NER, 20 sentences, 10 of its LOC sentences twice) beside UD ug (POS, 15
    sentences) with target_per_lang=30 and min_sentences_per_type=28 for LOC: ug's POS rows were
    copied up to 30, and dedup (scope all) took LOC from 28 sentences to 18 without a word."""
    from lrl.generate.stage import run_generate
    from lrl.generate.write import read_rows
    from lrl.pipeline.stage import StageContext

    blocks = (data_root / "wikiann" / "wo" / "train").read_text(encoding="utf-8").split("\n\n")[:20]
    loc = [b for b in blocks if "B-LOC" in b][:10]
    (tmp_path / "wo.conll").write_text("\n\n".join(blocks + loc) + "\n", encoding="utf-8")
    ud = (data_root / "ud" / "ug" / "train.conllu").read_text(encoding="utf-8").split("\n\n")[:15]
    (tmp_path / "ug.conllu").write_text("\n\n".join(ud) + "\n\n", encoding="utf-8")
    read_loc = sum("B-LOC" in b for b in blocks + loc)
    assert len(loc) == 10 and read_loc == 28
    cfg = load_job(None, [f"data.ner=[{{path: {tmp_path / 'wo.conll'}, lang: wo}}, "
                          f"{{path: {tmp_path / 'ug.conllu'}, lang: ug, scheme: tokens}}]",
                          f"output.root={tmp_path / 'runs'}", "oversample.enabled=true",
                          "oversample.target_per_lang=30", f"oversample.min_sentences_per_type={read_loc}",
                          "oversample.rare_types=[LOC]", "filter.ops=[dedup]", "filter.dedup_scope=all"])
    path = run_generate(StageContext(cfg))
    m = json.loads((Path(path) / "manifest.json").read_text())
    kept = read_rows(path).to_pylist()
    assert Counter((r["lang"], r["op"]) for r in kept) == {("wo", "orig"): 20, ("ug", "orig"): 15}  # no copies
    entry = m["oversample"]
    assert entry["rows_before"] == {"wo": 30} and entry["token_scheme_rows"] == {"ug": 15}
    assert entry["missed_targets"] == {"wo": {"target": 30, "reached": 20}}
    assert entry["missed_rare_types"] == {"wo": {"LOC": {"target": read_loc, "reached": read_loc - 10,
                                                         "rejected": {"duplicate": 10}}}}
    out = capsys.readouterr().out
    assert f"rare types below oversample.min_sentences_per_type: wo LOC 18 of {read_loc} (rejected: duplicate 10)" in out


def test_only_jobs_oversampling_pos_rows_get_a_new_output_hash(tmp_path, monkeypatch):
    """Such a job now writes other rows (its POS rows once): a finished output of older code must
    not be reused for it. Every other job keeps its hash (and its finished output)."""
    import lrl.generate.stage as stage

    monkeypatch.setattr(stage, "StageOutput", lambda root, name, config, inputs: config)  # what is hashed
    (tmp_path / "wo.conll").write_text("Dakar B-LOC\n\n", encoding="utf-8")
    (tmp_path / "ug.conllu").write_text("1\ta\ta\tNOUN\t_\t_\t0\troot\t_\t_\n\n", encoding="utf-8")
    wo = f"{{path: {tmp_path / 'wo.conll'}, lang: wo}}"
    ug = f"{{path: {tmp_path / 'ug.conllu'}, lang: ug, scheme: tokens}}"

    def config(sources: str, *more: str) -> dict:
        return stage.stage_output(load_job(None, [f"data.ner=[{sources}]", f"output.root={tmp_path}", *more]))

    assert config(f"{wo}, {ug}", "oversample.enabled=true")["oversample_pos_version"] == 2
    assert "oversample_pos_version" not in config(f"{wo}, {ug}")  # no oversampling: the same rows
    assert "oversample_pos_version" not in config(wo, "oversample.enabled=true")  # no POS rows


def test_pos_rows_on_disk_fill_no_language_target(tmp_path):
    """The plan left POS rows out of a target, but the rows on disk were counted per language: yo
    with 15 NER rows written of a target of 20 and 6 POS rows reached "21", no target missed."""
    from lrl.generate.manifest import oversample_on_disk

    data = [{"id": f"n{i}", "lang": "yo", "tokens": ["w"], "tags": ["B-PER"], "source": NER, "op": "orig"}
            for i in range(15)]
    data += [{"id": f"p{i}", "lang": "yo", "tokens": ["w"], "tags": ["B-NOUN"], "source": UD, "op": "orig"}
             for i in range(6)]
    _write(tmp_path, data, [])
    note = {"rows_before": {"yo": 20}, "rows_after": {"yo": 20}, "targets": {"yo": 20}, "missed_targets": {},
            "rare_type_sentences": {}, "missed_rare_types": {}}
    out = oversample_on_disk(note, {"yo/orig": 21}, str(tmp_path), None, None, frozenset({("yo", UD)}))
    assert out["rows_written"] == {"yo": 15} and out["missed_targets"] == {"yo": {"target": 20, "reached": 15}}


def test_a_target_met_as_read_keeps_a_step_that_copies_nothing():
    """A language target the data already meets made no step, so no manifest entry: filters that
    then took the language below its target went unsaid. The step is kept, copies nothing, and
    leaves the blocks as they are cut without it."""
    table = _mixed()
    cfg = load_job(None, ["oversample.enabled=true", "oversample.target_per_lang=10"])  # yo has 10 NER rows
    (step,) = oversample_steps(cfg, table, TOKENS)
    assert step.plan.trivial and step.row_weights(table) is None
    assert step.manifest()["oversample"]["targets"] == {"yo": 10}
    assert oversample_steps(load_job(None, ["oversample.enabled=true"]), table, TOKENS) == []  # nothing asked
    copying = load_job(None, ["oversample.enabled=true", "oversample.target_per_lang=20"])
    assert list(oversample_steps(copying, table, TOKENS)[0].row_weights(table)[:10]) == [2.0] * 10
