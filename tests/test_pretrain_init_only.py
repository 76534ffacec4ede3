"""``pretrain.steps: 0``: the pretrain stage writes the starting model as built (an extended
checkpoint's grown embeddings, or a fresh preset) with its held-out perplexity and a card saying it
was not trained, so that fine-tuning can start from an extended checkpoint without masked-LM
training (jobs/minilm_yo.yaml: that beat 927 steps of it on WikiANN yo). No Ray Train worker starts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from tiny_corpora import EN

from lrl.cli import main


def _encoder_only(path: Path):
    """A MiniLM-shaped checkpoint (``BertModel`` weights, no masked-LM head) with its English tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    from lrl.model.config import TokenizerConfig
    from lrl.model.tokenizer import train_tokenizer

    base = train_tokenizer({"en": EN}, TokenizerConfig(vocab_size=80, min_frequency=1))
    torch.manual_seed(0)
    enc = BertModel(BertConfig(vocab_size=len(base), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=64))
    enc.save_pretrained(path)
    base.save_pretrained(path)
    return enc, base


def _job(tmp_path: Path, ckpt: Path, data_root: Path, **pretrain) -> Path:
    # the first 300 lines of Uyghur Wikipedia (its documents: the held-out slice is whole ones)
    lines = (data_root / "mono" / "ug.txt").read_text(encoding="utf-8").splitlines()[:300]
    (tmp_path / "ug.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    job = {"name": "init-only", "seed": 3,
           "data": {"root": str(tmp_path), "text": [{"path": "ug.txt", "lang": "ug"}]},
           "output": {"root": str(tmp_path / "runs")},
           "tokenizer": {"mode": "extend", "base": str(ckpt), "vocab_size": 60, "min_frequency": 1},
           "model": {"checkpoint": str(ckpt), "max_length": 64},
           "pretrain": {"steps": 0, "seq_len": 32, "batch_size": 4, "heldout_fraction": 0.2, **pretrain}}
    f = tmp_path / "job.yaml"
    f.write_text(yaml.safe_dump(job, allow_unicode=True), encoding="utf-8")
    return f


def test_steps_0_writes_the_extended_checkpoint_untrained_with_its_perplexity(tmp_path, data_root, monkeypatch,
                                                                             capsys):
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    import lrl.runtime

    enc, base = _encoder_only(tmp_path / "ckpt")
    job = _job(tmp_path, tmp_path / "ckpt", data_root)

    def no_ray(*a, **k):
        raise AssertionError("steps 0 started Ray")

    monkeypatch.setattr(lrl.runtime, "init_ray", no_ray)  # nothing here needs Ray (nor Ray Train)
    assert main(["pretrain", str(job)]) == 0
    out = capsys.readouterr().out
    assert "steps 0: the starting model as built, not trained" in out
    (folder,) = (tmp_path / "runs").glob("pretrain-*")
    assert not list((tmp_path / "runs").glob(".pretrain-*")), "no run folder of checkpoints is left"
    model = AutoModelForMaskedLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    assert len(tok) > len(base) and model.get_input_embeddings().weight.shape[0] == len(tok)
    # the checkpoint's encoder as it was (not trained), its old rows unchanged, the new rows grown
    assert torch.equal(model.bert.encoder.layer[1].output.dense.weight, enc.encoder.layer[1].output.dense.weight)
    old = enc.get_input_embeddings().weight
    assert torch.equal(model.get_input_embeddings().weight[: len(base)], old)
    m = json.loads((folder / "metrics.json").read_text())
    man = json.loads((folder / "manifest.json").read_text())
    assert m["trained"] is False and m["step"] == 0 and man["steps"] == 0 and man["trained"] is False
    assert m["heldout_rows"]["ug"] > 0 and math.isfinite(m["ppl_ug"]) and m["ppl_ug"] > 1
    assert man["ppl"] == {"ug": m["ppl_ug"]} and f"held-out perplexity {m['ppl_ug']:.2f}" in out
    assert man["started_from"]["checkpoint"] == str(tmp_path / "ckpt")
    assert man["started_from"]["new_embedding_rows"] == len(tok) - len(base)
    card = (folder / "README.md").read_text()
    assert "not trained by lrl (`pretrain.steps: 0`)" in card and "grown for the tokenizer's new pieces" in card
    assert "Each training sequence was" not in card and "Nothing was trained" in card
    # the report says so, without a language mixture that was never sampled
    from lrl.evaluate import report_data
    from lrl.evaluate.report import _pretrain_section

    html = _pretrain_section(report_data.pretrain_metrics(str(folder)))
    assert "Not trained (<code>pretrain.steps: 0</code>)" in html and "Language mixture" not in html
    assert "ppl_ug" in html
    # a second call reuses the folder
    assert main(["pretrain", str(job)]) == 0
    assert [folder] == list((tmp_path / "runs").glob("pretrain-*"))


