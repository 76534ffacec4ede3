"""Augmentation ops on real WikiANN Uyghur/Wolof slices, synonyms from real Wikipedia text,
replay, determinism, config, and the Ray Data step path."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections import Counter

import pyarrow as pa
import pytest

from lrl.config import ConfigError
from lrl.data.bio import bio_problems, spans
from lrl.data.files import InputError
from lrl.data.readers import read_conll
from lrl.data.schema import NER_SCHEMA, REJECT
from lrl.generate.augment import (
    OP_CLASSES,
    AugmentBatch,
    augment_steps,
    build_resources,
    read_lexicon,
    replay,
    row_seed,
)
from lrl.generate.augment.eda import split_punct, with_case
from lrl.generate.augment.names import drop_entity_words, entity_words
from lrl.generate.augment.resources import synonym_tables
from lrl.generate.augment.synonyms import cached_neighbours
from lrl.generate.config import AugmentConfig, NeighbourConfig
from lrl.job import load_job

from conftest import REPO

EDA = ["insert", "swap", "delete", "synonym"]
ALL = sorted(OP_CLASSES)
SMALL_NB = NeighbourConfig(min_count=3, max_vocab=3000, contexts=800, dims=40, max_words=1500)


@pytest.fixture(scope="module")
def train(data_root) -> pa.Table:
    """First 300 sentences of WikiANN ug and wo train (real data)."""
    parts = [read_conll(str(data_root / "wikiann" / lang / "train"), lang).table.slice(0, 300) for lang in ("ug", "wo")]
    return pa.concat_tables(parts)


@pytest.fixture(scope="module")
def texts(data_root) -> pa.Table:
    """First 3000 text lines of the ug and wo Wikipedia corpora."""
    rows = []
    for lang in ("ug", "wo"):
        with open(data_root / "mono" / f"{lang}.txt", encoding="utf-8") as f:
            lines = [line.strip() for line in f if line.strip() and not line.startswith("# doc")]
        rows += [{"id": f"{lang}:{i}", "lang": lang, "text": t} for i, t in enumerate(lines[:3000])]
    return pa.Table.from_pylist(rows)


@pytest.fixture(scope="module")
def cfg() -> AugmentConfig:
    return AugmentConfig(ops=ALL, copies=2, neighbours=SMALL_NB)


@pytest.fixture(scope="module")
def resources(cfg, train, texts):
    return build_resources(cfg, train, texts)


@pytest.fixture(scope="module")
def augmented(cfg, resources, train) -> pa.Table:
    return AugmentBatch(cfg, resources, seed=11)(train)


def _entities(tokens, tags):
    return [(tuple(tokens[s:e]), t) for s, e, t in spans(tags)]


def test_resources_are_small_and_picklable(resources):
    blob = pickle.dumps(resources)
    assert len(blob) < 5 * 2**20
    back = pickle.loads(blob)
    assert back == resources and back.fingerprint() == resources.fingerprint()
    assert {"PER", "ORG", "LOC"} <= set(resources.entities["ug"]) and resources.tagged("wo", "O")


def test_corpus_neighbours_are_learned_from_real_text(resources):
    for lang in ("ug", "wo"):
        table = resources.synonyms[lang]
        assert len(table) > 500, lang
        word, syns = next(iter(table.items()))
        assert 1 <= len(syns) <= SMALL_NB.k and word not in syns


def test_every_op_produces_valid_rows_on_both_languages(augmented, train):
    produced = Counter((r["op"], r["lang"]) for r in augmented.to_pylist())
    assert produced[("orig", "ug")] == produced[("orig", "wo")] == 300
    for op in ALL:
        for lang in ("ug", "wo"):
            assert produced[(op, lang)] > 20, (op, lang, produced)
    assert augmented.schema.equals(NER_SCHEMA)
    assert augmented.slice(0, train.num_rows).equals(train)  # originals pass through unchanged
    ids = augmented.column("id").to_pylist()
    assert len(ids) == len(set(ids))
    for r in augmented.slice(train.num_rows).to_pylist():
        assert not bio_problems(r["tags"]), r
        assert len(r["tokens"]) == len(r["tags"]) > 0
        assert r["id"].startswith(f"{r['parent_id']}|{r['op']}|") and isinstance(r["seed"], int)


def test_op_promises_hold_on_real_rows(augmented, train):
    parents = {r["id"]: r for r in train.to_pylist()}
    for r in augmented.slice(train.num_rows).to_pylist():
        p = parents[r["parent_id"]]
        if r["op"] in EDA:  # O-token ops: entity spans unchanged, in order
            assert _entities(r["tokens"], r["tags"]) == _entities(p["tokens"], p["tags"]), r
        elif r["op"] == "mention":
            assert [t for _, _, t in spans(r["tags"])] == [t for _, _, t in spans(p["tags"])]
            assert [w for w, t in zip(r["tokens"], r["tags"]) if t == "O"] == [
                w for w, t in zip(p["tokens"], p["tags"]) if t == "O"]
        else:  # labelwise, shuffle: same tags
            assert r["tags"] == p["tags"] and r["tokens"] != p["tokens"]


def test_synonyms_come_from_the_table(augmented, resources, train):
    parents = {r["id"]: r for r in train.to_pylist()}
    checked = 0
    for r in augmented.to_pylist():
        if r["op"] != "synonym" or len(r["tokens"]) != len(parents[r["parent_id"]]["tokens"]):
            continue
        for old, new in zip(parents[r["parent_id"]]["tokens"], r["tokens"]):
            if old != new:
                # A synonym found by folding case is written in the old word's case (``Ki`` -> ``Miy``).
                word = split_punct(old)[1]
                syns, folded = resources.synonym_entry(r["lang"], word)
                assert split_punct(new)[1] in ({with_case([s], word)[0] for s in syns} if folded else syns)
                checked += 1
    assert checked > 10


def test_replay_reproduces_every_generated_row(augmented, cfg, resources, train):
    parents = {r["id"]: r for r in train.to_pylist()}
    for r in augmented.slice(train.num_rows).to_pylist():
        copy = int(r["id"].rsplit("|", 1)[1])
        assert r["seed"] == row_seed(11, r["op"], r["parent_id"], copy)
        assert replay(parents[r["parent_id"]], r["op"], r["seed"], cfg, resources, copy=copy) == r


def test_same_output_from_freshly_built_resources(cfg, train, texts, resources, augmented):
    fresh = build_resources(cfg, train, texts)
    assert fresh.fingerprint() == resources.fingerprint()
    assert AugmentBatch(cfg, fresh, seed=11)(train).equals(augmented)
    assert not AugmentBatch(cfg, fresh, seed=12)(train).equals(augmented)


_CHILD = """
import hashlib, sys
sys.path.insert(0, {platform!r})
from lrl.data.readers import read_conll
from lrl.generate.augment import AugmentBatch, build_resources
from lrl.generate.config import AugmentConfig
t = read_conll({path!r}, "wo").table.slice(0, 200)
cfg = AugmentConfig(ops={ops!r})
out = AugmentBatch(cfg, build_resources(cfg, t), seed=5)(t)
print(hashlib.sha256(str(out.to_pylist()).encode()).hexdigest())
"""


def test_deterministic_across_processes_with_different_hash_salts(data_root):
    code = _CHILD.format(platform=str(REPO / "platform"), path=str(data_root / "wikiann/wo/train"),
                         ops=["insert", "swap", "delete", "mention", "labelwise", "shuffle"])
    digests = {
        subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": salt},
                       capture_output=True, text=True, check=True).stdout.strip()
        for salt in ("1", "2")
    }
    assert len(digests) == 1 and len(digests.pop()) == 64


def test_rejected_rows_are_not_augmented(cfg, resources, train):
    t = train.slice(0, 20)
    t = t.append_column(REJECT, pa.array(["too long"] * 10 + [None] * 10, pa.string()))
    out = AugmentBatch(cfg, resources, seed=1)(t)
    gen = out.slice(20).to_pylist()
    assert gen and all(r["parent_id"] in t.column("id").to_pylist()[10:] for r in gen)
    assert all(r[REJECT] is None for r in gen)


def test_lexicon_file_and_errors(tmp_path):
    good = tmp_path / "wo.tsv"
    good.write_text("# word\tsynonyms\ndëkk\tgox,barab\nréew\tdiiwaan\n", encoding="utf-8")
    assert read_lexicon(str(good)) == {"dëkk": ("gox", "barab"), "réew": ("diiwaan",)}
    bad = tmp_path / "bad.tsv"
    bad.write_text("dëkk\tgox\nno tab here\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.tsv:2: expected word<TAB>"):
        read_lexicon(str(bad))


def test_lexicon_entries_win_over_neighbours(tmp_path, train, texts, resources):
    lex = tmp_path / "wo.tsv"
    lex.write_text("ci\tcéy\n", encoding="utf-8")
    cfg = AugmentConfig(ops=["synonym"], lexicons={"wo": "wo.tsv"}, neighbours=SMALL_NB)
    table = synonym_tables(cfg, ["wo"], texts, root=str(tmp_path), names=entity_words(train))["wo"]
    assert resources.synonyms_of("wo", "ci") not in ((), ("céy",))
    assert table["ci"] == ("céy",)
    assert len(table) == len(resources.synonyms["wo"])  # the corpus neighbours are still there


def test_neighbour_cache_round_trip(tmp_path, train, texts, resources):
    lines = [t for t, lang in zip(texts.column("text").to_pylist(), texts.column("lang").to_pylist()) if lang == "wo"]
    nb = SMALL_NB.model_copy(update={"cache_dir": str(tmp_path)})
    first = cached_neighbours("wo", lines, nb)
    files = list(tmp_path.glob("neighbours-wo-*.json"))
    assert len(files) == 1
    assert cached_neighbours("wo", lines, nb) == first
    # The cache holds the corpus's table; the training rows' entity words are left out after it.
    assert drop_entity_words(first, entity_words(train)["wo"]) == resources.synonyms["wo"]
    assert json.loads(files[0].read_text(encoding="utf-8"))  # a real table, not an empty file


def test_config_overrides_and_validation():
    cfg = load_job(None, ["augment.ops=[swap,mention]", "augment.mention.copies=3", "augment.swap.alpha=0.2"])
    assert cfg.augment.ops == ["swap", "mention"]
    assert cfg.augment.copies_of("mention") == 3 and cfg.augment.copies_of("swap") == 1
    with pytest.raises(ConfigError, match=r"augment\.ops\.0"):
        load_job(None, ["augment.ops=[twist]"])
    with pytest.raises(ConfigError, match=r"augment\.lexicons"):
        load_job(None, ["augment.lexicons={Wolof: x.tsv}"])


def test_synonym_op_without_any_synonyms_is_an_error(train):
    cfg = load_job(None, ["augment.ops=[synonym]"])
    with pytest.raises(ConfigError, match="no language has synonyms"):  # the CLI prints it without a traceback
        augment_steps(cfg, train, None)
    assert augment_steps(load_job(None), train, None) == []


@pytest.mark.parametrize("compute", ["tasks", pytest.param("actors", marks=pytest.mark.slow)])
def test_ray_step_matches_plain_batches(ray_session, train, compute):
    import ray

    small = train.slice(250, 100)  # 50 ug + 50 wo rows
    cfg = load_job(None, ["augment.ops=[swap,mention,shuffle]", f"augment.compute={compute}",
                          "augment.batch_size=16", "seed=4"])
    (step,) = augment_steps(cfg, small, None)
    out = sorted(step.apply(ray.data.from_arrow(small)).take_all(), key=lambda r: r["id"])
    plain = AugmentBatch(cfg.augment, step.resources, seed=4)(small)
    assert [{k: (list(v) if k in ("tokens", "tags") else v) for k, v in r.items()} for r in out] == sorted(
        plain.to_pylist(), key=lambda r: r["id"])
    assert Counter(r["op"] for r in out)["orig"] == 100 and len(out) > 200


def test_packaged_sample_is_valid_and_augmentable():
    from lrl.data.config import TextSource
    from lrl.data.readers import read_text_lines

    root = REPO / "platform" / "lrl" / "resources" / "sample"
    assert "mean nothing" in (root / "README.md").read_text(encoding="utf-8")
    for lang in ("ug", "sw"):
        train = read_conll(str(root / f"ner/{lang}/train.conll"), lang, policy="error").table
        dev = read_conll(str(root / f"ner/{lang}/dev.conll"), lang, "dev", policy="error").table
        assert train.num_rows >= 40 and dev.num_rows >= 15
        types = {t[2:] for tags in train.column("tags").to_pylist() for t in tags if t != "O"}
        assert types == {"PER", "ORG", "LOC"}
        text = read_text_lines(TextSource(path=str(root / f"text/{lang}.txt"), lang=lang), None)
        assert text.num_rows >= 300 and len(set(text.column("doc").to_pylist())) >= 20
        cfg = AugmentConfig(ops=["synonym", "mention"], lexicons={lang: f"lexicon/{lang}.tsv"},
                            neighbours=NeighbourConfig(enabled=False))
        res = build_resources(cfg, train, None, root=str(root))
        out = AugmentBatch(cfg, res, seed=0)(train)
        ops = Counter(out.column("op").to_pylist())
        assert ops["synonym"] > 5 and ops["mention"] > 30, ops


def test_no_generated_row_repeats_an_input_row(augmented, train):
    """A copy equal to an input row is a duplicate of the training data, not an augmentation (on
    WikiANN ug/wo, 36-43% of mention rows were: entity-only sentences given another one's mention)."""
    originals = {(tuple(r["tokens"]), tuple(r["tags"])) for r in train.to_pylist()}
    generated = augmented.slice(train.num_rows).to_pylist()
    assert len(generated) > train.num_rows
    repeats = [r for r in generated if (tuple(r["tokens"]), tuple(r["tags"])) in originals]
    assert not repeats, (len(repeats), repeats[:3])
