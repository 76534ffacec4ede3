"""Fine-tuning a tiny from-scratch encoder on a slice of WikiANN Uyghur: the loop, its options, the
stage and the config checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def ug(data_root):
    from lrl.data.readers import read_conll

    train = read_conll(str(data_root / "wikiann/ug/train"), "ug", "train").table.slice(0, 120)
    dev = read_conll(str(data_root / "wikiann/ug/dev"), "ug", "dev").table.slice(0, 40)
    return train, dev


@pytest.fixture(scope="module")
def encoder(ug, tmp_path_factory):
    from lrl.train.finetune_scratch import build_scratch_encoder

    return build_scratch_encoder(tmp_path_factory.mktemp("enc"), ug[0].column("tokens").to_pylist(), ["ug"],
                                 vocab_size=400, hidden=32, layers=2)


def _cfg(**kw):
    from lrl.train.finetune_config import FinetuneConfig

    base = {"max_steps": 6, "batch_size": 16, "eval_every": 3, "lr": 1e-3, "max_length": 64}
    return FinetuneConfig(**{**base, **kw})


def test_fine_tune_and_evaluate_on_wikiann_ug_slice(ug, encoder, tmp_path):
    from lrl.evaluate.predict import predict_tags
    from lrl.train.finetune_model import Tagger
    from lrl.train.tagger import train_tagger

    train, dev = ug
    seen = []
    res = train_tagger(_cfg(precision="bf16"), encoder, train, dev, seed=0, out_dir=str(tmp_path / "m"),
                       report=seen.append)
    assert 0.0 <= res.dev_f1 <= 1.0
    assert [h["step"] for h in res.history] == [3, 6]
    # each report is its history entry with the run's length (a trial stopped at its last one ran in full)
    assert seen == [{**h, "total_steps": 6} for h in res.history]
    assert set(res.history[0]) == {"step", "epoch", "train_loss", "dev_f1", "lr", "time_s"}
    assert set(res.per_lang) == {"ug"} and set(res.per_type) <= {"LOC", "ORG", "PER"}
    tagger = Tagger.load(res.model_dir)
    assert tagger.labels[0] == "O" and json.loads((tmp_path / "m/config.json").read_text())["id2label"]
    sents = dev.column("tokens").to_pylist()
    pred, stats = predict_tags(tagger, sents, dev.column("lang").to_pylist())
    assert [len(p) for p in pred] == [len(s) for s in sents]  # one prediction per original token
    assert all(t in tagger.labels for p in pred for t in p)
    assert stats.words == sum(len(s) for s in sents)


def test_crf_head_trains_saves_and_reloads(ug, encoder, tmp_path):
    from lrl.evaluate.predict import predict_tags
    from lrl.train.finetune_model import Tagger
    from lrl.train.tagger import train_tagger

    train, dev = ug
    res = train_tagger(_cfg(head="crf", max_steps=3, schedule={"type": "one_cycle", "warmup_ratio": 0.0}),
                       encoder, train, dev, seed=1, out_dir=str(tmp_path / "crf"))
    tagger = Tagger.load(res.model_dir)
    assert tagger.crf is not None and float(tagger.crf.trans.detach().abs().sum()) > 0  # transitions trained
    pred, _ = predict_tags(tagger, dev.column("tokens").to_pylist()[:5], ["ug"] * 5)
    assert [len(p) for p in pred] == [len(s) for s in dev.column("tokens").to_pylist()[:5]]


def test_frozen_encoder_parts_unchanged_after_training(ug, encoder, tmp_path):
    from safetensors.torch import load_file

    from lrl.train.tagger import train_tagger

    train, dev = ug
    res = train_tagger(_cfg(freeze_embeddings=True, freeze_layers=1, max_steps=3, layer_lr_decay=0.8),
                       encoder, train, dev, seed=0, out_dir=str(tmp_path / "f"))
    before = load_file(f"{encoder}/model.safetensors")
    after = load_file(f"{res.model_dir}/model.safetensors")
    frozen = [k for k in after if k.startswith("bert.embeddings.") or "encoder.layer.0." in k]
    trained = [k for k in after if "encoder.layer.1." in k and k.endswith("dense.weight")]
    assert frozen and trained
    assert all((before[k] == after[k]).all() for k in frozen)
    assert not any((before[k] == after[k]).all() for k in trained)
    assert res.info["frozen_params"] > 0


def test_early_stopping_stops_after_patience(ug, encoder):
    from lrl.train.tagger import train_tagger

    train, dev = ug
    # A vanishing learning rate: dev F1 cannot improve after the first evaluation.
    res = train_tagger(_cfg(lr=1e-12, head_lr=1e-12, max_steps=40, eval_every=1, patience=2,
                            schedule={"type": "constant", "warmup_ratio": 0.0}), encoder, train, dev, seed=0)
    assert res.info["stopped_early"] and res.info["steps"] == 3 and len(res.history) == 3


def test_history_records_the_learning_rate_each_step_used(ug, encoder):
    """The LR read after ``scheduler.step()`` is the next step's: with warmup over 2 of 4 steps the
    history showed 1.0, 1.0, 0.5, 0.0 x lr instead of the 0.5, 1.0, 1.0, 0.5 x lr the steps used."""
    from lrl.train.schedules import ScheduleConfig, schedule_factor
    from lrl.train.tagger import train_tagger

    sched = ScheduleConfig(type="linear", warmup_ratio=0.5)
    res = train_tagger(_cfg(max_steps=4, eval_every=1, schedule=sched.model_dump()), encoder, *ug, seed=0)
    assert [h["lr"] for h in res.history] == pytest.approx([1e-3 * schedule_factor(sched, s, 4) for s in range(4)])
    assert res.history[0]["lr"] == pytest.approx(0.5e-3)


def test_few_shot_picks_k_per_language_deterministically():
    from lrl.data.schema import ner_table
    from lrl.train.finetune_data import few_shot, mix

    rows = [{"id": f"{lang}:{i}", "lang": lang, "tokens": ["a"], "tags": ["O"], "op": "orig"}
            for lang in ("ug", "wo") for i in range(30)]
    rows += [{"id": f"aug{i}", "lang": "ug", "tokens": ["b"], "tags": ["O"], "op": "eda", "parent_id": f"ug:{i}"}
             for i in range(30)]
    table = ner_table(rows)
    a, b, c = few_shot(table, 5, seed=3), few_shot(table.take(list(range(89, -1, -1))), 5, seed=3), few_shot(table, 5, 4)
    ids = sorted(a.column("id").to_pylist())
    assert ids == sorted(b.column("id").to_pylist())  # same seed, any row order: same choice
    assert ids != sorted(c.column("id").to_pylist())
    orig = [r for r in a.to_pylist() if r["op"] == "orig"]
    assert sum(r["lang"] == "ug" for r in orig) == 5 and sum(r["lang"] == "wo" for r in orig) == 5
    chosen = {r["id"] for r in orig}
    assert all(r["parent_id"] in chosen for r in a.to_pylist() if r["op"] != "orig")  # their augmentations only
    mixed = mix(table, 0.5, seed=0)
    assert mixed.num_rows == 60 + 15 and mix(table, 0.0, 0).num_rows == 60  # 0.5 per ug original


def test_fp16_on_cpu_is_rejected_at_config_load():
    from lrl.config import ConfigError
    from lrl.job import load_job

    with pytest.raises(ConfigError, match="fp16"):
        load_job(None, ["finetune.precision=fp16", "finetune.device=cpu"])
    assert load_job(None, ["finetune.precision=bf16"]).finetune.precision == "bf16"
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="fp16 needs a GPU"):
            load_job(None, ["finetune.precision=fp16"])


def test_joint_training_with_temperature_sampling(ug, encoder):
    import pyarrow as pa

    from lrl.train.finetune_data import language_weights
    from lrl.train.tagger import train_tagger

    w = language_weights(["ug"] * 90 + ["wo"] * 10, alpha=0.5)
    p_wo = sum(w[90:]) / sum(w)
    assert p_wo == pytest.approx(10**0.5 / (90**0.5 + 10**0.5))  # small language drawn more than 10%
    train, dev = ug
    # Two "languages" (the second a relabelled copy) trained jointly: per-language F1 comes back.
    lang = pa.array(["ug"] * 90 + ["wo"] * (train.num_rows - 90))
    train2 = train.set_column(train.schema.get_field_index("lang"), "lang", lang)
    dev2 = dev.set_column(dev.schema.get_field_index("lang"), "lang", pa.array(["ug", "wo"] * (dev.num_rows // 2)))
    res = train_tagger(_cfg(max_steps=2, eval_every=2, sampling_alpha=0.5), encoder, train2, dev2, seed=0)
    assert set(res.per_lang) == {"ug", "wo"} and all(0 <= v <= 1 for v in res.per_lang.values())


def test_preset_model_path_builds_a_fresh_encoder(ug):
    from lrl.train.tagger import train_tagger

    train, dev = ug
    res = train_tagger(_cfg(max_steps=1, eval_every=1), "preset:micro", train.slice(0, 20), dev.slice(0, 5), seed=0)
    assert len(res.history) == 1 and 0 <= res.dev_f1 <= 1


def test_model_card_tells_plain_transformers_users_the_language_tag(ug, encoder, tmp_path):
    """The model is trained with ``[ug]`` after [CLS]; plain transformers code that follows the card
    (the folder's tokenizer puts the tag in itself: one language) predicts what lrl predicts, and
    the card says so."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from lrl.evaluate.model_card import CardInfo, write_model_card
    from lrl.evaluate.predict import predict_tags
    from lrl.train.finetune_model import Tagger
    from lrl.train.tagger import train_tagger

    train, dev = ug
    res = train_tagger(_cfg(max_steps=2, eval_every=2), encoder, train, dev, seed=0, out_dir=str(tmp_path / "m"))
    meta = json.loads((tmp_path / "m/lrl_tagger.json").read_text())
    assert meta["lang_tags"] == {"ug": "[ug]"}
    card = Path(write_model_card(res.model_dir, CardInfo(name="x", languages=["ug"], scores=[]))).read_text()
    assert "the language tag [ug] after [CLS]" in card.split("## How to use")[1]
    tok = AutoTokenizer.from_pretrained(res.model_dir)
    # Sentences that fit one chunk (max_length 64), so lrl does not split them either.
    sents = [s for s in dev.column("tokens").to_pylist() if len(tok(s, is_split_into_words=True)["input_ids"]) <= 64][:8]
    assert len(sents) == 8
    lrl_pred, _ = predict_tags(Tagger.load(res.model_dir), sents, ["ug"] * len(sents))
    model = AutoModelForTokenClassification.from_pretrained(res.model_dir).eval()
    for words, expected in zip(sents, lrl_pred):
        enc = tok(words, is_split_into_words=True, return_tensors="pt")
        assert tok.convert_ids_to_tokens(enc["input_ids"][0])[:2] == ["[CLS]", "[ug]"]
        with torch.no_grad():
            ids = model(**enc).logits.argmax(-1)[0].tolist()
        first = {}
        for pos, w in enumerate(enc.word_ids()):
            if w is not None and w not in first:
                first[w] = pos
        assert [model.config.id2label[ids[first[w]]] for w in range(len(words))] == expected


def test_finetune_errors_name_finetune_settings(data_root, tmp_path):
    """A language without data is reported against the setting the user wrote, not tune's."""
    from lrl.config import ConfigError
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune

    ner = ("data.ner=[{path: wikiann/ug/train, lang: ug, split: train}, "
           "{path: wikiann/ug/dev, lang: ug, split: dev}]")
    cfg = load_job(None, [f"data.root={data_root}", ner, f"output.root={tmp_path}", "finetune.languages=[sw]"])
    with pytest.raises(ConfigError, match=r"^finetune\.languages \['sw'\]: no train and dev rows"):
        run_finetune(StageContext(cfg))
    cfg = load_job(None, [f"output.root={tmp_path}"])
    with pytest.raises(ConfigError, match="^finetune needs training data"):
        run_finetune(StageContext(cfg))
    # Freezing more layers than the encoder has: one clear line before any Ray task starts; for a
    # preset (its depth known) at load, before the stage or any stage before it (pretrain) runs.
    with pytest.raises(ConfigError, match=r"finetune\.freeze_layers=5: finetune\.model=preset:tiny has 2 layers"):
        load_job(None, ["finetune.model=preset:tiny", "finetune.freeze_layers=5"])
    with pytest.raises(ConfigError, match=r"freeze_layers=4: the pretrain stage's encoder \(model.preset=micro\) has 3"):
        load_job(None, ["pipeline.stages=[pretrain,finetune]", "finetune.freeze_layers=4"])
    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "config.json").write_text('{"model_type": "xlm-roberta", "max_position_embeddings": 514, '
                                     '"pad_token_id": 1, "num_hidden_layers": 2}')
    cfg = load_job(None, [f"data.root={data_root}", ner, f"output.root={tmp_path}", f"finetune.model={enc}",
                          "finetune.freeze_layers=5"])
    with pytest.raises(ConfigError, match=r"finetune\.freeze_layers=5: \[5\] deeper than the encoder .* has 2 layers"):
        run_finetune(StageContext(cfg))
    # A max_length beyond a given encoder's positions: the same, before Ray starts.
    cfg = load_job(None, [f"data.root={data_root}", ner, f"output.root={tmp_path}", f"finetune.model={enc}",
                          "finetune.max_length=600"])
    with pytest.raises(ConfigError, match=r"finetune\.max_length=600 but the encoder .* has positions for 512 pieces"):
        run_finetune(StageContext(cfg))


