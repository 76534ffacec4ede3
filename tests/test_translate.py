"""Translation steps on Ray: the fake translator end to end through ``steps(cfg)``, and a tiny
Marian (random init, locally trained tokenizer) on an actor pool."""

from __future__ import annotations

from collections import Counter

import pytest
from translate_jobs import TAGS, TOKENS, Local, en_rows, job

from lrl.data.schema import REJECT, ner_table, text_table


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


def test_tiny_marian_actor_pool_translates_rows(ray_session, tiny_marian, data_root):
    import ray

    from lrl.generate import translate

    model = {"backend": "hf", "model": tiny_marian, "batch_size": 16, "max_length": 48, "num_actors": 1}
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
    # Garbage model: rows are projected (tags as long as tokens) or rejected with a reason. Inputs
    # over max_length tokens are refused, not truncated (at 24, 298 of these 300 were); the random
    # model never writes </s>, so every output it makes runs to max_length and is rejected as cut.
    for r in out:
        assert len(r["tokens"]) == len(r["tags"])
        assert r[REJECT] is None or r[REJECT].startswith(("projection:", "translation_"))
    # By kind (the text before the colon, what the manifest's rejects_per_reason counts): under
    # one "translation" kind, inputs too long and outputs cut at max_length read the same.
    reasons = Counter((r[REJECT] or "kept").split(":")[0] for r in out)
    assert 0 < reasons["translation_too_long"] < 100
    assert reasons["translation_cut"] == 300 - reasons["translation_too_long"]


def test_hf_translator_loads_by_path_with_safetensors(tiny_marian):
    import os

    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate import hf
    from lrl.generate.translate.hf import HFTranslator

    assert os.path.exists(os.path.join(tiny_marian, "model.safetensors"))
    t = HFTranslator(MTModelConfig(model=tiny_marian, max_length=16, num_beams=2, prefix=">>uig<<"), "en", "ug")
    assert t.family == "marian" and "forced_bos_token_id" not in t.gen_kwargs
    out = t.translate(["a b c", "", "Paris is big ."])
    # The random model never ends a sentence: each output is cut at max_length, its text kept.
    assert len(out) == 3 and all(isinstance(s, hf.Refused) and s.reason == hf.CUT and s.text for s in out)
    assert t.translate([]) == []


def test_translations_are_the_same_when_the_checkpoint_samples(tiny_marian):
    """A checkpoint whose generation_config sets ``do_sample`` translated differently on every
    call: generate stages of one config and seed made other rows."""
    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate import hf

    t = hf.HFTranslator(MTModelConfig(model=tiny_marian, max_length=12), "en", "ug")
    t.model.generation_config.do_sample = True
    texts = ["Paris is big .", "a b c", "John went to New York ."]
    assert t.translate(texts) == t.translate(texts) == t.translate(texts)


def test_missing_or_wrong_model_folder_names_the_setting(ray_session, tmp_path):
    """A bad ``model`` used to surface only as an ActorDiedError from inside the pool, with a
    transformers message ("Repo id must be in the form ...") that named no setting."""
    import ray
    from transformers import BertConfig, BertModel

    from lrl.generate import translate

    ds = ray.data.from_arrow(ner_table(en_rows(2)))
    cfg = job(train={"model": {"model": str(tmp_path / "nope")}})
    with pytest.raises(ValueError, match=r"translate\.train\.model\.model: .*nope.* does not exist"):
        translate.steps(cfg)[0].apply(ds)
    bert = tmp_path / "bert"
    BertModel(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
                         vocab_size=20)).save_pretrained(bert)
    bt = {"to_pivot": {"backend": "fake"}, "from_pivot": {"model": str(bert)}}
    with pytest.raises(ValueError, match=r"translate\.backtranslate\.from_pivot\.model: .*'bert'.*not a seq2seq"):
        translate.steps(job(backtranslate=bt))[0].apply(ds)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"translate\.train\.model\.model: .*no config\.json"):
        translate.steps(job(train={"model": {"model": str(tmp_path / "empty")}}))[0].apply(ds)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "config.json").write_text('{"model_type": "marian"}')
    (tmp_path / "bin" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ValueError, match=r"translate\.train\.model\.model: .*no \.safetensors weights"):
        translate.steps(job(train={"model": {"model": str(tmp_path / "bin")}}))[0].apply(ds)