def test_steps_0_weights_are_the_training_runs_starting_point(tmp_path, data_root):
    """The weights are those a training run of the same seed starts from (``pretrain._init_model``),
    and another seed gives other ones (the new rows and the fresh head are drawn)."""
    import torch
    from transformers import AutoModelForMaskedLM

    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain import _init_model, run_pretrain, stage_output

    _encoder_only(tmp_path / "ckpt")
    cfg = load_job(str(_job(tmp_path, tmp_path / "ckpt", data_root)))
    folder = Path(run_pretrain(StageContext(cfg)))
    _, tok_dir, table = stage_output(StageContext(cfg))
    start = _init_model(cfg, tok_dir, ["ug"], str(tmp_path / "init"))
    a, b = AutoModelForMaskedLM.from_pretrained(folder), AutoModelForMaskedLM.from_pretrained(start)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    # a different seed draws other new rows and another fresh head: another folder, other weights
    other = Path(run_pretrain(StageContext(cfg.model_copy(update={"seed": 4}))))
    assert other != folder
    c = AutoModelForMaskedLM.from_pretrained(other).state_dict()
    assert not all(torch.equal(sa[k], c[k]) for k in sa)


@pytest.mark.parametrize("extra, words", [({"model_path": "x"}, "fine-tune model_path directly"),
                                          ({"aux": {"conllu": ["a.conllu"], "lang": "ug"}}, "aux.conllu"),
                                          ({"fail_at_step": 2}, "fail_at_step")])
def test_steps_0_with_a_setting_that_needs_training_is_an_error(extra, words):
    from pydantic import ValidationError

    from lrl.train.pretrain_config import PretrainConfig

    with pytest.raises(ValidationError, match=words):
        PretrainConfig(steps=0, **extra)
    PretrainConfig(steps=1, **extra)  # fine with training


def test_steps_0_plans_no_workers():
    """The plan (``lrl run --dry-run``, and a run's first lines) warned that pretraining's workers
    "can never be placed" and the stage "would stop with an error", though steps 0 starts none."""
    from lrl.job import load_job
    from lrl.pipeline.preflight import check_pretrain_resources

    big = ["ray.num_cpus=2", "pretrain.num_workers=3"]
    assert "can never be placed" in check_pretrain_resources(load_job(None, big), ["pretrain"])[0]
    assert check_pretrain_resources(load_job(None, [*big, "pretrain.steps=0"]), ["pretrain"]) == [
        "pretrain: steps 0: no workers start (the starting model is written as built)"]


def test_steps_0_from_a_preset_is_a_random_baseline_and_needs_no_ray_train(tmp_path, monkeypatch):
    """Built from a preset (no checkpoint) every weight is random, which the card says (it said
    only the new pieces and tags were untrained); and Ray Train's version does not matter to a
    run that starts none (RAY_TRAIN_V2_ENABLED=0 was refused before the steps-0 path)."""
    from pretrain_jobs import _job

    from lrl.evaluate.pretrain_card import RANDOM_LIMITS
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain import run_pretrain

    monkeypatch.setenv("RAY_TRAIN_V2_ENABLED", "0")
    folder = Path(run_pretrain(StageContext(load_job(str(_job(tmp_path, {"steps": 0}))))))
    card = (folder / "README.md").read_text()
    assert RANDOM_LIMITS in card and "freshly initialised weights, a baseline only" in card
    assert "new pieces' embeddings" not in card
