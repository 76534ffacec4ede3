"""The pretraining loop's logged throughput with the auxiliary tagging task on, run in-process (a
stand-in for Ray Train's worker context, one worker) on a tiny model, real UD Uyghur XPOS and
packed sequences of real Uyghur and Wolof text."""

from __future__ import annotations

import types

import numpy as np
import pytest

UD_SENTENCES = 48


@pytest.fixture
def aux_run(tmp_path, data_root, monkeypatch):
    """Run ``train_loop`` with aux every 3rd step; returns (final metrics, loop config, reports)."""
    import pyarrow as pa
    import ray.train
    import torch
    from pretrain_jobs import WO
    from transformers import BertConfig, BertForMaskedLM

    from lrl.data.conllu import read_conllu, tag_set
    from lrl.model.build import model_flops_per_token
    from lrl.model.config import TokenizerConfig
    from lrl.model.tokenizer import train_tokenizer
    from lrl.train.pretrain_aux import tagging_arrays
    from lrl.train.pretrain_config import PretrainConfig
    from lrl.train.pretrain_data import pack_local, tag_id
    from lrl.train.pretrain_loop import train_loop

    sents = list(read_conllu(str(data_root / "ud" / "ug" / "dev.conllu")))[:UD_SENTENCES]
    ug = [" ".join(s.words) for s in sents]
    tok = train_tokenizer({"ug": ug, "wo": WO * 10}, TokenizerConfig(vocab_size=300, min_frequency=1))
    tok.save_pretrained(tmp_path / "tok")
    seq = 32
    BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=seq)).save_pretrained(tmp_path / "model")
    cfg = PretrainConfig(engine="torch", precision="fp32", steps=6, batch_size=4, seq_len=seq, report_every=2,
                         checkpoint_every=100, eval_every=3, aux={"conllu": ["x"], "lang": "ug", "every": 3})
    langs = ["ug", "wo"]
    table = pa.table({"text": ug + WO * 60, "lang": ["ug"] * len(ug) + ["wo"] * len(WO) * 60})
    packed = pack_local(table, str(tmp_path / "tok"), seq, langs)
    order = np.random.default_rng(0).permutation(sum(len(packed[x]["lang_id"]) for x in langs))
    stream = {k: np.concatenate([packed[x][k] for x in langs])[order] for k in packed["ug"]}
    labels = tag_set(sents, "xpos")
    aux = {**tagging_arrays(sents, "xpos", labels, tok, tag_id(tok, "ug"), seq), "labels_list": labels,
           "column": "xpos", "sentences": len(sents)}

    class Shard:  # Ray Data's shard as the loop reads it: micro batches of torch tensors
        def iter_torch_batches(self, batch_size, **kwargs):
            for at in range(0, len(stream["input_ids"]), batch_size):
                yield {k: torch.as_tensor(v[at: at + batch_size]) for k, v in stream.items()}

    reports: list[dict] = []
    context = types.SimpleNamespace(get_world_rank=lambda: 0, get_world_size=lambda: 1, get_local_rank=lambda: 0,
                                    get_local_world_size=lambda: 1)
    monkeypatch.setattr(ray.train, "get_context", lambda: context)
    monkeypatch.setattr(ray.train, "get_checkpoint", lambda: None)
    monkeypatch.setattr(ray.train, "get_dataset_shard", lambda name: Shard())
    monkeypatch.setattr(ray.train, "report", lambda metrics, checkpoint=None: reports.append(dict(metrics)))
    monkeypatch.setattr("lrl.train.pretrain_loop.worker_peak", lambda *a, **k: 1e9)
    config = {"cfg": cfg.model_dump(mode="json"), "seed": 3, "langs": langs, "use_gpu": False,
              "tokenizer_dir": str(tmp_path / "tok"), "model_dir": str(tmp_path / "model"),
              "heldout": {x: {k: v[:2] for k, v in packed[x].items()} for x in langs}, "aux": aux,
              "flops_per_token": model_flops_per_token(BertConfig.from_pretrained(tmp_path / "model"), seq_len=seq,
                                                       lm_head_tokens=cfg.masking.rate),
              "lang_embedding": False}
    train_loop(config)
    assert len(stream["input_ids"]) > 16 and set(stream["lang_id"][:16]) == {0, 1}
    return reports[-1], {**config, "stream": stream}, reports


