"""Training-set shaping on real WikiANN slices: few-shot selection (entity types, generated rows of
the chosen sentences) and the original : augmented mix per language."""

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
