"""Synonyms (ops ``synonym``, ``insert``) in the case of the word they stand for, and synonyms for
the rows translate-train writes in a language no input row has (the zero-shot case)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from lrl.config import ConfigError
from lrl.data.schema import NER_SCHEMA
from lrl.generate.augment import build_resources, make_op
from lrl.generate.config import AugmentConfig
from lrl.job import load_job


def _table(lang: str, *rows: tuple[list[str], list[str]]) -> pa.Table:
    return pa.Table.from_pylist([{"id": f"{lang}:train:{i}", "lang": lang, "tokens": toks, "tags": tags,
                                  "source": "x", "op": "orig"} for i, (toks, tags) in enumerate(rows)],
                                schema=NER_SCHEMA)


def _made(op, table: pa.Table, seeds: int = 40) -> list[list[str]]:
    """The tokens of every row ``op`` makes from ``table`` over ``seeds`` row seeds."""
    out = []
    for row in table.to_pylist():
        for seed in range(seeds):
            made = op.make(row, seed, 0)
            if made is not None:
                out.append(made["tokens"])
    return out


def test_a_synonym_takes_the_case_of_the_word_it_replaces(tmp_path):
    """WikiANN sw ``Eneo lake ni 33 km² .`` became ``shambulizi lake ni ...``: neighbours are kept
    lower-cased, and the sentence's first word lost its capital (51 of 352 synonym rows of 2,000
    sw train rows). Title takes Title, all caps all caps, lower stays lower; an entry of the
    lexicon for the word as written (``Lake``) is the user's, used as written."""
    lex = tmp_path / "sw.tsv"
    lex.write_text("eneo\tshamba la kati\nlake\tyake\nLake\tyao\n", encoding="utf-8")
    cfg = AugmentConfig(ops=["synonym"], lexicons={"sw": str(lex)}, synonym={"alpha": 0.1})
    outside = ["O"] * 6
    table = _table("sw", (["Eneo", "lake", "ni", "33", "km²", "."], outside), (["ENEO", "ni", "33", "km²", "."], outside[:5]),
                   (["Kwa", "hivyo", "Lake", "ni", "33", "."], outside), (["(", "eneo", ")", "ni", "33", "."], outside))
    made = {" ".join(t) for t in _made(make_op("synonym", cfg, build_resources(cfg, table), 0), table)}
    assert made == {"Shamba la kati lake ni 33 km² .", "Eneo yake ni 33 km² .", "SHAMBA LA KATI ni 33 km² .",
                    "Kwa hivyo yao ni 33 .", "( shamba la kati ) ni 33 ."}


def test_insert_takes_the_case_of_its_word_unless_that_word_starts_the_sentence(tmp_path):
    """``insert`` puts a synonym of one of the sentence's words elsewhere: a word capitalised
    inside the sentence passes its case on (``Kubwa`` -> ``Pana``, ``KUBWA`` -> ``PANA``); the
    first word's capital marks the sentence start, not the word, so its synonym stays lower."""
    lex = tmp_path / "sw.tsv"
    lex.write_text("kubwa\tpana\n", encoding="utf-8")
    cfg = AugmentConfig(ops=["insert"], lexicons={"sw": str(lex)}, insert={"alpha": 0.1})
    tags = ["O", "O", "B-LOC", "O"]
    rows = {"first": (["Kubwa", "sana", "Dodoma", "."], tags), "inside": (["sana", "Kubwa", "Dodoma", "."], tags),
            "caps": (["sana", "KUBWA", "Dodoma", "."], tags), "lower": (["sana", "kubwa", "Dodoma", "."], tags)}
    res = build_resources(cfg, _table("sw", *rows.values()))
    op = make_op("insert", cfg, res, 0)
    inserted = {}
    for name, row in rows.items():
        made = _made(op, _table("sw", row))
        inserted[name] = {t for toks in made for t in toks if t.lower() == "pana"}
    assert inserted == {"first": {"pana"}, "inside": {"Pana"}, "caps": {"PANA"}, "lower": {"pana"}}
    # Review: after a word went in before it, the sentence's first word was taken for an inner one,
    # and its synonym capitalised inside the sentence (13 of 3,000 rows at alpha 0.2).
    many = AugmentConfig(ops=["insert"], lexicons={"sw": str(lex)}, insert={"alpha": 0.5})
    op = make_op("insert", many, build_resources(many, _table("sw", rows["lower"])), 0)  # pool: lower case
    made = _made(op, _table("sw", (["Kubwa", "sana", "sana", "sana", "Dodoma", "."], tags[:1] * 4 + tags[2:])), 200)
    assert {t for toks in made for t in toks if t.lower() == "pana"} == {"pana"}


