"""Translation steps on Ray: the fake translator end to end through ``steps(cfg)``, and a tiny
Marian (random init, locally trained tokenizer) on an actor pool."""

from __future__ import annotations

from collections import Counter

import pytest

from lrl.data.schema import REJECT, ner_table, text_table

TOKENS = "John Smith visited New York City and Paris France .".split()
TAGS = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-LOC", "O", "B-ORG", "B-LOC", "O"]


def job(**translate):
    from lrl.job import JobConfig

    return JobConfig.model_validate({"seed": 7, "translate": {"enabled": True, **translate}})


def en_rows(n: int) -> list[dict]:
    return [{"id": f"en:{i}", "lang": "en", "tokens": TOKENS + [f"w{i}"], "tags": TAGS + ["O"],
             "source": "x.conll#train", "op": "orig"} for i in range(n)]


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory, data_root):
    from lrl.generate.translate.tiny import build_tiny_marian

    d = data_root / "parallel" / "flores200_devtest"
    texts = []
    for name in ("eng_Latn", "uig_Arab"):
        texts += (d / f"{name}.devtest").read_text(encoding="utf-8").splitlines()[:300]
    return build_tiny_marian(tmp_path_factory.mktemp("tiny-marian"), texts, d_model=32, layers=1)


def test_translate_train_with_fake_translator(ray_session):
    import ray

    from lrl.generate import translate

    cfg = job(train={"sources": ["en"], "target": "ug", "model": {"backend": "fake"}},
              projection={"markers": "numbered"})
    steps = translate.steps(cfg)
    assert [s.name for s in steps] == ["translate"]
    rows = en_rows(30) + [{"id": "ug:0", "lang": "ug", "tokens": ["x"], "tags": ["B-LOC"], "op": "orig"}]
    out = steps[0].apply(ray.data.from_arrow(ner_table(rows)).repartition(3)).take_all()
    assert len(out) == 61  # 31 passed through + 30 translations
    made = {r["id"]: r for r in out if r["op"] == "translate"}
    r = made["en:4>translate:ug"]
    assert r["lang"] == "ug" and r["parent_id"] == "en:4" and r["seed"] == 7 and r[REJECT] is None
    assert r["tokens"] == [t[::-1] for t in TOKENS] + ["4w"] and r["tags"] == TAGS + ["O"]
    assert r["src_text"] == " ".join(TOKENS + ["w4"]) and r["src_ents"] == ["PER", "LOC", "ORG", "LOC"]
    orig = [x for x in out if x["op"] == "orig"]
    assert sorted(x["id"] for x in orig) == sorted(x["id"] for x in rows)


def test_unrecoverable_rows_are_rejected_with_reason(ray_session):
    import ray

    from lrl.generate import translate

    cfg = job(train={"model": {"backend": "fake", "fake": {"garble_marker_rate": 1.0}}, "keep_source": False},
              projection={"fuzzy": False})
    out = translate.steps(cfg)[0].apply(ray.data.from_arrow(ner_table(en_rows(10)))).take_all()
    assert len(out) == 10  # keep_source=False: only the translations
    assert Counter(r[REJECT].split(":")[0] for r in out) == {"projection": 10}
    assert all("entity lost" in r[REJECT] for r in out)
    assert out[0]["tokens"][0] == "{"  # the raw output is kept for inspection


def test_back_translation_labelled_and_text(ray_session):
    import ray

    from lrl.generate import translate

    bt = {"lang": "ug", "pivot": "en", "to_pivot": {"backend": "fake"}, "from_pivot": {"backend": "fake"}}
    cfg = job(backtranslate=bt)
    ug = [{"id": f"ug:{i}", "lang": "ug", "tokens": ["ئۈرۈمچى", "شەھىرى", "گۈزەل", str(i)],
           "tags": ["B-LOC", "I-LOC", "O", "O"], "op": "orig"} for i in range(12)]
    out = translate.steps(cfg)[0].apply(ray.data.from_arrow(ner_table(ug + en_rows(3)))).take_all()
    made = [r for r in out if r["op"] == "backtranslate"]
    assert len(made) == 12 and len(out) == 27
    # Reversing letters twice is the identity: the paraphrase equals its parent, labels included.
    by_id = {r["id"]: r for r in ug}
    for r in made:
        assert r["tokens"] == by_id[r["parent_id"]]["tokens"] and r["tags"] == by_id[r["parent_id"]]["tags"]
    texts = [{"id": f"t{i}", "lang": "ug", "text": f"بۇ بىر جۈملە {i}"} for i in range(5)]
    steps = translate.text_steps(cfg)
    out = steps[0].apply(ray.data.from_arrow(text_table(texts))).take_all()
    made = [r for r in out if r["op"] == "backtranslate"]
    assert len(made) == 5 and all(r["text"] == r["src_text"] for r in made)
    assert {r["parent_id"] for r in made} == {f"t{i}" for i in range(5)}


def test_no_steps_when_disabled():
    from lrl.generate import translate
    from lrl.job import JobConfig

    assert translate.steps(JobConfig()) == [] and translate.text_steps(JobConfig()) == []


def test_language_codes_per_family():
    from lrl.generate.translate.hf import lang_code

    assert lang_code("nllb", "ug", None) == "uig_Arab"
    assert lang_code("nllb", "uig_Arab", None) == "uig_Arab"
    assert lang_code("m2m100", "uig_Arab", None) == "uig"
    assert lang_code("m2m100", "ug", None) == "ug"
    assert lang_code("marian", "ug", None) is None
    assert lang_code("nllb", "ug", "uig_Arab") == "uig_Arab"


def test_tiny_marian_actor_pool_translates_rows(ray_session, tiny_marian, data_root):
    import ray

    from lrl.generate import translate

    model = {"backend": "hf", "model": tiny_marian, "batch_size": 16, "max_length": 24, "num_actors": 1}
    cfg = job(train={"model": model, "keep_source": False})
    en = (data_root / "parallel" / "flores200_devtest" / "eng_Latn.devtest").read_text(encoding="utf-8")
    rows = []
    for i, line in enumerate(en.splitlines()[:300]):
        toks = line.split()[:12]
        rows.append({"id": f"en:{i}", "lang": "en", "tokens": toks, "tags": ["B-PER"] + ["O"] * (len(toks) - 1)})
    out = translate.steps(cfg)[0].apply(ray.data.from_arrow(ner_table(rows)).repartition(4)).take_all()
    assert len(out) == 300
    assert {r["parent_id"] for r in out} == {r["id"] for r in rows}
    assert all(r["op"] == "translate" and r["lang"] == "ug" for r in out)
    # Garbage model: rows are either projected (tags as long as tokens) or rejected with a reason.
    for r in out:
        assert len(r["tokens"]) == len(r["tags"])
        assert r[REJECT] is None or r[REJECT].startswith("projection:")


def test_hf_translator_loads_by_path_with_safetensors(tiny_marian):
    import os

    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate.hf import HFTranslator

    assert os.path.exists(os.path.join(tiny_marian, "model.safetensors"))
    t = HFTranslator(MTModelConfig(model=tiny_marian, max_length=16, num_beams=2, prefix=">>uig<<"), "en", "ug")
    assert t.family == "marian" and "forced_bos_token_id" not in t.gen_kwargs
    out = t.translate(["a b c", "", "Paris is big ."])
    assert len(out) == 3 and all(isinstance(s, str) for s in out)
    assert t.translate([]) == []