def test_max_length_over_the_models_positions_names_the_setting(tiny_marian):
    """``max_length: 600`` on a Marian model of 512 positions: generation ran past its position
    table and every batch raised IndexError inside the actor pool, after the model had loaded."""
    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate import hf

    cfg = MTModelConfig(model=tiny_marian, max_length=600)
    with pytest.raises(ValueError, match=r"translate\.train\.model\.max_length=600 is over the 512 positions"):
        hf.check_model(cfg, "translate.train.model")
    with pytest.raises(ValueError, match="max_length=600 is over the 512 positions"):
        hf.HFTranslator(cfg, "en", "ug")  # a hub model, which the driver does not read
    hf.check_model(MTModelConfig(model=tiny_marian, max_length=512), "translate.train.model")


def test_inputs_over_max_length_are_rejected_not_truncated(tiny_marian, monkeypatch):
    """A Uyghur Wikipedia paragraph (4% of mono/ug.txt lines have over 150 words) was cut at
    ``max_length`` tokens and only its first part translated: the back-translated "paraphrase"
    was a fragment, kept without a word in the manifest."""
    from lrl.generate import translate
    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate import hf

    t = hf.HFTranslator(MTModelConfig(model=tiny_marian, max_length=16), "en", "ug")
    short, long = "Paris is big .", " ".join(["Paris is big ."] * 20)
    out = t.translate([long, short])
    assert out[0] is None and out[1] is not None  # translated (the random model's output is then cut)

    class Cut:  # what HFTranslator does with a long input, without loading a model
        def translate(self, texts, src=None):
            return [None if len(s) > 40 else s for s in texts]

    monkeypatch.setattr(hf, "make_translator", lambda *a, **k: Cut())
    bt = {"lang": "ug", "to_pivot": {"backend": "fake"}, "from_pivot": {"backend": "fake"}}
    rows = [{"id": "t0", "lang": "ug", "text": long}, {"id": "t1", "lang": "ug", "text": short}]
    got = {r["id"]: r for r in translate.text_steps(job(backtranslate=bt))[0].apply(Local(text_table(rows))).table.to_pylist()}
    assert got["t0>backtranslate:ug"][REJECT] == "translation_too_long: input longer than max_length tokens"
    # Translated both ways (the identity stand-in returns a copy: a duplicate, not a refusal).
    assert got["t1>backtranslate:ug"][REJECT].startswith("duplicate:") and got["t1>backtranslate:ug"]["text"] == short
    ner = [{"id": "en:0", "lang": "en", "tokens": long.split(), "tags": ["B-LOC"] + ["O"] * 79}]
    cfg = job(train={"model": {"backend": "fake"}, "keep_source": False})
    (r,) = translate.steps(cfg)[0].apply(Local(ner_table(ner))).table.to_pylist()
    assert r[REJECT] == "translation_too_long: input longer than max_length tokens" and r["tokens"] == long.split()


def test_each_hop_is_one_operator_so_the_pool_cannot_starve_it(ray_session, tiny_marian):
    """Marking ran as a task operator of its own before the actor pool: it needs a whole CPU, and
    with less than one left beside the pool (``ray.num_cpus=1``, one actor of 0.5 CPU, within the
    documented rule) ``lrl generate`` waited forever. Marking now runs inside the hop."""
    import ray

    from lrl.generate import translate

    def operators(ds) -> list[str]:
        out, op = [], ds._logical_plan.dag
        while op.input_dependencies:
            out.append(op.name)
            op = op.input_dependencies[0]
        return out

    model = {"model": tiny_marian, "cpus_per_actor": 0.5}
    ds = ray.data.from_arrow(ner_table(en_rows(2)))
    assert len(operators(translate.steps(job(train={"model": model}))[0].apply(ds))) == 1
    bt = {"to_pivot": model, "from_pivot": model}
    assert len(operators(translate.steps(job(backtranslate=bt))[0].apply(ds))) == 2


