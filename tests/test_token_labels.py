"""The label set of a token tagger (``scheme: tokens``): one ``B-X`` per tag of the data, no
BIO leftovers (``O``, ``I-X``) that no row teaches; NER (IOB2) label sets stay as they were."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from lrl.data.schema import ner_table, table_scheme, with_scheme
from lrl.train.finetune_data import label_list, prepare_train


def _rows(*tag_lists: list[str]) -> pa.Table:
    return ner_table([{"id": f"r{i}", "lang": "ug", "tokens": ["w"] * len(tags), "tags": tags}
                      for i, tags in enumerate(tag_lists)])


def test_token_tables_get_one_label_per_tag_and_ner_tables_keep_bio():
    pos = with_scheme(_rows(["B-NOUN", "B-VERB"], ["B-PUNCT"]), "tokens")
    assert label_list([pos]) == ["B-NOUN", "B-PUNCT", "B-VERB"]
    # UD's "_" (read as O) is a tag the model must be able to give, so then O is a label
    assert label_list([pos, with_scheme(_rows(["B-NOUN", "O"]), "tokens")]) == ["O", "B-NOUN", "B-PUNCT", "B-VERB"]
    assert label_list([pos], ["VERB", "NOUN"]) == ["B-NOUN", "B-VERB"]  # data.labels names the tags
    # The same rows unmarked are NER rows of one-word entities: O, B-X and I-X as always.
    ner = _rows(["B-PER", "O"], ["B-LOC"])
    assert label_list([ner]) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert label_list([ner], ["PER", "ORG"]) == ["O", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    # a joint run of a NER and a POS language: one BIO label list for both
    assert label_list([pos, ner]) == ["O"] + [f"{p}-{x}" for x in ["LOC", "NOUN", "PER", "PUNCT", "VERB"]
                                              for p in "BI"]


def test_the_mark_survives_the_training_set_shaping():
    """``train_tagger`` (the tune stage's trials) builds the label list after few-shot and the
    augmentation mix: their filters and concatenations keep the mark."""
    rows = [{"id": f"r{i}", "lang": "ug", "tokens": ["w"], "tags": ["B-NOUN"], "op": "orig"} for i in range(4)]
    rows += [{"id": "g", "lang": "ug", "tokens": ["w"], "tags": ["B-VERB"], "op": "swap", "parent_id": "r0"}]
    table = with_scheme(ner_table(rows), "tokens")
    shaped = prepare_train(table, 2, 0.5, seed=1)
    assert table_scheme(shaped) == "tokens" and table_scheme(with_scheme(shaped, "iob2")) == "iob2"


def _ud_slice(data_root: Path, folder: Path, split: str, n: int) -> Path:
    blocks = (data_root / f"ud/ug/{split}.conllu").read_text(encoding="utf-8").split("\n\n")[:n]
    out = folder / f"{split}.conllu"
    out.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return out


def test_stage_splits_of_a_pos_language_give_the_upos_tags_only(data_root, tmp_path):
    """What the finetune and tune stages train with: ``language_splits`` marks a language whose
    sources are all ``scheme: tokens``, so its label list is the treebank's UPOS tags (31 labels,
    ``O`` and an ``I-X`` per tag, before); the data's hash says so (outputs trained with the BIO
    labels are not reused), and a WikiANN language's hash and labels are unchanged."""
    import hashlib

    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.tune.splits import fingerprint, language_splits

    train, dev = _ud_slice(data_root, tmp_path, "train", 40), _ud_slice(data_root, tmp_path, "dev", 10)
    upos = {line.split("\t")[3] for f in (train, dev) for line in f.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#") and line.split("\t")[0].isdigit()}
    wikiann = data_root / "wikiann/ug"
    cfg = load_job(None, [
        f"data.ner=[{{path: {train}, lang: ug, scheme: tokens}}, {{path: {dev}, lang: ug, split: dev, scheme: tokens}},"
        f" {{path: {wikiann / 'train'}, lang: wo, format: conll}}, {{path: {wikiann / 'dev'}, lang: wo, split: dev,"
        " format: conll}]", f"output.root={tmp_path / 'runs'}"])
    splits = language_splits(StageContext(cfg), said=[])
    assert label_list(list(splits["ug"])) == sorted(f"B-{t}" for t in upos)
    assert label_list(list(splits["wo"])) == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    unmarked = {lang: tuple(with_scheme(t, "iob2") for t in pair) for lang, pair in splits.items()}
    prints, before = fingerprint(splits), fingerprint(unmarked)
    assert prints["ug"] != before["ug"]
    h = hashlib.sha256()  # IOB2 data: the hash it always had
    for t in splits["wo"]:
        for col in ("id", "tokens", "tags"):
            h.update(repr(t.column(col).to_pylist()).encode())
    assert prints["wo"] == before["wo"] == h.hexdigest()[:16]
    # What run_finetune trains each group with: one label list over every language gave the POS
    # language the NER language's BIO labels; each scheme now has its own, and a joint model of
    # both keeps the full BIO list.
    from lrl.train.finetune import _group_labels, mixed_schemes

    per_lang = _group_labels(splits, None, joint=False)
    assert per_lang["ug"] == sorted(f"B-{t}" for t in upos) and per_lang["wo"] == label_list(list(splits["wo"]))
    joint = _group_labels(splits, None, joint=True)["joint"]
    assert "O" in joint and {f"I-{t}" for t in upos} <= set(joint)
    # ... and such a job is named anew (its outputs of one BIO list are not reused); NER alone is not
    assert mixed_schemes(splits) and not mixed_schemes({"wo": splits["wo"]})
