"""Training-set shaping on real WikiANN slices: few-shot selection (entity types, generated rows of
the chosen sentences) and the original : augmented mix per language; the languages chosen."""

from __future__ import annotations

import random
from collections import Counter

import pytest

pytest.importorskip("pyarrow")


def _types(table) -> set[str]:
    return {t[2:] for tags in table.column("tags").to_pylist() for t in tags if t != "O"}


def test_few_shot_keeps_every_entity_type_when_k_allows(data_root):
    """PER is in 99 of 1603 WikiANN ug training sentences: a plain random draw of 10 left out an
    entity type for 37 of 50 seeds, so most 10-shot models never saw a person name."""
    from lrl.data.readers import read_conll
    from lrl.train.finetune_data import few_shot

    ug = read_conll(str(data_root / "wikiann/ug/train"), "ug", "train").table
    assert _types(ug) == {"LOC", "ORG", "PER"}
    for seed in range(20):
        picked = few_shot(ug, 10, seed)
        assert picked.num_rows == 10 and _types(picked) == {"LOC", "ORG", "PER"}, seed
        assert _types(few_shot(ug, 3, seed)) == {"LOC", "ORG", "PER"}, seed  # as few shots as types
    # A draw that has every type already is the plain random draw, as before (k=100 benchmarks).
    plain = sorted(random.Random("0:ug").sample(sorted(ug.column("id").to_pylist()), 100))
    assert sorted(few_shot(ug, 100, 0).column("id").to_pylist()) == plain
    # Still a seeded, order-independent choice.
    ids = sorted(few_shot(ug, 10, 3).column("id").to_pylist())
    assert ids == sorted(few_shot(ug.take(list(range(ug.num_rows - 1, -1, -1))), 10, 3).column("id").to_pylist())
    assert ids != sorted(few_shot(ug, 10, 4).column("id").to_pylist())


def test_few_shot_keeps_augmented_oversample_copies_of_the_chosen_sentences(data_root):
    """Oversampling runs before augmentation, so an augmented copy names the oversample copy as its
    parent (``ug:train:3|oversample|1``), not the original: few_shot kept only direct children and
    dropped those (158 of 238 swap rows of a real 200-sentence wo generate run with oversampling)."""
    from lrl.data.readers import read_conll
    from lrl.data.schema import ner_table
    from lrl.generate.augment.seeds import child_id
    from lrl.train.finetune_data import few_shot

    wo = read_conll(str(data_root / "wikiann/wo/train"), "wo", "train").table.slice(0, 50).to_pylist()
    rows = [{**r, "op": "orig"} for r in wo]
    for r in wo:
        copy = {**r, "id": child_id(r["id"], "oversample", 1), "op": "oversample", "parent_id": r["id"]}
        rows += [copy, {**r, "id": child_id(copy["id"], "swap", 0), "op": "swap", "parent_id": copy["id"]},
                 {**r, "id": child_id(r["id"], "swap", 0), "op": "swap", "parent_id": r["id"]}]
    # A row whose parent is not in the table (a translation of another language's sentence) stays out.
    rows.append({**wo[0], "id": "x>translate:wo", "op": "translate", "parent_id": "en:0"})
    picked = few_shot(ner_table(rows), 5, seed=0)
    ops = Counter(picked.column("op").to_pylist())
    assert ops == {"orig": 5, "oversample": 5, "swap": 10}
    chosen = {r["id"] for r in picked.to_pylist() if r["op"] == "orig"}
    assert all(r["id"].split("|")[0] in chosen for r in picked.to_pylist())


def test_aug_ratio_holds_in_each_language_of_a_joint_mix(data_root):
    """One draw from all generated rows gave each language generated rows in proportion to how many
    it had: with 3 generated rows per ug sentence and 1 per am one, ratio 1 kept 29 generated rows
    for 60 am sentences and 91 for 60 ug ones."""
    from lrl.data.readers import read_conll
    from lrl.data.schema import ner_table
    from lrl.train.finetune_data import mix

    rows = []
    for lang, copies in (("ug", 3), ("am", 1)):
        table = read_conll(str(data_root / f"wikiann/{lang}/train"), lang, "train").table.slice(0, 60)
        for r in table.to_pylist():
            rows.append({**r, "op": "orig"})
            rows += [{**r, "id": f"{r['id']}|swap|{c}", "op": "swap", "parent_id": r["id"]} for c in range(copies)]
    table = ner_table(rows)
    for ratio in (1.0, 0.5):
        out = mix(table, ratio, seed=0)
        gen = Counter(r["lang"] for r in out.select(["lang", "op"]).to_pylist() if r["op"] != "orig")
        assert gen == {"ug": round(60 * ratio), "am": round(60 * ratio)}, (ratio, gen)
    assert mix(table, 5.0, 0).equals(table)  # nothing to leave out: the rows as they were
    assert set(mix(table, 0.0, 0).column("op").to_pylist()) == {"orig"} and mix(table, 0.0, 0).num_rows == 120