def test_outputs_cut_at_max_length_are_rejected(tiny_marian, monkeypatch):
    """A translation that ran into ``max_length`` (a fragment, or a model repeating a word until
    the limit) was kept as a complete one; inputs over the limit were already refused."""
    from types import SimpleNamespace

    import torch

    from lrl.generate import translate
    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate import hf

    # The random tiny Marian never writes </s>: its outputs stop at the limit (Marian's forced
    # </s> sits in the last position). With a large </s> bias it ends at once: empty, not cut.
    t = hf.HFTranslator(MTModelConfig(model=tiny_marian, max_length=12), "en", "ug")
    out = t.translate(["Paris is big .", "a b c"])
    assert all(isinstance(o, hf.Refused) and o.reason == hf.CUT and o.text for o in out)
    with torch.no_grad():
        t.model.final_logits_bias[0, t.tokenizer.eos_token_id] = 10.0
    assert t.translate(["Paris is big ."]) == [""]
    # NLLB starts decoding with </s> (id 2) itself; pad 1. Rows: ended early, ended at the last
    # position but with an earlier </s>, cut with a forced </s>, cut without one.
    nllb = SimpleNamespace(cfg=SimpleNamespace(max_length=5), tokenizer=SimpleNamespace(eos_token_id=2),
                           model=SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=2)))
    gen = torch.tensor([[2, 7, 2, 1, 1], [2, 7, 8, 2, 1], [2, 7, 8, 9, 2], [2, 7, 8, 9, 9]])
    assert hf.HFTranslator.cut(nllb, gen) == [False, False, True, True]
    assert hf.HFTranslator.cut(nllb, gen[:, :4]) == [False] * 4  # the batch ended before the limit

    class Limit:  # what HFTranslator does with outputs over 40 characters, without a model
        def translate(self, texts, src=None):
            return [hf.Refused(hf.CUT, s[:40]) if len(s) > 40 else s for s in texts]

    monkeypatch.setattr(hf, "make_translator", lambda *a, **k: Limit())
    long, short = " ".join(["Paris is big ."] * 5), "Paris is big ."
    bt = {"lang": "ug", "to_pivot": {"backend": "fake"}, "from_pivot": {"backend": "fake"}}
    rows = [{"id": "t0", "lang": "ug", "text": long}, {"id": "t1", "lang": "ug", "text": short}]
    got = {r["id"]: r for r in translate.text_steps(job(backtranslate=bt))[0].apply(Local(text_table(rows))).table.to_pylist()}
    # Cut on the way to the pivot: not translated back (a fragment's paraphrase), the fragment kept.
    assert got["t0>backtranslate:ug"][REJECT] == "translation_cut: output stopped at max_length tokens"
    assert got["t0>backtranslate:ug"]["text"] == long[:40]
    # Translated both ways (the identity stand-in returns a copy: a duplicate, not a refusal).
    assert got["t1>backtranslate:ug"][REJECT].startswith("duplicate:") and got["t1>backtranslate:ug"]["text"] == short
    ner = [{"id": "en:0", "lang": "en", "tokens": long.split(), "tags": ["B-LOC"] + ["O"] * 19},
           {"id": "en:1", "lang": "en", "tokens": ["Paris"], "tags": ["B-LOC"]}]
    cfg = job(train={"model": {"backend": "fake"}, "keep_source": False})
    r0, r1 = translate.steps(cfg)[0].apply(Local(ner_table(ner))).table.to_pylist()
    assert r0[REJECT] == hf.CUT and r0["tokens"] == ("[ Paris ] " + long[6:])[:40].split()
    assert r0["tags"] == ["O"] * len(r0["tokens"]) and r1[REJECT] is None and r1["tags"] == ["B-LOC"]
    # An empty output is the model's failure, not lost markers ("projection: empty translation"),
    # and an empty pivot is not translated back (the way back made text out of "").
    calls: list[list[str]] = []
    monkeypatch.setattr(hf, "make_translator", lambda *a, **k: SimpleNamespace(
        translate=lambda t, src=None: calls.append(list(t)) or [""] * len(t)))
    (r,) = translate.steps(cfg)[0].apply(Local(ner_table(ner[1:]))).table.to_pylist()
    assert r[REJECT] == hf.EMPTY and r["tokens"] == ["Paris"]
    calls.clear()
    got = {r["id"]: r for r in translate.text_steps(job(backtranslate=bt))[0].apply(Local(text_table(rows))).table.to_pylist()}
    assert got["t1>backtranslate:ug"][REJECT] == hf.EMPTY and len(calls) == 1  # one hop, not two


