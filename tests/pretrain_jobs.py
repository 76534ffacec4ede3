"""Shared by the pretraining tests: a tiny two-language corpus (ug, wo) with documents, a job file
around it, and the checks every finished pretraining folder must pass."""

import json
import math
from pathlib import Path

import yaml

UG = ["مالاي ئېيىقى بىر خىل ھايۋان بولۇپ ئاسىيادا ياشايدۇ", "ئۇيغۇرچە ۋىكىپىدىيە ماقالىسى يېزىلدى",
      "بۇ شەھەر دۆلەتنىڭ پايتەختى ۋە ئەڭ چوڭ شەھىرى"]
WO = ["Wolof làkk la ci Senegaal ak Gàmbi", "Dakar mooy péeyu Senegaal", "Xale yi dem nañu lekool ci suba"]


def _corpus(tmp_path: Path) -> Path:
    for lang, lines in (("ug", UG), ("wo", WO)):
        body = []
        for d in range(12):
            body.append(f"# doc {lang}-{d}")
            body += [f"{line} {d}" for line in lines] * 2
        (tmp_path / f"{lang}.txt").write_text("\n".join(body) + "\n", encoding="utf-8")
    return tmp_path


def _job(tmp_path: Path, pretrain: dict, conllu: str | None = None) -> Path:
    root = _corpus(tmp_path)
    p = {"steps": 6, "batch_size": 4, "seq_len": 32, "report_every": 2, "checkpoint_every": 3,
         "heldout_fraction": 0.1, "alpha": 0.3, "max_failures": 1, **pretrain}
    if conllu:
        p["aux"] = {"conllu": [conllu], "lang": "ug", "column": "xpos", "every": 3}
    job = {"name": "pulse", "seed": 1, "data": {"root": str(root), "text": [
        {"path": "ug.txt", "lang": "ug"}, {"path": "wo.txt", "lang": "wo"}]},
           "output": {"root": str(tmp_path / "runs")},
           "tokenizer": {"vocab_size": 150, "min_frequency": 1, "eval_lines": 5},
           "model": {"preset": "micro", "max_length": 32}, "pretrain": p}
    f = tmp_path / "job.yaml"
    f.write_text(yaml.safe_dump(job, allow_unicode=True), encoding="utf-8")
    return f


def _check_output(path: str) -> dict:
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.convert_tokens_to_ids("[ug]") != tok.unk_token_id
    assert model.get_input_embeddings().weight.shape[0] == len(tok)
    assert (Path(path) / "model.safetensors").is_file()
    m = json.loads((Path(path) / "metrics.json").read_text())
    assert all(math.isfinite(m[f"ppl_{lang}"]) and m[f"ppl_{lang}"] > 1 for lang in ("ug", "wo"))
    assert m["tokens_per_s"] > 0 and 0 < m["mfu"] < 1
    assert 0 < m["input_share"] < 1  # getting and masking batches took some, not all, of the loop
    assert set(m["stream_mixture"]) == {"ug", "wo"} and set(m["target_mixture"]) == {"ug", "wo"}
    # the time outside the loop, from the driver's and rank 0's clocks (pretrain.phases)
    assert set(m["phases_s"]) == {"prepare_s", "workers_s", "setup_s", "first_step_s", "finish_s"}
    assert all(v >= 0 for v in m["phases_s"].values()), m["phases_s"]
    return m


def _bf16_share(path) -> float:
    """Share of the values in a safetensors file that bf16 represents exactly."""
    import torch
    from safetensors.torch import load_file

    w = load_file(str(path))
    exact = sum(int((v.to(torch.bfloat16).float() == v).sum()) for v in w.values())
    return exact / sum(v.numel() for v in w.values())