def test_repeated_dev_counts_what_each_seed_trains_on(data_root, capsys):
    """WikiANN wo repeats 36 of its 120 dev sentences in train; a 50-shot run trains on a few of
    them, and the warning and manifest named all 36 (a user's audit): count each seed's rows."""
    from lrl.data.readers import read_conll
    from lrl.job import load_job
    from lrl.train.finetune_data import dev_in_train, few_shot
    from lrl.tune.splits import repeated_dev

    train = read_conll(str(data_root / "wikiann/wo/train"), "wo", "train").table
    dev = read_conll(str(data_root / "wikiann/wo/dev"), "wo", "dev").table
    full = dev_in_train(train, dev)
    assert full == 36
    ft = load_job(None, ["finetune.few_shot=50"]).finetune
    repeated, by_seed = repeated_dev({"wo": (train, dev)}, "finetune", ft, [1, 0, 1])
    assert set(by_seed["wo"]) == {0, 1}
    assert by_seed["wo"] == {s: dev_in_train(few_shot(train, 50, s), dev) for s in (0, 1)}
    assert 0 < repeated["wo"] == max(by_seed["wo"].values()) < full
    err = capsys.readouterr().err
    assert "dev sentences are also among the rows the runs train on" in err and "36 in the full training set" in err
    # Without few_shot or aug_ratio every seed trains on the full set: counted once, as before.
    assert repeated_dev({"wo": (train, dev)}, "finetune", load_job(None).finetune, [0, 1]) == ({"wo": 36}, {})
    assert "36 of 120 dev sentences are also training sentences" in capsys.readouterr().err


def test_dev_types_no_training_sentence_has_are_warned(data_root, capsys):
    """A dev file with a type the training set never has (a user's audit: 5 ORG spans relabelled
    MISC) trained a model with labels nothing teaches, and its dev F1 counted them as misses
    without a word from fine-tuning."""
    import pyarrow as pa

    from lrl.data.readers import read_conll
    from lrl.tune.splits import dev_only_types

    train = read_conll(str(data_root / "wikiann/wo/train"), "wo", "train").table
    dev = read_conll(str(data_root / "wikiann/wo/dev"), "wo", "dev").table
    assert dev_only_types({"wo": (train, dev)}, "finetune", False) == {}
    assert capsys.readouterr().err == ""
    with_org = [i for i, row in enumerate(dev.column("tags").to_pylist()) if "B-ORG" in row][:5]
    tags = [[t.replace("ORG", "MISC") for t in row] if i in with_org else row
            for i, row in enumerate(dev.column("tags").to_pylist())]
    misc = sum(t == "B-MISC" for row in tags for t in row)
    assert misc > 0
    bad = dev.set_column(dev.schema.get_field_index("tags"), "tags", pa.array(tags, dev.schema.field("tags").type))
    assert dev_only_types({"wo": (train, bad)}, "tune", False) == {"wo": {"MISC": misc}}
    assert f"warning: tune wo: MISC ({misc} dev span" in capsys.readouterr().err
    # Joint: a type another language's training set has is taught to the one model.
    other = train.set_column(train.schema.get_field_index("tags"), "tags", pa.array(
        [[t.replace("ORG", "MISC") for t in row] for row in train.column("tags").to_pylist()],
        train.schema.field("tags").type))
    assert dev_only_types({"wo": (train, bad), "yo": (other, dev)}, "finetune", True) == {}
    alone = dev_only_types({"wo": (train, bad), "yo": (other, dev)}, "finetune", False)
    assert alone["wo"] == {"MISC": misc} and set(alone["yo"]) == {"ORG"}  # per language: its own rows only


def test_an_empty_or_repeated_languages_list_is_refused_at_load():
    """``finetune.languages: []`` fine-tuned every language, as null does, and ``[wo, wo]`` trained
    wo once, as ``[wo]`` did: each in an output folder of its own (the list is hashed), said nowhere.
    ``tune.languages`` refuses a repeat too; its ``[]`` stays null's documented other spelling."""
    from lrl.config import ConfigError
    from lrl.job import load_job

    with pytest.raises(ConfigError, match=r"finetune\.languages: .*empty list selects no language; use null"):
        load_job(None, ["finetune.languages=[]"])
    with pytest.raises(ConfigError, match=r"finetune\.languages: .*language 'wo' is listed more than once"):
        load_job(None, ["finetune.languages=[wo,ug,wo]"])
    with pytest.raises(ConfigError, match=r"tune\.languages: .*language 'ug' is listed more than once"):
        load_job(None, ["tune.languages=[ug,wo,ug]"])
    cfg = load_job(None, ["finetune.languages=[wo,ug]", "tune.languages=[ug]"])
    assert cfg.finetune.languages == ["wo", "ug"] and cfg.tune.languages == ["ug"]  # kept as written
    assert load_job(None, ["finetune.languages=null"]).finetune.languages is None