def test_relative_model_folders_are_made_absolute_on_the_driver(tmp_path, monkeypatch):
    """A relative ``model`` went to the actors as written; they run in their own working
    directory (on a cluster the job's unpacked working_dir), where it named nothing."""
    import os

    from lrl.generate import translate

    (tmp_path / "data" / "mt").mkdir(parents=True)
    (tmp_path / "run" / "models" / "back").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "run")

    def cfg(train: str, back: str):
        from lrl.job import JobConfig

        return JobConfig.model_validate({"data": {"root": str(tmp_path / "data")}, "translate": {
            "enabled": True, "train": {"model": {"model": train}},
            "backtranslate": {"to_pivot": {"model": back}, "from_pivot": {"backend": "fake"}}}})

    # Against data.root first (like every input path), then the driver's folder.
    tt, bt = translate.steps(cfg("mt", "models/back"))
    assert tt.cfg.model.model == str(tmp_path / "data" / "mt")
    assert bt.cfg.to_pivot.model == str(tmp_path / "run" / "models" / "back")
    assert os.path.isabs(translate.text_steps(cfg("mt", "./models/back"))[0].cfg.to_pivot.model)
    # Hub ids (nothing of that name here) and absolute paths stay as they are.
    tt, bt = translate.steps(cfg("Helsinki-NLP/opus-mt-en-ug", str(tmp_path / "data" / "mt")))
    assert tt.cfg.model.model == "Helsinki-NLP/opus-mt-en-ug" and bt.cfg.to_pivot.model == str(tmp_path / "data" / "mt")


def test_back_translation_paraphrases_only_rows_read_from_the_inputs(ray_session):
    """With translate-train into the back-translated language, its rows (machine output already)
    were paraphrased too: three translation hops on one sentence, counted as augmentation."""
    import ray

    from lrl.generate import translate

    bt = {"lang": "ug", "pivot": "en", "to_pivot": {"backend": "fake"}, "from_pivot": {"backend": "fake"}}
    cfg = job(train={"sources": ["en"], "target": "ug", "model": {"backend": "fake"}}, backtranslate=bt)
    ug = [{"id": f"ug:{i}", "lang": "ug", "tokens": ["ئۈرۈمچى", str(i)], "tags": ["B-LOC", "O"], "op": "orig"}
          for i in range(4)]
    ds = ray.data.from_arrow(ner_table(ug + en_rows(6)))
    for step in translate.steps(cfg):
        ds = step.apply(ds)
    out = ds.take_all()
    assert Counter(r["op"] for r in out) == {"orig": 10, "translate": 6, "backtranslate": 4}
    assert sorted(r["parent_id"] for r in out if r["op"] == "backtranslate") == [f"ug:{i}" for i in range(4)]


