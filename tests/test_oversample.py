"""Oversampling on WikiANN ug+wo: exact language targets, rare-type minimums, streaming chunks,
reproducible copies, and the Ray Data step path."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrl.config import ConfigError
from lrl.data.readers import read_conll
from lrl.data.schema import REJECT, ner_table
from lrl.generate.augment.seeds import row_seed
from lrl.generate.config import OversampleConfig
from lrl.generate.oversample import oversample_batch, oversample_steps, plan_oversample
from lrl.job import load_job


@pytest.fixture(scope="module")
def train(data_root) -> pa.Table:
    parts = [read_conll(str(data_root / "wikiann" / lang / "train"), lang).table for lang in ("ug", "wo")]
    return pa.concat_tables(parts)


def _stream(table: pa.Table, plan, batch_rows: int = 200, chunk_rows: int = 65536) -> pa.Table:
    parts = []
    for start in range(0, table.num_rows, batch_rows):
        parts.extend(oversample_batch(table.slice(start, batch_rows), plan, chunk_rows))
    return pa.concat_tables(parts)


def _type_counts(table: pa.Table) -> Counter:
    c: Counter = Counter()
    for lang, tags in zip(table.column("lang").to_pylist(), table.column("tags").to_pylist()):
        c.update((lang, t) for t in {x[2:] for x in tags if x.startswith("B-")})
    return c


def test_language_targets_are_hit_exactly(train):
    cfg = OversampleConfig(enabled=True, target_per_lang={"wo": 4321})
    plan = plan_oversample(cfg, train, seed=3)
    out = _stream(train, plan)
    counts = Counter(out.column("lang").to_pylist())
    assert counts == {"wo": 4321, "ug": 1603} == plan.after
    assert Counter(out.column("op").to_pylist())["orig"] == train.num_rows


def test_one_target_for_all_languages_and_rare_types(train):
    before = _type_counts(train)
    cfg = OversampleConfig(enabled=True, target_per_lang=3000, min_sentences_per_type=700, rare_types=["PER", "ORG"])
    out = _stream(train, plan_oversample(cfg, train, seed=0))
    assert Counter(out.column("lang").to_pylist()) == {"ug": 3000, "wo": 3000}
    after = _type_counts(out)
    for lang in ("ug", "wo"):
        for etype in ("PER", "ORG"):
            assert before[(lang, etype)] < 700 <= after[(lang, etype)], (lang, etype)


def test_rare_types_alone_lift_only_rows_with_them(train):
    before = _type_counts(train)
    cfg = OversampleConfig(enabled=True, min_sentences_per_type=500, rare_types=["PER"])
    out = _stream(train, plan_oversample(cfg, train))
    after = _type_counts(out)
    assert before[("wo", "PER")] < 500 <= after[("wo", "PER")] < 500 + 10
    copies = out.filter(pa.compute.equal(out.column("op"), "oversample"))
    assert all("B-PER" in tags for tags in copies.column("tags").to_pylist())


def test_copies_are_traceable_and_reproducible(train):
    cfg = OversampleConfig(enabled=True, target_per_lang={"wo": 2000})
    plan = plan_oversample(cfg, train, seed=9)
    out = _stream(train, plan)
    assert out.equals(_stream(train, plan_oversample(cfg, train, seed=9), batch_rows=77))  # batching-independent
    ids = out.column("id").to_pylist()
    assert len(ids) == len(set(ids))
    parents = {r["id"]: r for r in train.to_pylist()}
    copies = [r for r in out.to_pylist() if r["op"] == "oversample"]
    assert len(copies) == 2000 - 958
    for r in copies[:300]:
        p = parents[r["parent_id"]]
        copy = int(r["id"].rsplit("|", 1)[1])
        assert r["id"] == f"{p['id']}|oversample|{copy}" and copy >= 1
        assert r["seed"] == row_seed(9, "oversample", p["id"], copy)
        assert (r["tokens"], r["tags"], r["lang"], r["source"]) == (p["tokens"], p["tags"], p["lang"], p["source"])


def test_streaming_chunks_are_bounded(train):
    small = train.slice(0, 10)
    cfg = OversampleConfig(enabled=True, target_per_lang=1000)
    plan = plan_oversample(cfg, small)
    chunks = list(oversample_batch(small, plan, chunk_rows=64))
    assert sum(c.num_rows for c in chunks) == 1000
    assert max(c.num_rows for c in chunks) <= 64 and len(chunks) >= 1000 // 64


def test_without_ids_totals_are_close(train):
    cfg = OversampleConfig(enabled=True, target_per_lang={"wo": 4000})
    plan = plan_oversample(cfg, train.select(["lang", "tags"]))
    n = Counter(_stream(train, plan).column("lang").to_pylist())["wo"]
    assert abs(n - 4000) < 150  # Bernoulli rounding: ~sqrt(958 * 0.25) sd


def test_max_factor_caps_copies_and_rejects_are_not_copied(train):
    small = train.slice(0, 20).append_column(REJECT, pa.array([None] * 10 + ["dup"] * 10, pa.string()))
    cfg = OversampleConfig(enabled=True, target_per_lang=1000, max_factor=5)
    out = _stream(small, plan_oversample(cfg, small))
    per_parent = Counter(r["parent_id"] or r["id"] for r in out.to_pylist())
    assert max(per_parent.values()) == 5 and out.num_rows == 10 * 5 + 10
    assert all(per_parent[i] == 1 for i in small.column("id").to_pylist()[10:])


def test_rows_the_plan_did_not_count_are_not_copied(train):
    """Translate-train runs before oversampling: its rows (op=translate, in the target language)
    were not counted by the plan and must pass once, not take the language's copy factor (a
    target of 300 for yo turned 100 originals + 1000 translations into 3300 rows)."""
    wo = train.filter(pa.compute.equal(train.column("lang"), "wo"))
    plan = plan_oversample(OversampleConfig(enabled=True, target_per_lang={"wo": 3 * wo.num_rows}), wo)
    translated = ner_table([{**r, "id": f"en:{i}|translate", "op": "translate"}
                            for i, r in enumerate(wo.slice(0, 50).to_pylist())])
    out = _stream(pa.concat_tables([wo, translated]), plan)
    assert Counter(out.column("op").to_pylist()) == {"orig": wo.num_rows, "oversample": 2 * wo.num_rows,
                                                     "translate": 50}


def test_config_and_steps(train):
    with pytest.raises(ConfigError, match=r"oversample\.target_per_lang"):
        load_job(None, ["oversample.target_per_lang=0"])
    cfg = load_job(None, ["oversample.enabled=true", "oversample.target_per_lang={xx: 10}"])
    with pytest.raises(ConfigError, match="'xx'"):  # the CLI prints it without a traceback
        oversample_steps(cfg, train)
    assert oversample_steps(load_job(None, ["oversample.target_per_lang=10"]), train) == []  # disabled
    assert oversample_steps(load_job(None, ["oversample.enabled=true"]), train) == []  # nothing to do


def test_ray_step_streams_the_planned_rows(ray_session, train):
    import ray

    small = pa.concat_tables([train.slice(0, 60), train.slice(1603, 40)])  # 60 ug + 40 wo
    cfg = load_job(None, ["oversample.enabled=true", "oversample.target_per_lang={wo: 500, ug: 100}",
                          "oversample.batch_size=16", "oversample.chunk_rows=50"])
    (step,) = oversample_steps(cfg, small)
    rows = step.apply(ray.data.from_arrow(small)).take_all()
    assert Counter(r["lang"] for r in rows) == {"wo": 500, "ug": 100}
    assert sorted(r["id"] for r in rows) == sorted(_stream(small, step.plan).column("id").to_pylist())


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(st.sampled_from(["ug", "wo"]), st.sets(st.sampled_from(["PER", "ORG", "LOC"]))),
                  min_size=1, max_size=60),
    target=st.one_of(st.none(), st.integers(1, 300)),
    minimum=st.one_of(st.none(), st.integers(1, 40)),
    seed=st.integers(0, 1000),
)
def test_random_plans_hit_targets_and_minimums(rows, target, minimum, seed):
    table = ner_table([{"id": f"r{i}", "lang": lang, "tokens": ["w"] * max(1, len(types)),
                        "tags": [f"B-{t}" for t in sorted(types)] or ["O"]} for i, (lang, types) in enumerate(rows)])
    cfg = OversampleConfig(enabled=True, target_per_lang=target, min_sentences_per_type=minimum)
    plan = plan_oversample(cfg, table, seed)
    out = _stream(table, plan, batch_rows=7)
    langs, before = Counter(out.column("lang").to_pylist()), Counter(lang for lang, _ in rows)
    assert dict(langs) == plan.after
    for lang, n in before.items():
        assert langs[lang] >= max(n, target or 0)
        if target is not None and minimum is None:
            assert langs[lang] == max(n, target)
    if minimum is not None:
        after = _type_counts(out)
        assert all(after[key] >= minimum for key in _type_counts(table)), (after, minimum)


def test_targets_missed_because_of_max_factor_are_recorded(train, capsys):
    small = train.slice(0, 10)  # 10 ug rows: at most 5 copies each, so a target of 1000 reaches 50
    cfg = OversampleConfig(enabled=True, target_per_lang=1000, max_factor=5)
    plan = plan_oversample(cfg, small)
    assert plan.targets == {"ug": 1000} and plan.after == {"ug": 50}
    assert plan.missed == {"ug": {"target": 1000, "reached": 50}}
    assert plan_oversample(OversampleConfig(enabled=True, target_per_lang=1000), small).missed == {}
    job = load_job(None, ["oversample.enabled=true", "oversample.target_per_lang=1000", "oversample.max_factor=5"])
    (step,) = oversample_steps(job, small)
    out = capsys.readouterr().err
    assert "warning: oversample" in out and "ug 50 of 1000" in out and "max_factor=5" in out
    assert step.manifest() == {"oversample": {"rows_before": {"ug": 10}, "rows_after": {"ug": 50},
                                              "targets": {"ug": 1000},
                                              "missed_targets": {"ug": {"target": 1000, "reached": 50}},
                                              "rare_type_sentences": {}, "missed_rare_types": {},
                                              "token_scheme_rows": {}}}
    # A cap that allows no copy at all makes a plan with nothing to do: the miss is still recorded.
    job = load_job(None, ["oversample.enabled=true", "oversample.target_per_lang=1000", "oversample.max_factor=1"])
    (step,) = oversample_steps(job, small)
    assert step.plan.trivial and step.manifest()["oversample"]["missed_targets"] == {
        "ug": {"target": 1000, "reached": 10}}


def test_generate_manifest_names_missed_targets(ray_session, data_root, tmp_path, capsys):
    import json
    from pathlib import Path

    from lrl.generate.stage import run_generate
    from lrl.pipeline.stage import StageContext

    blocks = (data_root / "wikiann" / "wo" / "train").read_text(encoding="utf-8").split("\n\n")[:20]
    src = tmp_path / "wo.conll"
    src.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    cfg = load_job(None, [f"data.ner=[{{path: {src}, lang: wo}}]", f"output.root={tmp_path / 'runs'}",
                          "oversample.enabled=true", "oversample.target_per_lang=100", "oversample.max_factor=3",
                          "oversample.min_sentences_per_type=40", "oversample.rare_types=[ORG]"])
    path = run_generate(StageContext(cfg))
    m = json.loads((Path(path) / "manifest.json").read_text())
    assert m["oversample"]["missed_targets"] == {"wo": {"target": 100, "reached": 60}}
    assert m["rows_per_lang"] == {"wo": 60}
    per = m["oversample"]["rare_type_sentences"]["wo"]["ORG"]
    assert per < 40 and m["oversample"]["missed_rare_types"] == {"wo": {"ORG": {"target": 40, "reached": per}}}
    out, err = capsys.readouterr()
    assert "wo 60 of 100" in err
    # the stage's summary says both too, not only the planning warning
    assert "oversampling targets missed: wo 60 of 100" in out
    assert f"rare types below oversample.min_sentences_per_type: wo ORG {per} of 40" in out


def test_manifest_says_when_filters_leave_a_language_below_its_target(ray_session, data_root, tmp_path):
    # The plan counts the sentences read; dedup then rejects sentences WikiANN lists twice (and
    # their copies), so fewer rows reach the disk than the plan's rows_after says.
    import json
    from pathlib import Path

    import pyarrow.dataset as pads

    from lrl.generate.stage import run_generate
    from lrl.pipeline.stage import StageContext

    blocks = (data_root / "wikiann" / "wo" / "train").read_text(encoding="utf-8").split("\n\n")[:20]
    src = tmp_path / "wo.conll"
    src.write_text("\n\n".join(blocks + blocks[:2]) + "\n", encoding="utf-8")  # two sentences twice
    cfg = load_job(None, [f"data.ner=[{{path: {src}, lang: wo}}]", f"output.root={tmp_path / 'runs'}",
                          "oversample.enabled=true", "oversample.target_per_lang=100", "filter.ops=[dedup]"])
    path = run_generate(StageContext(cfg), quiet=True)
    m = json.loads((Path(path) / "manifest.json").read_text())
    rows = pads.dataset(f"{path}/data", format="parquet", partitioning="hive").to_table().to_pylist()
    on_disk = sum(1 for r in rows if r["op"] in ("orig", "oversample"))
    assert m["oversample"]["rows_after"] == {"wo": 100}  # the plan
    assert on_disk < 100 and m["oversample"]["rows_written"] == {"wo": on_disk}
    assert m["oversample"]["missed_targets"] == {"wo": {"target": 100, "reached": on_disk}}
    from lrl.generate.stage import summary

    assert f"warning: oversampling targets missed: wo {on_disk} of 100" in summary(path, m)  # said too


def test_settings_of_a_disabled_section_warn(capsys):
    load_job(None, ["oversample.enabled=false"])  # deliberately off: nothing to say
    load_job(None, ["translate.enabled=false"])
    assert capsys.readouterr().err == ""
    load_job(None, ["oversample.target_per_lang=10", "oversample.max_factor=3"])
    assert capsys.readouterr().err == ("warning: oversample.enabled is false: oversample.max_factor, "
                                       "oversample.target_per_lang have no effect (set oversample.enabled=true "
                                       "to use them)\n")
    load_job(None, ["translate.train={model: {backend: fake}}"])
    assert "warning: translate.enabled is false: translate.train has no effect" in capsys.readouterr().err
    # Still loads when the file keeps its settings and the override turns the section off.
    cfg = load_job(None, ["oversample.target_per_lang=10", "oversample.enabled=false"])
    assert not cfg.oversample.enabled and "no effect" in capsys.readouterr().err
    load_job(None, ["oversample.enabled=true", "oversample.target_per_lang=10"])  # on: no warning
    assert capsys.readouterr().err == ""
    cfg = load_job(None, ["oversample.target_per_lang=10"])
    capsys.readouterr()
    type(cfg).model_validate(cfg.model_dump())  # every field set now: defaults are still not named
    assert capsys.readouterr().err == ("warning: oversample.enabled is false: oversample.target_per_lang has no "
                                       "effect (set oversample.enabled=true to use it)\n")


def test_capped_groups_leave_their_share_to_the_others(data_root):
    # Rare types split a language into groups; a group the target scales past max_factor is held
    # at its cap and the others take the rest. Scaling once and clipping stopped WikiANN am/ig/yo
    # (100 sentences, up to 12 rows each) at 995/968/966 of 1000 and reported the target missed.
    table = pa.concat_tables([read_conll(str(data_root / "wikiann" / lang / "train"), lang).table
                              for lang in ("am", "ig", "yo")])
    cfg = OversampleConfig(enabled=True, target_per_lang=1000, min_sentences_per_type=50, max_factor=12)
    plan = plan_oversample(cfg, table, seed=0)
    out = _stream(table, plan)
    assert Counter(out.column("lang").to_pylist()) == {"am": 1000, "ig": 1000, "yo": 1000} == plan.after
    assert plan.missed == {}
    copies = Counter(r for r in out.column("parent_id").to_pylist() if r is not None)
    assert max(copies.values()) + 1 <= 12  # the cap holds (the original counts as one)



@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(st.sampled_from(["ug", "wo"]), st.sets(st.sampled_from(["PER", "ORG", "LOC"]))),
                  min_size=1, max_size=60),
    target=st.integers(1, 400),
    minimum=st.one_of(st.none(), st.integers(1, 40)),
    max_factor=st.sampled_from([1.0, 1.5, 2.0, 3.0, 7.5]),
)
def test_capped_plans_miss_a_target_only_when_every_group_is_at_its_cap(rows, target, minimum, max_factor):
    table = ner_table([{"id": f"r{i}", "lang": lang, "tokens": ["w"] * max(1, len(types)),
                        "tags": [f"B-{t}" for t in sorted(types)] or ["O"]} for i, (lang, types) in enumerate(rows)])
    cfg = OversampleConfig(enabled=True, target_per_lang=target, min_sentences_per_type=minimum, max_factor=max_factor)
    plan = plan_oversample(cfg, table, 0)
    out = _stream(table, plan, batch_rows=7)
    langs = Counter(out.column("lang").to_pylist())
    assert dict(langs) == plan.after
    groups = Counter(plan.key(r["lang"], r["tags"]) for r in table.to_pylist())
    for lang, n in Counter(lang for lang, _ in rows).items():
        most = sum(int(size * max_factor) for g, size in groups.items() if g[0] == lang)  # every group capped
        assert langs[lang] == max(n, min(target, most)) or (minimum is not None and langs[lang] > target)
        assert (lang in plan.missed) == (langs[lang] < target)
    types = _type_counts(out)
    for lang, per in plan.rare.items():
        for t in per:  # a rare type is reported missed exactly when its sentences stay below the minimum
            assert plan.types_after[lang][t] == types[(lang, t)]
            assert (t in plan.missed_types.get(lang, {})) == (types[(lang, t)] < minimum)


def test_rare_types_the_data_lacks_are_an_error(train):
    """A misspelt ``per`` (or WikiANN's missing MISC) made an empty plan and no copies, silently."""
    for wrong in (["per"], ["PER", "MISC"]):
        cfg = load_job(None, ["oversample.enabled=true", "oversample.min_sentences_per_type=50",
                              f"oversample.rare_types=[{','.join(wrong)}]"])
        with pytest.raises(ConfigError, match=r"oversample.rare_types \['(per|MISC)'\]: no sentence"):
            oversample_steps(cfg, train)
    cfg = load_job(None, ["oversample.enabled=true", "oversample.min_sentences_per_type=50", "oversample.rare_types=[PER]"])
    assert oversample_steps(cfg, train)  # a type the data has: a plan with copies


def test_a_rare_type_minimum_out_of_reach_is_warned_and_recorded(train, capsys):
    """``max_factor`` can hold a rare type below ``min_sentences_per_type`` (99 ug PER sentences, at
    most 3 rows each, cannot reach 500): the plan went ahead without a word about it."""
    cfg = load_job(None, ["oversample.enabled=true", "oversample.min_sentences_per_type=500",
                          "oversample.rare_types=[PER]", "oversample.max_factor=3"])
    (step,) = oversample_steps(cfg, train)
    entry = step.manifest()["oversample"]
    per = _type_counts(train)[("ug", "PER")]
    assert entry["missed_rare_types"]["ug"] == {"PER": {"target": 500, "reached": 3 * per}}
    assert entry["rare_type_sentences"]["ug"]["PER"] == 3 * per
    assert f"ug PER {3 * per} of 500" in capsys.readouterr().err


def test_a_listed_rare_type_a_language_lacks_is_recorded_missed(capsys):
    """rare_types=[ORG] with min 10: yo's 2 ORG sentences are copied up to 10, but am has no ORG
    sentence to copy; the plan left am out of rare_type_sentences and missed_rare_types, silently."""
    spec = [("am", ["PER"])] * 5 + [("am", [])] * 5 + [("yo", ["ORG"])] * 2 + [("yo", [])] * 5
    table = ner_table([{"id": f"r{i}", "lang": lang, "tokens": ["w"], "tags": [f"B-{t}" for t in types] or ["O"]}
                       for i, (lang, types) in enumerate(spec)])
    cfg = load_job(None, ["oversample.enabled=true", "oversample.min_sentences_per_type=10",
                          "oversample.rare_types=[ORG]"])
    (step,) = oversample_steps(cfg, table)
    entry = step.manifest()["oversample"]
    assert entry["rare_type_sentences"] == {"am": {"ORG": 0}, "yo": {"ORG": 10}}
    assert entry["missed_rare_types"] == {"am": {"ORG": {"target": 10, "reached": 0}}}
    assert "am ORG 0 of 10 (no sentence has it)" in capsys.readouterr().err
    assert Counter(_stream(table, step.plan).column("lang").to_pylist()) == {"am": 10, "yo": 15}  # rows unchanged