def _aux_tokens(config: dict) -> tuple[int, float]:
    """Non-pad tokens and FLOPs of the auxiliary steps (3 and 6), drawn as the loop draws them."""
    import torch
    from transformers import BertConfig

    from lrl.model.build import model_flops_per_token
    from lrl.train.pretrain_aux import as_tensor_batch
    from lrl.train.pretrain_mlm import step_generator

    aux, mconf = config["aux"], BertConfig.from_pretrained(config["model_dir"])
    tokens, flops = 0, 0.0
    for step in (3, 6):
        gen = step_generator(config["seed"], step, 0, 0)
        idx = torch.randint(len(aux["input_ids"]), (config["cfg"]["batch_size"],), generator=gen).numpy()
        batch = as_tensor_batch(aux, idx, 0, "cpu")
        n = int(batch["attention_mask"].sum())
        tokens += n
        # the encoder at the batch's cut width, forward + backward, and the d x tags head
        width = batch["input_ids"].shape[1]
        flops += n * (model_flops_per_token(mconf, seq_len=width, lm_head_tokens=0.0)
                      + 6 * mconf.hidden_size * len(aux["labels_list"]))
    return tokens, flops


def test_tokens_per_s_and_mfu_count_the_auxiliary_steps(aux_run):
    """With ``aux.every=3`` the loop timed the auxiliary steps but counted only the MLM steps'
    tokens and FLOPs, so tokens/s and MFU understated the trained throughput (a run with the
    auxiliary task looked like slower hardware). Every step now counts its own tokens and FLOPs."""
    final, config, _ = aux_run
    mlm_tokens = sum(v["tokens"] for v in final["stream_mixture"].values())
    aux_tokens, aux_flops = _aux_tokens(config)
    assert aux_tokens > 0 and final["aux_loss"] is not None
    assert final["trained_tokens"] == {"mlm": mlm_tokens, "aux": aux_tokens}
    # FLOPs per counted token: the MLM and aux steps' FLOPs over their tokens (the old code's MFU
    # was MLM tokens x MLM FLOPs a token over all the time: this ratio was the MLM figure alone)
    flops = mlm_tokens * config["flops_per_token"] + aux_flops
    assert final["mfu"] * 1e9 / final["tokens_per_s"] == pytest.approx(flops / (mlm_tokens + aux_tokens), rel=1e-6)
    # tokens/s is every trained token over the loop's time: the MLM steps' plus the aux steps'
    loop_s = (mlm_tokens + aux_tokens) / final["tokens_per_s"]
    aux_s = final["aux_time_share"] * loop_s
    assert 0 < final["aux_time_share"] < 1
    assert final["mlm_tokens_per_s"] == pytest.approx(mlm_tokens / (loop_s - aux_s), rel=1e-6)
    assert final["aux_tokens_per_s"] == pytest.approx(aux_tokens / aux_s, rel=1e-6)


def test_mixture_and_heldout_perplexity_stay_mlm_only_with_aux_on(aux_run):
    """The realised mixture counts the stream's sequences only (the auxiliary batches are treebank
    sentences, not stream text), and every evaluation reports each language's perplexity."""
    final, config, reports = aux_run
    # the 4 MLM steps (1, 2, 4, 5) took the stream's first 16 sequences (the stand-in shard does
    # not shuffle); the aux steps took none
    stream = config["stream"]
    for i, lang in enumerate(config["langs"]):
        mine = stream["lang_id"][:16] == i
        assert final["stream_mixture"][lang]["sequences"] == int(mine.sum())
        assert final["stream_mixture"][lang]["tokens"] == int(stream["n_tokens"][:16][mine].sum())
    assert all(np.isfinite(final[f"ppl_{x}"]) and final[f"ppl_{x}"] > 1 for x in ("ug", "wo"))
    assert [r["step"] for r in reports] == [2, 4, 6]  # two reports, then the final one
    assert reports[0]["aux_tokens_per_s"] is None and reports[0]["aux_time_share"] == 0  # no aux step yet


def test_checkpoint_of_an_older_version_resumes_with_its_flops():
    """Checkpoints written before the totals held FLOPs have MLM ``tokens`` and ``loop_s`` only:
    resumed as they were, the earlier attempts counted 0 FLOPs in the run's MFU."""
    from lrl.train.pretrain_metrics import RUN_TOTALS, run_totals, throughput_metrics, totals_from_checkpoint

    old = {"step": 4, "tokens": 1000.0, "loop_s": 2.0, "input_s": 0.5, "train_s": 3.0, "epoch_sequences": None}
    state = {**RUN_TOTALS, **totals_from_checkpoint(old, 50.0)}
    tot = run_totals(state, {"tokens": 1000.0, "loop_s": 2.0, "input_s": 0.5, "flops": 50_000.0,
                             "mlm_tokens": 1000.0, "mlm_s": 2.0, "aux_tokens": 0.0, "aux_s": 0.0}, 3.0, None)
    m = throughput_metrics(tot, 1, 100_000.0)
    assert m["tokens_per_s"] == 500.0 and m["mfu"] == pytest.approx(0.25)  # 500 tok/s x 50 FLOPs / 1e5
    assert m["mlm_tokens_per_s"] == 500.0 and m["aux_tokens_per_s"] is None and m["aux_time_share"] == 0
    new = {**old, "flops": 7.0}
    assert totals_from_checkpoint(new, 50.0) is new  # this version's checkpoints are taken as they are