def test_back_translations_equal_to_their_source_or_missing_an_entity_are_rejected(monkeypatch):
    """A paraphrase that came back as its source was kept as a new row (counted as augmentation)
    unless ``filter.ops`` had ``dedup``; one that lost its entity was already rejected."""
    from lrl.generate import translate
    from lrl.generate.translate import hf

    back = {"[ Dakar ] dafa rafet 1": "[ Dakar ] rafet na 1",     # a paraphrase
            "[ Dakar ] dafa rafet 2": "[ DAKAR ]  dafa rafet  2",  # case and spaces only
            "[ Dakar ] dafa rafet 3": "dafa rafet 3",              # the entity lost
            "Dakar dafa rafet .": "Dakar dafa rafet.", "Dakar rafet na": "Dakar dafa rafet"}

    class Pivot:  # to the pivot: unchanged; back from it: ``back``
        def __init__(self, tgt):
            self.tgt = tgt

        def translate(self, texts, src=None):
            return [back.get(t, t) if self.tgt == "wo" else t for t in texts]

    monkeypatch.setattr(hf, "make_translator", lambda cfg, src, tgt, seed=0: Pivot(tgt))
    bt = {"lang": "wo", "to_pivot": {"backend": "fake"}, "from_pivot": {"backend": "fake"}}
    rows = [{"id": f"wo:{i}", "lang": "wo", "tokens": ["Dakar", "dafa", "rafet", str(i)],
             "tags": ["B-LOC", "O", "O", "O"], "op": "orig"} for i in range(4)]
    out = translate.steps(job(backtranslate=bt))[0].apply(Local(ner_table(rows))).table.to_pylist()
    got = {r["parent_id"]: r for r in out if r["op"] == "backtranslate"}
    assert got["wo:0"][REJECT] == "duplicate: of wo:0 (back-translation equals its source)"
    assert got["wo:1"][REJECT] is None and got["wo:1"]["tokens"] == ["Dakar", "rafet", "na", "1"]
    assert got["wo:1"]["tags"] == ["B-LOC", "O", "O", "O"]
    assert got["wo:2"][REJECT] == "duplicate: of wo:2 (back-translation equals its source)"
    assert got["wo:3"][REJECT] == "projection: entity lost (LOC 'Dakar')"
    texts = [{"id": "t0", "lang": "wo", "text": "Dakar dafa rafet ."}, {"id": "t1", "lang": "wo", "text": "Dakar rafet na"}]
    out = translate.text_steps(job(backtranslate=bt))[0].apply(Local(text_table(texts))).table.to_pylist()
    got = {r["parent_id"]: r for r in out if r["op"] == "backtranslate"}
    assert got["t0"][REJECT] == "duplicate: of t0 (back-translation equals its source)"
    assert got["t1"][REJECT] is None and got["t1"]["text"] == "Dakar dafa rafet"


def test_a_truncated_weights_file_is_one_line_naming_the_model(tiny_marian, tmp_path):
    """A truncated model.safetensors was safetensors' error in the actor pool, an ActorDiedError."""
    import re
    import shutil

    from lrl.config import ConfigError
    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate import hf

    shutil.copytree(tiny_marian, tmp_path / "cut")
    weights = tmp_path / "cut" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-50])  # the header whole, the tensors short
    cfg, at = MTModelConfig(model=str(tmp_path / "cut"), max_length=16), re.escape(str(tmp_path / "cut"))
    with pytest.raises(ConfigError, match=rf"train\.model\.model: '{at}': cannot read its model\.safetensors \(trunc"):
        hf.check_model(cfg, "translate.train.model")
    with pytest.raises(ConfigError, match=rf"^translation model {at}: cannot read its model\.safetensors"):
        hf.HFTranslator(cfg, "en", "ug")  # a hub model's cached copy, which the driver does not read
