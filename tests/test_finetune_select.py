"""Joint-mode model selection (``finetune.select_by``): the pooled dev F1 against the mean of the
per-language ones, on WikiANN slices where Swahili holds most dev entities (as in the full dev
sets: 1209 of the 1994 entities of the 7 languages are sw)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")


def _read(data_root, lang: str, split: str, n: int):
    from lrl.data.readers import read_conll

    return read_conll(str(data_root / f"wikiann/{lang}/{split}"), lang, split).table.slice(0, n)


@pytest.fixture(scope="module")
def sw_ug(data_root):
    """(train, dev) of sw and ug: 40 + 40 train sentences, 60 sw and 10 ug dev sentences."""
    import pyarrow as pa

    train = pa.concat_tables([_read(data_root, "sw", "train", 40), _read(data_root, "ug", "train", 40)])
    dev = pa.concat_tables([_read(data_root, "sw", "dev", 60), _read(data_root, "ug", "dev", 10)])
    return train, dev


@pytest.fixture(scope="module")
def encoder(sw_ug, tmp_path_factory):
    from lrl.train.finetune_scratch import build_scratch_encoder

    train = sw_ug[0]
    return build_scratch_encoder(tmp_path_factory.mktemp("enc"), train.column("tokens").to_pylist(), ["sw", "ug"],
                                 vocab_size=400, hidden=32, layers=2)


def _cfg(**kw):
    from lrl.train.finetune_config import FinetuneConfig

    base = {"mode": "joint", "max_steps": 3, "eval_every": 1, "batch_size": 16, "lr": 1e-3, "max_length": 64,
            "schedule": {"type": "constant", "warmup_ratio": 0.0}}
    return FinetuneConfig(**{**base, **kw})


def _entities(tags: list[list[str]]) -> int:
    return sum(t.startswith("B-") for s in tags for t in s)


def _scripted_eval(monkeypatch, dev):
    """Replace the dev prediction of ``train_tagger`` by three scripted evaluations (the model's
    own predictions would make which step wins a matter of chance):

    1. sw all right, ug all missed: pooled F1 high (sw dominates), language mean 0.5;
    2. sw right on its first 30 sentences only, ug all right: pooled lower, language mean higher;
    3. nothing found: both 0.

    Returns the list that receives the model's weights at each evaluation."""
    import lrl.train.tagger as tagger_mod
    from lrl.train.align import AlignStats

    gold, langs = dev.column("tags").to_pylist(), dev.column("lang").to_pylist()
    none = [["O"] * len(g) for g in gold]
    sw_rows = [i for i, lang in enumerate(langs) if lang == "sw"]
    half = set(sw_rows[:30])
    script = [
        [g if lang == "sw" else n for g, n, lang in zip(gold, none, langs)],
        [g if (lang == "ug" or i in half) else n for i, (g, n, lang) in enumerate(zip(gold, none, langs))],
        none,
    ]
    states: list[dict] = []

    def fake_predict(tagger, sents, dev_langs, *args, **kwargs):
        assert dev_langs == langs
        states.append({k: v.detach().clone() for k, v in tagger.model.state_dict().items()})
        return script[len(states) - 1], AlignStats()

    monkeypatch.setattr(tagger_mod, "predict_tags", fake_predict)
    return states


