"""Dev span F1 of fine-tuned taggers on WikiANN ug/wo, mean ± sd over seeds, next to a baseline
measured in the same run.

Baseline (same data, same run): a lexicon tagger that gives every token its most frequent
training tag (unknown tokens ``O``, result repaired to IOB2). Rows: a small encoder trained from
scratch (no pretraining) and, when ``--pretrained`` names an encoder folder (e.g. this project's
pretrain output), that encoder; with ``--generated`` (a generate output) also the augmented mix.
Each on the full training split and on a 100-sentence few-shot split.

    python benchmarks/finetune_wikiann.py --data ../shared/data --langs ug wo --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path


def lexicon_baseline(train, dev) -> float:
    from lrl.data.bio import repair_bio
    from lrl.evaluate.metrics import span_scores

    counts: dict[str, Counter] = defaultdict(Counter)
    for toks, tags in zip(train.column("tokens").to_pylist(), train.column("tags").to_pylist()):
        for t, g in zip(toks, tags):
            counts[t][g] += 1
    pred = [repair_bio([counts[t].most_common(1)[0][0] if t in counts else "O" for t in toks])
            for toks in dev.column("tokens").to_pylist()]
    return span_scores(dev.column("tags").to_pylist(), pred)["f1"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data", help="shared data root")
    ap.add_argument("--langs", nargs="+", default=["ug", "wo"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--sizes", nargs="+", default=["full", "100"], help="'full' or a sentence count")
    ap.add_argument("--epochs", type=float, default=8.0, help="epochs on the full split")
    ap.add_argument("--few-epochs", type=float, default=40.0, help="epochs on a few-shot split")
    ap.add_argument("--evals", type=int, default=4, help="dev evaluations per run (model selection)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--pretrained", help="encoder folder to fine-tune as well (e.g. a pretrain output)")
    ap.add_argument("--generated", help="generate output folder: adds the augmented mix (aug_ratio 1)")
    ap.add_argument("--out", help="write all results as JSON here")
    args = ap.parse_args()

    import pyarrow.compute as pc
    import torch

    from lrl.data.readers import read_conll
    from lrl.evaluate.metrics import format_mean_sd, mean_sd
    from lrl.train.finetune_config import FinetuneConfig
    from lrl.train.finetune_scratch import build_scratch_encoder
    from lrl.train.tagger import train_tagger

    torch.set_num_threads(2)
    root = Path(args.data)
    rows, t_all = [], time.time()
    for lang in args.langs:
        train = read_conll(str(root / f"wikiann/{lang}/train"), lang, "train").table
        dev = read_conll(str(root / f"wikiann/{lang}/dev"), lang, "dev").table
        gen = None
        if args.generated:
            from lrl.tune.splits import _read_generated

            g = _read_generated(args.generated)
            gen = g.filter(pc.equal(g.column("lang"), lang))
        with tempfile.TemporaryDirectory() as tmp:
            scratch = build_scratch_encoder(tmp, train.column("tokens").to_pylist(), [lang], vocab_size=4000,
                                            hidden=args.hidden, layers=args.layers, heads=2)
            encoders = [("scratch", scratch, None)]
            if args.pretrained:
                encoders.append(("pretrained", args.pretrained, None))
                if gen is not None:
                    encoders.append(("pretrained+aug", args.pretrained, gen))
            elif gen is not None:
                encoders.append(("scratch+aug", scratch, gen))
            for size in args.sizes:
                k = None if size == "full" else int(size)
                base = mean_sd([lexicon_baseline(_few(train, k, s), dev) for s in args.seeds])
                rows.append({"lang": lang, "size": size, "model": "lexicon baseline", "f1": base, "time_s": 0.0})
                print(f"{lang} {size:>4} lexicon baseline   {format_mean_sd(base)}", flush=True)
                for name, path, extra in encoders:
                    data = train if extra is None else _concat(train, extra)
                    cfg = FinetuneConfig(epochs=args.epochs if k is None else args.few_epochs, batch_size=32,
                                         lr=args.lr, few_shot=k, aug_ratio=None if extra is None else 1.0,
                                         max_length=128, threads=2, schedule={"type": "linear"})
                    n_sent = train.num_rows if k is None else k * (2 if extra is not None else 1)
                    steps = int(cfg.epochs * -(-n_sent // cfg.batch_size))
                    cfg = cfg.model_copy(update={"eval_every": max(1, steps // args.evals)})
                    t0, f1s = time.time(), []
                    for seed in args.seeds:
                        f1s.append(train_tagger(cfg, path, data, dev, seed=seed).dev_f1)
                    st = mean_sd(f1s)
                    secs = (time.time() - t0) / len(args.seeds)
                    rows.append({"lang": lang, "size": size, "model": name, "f1": st, "runs": f1s, "time_s": secs})
                    ratio = st["mean"] / base["mean"] if base["mean"] else float("nan")
                    print(f"{lang} {size:>4} {name:<18} {format_mean_sd(st)}  ({ratio:.2f}x baseline, "
                          f"{secs:.0f} s/run)", flush=True)
    print(f"total {time.time() - t_all:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


def _few(table, k, seed):
    from lrl.train.finetune_data import few_shot

    return table if k is None else few_shot(table, k, seed)


def _concat(train, gen):
    import pyarrow as pa

    return pa.concat_tables([train, gen.filter(_not_orig(gen))])


def _not_orig(t):
    import pyarrow.compute as pc

    from lrl.train.finetune_data import is_orig

    return pc.invert(is_orig(t))


if __name__ == "__main__":
    sys.exit(main())