def test_arabic_script_synonyms_are_as_found():
    """Uyghur in Arabic script has no case: the synonym is the table's word, untouched."""
    from lrl.generate.augment.eda import with_case

    assert with_case(["مەكتەپ"], "ئۆي") == ["مەكتەپ"]
    assert with_case(["ọkọ̀", "ojú"], "Ilé") == ["Ọkọ̀", "ojú"] and with_case(["a"], "B") == ["A"]
    assert with_case(["'yan", "mata"], "Mutane") == ["'Yan", "mata"]  # the first letter, not the apostrophe


def test_a_lexicon_for_the_translate_train_target_is_used(tmp_path):
    """Labelled sw rows translated into ug (no ug input row): the ug lexicon was an error, and
    without one ug got no synonyms even with ug text; both build now, for the target only."""
    lex = tmp_path / "ug.tsv"
    lex.write_text("ya\tyaa\n", encoding="utf-8")
    cfg = AugmentConfig(ops=["synonym"], lexicons={"ug": str(lex)})
    sw = _table("sw", (["Eneo", "ya", "Dodoma"], ["O", "O", "B-LOC"]))
    with pytest.raises(ConfigError, match=r"augment\.lexicons names \['ug'\] but no training row \(data\.ner, "
                                          r"held-out splits aside\) has that language \(the rows' languages: "
                                          r"\['sw'\]\); synonyms are built for those languages only$"):
        build_resources(cfg, sw)
    assert build_resources(cfg, sw, translated=["ug"]).synonyms == {"ug": {"ya": ("yaa",)}}
    other = AugmentConfig(ops=["synonym"], lexicons={"ug": str(lex), "wol": str(lex)})
    with pytest.raises(ConfigError, match=r"names \['wol'\] .*\(the rows' languages: \['sw'\], and \['ug'\] that "
                                          r"translate\.train writes\); synonyms are built for those languages only$"):
        build_resources(other, sw, translated=["ug"])


def _zero_shot_job(data_root: Path, tmp_path: Path, *extra: str):
    """sw WikiANN rows translated into ug by the fake translator (identity: the words stay), with
    a ug lexicon of frequent sw words: ug rows exist only as translations."""
    from test_generate import _slice

    sw = _slice(data_root, tmp_path, "sw", 40)
    lex = tmp_path / "ug.tsv"
    lex.write_text("ya\tyaa\nni\tnii\nwa\twaa\nna\tnaa\nEneo\teneoo\nlake\tlakee\n", encoding="utf-8")
    return load_job(None, [
        f"data.ner=[{{path: {sw}, lang: sw}}]", f"augment.lexicons={{ug: {lex}}}",
        "translate.enabled=true", "translate.train={sources: [sw], target: ug, model: {backend: fake, "
        "fake: {mode: identity}}}", "augment.neighbours.enabled=false", "seed=3",
        f"output.root={tmp_path / 'runs'}", *extra])