def test_the_two_criteria_keep_different_checkpoints(sw_ug, encoder, tmp_path, monkeypatch):
    """Pooled selection kept the evaluation where sw was right and ug entirely wrong (ug's F1 0);
    ``language_mean`` keeps the one where both languages are found, and saves that step's weights."""
    from safetensors.torch import load_file

    from lrl.evaluate.metrics import scores_by_lang
    from lrl.train.tagger import train_tagger

    train, dev = sw_ug
    gold, langs = dev.column("tags").to_pylist(), dev.column("lang").to_pylist()
    n_sw = _entities([g for g, lang in zip(gold, langs) if lang == "sw"])
    n_ug = _entities([g for g, lang in zip(gold, langs) if lang == "ug"])
    assert n_sw > 4 * n_ug > 0  # sw dominates the pooled figure, as on the full WikiANN dev sets

    kept = {}
    for select_by in ("pooled", "language_mean"):
        states = _scripted_eval(monkeypatch, dev)
        out = tmp_path / select_by
        res = train_tagger(_cfg(select_by=select_by), encoder, train, dev, seed=0, out_dir=str(out))
        assert len(states) == 3 and [h["step"] for h in res.history] == [1, 2, 3]
        kept[select_by] = res
        # The saved model holds the weights of the evaluation it was kept for.
        saved = load_file(str(out / "model.safetensors"))
        step_state = states[res.info["best_step"] - 1]
        shared = [k for k in saved if k in step_state]
        assert shared and all((saved[k] == step_state[k]).all() for k in shared)
        others = [s for i, s in enumerate(states) if i != res.info["best_step"] - 1]
        assert all(any(not (saved[k] == s[k]).all() for k in shared) for s in others)
        meta = json.loads((out / "lrl_tagger.json").read_text())
        assert meta["select_by"] == select_by and meta["dev_f1"] == pytest.approx(res.dev_f1)

    pooled, mean = kept["pooled"], kept["language_mean"]
    assert pooled.info["best_step"] == 1 and mean.info["best_step"] == 2
    # Both runs saw the same evaluations: the history shows both figures in joint mode.
    for h in pooled.history + mean.history:
        assert set(h) == {"step", "epoch", "train_loss", "dev_f1", "dev_f1_lang_mean", "lr", "time_s"}
    h1, h2, _ = mean.history
    assert h1["dev_f1"] > h2["dev_f1"] and h1["dev_f1_lang_mean"] < h2["dev_f1_lang_mean"]
    assert h1["dev_f1_lang_mean"] == pytest.approx(0.5)
    # What each run reports: the pooled F1 and the per-language F1s of the kept evaluation, and
    # the figure that kept it.
    assert pooled.per_lang == {"sw": 1.0, "ug": 0.0} and mean.per_lang["ug"] == 1.0 and mean.per_lang["sw"] < 1
    assert pooled.info["select_by"] == "pooled" and pooled.info["select_f1"] == pytest.approx(h1["dev_f1"])
    assert mean.info["select_by"] == "language_mean" and mean.info["select_f1"] == pytest.approx(h2["dev_f1_lang_mean"])
    assert mean.dev_f1 == pytest.approx(h2["dev_f1"])
    half_pred = [g if (lang == "ug" or i < 30) else ["O"] * len(g) for i, (g, lang) in enumerate(zip(gold, langs))]
    assert mean.dev_f1 == pytest.approx(scores_by_lang(gold, half_pred, langs)["f1"])


def test_early_stopping_follows_the_criterion(sw_ug, encoder, monkeypatch):
    """patience 1: the pooled figure drops at step 2 and the run stops there; the language mean
    rises at step 2, so that run goes on to its last step."""
    from lrl.train.tagger import train_tagger

    train, dev = sw_ug
    _scripted_eval(monkeypatch, dev)
    pooled = train_tagger(_cfg(patience=1), encoder, train, dev, seed=0)
    assert pooled.info["stopped_early"] and pooled.info["steps"] == 2 and pooled.info["best_step"] == 1
    _scripted_eval(monkeypatch, dev)
    mean = train_tagger(_cfg(patience=1, select_by="language_mean"), encoder, train, dev, seed=0)
    assert not mean.info["stopped_early"] and mean.info["steps"] == 3 and mean.info["best_step"] == 2


def test_one_language_both_criteria_are_the_same(sw_ug, encoder):
    """Per-language runs (and every Tune search) have one dev language: select_by changes nothing,
    and a pooled figure that differed from the one language's would be an error."""
    from lrl.train.tagger import selection_score, train_tagger

    train, dev = (t.filter([x == "ug" for x in t.column("lang").to_pylist()]) for t in sw_ug)
    runs = [train_tagger(_cfg(mode="per_language", max_steps=4, select_by=s), encoder, train, dev, seed=0)
            for s in ("pooled", "language_mean")]
    a, b = runs
    assert [h["dev_f1"] for h in a.history] == [h["dev_f1"] for h in b.history]
    assert all("dev_f1_lang_mean" not in h for h in a.history)  # one language: no second figure
    assert a.info["best_step"] == b.info["best_step"] and a.dev_f1 == b.dev_f1 == a.info["select_f1"] == b.info["select_f1"]
    assert a.per_lang == b.per_lang and set(a.per_lang) == {"ug"}
    bad = {"f1": 0.5, "per_lang": {"ug": {"f1": 0.4}}}
    with pytest.raises(AssertionError, match="one dev language"):
        selection_score(bad, "pooled")
    two = {"f1": 0.9, "per_lang": {"sw": {"f1": 1.0}, "ug": {"f1": 0.0}}}
    assert selection_score(two, "pooled") == 0.9 and selection_score(two, "language_mean") == 0.5


