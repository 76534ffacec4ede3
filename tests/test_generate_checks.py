"""The generate stage checked the way a user meets it: config errors that only the data's
languages reveal come before any work, and the manifest's oversampling entry describes the rows
on disk (after the filters), for rare entity types as for languages."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from lrl.config import ConfigError
from lrl.job import load_job


def _no_work(*args, **kwargs):
    raise AssertionError("the stage read its inputs before checking its config")


def test_lid_on_a_language_langid_cannot_detect_fails_before_any_work(data_root, wikiann_slice, tmp_path, monkeypatch):
    """``filter.ops=[lid]`` over Yoruba (langid knows no yo): the error came from a filter task
    after everything was read and augmented, as a Ray traceback of ~130 lines, and only when some
    row was long enough to be judged. Now a one-line ConfigError before the inputs are read."""
    from lrl.generate import stage
    from lrl.pipeline.stage import StageContext

    monkeypatch.setattr(stage, "read_inputs", _no_work)
    yo, am = wikiann_slice("yo", 20), str(data_root / "wikiann" / "am" / "train")
    base = [f"data.ner=[{{path: {yo}, lang: yo}}, {{path: {am}, lang: am}}]", "augment.ops=[swap]",
            f"output.root={tmp_path / 'runs'}", "filter.ops=[lid]"]
    with pytest.raises(ConfigError, match=r"the data's languages \['yo'\].*filter\.lid_langs.*\['am'\]"):
        stage.run_generate(StageContext(load_job(None, base)), quiet=True)
    with pytest.raises(ConfigError, match=r"filter\.lid_langs \['yo'\] are not among langid's languages"):
        stage.run_generate(StageContext(load_job(None, [*base, "filter.lid_langs=[yo]"])), quiet=True)
    with pytest.raises(ConfigError, match=r"filter\.lid_langs \['am'\] are not among filter\.lid_candidates"):
        stage.run_generate(StageContext(load_job(None, [*base, "filter.lid_langs=[am]",
                                                        "filter.lid_candidates=[en]"])), quiet=True)
    with pytest.raises(ConfigError, match=r"filter\.lid_candidates \['xx'\]: langid does not know"):
        stage.run_generate(StageContext(load_job(None, [*base, "filter.lid_langs=[am]",
                                                        "filter.lid_candidates=[am, xx]"])), quiet=True)
    # A language langid knows, checked alone: the check lets the stage go on (to read_inputs here).
    with pytest.raises(AssertionError, match="read its inputs"):
        stage.run_generate(StageContext(load_job(None, [*base, "filter.lid_langs=[am]"])), quiet=True)


def test_langid_languages_are_those_of_its_model():
    """``LANGID_LANGS`` stands in for the model on the driver (unpacking it takes ~1 s)."""
    from lrl.generate.filters.lid import LANGID_LANGS, identifier

    assert set(identifier(()).nb_classes) == LANGID_LANGS  # type: ignore[attr-defined]


def test_rare_types_missed_after_the_filters_are_recorded_and_said(ray_session, data_root, tmp_path, capsys):
    """The plan reaches ``min_sentences_per_type``, the filters then reject some of those sentences
    (``dedup_scope: all`` drops repeated originals and their copies): the manifest kept the plan's
    count, listed no missed type and the summary said nothing (on WikiANN sw, min 500: 443 ORG
    sentences written, 501 reported). Now it counts the rows on disk, as it does for languages."""
    from lrl.generate.stage import run_generate
    from lrl.generate.write import read_rows
    from lrl.pipeline.stage import StageContext

    blocks = (data_root / "wikiann" / "wo" / "train").read_text(encoding="utf-8").split("\n\n")[:30]
    org = [b for b in blocks if "B-ORG" in b]
    src = tmp_path / "wo.conll"
    src.write_text("\n\n".join(blocks + org) + "\n", encoding="utf-8")  # every ORG sentence twice
    minimum = 2 * len(org) + 1  # one copy short in the plan, met by it; the repeats then go
    cfg = load_job(None, [f"data.ner=[{{path: {src}, lang: wo}}]", f"output.root={tmp_path / 'runs'}",
                          "oversample.enabled=true", f"oversample.min_sentences_per_type={minimum}",
                          "oversample.rare_types=[ORG]", "filter.ops=[dedup]", "filter.dedup_scope=all"])
    path = run_generate(StageContext(cfg))
    entry = json.loads((Path(path) / "manifest.json").read_text())["oversample"]
    assert entry["rare_type_sentences"] == {"wo": {"ORG": minimum}}  # the plan's count
    kept = read_rows(path).to_pylist()
    on_disk = Counter(r["lang"] for r in kept if r["op"] in ("orig", "oversample") and "B-ORG" in r["tags"])
    assert 0 < on_disk["wo"] < minimum
    assert entry["rare_type_sentences_written"] == {"wo": {"ORG": on_disk["wo"]}}
    # With the filter that rejected them: the ORG sentences (orig and copies) dedup rejected.
    rejected = sum(1 for r in read_rows(path, "rejects").to_pylist()
                   if r["op"] in ("orig", "oversample") and "B-ORG" in r["tags"] and r["reason"].startswith("duplicate:"))
    assert rejected == minimum - on_disk["wo"]
    assert entry["missed_rare_types"] == {"wo": {"ORG": {"target": minimum, "reached": on_disk["wo"],
                                                         "rejected": {"duplicate": rejected}}}}
    out = capsys.readouterr().out
    assert (f"rare types below oversample.min_sentences_per_type: wo ORG {on_disk['wo']} of {minimum} "
            f"(rejected: duplicate {rejected})") in out


def test_text_filters_that_cannot_reject_a_read_line_do_not_run():
    """Without back-translation every text row is as read (op ``orig``), and ``lid`` (scope
    ``generated``) and the dedup filters (``dedup_scope: generated``) spare such rows: they still
    ran over every line of mono text, 5 Ray Data passes that rejected nothing (~10 of a 24 s run
    on 2 CPUs with 9,000 lines). Filters that may reject a read line still run."""
    from lrl.generate import filters
    from lrl.generate.stage import build_text_steps

    def names(*overrides: str) -> list[str]:
        return [s.name for s in build_text_steps(load_job(None, list(overrides)))]

    spare = ["filter.ops=[lid, length_ratio, dedup, near_dedup]", "filter.lid_langs=[sw]",
             "filter.dedup_scope=generated"]
    assert names(*spare) == []
    assert names(*spare, "filter.scope=all") == ["lid"]
    assert names(*spare, "filter.dedup_scope=all") == ["dedup", "near_dedup"]
    # Rows that a step generates (back-translation) are judged by every text filter, as before.
    cfg = load_job(None, spare)
    assert [s.name for s in filters.text_steps(cfg)] == ["lid", "length_ratio", "dedup", "near_dedup"]


def test_languages_without_synonyms_are_named(wikiann_slice, tmp_path, capsys):
    """``synonym`` over yo (a lexicon) and ig (none): ig got no synonym row and the console only
    showed more ``not_applicable`` attempts, summed over the languages. Now it is named."""
    import pyarrow as pa

    from lrl.data.config import NerSource
    from lrl.data.readers import read_ner
    from lrl.generate.augment import augment_steps

    lex = tmp_path / "yo.tsv"
    lex.write_text("ní\tnínú\nti\tsì\n", encoding="utf-8")
    train = pa.concat_tables([read_ner(NerSource(path=wikiann_slice(lang, 20), lang=lang), None).table
                              for lang in ("yo", "ig")])
    cfg = load_job(None, ["augment.ops=[synonym, swap]", f"augment.lexicons={{yo: {lex}}}"])
    assert augment_steps(cfg, train)
    err = capsys.readouterr().err
    assert "augment.ops has 'synonym' but ig have no synonyms" in err and "yo" not in err.split("but", 1)[1]
    both = load_job(None, ["augment.ops=[synonym]", f"augment.lexicons={{yo: {lex}, ig: {lex}}}"])
    assert augment_steps(both, train) and "no synonyms" not in capsys.readouterr().err