def test_augment_steps_and_replay_build_the_targets_synonyms(data_root, tmp_path):
    """The stage's augment step and ``replay.stage_resources`` (which rebuilds the resources to
    regenerate written rows) give the target language the same table."""
    import pyarrow as pa

    from lrl.generate.augment import augment_steps
    from lrl.generate.replay import stage_resources
    from lrl.generate.stage import read_inputs

    cfg = _zero_shot_job(data_root, tmp_path, "augment.ops=[synonym, mention]")
    inputs = read_inputs(cfg)
    (step,) = augment_steps(cfg, pa.concat_tables([r.table for r in inputs.ner]))
    again = stage_resources(cfg, inputs)
    assert set(step.resources.synonyms) == {"ug"} and step.resources.synonyms_of("ug", "ya") == ("yaa",)
    assert again.fingerprint() == step.resources.fingerprint()


def test_translated_rows_of_a_language_without_inputs_are_augmented(ray_session, data_root, tmp_path):
    """End to end: ug rows made by translate-train get synonym rows, each rebuilt by ``replay``
    from its parent; mention replacement, with no ug mention inventory, makes no ug row and
    counts every attempt as not applicable (no row is dropped: every translation is kept)."""
    from lrl.data.schema import NER_SCHEMA
    from lrl.generate.augment import replay
    from lrl.generate.replay import stage_resources
    from lrl.generate.stage import run_generate
    from lrl.generate.write import read_rows
    from lrl.pipeline.stage import StageContext

    cfg = _zero_shot_job(data_root, tmp_path, "augment.ops=[synonym, mention]")
    path = run_generate(StageContext(cfg), quiet=True)
    rows = read_rows(path).to_pylist()
    by_id = {r["id"]: r for r in rows}
    ug = [r for r in rows if r["lang"] == "ug"]
    syn = [r for r in ug if r["op"] == "synonym"]
    assert syn and not [r for r in ug if r["op"] == "mention"]
    resources = stage_resources(cfg)
    cols = NER_SCHEMA.names
    for r in syn:
        parent = {c: by_id[r["parent_id"]][c] for c in cols}
        assert parent["op"] == "translate" and parent["lang"] == "ug"
        again = replay(parent, "synonym", r["seed"], cfg.augment, resources, copy=int(r["id"].rsplit("|", 1)[1]))
        assert again == {c: r[c] for c in cols}, r["id"]
    manifest = json.loads((Path(path) / "manifest.json").read_text(encoding="utf-8"))
    mention = manifest["augment_attempts"]["mention"]["ug"]
    translated = sum(r["op"] == "translate" for r in ug)
    assert translated and mention["attempts"] == mention["not_applicable"] == translated


def test_only_jobs_with_synonym_or_insert_get_a_new_output_hash(tmp_path, monkeypatch):
    """Their rows change (synonyms in the case of their word; translated rows of a language
    without inputs get synonyms): a finished output of older code must not be reused. Every other
    job keeps its hash and its finished output."""
    import lrl.generate.stage as stage

    monkeypatch.setattr(stage, "StageOutput", lambda root, name, config, inputs: config)  # what is hashed
    (tmp_path / "wo.conll").write_text("Dakar B-LOC\n\n", encoding="utf-8")

    def config(*more: str) -> dict:
        return stage.stage_output(load_job(None, [f"data.ner=[{{path: {tmp_path / 'wo.conll'}, lang: wo}}]",
                                                  f"output.root={tmp_path}", *more]))

    lex = tmp_path / "wo.tsv"
    lex.write_text("dëkk\tgox\n", encoding="utf-8")
    text = f"data.text=[{{path: {tmp_path / 'wo.conll'}, lang: wo}}]"
    assert config("augment.ops=[synonym]", text)["synonym_version"] == 2
    assert config("augment.ops=[insert, swap]", f"augment.lexicons={{wo: {lex}}}")["synonym_version"] == 2
    # Review: insert with no lexicon and no text (or neighbours off) has no synonym: the same rows.
    assert "synonym_version" not in config("augment.ops=[insert, swap]")
    assert "synonym_version" not in config("augment.ops=[insert]", text, "augment.neighbours.enabled=false")
    assert "synonym_version" not in config("augment.ops=[swap, mention, labelwise, shuffle, delete]")
    assert "synonym_version" not in config()