def test_scratch_tokenizer_is_the_same_on_every_run(data_root):
    """The WordPiece trainer numbered its ``##c`` pieces in hash order, which broke merge ties
    differently per run: 4 of 5 tokenizers trained on the same 400 ug sentences differed, so a
    seeded ``preset:`` run gave another dev F1 each time."""
    from lrl.data.readers import read_conll
    from lrl.train.finetune_scratch import build_scratch_tokenizer

    sents = read_conll(str(data_root / "wikiann/ug/train"), "ug", "train").table.column("tokens").to_pylist()[:400]
    vocabs = [build_scratch_tokenizer(sents, ["ug"], 1000).get_vocab() for _ in range(5)]
    assert all(v == vocabs[0] for v in vocabs)
    tok = build_scratch_tokenizer(sents, ["ug"], 1000)
    assert set(tok.all_special_tokens) == {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[ug]"}
    assert len(tok) == 1000 and "##ا" in tok.get_vocab()  # the pieces are ordinary vocabulary
    assert tok.tokenize("ab##c") == ["a", "##b", "[UNK]", "[UNK]", "c"]  # "##c" is not an added token
    word = sents[0][0]
    assert len(tok.tokenize(word)) > 1 and tok.decode(tok(word)["input_ids"], skip_special_tokens=True) == word


def test_max_length_beyond_the_encoder_positions(ug, encoder, tmp_path):
    """``preset:`` encoders had 128 positions whatever ``finetune.max_length`` said, so a chunk of
    more than 128 pieces (one dev sentence here) failed at the first evaluation with a shape error.
    A given encoder with fewer positions is now refused up front, naming the setting."""
    import pyarrow as pa

    from lrl.evaluate.predict import predict_tags
    from lrl.train.finetune_model import Tagger
    from lrl.train.tagger import train_tagger

    train, dev = ug
    rows = dev.to_pylist()
    long = {**rows[0], "id": "ug:dev:long", "tokens": sum((r["tokens"] for r in rows[:30]), []),
            "tags": sum((r["tags"] for r in rows[:30]), [])}
    dev_long = pa.Table.from_pylist(rows[:5] + [long], schema=dev.schema)
    res = train_tagger(_cfg(max_steps=1, eval_every=1, max_length=256), "preset:tiny", train.slice(0, 40), dev_long,
                       seed=0, out_dir=str(tmp_path / "m"))
    assert res.info["align"]["split_sentences"] == 0 and Tagger.load(res.model_dir).max_length == 256
    # A plain HF folder (no lrl_tagger.json) is chunked to its positions, not to 512.
    (tmp_path / "m" / "lrl_tagger.json").unlink()
    plain = Tagger.load(res.model_dir)
    pred, _ = predict_tags(plain, [long["tokens"]], ["ug"])
    assert plain.max_length == 256 and len(pred[0]) == len(long["tokens"])
    with pytest.raises(ValueError, match=r"finetune.max_length=300 .* 256 pieces"):
        train_tagger(_cfg(max_steps=1, max_length=300), encoder, train, dev, seed=0)  # 256 positions


def test_saved_folder_works_with_the_transformers_pipeline_on_long_text(ug, encoder, tmp_path):
    """``pipeline("token-classification")`` straight from the saved folder, on a Uyghur text longer
    than the encoder's 256 positions: the saved tokenizer had no length limit, so the pipeline fed
    every piece at once and crashed in the position embeddings (and ``stride=`` could not chunk)."""
    from transformers import AutoConfig, AutoTokenizer, pipeline

    from lrl.train.tagger import train_tagger

    train, dev = ug
    res = train_tagger(_cfg(max_steps=2, eval_every=2, lang_tag=False), encoder, train, dev, seed=0,
                       out_dir=str(tmp_path / "m"))
    conf = AutoConfig.from_pretrained(res.model_dir)
    assert conf.label2id == {"O": 0, "B-LOC": 1, "I-LOC": 2, "B-ORG": 3, "I-ORG": 4, "B-PER": 5, "I-PER": 6}
    assert AutoTokenizer.from_pretrained(res.model_dir).model_max_length == 64  # the chunk size trained with
    words = [w for s in dev.column("tokens").to_pylist() for w in s][:400]
    ner = pipeline("token-classification", model=res.model_dir, aggregation_strategy="first", stride=16)
    groups = ner(" ".join(words))
    assert all(g["entity_group"] in {"LOC", "ORG", "PER"} for g in groups)
    assert max((g["end"] for g in groups), default=0) <= len(" ".join(words))
    plain = pipeline("token-classification", model=res.model_dir, aggregation_strategy="simple")
    assert isinstance(plain(" ".join(words[:300])), list)  # truncated to 64 pieces, not a crash


@pytest.mark.parametrize("precision,kernel", [("bf16", "lrl_eager"), ("fp32", "sdpa")])
def test_cpu_training_uses_fast_dropout_and_saves_a_standard_folder(ug, encoder, tmp_path, monkeypatch,
                                                                    precision, kernel):
    """On CPU the tagger trains with lrl's dropout (and eager attention in bf16, whose fused
    backward is slow), like pretraining; the saved folder names no kernel of lrl's."""
    import torch
    from transformers import AutoModelForTokenClassification

    import lrl.train.tagger as tagger_mod
    from lrl.train.attention import set_attention
    from lrl.train.fast_dropout import FastDropout

    seen = {}

    def spy(model, *args):
        used = set_attention(model, *args)
        seen["dropout"] = {type(m) for m in model.modules() if isinstance(m, torch.nn.Dropout)}
        return used

    monkeypatch.setattr(tagger_mod, "set_attention", spy)
    train, dev = ug
    res = tagger_mod.train_tagger(_cfg(max_steps=2, eval_every=2, precision=precision, dropout=0.1),
                                  encoder, train, dev, seed=0, out_dir=str(tmp_path / "m"))
    assert res.info["attention"] == kernel and seen["dropout"] == {FastDropout}
    assert json.loads((tmp_path / "m/config.json").read_text()).get("_attn_implementation") in (None, "sdpa", "eager")
    model = AutoModelForTokenClassification.from_pretrained(res.model_dir)
    assert model.config._attn_implementation != "lrl_eager"
    assert {type(m) for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {torch.nn.Dropout}
    if precision == "bf16":  # finetune.attention chooses another kernel
        res = tagger_mod.train_tagger(_cfg(max_steps=1, eval_every=1, precision=precision, attention="sdpa"),
                                      encoder, train, dev, seed=0)
        assert res.info["attention"] == "sdpa"


def test_few_shot_reports_original_sentences_apart_from_generated_ones(ug, encoder):
    """``few_shot: k`` is k original sentences per language, plus the rows generated from them; the
    run reported only the sum, so k=5 with augmentation read as 10 sentences "used"."""
    from lrl.data.schema import ner_table
    from lrl.train.tagger import train_tagger

    train, dev = ug
    rows = [{**r, "op": "orig"} for r in train.to_pylist()]
    rows += [{**r, "id": f"aug:{r['id']}", "op": "swap", "parent_id": r["id"]} for r in train.to_pylist()]
    mixed = ner_table(rows)
    res = train_tagger(_cfg(max_steps=1, eval_every=1, few_shot=5), encoder, mixed, dev, seed=0)
    assert res.info["train_rows_per_lang"] == {"ug": 10}
    assert res.info["train_orig_rows_per_lang"] == {"ug": 5}


def test_summary_of_one_seed_claims_no_sd(capsys):
    """One seed has no spread: the summary printed "± 0.0" where the report and the card say "—"."""
    from lrl.train.finetune import _print_summary

    _print_summary("out", {"ug": {"mean": 0.5, "sd": 0.0}}, 1)
    _print_summary("out", {"ug": {"mean": 0.5, "sd": 0.02}}, 3)
    lines = capsys.readouterr().out.splitlines()
    assert "±" not in lines[1] and "one seed" in lines[1]
    assert lines[1].endswith("dev F1 50.0 (one seed)") and lines[3].endswith("dev F1 50.0 ± 2.0 over 3 seeds")


def test_each_evaluation_of_a_stage_run_is_printed_as_it_happens(ug, encoder, capsys):
    """The finetune stage said nothing until every run had finished (minutes for a real encoder)."""
    from lrl.train.finetune import _train_task, progress_line
    from lrl.train.finetune_data import label_list

    entry = {"step": 60, "epoch": 2.0, "train_loss": 0.41234, "dev_f1": 0.6123, "lr": 1e-4, "time_s": 12.4}
    assert progress_line("ug", 1, entry) == "finetune ug seed 1: step 60 (epoch 2.00)  loss 0.4123  dev F1 61.2  [12 s]"
    assert progress_line("ug", 1, {**entry, "total_steps": 90}).startswith("finetune ug seed 1: step 60/90 (epoch 2.00)")
    train, dev = ug
    row, _ = _train_task(_cfg(max_steps=2, eval_every=1, save_model=False), encoder, train, dev, 0,
                         label_list([train, dev]), "ug")
    out = capsys.readouterr().out
    assert [line.split(" (")[0] for line in out.splitlines() if line.startswith("finetune ug")] == [
        "finetune ug seed 0: step 1/2", "finetune ug seed 0: step 2/2"]
    assert len(row["history"]) == 2
