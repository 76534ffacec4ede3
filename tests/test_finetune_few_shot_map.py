"""``finetune.few_shot`` as a mapping language -> k: the cross-lingual setting (every sentence of the
other languages, k of the target), in joint and per-language runs, and the keys it may name.
``few_shot: k`` for every language could not express it: ``{ug: 5}`` was refused at load."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from finetune_jobs import job_cfg, write_job

pytest.importorskip("transformers")


def _read(data_root, lang: str, split: str):
    from lrl.data.readers import read_conll

    return read_conll(str(data_root / f"wikiann/{lang}/{split}"), lang, split).table


def test_joint_run_trains_on_k_sentences_of_the_named_language_and_all_of_the_others(data_root, tmp_path):
    """Joint mode with ``{ug: 5}``: 5 ug originals (the draw ``few_shot: 5`` makes for ug) and every
    one of the 958 WikiANN wo training sentences; per language, a wo model trains on all of wo."""
    import pyarrow as pa

    from lrl.train.finetune_config import FinetuneConfig
    from lrl.train.finetune_data import few_shot
    from lrl.train.finetune_scratch import build_scratch_encoder
    from lrl.train.tagger import train_tagger

    ug, wo = _read(data_root, "ug", "train"), _read(data_root, "wo", "train")
    train = pa.concat_tables([ug, wo])
    dev = pa.concat_tables([_read(data_root, lang, "dev").slice(0, 8) for lang in ("ug", "wo")])
    enc = build_scratch_encoder(tmp_path / "enc", train.column("tokens").to_pylist(), ["ug", "wo"],
                                vocab_size=300, hidden=32, layers=1)
    cfg = FinetuneConfig(mode="joint", few_shot={"ug": 5}, max_steps=1, batch_size=4, max_length=32)
    joint = train_tagger(cfg, str(enc), train, dev, seed=3).info
    assert joint["train_orig_rows_per_lang"] == joint["train_rows_per_lang"] == {"ug": 5, "wo": wo.num_rows}
    assert joint["few_shot_ids"] == {"ug": sorted(few_shot(ug, 5, 3).column("id").to_pylist())}  # wo's not listed
    # Per language: the named language's model takes its k, another's every sentence (no choice to record).
    ug_only = train_tagger(cfg.model_copy(update={"mode": "per_language"}), str(enc), ug, dev.slice(0, 8), seed=3).info
    assert ug_only["few_shot_ids"] == joint["few_shot_ids"] and ug_only["train_rows_per_lang"] == {"ug": 5}
    wo_only = train_tagger(cfg.model_copy(update={"mode": "per_language"}), str(enc), wo, dev.slice(8, 8), seed=3).info
    assert wo_only["train_rows_per_lang"] == {"wo": wo.num_rows} and "few_shot_ids" not in wo_only


def test_a_mapping_keeps_every_row_of_the_languages_it_leaves_out(data_root):
    """Generated rows: those of a named language derived from its chosen sentences, as with an int k;
    every row of another language (one without a parent in the table too), and a row generated into
    the named language from one of those sentences (a translation), as ``few_shot: k`` keeps it when
    k chose that sentence."""
    import pyarrow.compute as pc

    from lrl.data.schema import ner_table
    from lrl.generate.augment.seeds import child_id
    from lrl.train.finetune_data import few_shot, prepare_train

    rows = []
    for lang in ("ug", "wo"):
        for r in _read(data_root, lang, "train").slice(0, 30).to_pylist():
            rows += [{**r, "op": "orig"}, {**r, "id": child_id(r["id"], "swap", 0), "op": "swap", "parent_id": r["id"]}]
    wo0 = next(r for r in rows if r["lang"] == "wo")
    rows += [{**wo0, "id": "en:0>translate:wo", "op": "translate", "parent_id": "en:0"},
             {**wo0, "id": f"{wo0['id']}>translate:ug", "lang": "ug", "op": "translate", "parent_id": wo0["id"]}]
    table = ner_table(rows)
    picked = few_shot(table, {"ug": 4}, seed=0)
    kept = Counter((r["lang"], r["op"]) for r in picked.to_pylist())
    assert kept == {("ug", "orig"): 4, ("ug", "swap"): 4, ("ug", "translate"): 1,
                    ("wo", "orig"): 30, ("wo", "swap"): 30, ("wo", "translate"): 1}
    def ug_draw(t):
        return sorted(r["id"] for r in t.to_pylist() if r["lang"] == "ug" and r["op"] == "orig")

    assert ug_draw(picked) == ug_draw(few_shot(table, 4, seed=0))  # the same ug sentences as few_shot: 4
    wo = table.filter(pc.equal(table.column("lang"), "wo"))
    assert prepare_train(wo, {"ug": 4}, None, 0).equals(wo)  # a per-language wo model: all, in order


def test_translations_follow_their_source_sentence_jointly_and_stay_in_a_per_language_table():
    """Review: {ug: 2} kept the wo translations of every ug sentence (the 18 left out leaked their
    entities), and a per-language ug table dropped the ug translations of wo sentences (their
    parents are in the wo table), though wo is not cut."""
    from collections import Counter

    import pyarrow.compute as pc

    from lrl.data.schema import ner_table
    from lrl.train.finetune_data import few_shot

    rows = []
    for lang in ("ug", "wo"):
        rows += [{"id": f"{lang}{i}", "lang": lang, "tokens": ["a"], "tags": ["B-PER"], "op": "orig"} for i in range(20)]
    for i in range(20):
        there = {"lang": "wo", "tokens": ["a"], "tags": ["B-PER"], "op": "translate", "parent_id": f"ug{i}"}
        back = {"lang": "ug", "tokens": ["a"], "tags": ["B-PER"], "op": "translate", "parent_id": f"wo{i}"}
        rows += [{**there, "id": f"ug{i}>translate:wo"}, {**back, "id": f"wo{i}>translate:ug"},
                 {**back, "id": f"wo{i}>translate:ug|swap|0", "op": "swap", "parent_id": f"wo{i}>translate:ug"}]
    table = ner_table(rows)

    def kept(t):
        return Counter((r["lang"], r["op"]) for r in t.to_pylist())

    joint = few_shot(table, {"ug": 2}, seed=0)
    assert kept(joint) == {("ug", "orig"): 2, ("wo", "translate"): 2, ("wo", "orig"): 20,
                           ("ug", "translate"): 20, ("ug", "swap"): 20}
    chosen = {r["id"] for r in joint.to_pylist() if r["lang"] == "ug" and r["op"] == "orig"}
    assert {r["parent_id"] for r in joint.to_pylist() if r["lang"] == "wo" and r["op"] == "translate"} == chosen
    ug = few_shot(table.filter(pc.equal(table.column("lang"), "ug")), {"ug": 2}, seed=0)
    assert kept(ug) == {("ug", "orig"): 2, ("ug", "translate"): 20, ("ug", "swap"): 20}
    assert kept(few_shot(table.filter(pc.equal(table.column("lang"), "ug")), 2, seed=0)) == {("ug", "orig"): 2}


def test_rows_of_a_named_languages_sentence_stay_out_when_a_filter_took_their_parent():
    """Review: a generate filter that rejects a ug original (lid, dedup) or its translation keeps
    their children; with the parent gone from the table, {ug: 1} took them for another language's
    and kept them, where few_shot: 1 leaves them out. Their ``source`` (the original's file) says
    whose they are. Chains are walked once (a 20,000-row chain took 62 s)."""
    import time

    from lrl.data.schema import ner_table
    from lrl.train.finetune_data import few_shot

    def row(i, lang, op="orig", parent=None, source=None):
        return {"id": i, "lang": lang, "tokens": ["a"], "tags": ["B-PER"], "op": op, "parent_id": parent,
                "source": source or f"{lang}.conll"}

    rows = [row(f"ug{i}", "ug") for i in range(4)] + [row("wo0", "wo")]
    rows += [row("ug4>translate:wo", "wo", "translate", "ug4", "ug.conll"),  # ug4 rejected by a filter
             row("ug3>translate:wo|swap|0", "wo", "swap", "ug3>translate:wo", "ug.conll"),  # its parent rejected
             row("en0>translate:wo", "wo", "translate", "en0", "en.conll")]  # a language not fine-tuned
    picked = {r["id"] for r in few_shot(ner_table(rows), {"ug": 1}, seed=0).to_pylist()}
    assert picked - {"ug0", "ug1", "ug2", "ug3"} == {"wo0", "en0>translate:wo"}
    chain = [row("wo0", "wo")] + [row(f"c{i}", "wo", "swap", f"c{i - 1}" if i else "wo0") for i in range(20000)]
    t0 = time.perf_counter()
    assert few_shot(ner_table(chain + [row("ug0", "ug")]), {"ug": 1}, seed=0).num_rows == 20002
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize(("overrides", "reason"), [
    (["finetune.few_shot={uq1: 5}"], r"finetune\.few_shot: .*language 'uq1' is not an ISO 639 code"),
    (["finetune.few_shot={ug: 0}"], r"finetune\.few_shot: .*ug: k must be greater than 0"),
    (["finetune.few_shot={}"], r"finetune\.few_shot: .*an empty mapping limits no language; use null"),
    (["finetune.few_shot=[5]"], r"finetune\.few_shot: .*expected k > 0 .*, a mapping language -> k"),
    (["finetune.languages=[ug]", "finetune.few_shot={wo: 5}"],
     r"finetune\.few_shot names wo, not among the languages fine-tuned \['ug'\] \(finetune\.languages\)"),
])
def test_a_wrong_mapping_is_one_line_at_load(overrides, reason):
    from lrl.config import ConfigError
    from lrl.job import load_job

    with pytest.raises(ConfigError) as err:
        load_job(None, overrides)
    head, *lines = str(err.value).splitlines()
    assert head == "config: invalid configuration" and len(lines) == 1, str(err.value)
    assert re.search(reason, lines[0]), lines[0]


@pytest.fixture(scope="module")
def job(data_root, tmp_path_factory):
    """20 train / 10 dev sentences of WikiANN ug and wo, and a tiny saved encoder."""
    return write_job(tmp_path_factory.mktemp("fewshotmap"), data_root, 20, 10)


@pytest.mark.parametrize("stage", ["finetune", "tune"])
def test_a_language_without_data_is_one_line_when_the_stage_starts(stage, job, tmp_path, monkeypatch):
    """With ``languages`` unset, the languages trained are known once the data is read: a key of
    another one (here am, no rows) stops the stage before Ray starts, not a run that cut nothing."""
    import lrl.train.finetune as ft
    import lrl.tune.stage as ts
    from lrl.config import ConfigError
    from lrl.pipeline.stage import StageContext

    for mod in (ft, ts):
        monkeypatch.setattr(mod, "init_ray", lambda *_: pytest.fail("Ray started"))
    cfg = job_cfg(job, tmp_path, ("ug", "wo"), "finetune.few_shot={ug: 5, am: 5}", "tune.languages=[ug]")
    run = ft.run_finetune if stage == "finetune" else ts.run_tune
    with pytest.raises(ConfigError, match=r"^finetune\.few_shot names am, not among the languages fine-tuned "
                                          r"\['ug', 'wo'\] \(those with train and dev rows\)$"):
        run(StageContext(cfg))


def test_the_dev_repeat_warning_counts_a_language_the_mapping_leaves_whole_once(data_root, capsys):
    """The dev-in-train warning counts each seed's rows when few-shot cuts a language; wo under
    ``{ug: 5}`` trains on its full set, which is counted once and said as such (36 of 120)."""
    from lrl.job import load_job
    from lrl.tune.splits import repeated_dev

    wo = (_read(data_root, "wo", "train"), _read(data_root, "wo", "dev"))
    ft = load_job(None, ["finetune.few_shot={ug: 5}"]).finetune
    assert repeated_dev({"wo": wo}, "finetune", ft, [0, 1]) == ({"wo": 36}, {})
    assert "36 of 120 dev sentences are also training sentences" in capsys.readouterr().err
