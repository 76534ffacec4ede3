"""Words put in tagged O (insert, synonym, label-wise replacement of an O token) are never words the
language's labelled rows tag as an entity at least as often as O (``lrl.generate.augment.names``).

Before: on WikiANN ug/wo, insert drew from every token ever tagged O (ug ئۈرۈمچى "Urumqi", B-LOC 13
times and O 3 times; wo ``Luga``), label-wise replacement of O tokens from the same pool, and
corpus neighbours of Arabic-script words, which have no capitals to tell names by, included names
(ug "of the city" -> ئاقسۇ "Aksu")."""

from __future__ import annotations

import unicodedata
from collections import Counter

import pyarrow as pa
import pytest

from lrl.data.readers import read_conll
from lrl.data.schema import ner_table
from lrl.generate.augment import build_resources, make_op
from lrl.generate.augment.eda import split_punct
from lrl.generate.augment.names import EntityWords, drop_entity_words, entity_words
from lrl.generate.augment.resources import inventories, synonym_tables
from lrl.generate.config import AugmentConfig, NeighbourConfig

OPS = ["insert", "synonym", "labelwise"]
NB = NeighbourConfig(min_count=3, max_vocab=3000, contexts=800, dims=40, max_words=1500)
CFG = AugmentConfig(ops=OPS, neighbours=NB)


@pytest.fixture(scope="module")
def train(data_root) -> pa.Table:
    """First 800 sentences of WikiANN ug and wo train (real data)."""
    parts = [read_conll(str(data_root / "wikiann" / lang / "train"), lang).table.slice(0, 800) for lang in ("ug", "wo")]
    return pa.concat_tables(parts)


@pytest.fixture(scope="module")
def texts(data_root) -> pa.Table:
    """First 4000 lines of mono/ug.txt: neighbours for the ug synonym and insert rows."""
    with open(data_root / "mono" / "ug.txt", encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith("# doc")]
    return pa.Table.from_pylist([{"id": f"ug:{i}", "lang": "ug", "text": t} for i, t in enumerate(lines[:4000])])


def _word_counts(train: pa.Table) -> dict[str, tuple[Counter, Counter]]:
    """lang -> (times each word is tagged as an entity, times it is tagged O), as the ops see a
    word (punctuation split off)."""
    out: dict[str, tuple[Counter, Counter]] = {}
    for row in train.to_pylist():
        ent, oth = out.setdefault(row["lang"], (Counter(), Counter()))
        for tok, tag in zip(row["tokens"], row["tags"]):
            word = split_punct(tok)[1]
            if word:
                (oth if tag == "O" else ent)[word] += 1
    return out


def test_no_row_adds_as_o_a_word_the_training_data_tags_mostly_as_an_entity(train, texts):
    res = build_resources(CFG, train, texts)
    counts = _word_counts(train)
    rows = train.to_pylist()
    made: Counter = Counter()
    bad = []
    for name in OPS:
        op = make_op(name, CFG, res, 0)
        for row in rows:
            for seed in range(3):
                out = op.make(row, seed, 0)
                if out is None:
                    continue
                made[row["lang"], name] += 1
                added = Counter(split_punct(t)[1] for t, g in zip(out["tokens"], out["tags"]) if g == "O")
                added.subtract(Counter(split_punct(t)[1] for t in row["tokens"]))
                ent, oth = counts[row["lang"]]
                names = [w for w, n in added.items() if n > 0 and w and ent[w] > oth[w]]
                if names:
                    bad.append((name, row["id"], [(w, ent[w], oth[w]) for w in names]))
    # Every op made rows in both languages (synonym: ug only, wo has no text here).
    assert all(made[lang, name] > 300 for lang in ("ug", "wo") for name in ("insert", "labelwise")), made
    assert made["ug", "synonym"] > 100, made
    assert not bad, (len(bad), bad[:5])