def test_best_seed_follows_the_criterion():
    """Among seeds, the saved model is the one with the best selection figure, not the best pooled
    F1 (which under language_mean would undo the choice made inside each run)."""
    from lrl.train.finetune import best_seed

    runs = [{"seed": 0, "dev_f1": 0.9, "info": {"select_f1": 0.5}},
            {"seed": 1, "dev_f1": 0.8, "info": {"select_f1": 0.7}},
            {"seed": 2, "dev_f1": 0.7, "info": {"select_f1": 0.7}}]
    assert best_seed(runs) == 1  # the first of a tie
    pooled = [{**r, "info": {"select_f1": r["dev_f1"]}} for r in runs]
    assert best_seed(pooled) == 0


def test_joint_stage_records_the_criterion(data_root, tmp_path, ray_session, capsys):
    """results.json and the manifest say which figure picked the joint model; every run says which
    figure kept its evaluation, and the saved seed is the best by it."""
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune

    sources = []
    for lang in ("sw", "ug"):
        for split, n in (("train", 40), ("dev", 15)):
            rows = _read(data_root, lang, split, n).to_pylist()
            text = "\n\n".join("\n".join(f"{t}\t{g}" for t, g in zip(r["tokens"], r["tags"])) for r in rows)
            (tmp_path / f"{lang}_{split}.conll").write_text(text + "\n", encoding="utf-8")
            sources.append(f"{{path: {lang}_{split}.conll, lang: {lang}, split: {split}}}")
    over = [f"data.root={tmp_path}", f"data.ner=[{', '.join(sources)}]", f"output.root={tmp_path / 'runs'}",
            "finetune.model=preset:tiny", "finetune.mode=joint", "finetune.select_by=language_mean",
            "finetune.max_steps=2", "finetune.eval_every=1", "finetune.max_length=64", "finetune.lr=0.001",
            "evaluate.seeds=[0, 1]"]
    path = Path(run_finetune(StageContext(load_job(None, over))))
    res = json.loads((path / "results.json").read_text())
    assert res["select_by"] == "language_mean"
    assert json.loads((path / "manifest.json").read_text())["select_by"] == "language_mean"
    group = res["groups"]["joint"]
    for run in group["runs"]:
        assert run["info"]["select_by"] == "language_mean"
        kept = next(h for h in run["history"] if h["step"] == run["info"]["best_step"])
        assert run["info"]["select_f1"] == pytest.approx(kept["dev_f1_lang_mean"])
        assert run["info"]["select_f1"] == pytest.approx(sum(run["per_lang"].values()) / 2)
        assert run["info"]["select_f1"] == max(h["dev_f1_lang_mean"] for h in run["history"])
    assert group["best_seed"] == max(group["runs"], key=lambda r: r["info"]["select_f1"])["seed"]
    meta = json.loads((path / "models/joint/lrl_tagger.json").read_text())
    assert meta["select_by"] == "language_mean" and meta["seed"] == group["best_seed"]
    # the summary gives the joint model's dev F1 per language too, not only the pooled figure
    dev = json.loads((path / "manifest.json").read_text())["dev_f1"]["joint"]
    assert set(dev["per_lang"]) == {"sw", "ug"}
    assert dev["per_lang"]["ug"]["mean"] == pytest.approx(group["summary"]["per_lang"]["ug"]["f1"]["mean"])
    out = capsys.readouterr().out
    assert f"    ug: dev F1 {100 * dev['per_lang']['ug']['mean']:.1f} ± " in out and "  joint: dev F1 " in out