def test_rule_counts_words_not_tokens_and_judges_unseen_forms_by_their_case_forms():
    rows = [
        (["Luga", "ak", "Luga,", "dëkk", "la", "."], ["B-LOC", "O", "B-LOC", "O", "O", "O"]),
        (["Luga", "ak", "Bank", "of", "Dakar"], ["O", "O", "B-ORG", "I-ORG", "I-ORG"]),
        (["of", "of", "May", "may", "may", "Tie", "Tie"], ["O", "O", "B-PER", "O", "O", "B-PER", "O"]),
    ]
    train = ner_table([{"id": f"x:{i}", "lang": "xx", "tokens": t, "tags": g} for i, (t, g) in enumerate(rows)])
    names = entity_words(train)["xx"]
    # Luga: entity twice (once with a comma attached), O once.
    assert "Luga" in names and "(Luga)" in names and "luga" in names  # luga: never seen, its case forms judge
    assert "of" not in names  # I-ORG once, O twice: a word of names, not a name
    assert "May" in names and "may" not in names  # each seen form by its own counts
    assert "Tie" in names  # a tie: the data does not say it is a common word
    assert "ak" not in names and "dëkk" not in names and "." not in names
    assert "Waalo" not in names  # only a corpus would know it: the corpus rules apply
    # NFC: a decomposed token is the same word.
    assert unicodedata.normalize("NFD", "dëkk") not in names
    named = EntityWords.count(Counter({"dëkk": 2}), Counter({"dëkk": 1}))
    assert unicodedata.normalize("NFD", "dëkk") in named

    _, tokens = inventories(train, 100)
    assert "Luga" not in tokens["xx"]["O"] and "Tie" not in tokens["xx"]["O"]
    assert {"of", "may", "ak"} <= set(tokens["xx"]["O"])
    assert "Luga" in tokens["xx"]["B-LOC"]  # the entity pools are unchanged


def test_neighbour_tables_drop_entity_words_as_heads_and_neighbours_but_a_lexicon_is_kept(tmp_path):
    names = EntityWords.count(Counter({"Luga": 3, "Dakar": 2}), Counter({"Luga": 1, "dëkk": 4}))
    table = {"dëkk": ("luga", "gox", "dakar"), "luga": ("dëkk",), "ndakaaru": ("dakar",)}
    assert drop_entity_words(table, names) == {"dëkk": ("gox",)}

    (tmp_path / "xx.tsv").write_text("dëkk\tLuga,gox\n", encoding="utf-8")
    cfg = AugmentConfig(ops=["synonym"], lexicons={"xx": "xx.tsv"})
    tables = synonym_tables(cfg, ["xx"], None, str(tmp_path), names={"xx": names})
    assert tables["xx"]["dëkk"] == ("Luga", "gox")  # the user's word, as written


def test_a_pos_source_of_the_language_does_not_make_its_words_names(data_root, tmp_path):
    """A job with WikiANN ug (NER) and UD ug (``scheme: tokens``, UPOS) in ``data.ner``: the UD rows
    tag every word ``B-X``, and counted as entity tags they made ug's common words "entity words",
    emptying the O pool insert and label-wise replacement draw from. Only NER rows tell names."""
    from lrl.data.schema import TEXT_SCHEMA
    from lrl.generate.stage import bio_rows, build_steps, read_inputs
    from lrl.job import load_job

    ner = ("data.ner=[{path: wikiann/ug/train, lang: ug, format: conll}, "
           "{path: ud/ug/train.conllu, lang: ug, split: train_ud, scheme: tokens, column: upos}]")
    cfg = load_job(None, [f"data.root={data_root}", ner, "augment.ops=[insert,labelwise]", "data.text=[]",
                          f"output.root={tmp_path}"])
    inputs = read_inputs(cfg)
    train = pa.concat_tables([r.table for r in inputs.ner])
    (step,) = [s for s in build_steps(cfg, train, TEXT_SCHEMA.empty_table(), bio_rows(inputs)) if hasattr(s, "resources")]
    pool = set(step.resources.tokens["ug"]["O"])
    everything = set(inventories(train, CFG.max_inventory)[1]["ug"]["O"])  # names counted from every row
    ner_only = set(inventories(train, CFG.max_inventory, entity_words(inputs.ner[0].table))[1]["ug"]["O"])
    assert pool == ner_only
    assert len(everything) < 0.9 * len(ner_only)  # the POS rows took 561 of 3,599 words out of the pool
    assert {"بىر", "بىلەن"} <= pool and not {"بىر", "بىلەن"} & everything  # "one", "with": words, not names

    # Replay rebuilds the resources the stage drew from: its rows come back from (op, parent, seed).
    # build_resources(cfg.augment, train, texts, root), the rebuild tests/test_generate_replay.py used,
    # counted the UD rows as names here, and most insert / label-wise rows came out different.
    from lrl.generate.augment import replay
    from lrl.generate.replay import stage_resources

    again = stage_resources(cfg, inputs)
    assert again.fingerprint() == step.resources.fingerprint()
    for row in inputs.ner[0].table.slice(0, 30).to_pylist():
        for name in ("insert", "labelwise"):
            assert replay(row, name, 7, cfg.augment, again) == replay(row, name, 7, cfg.augment, step.resources)
