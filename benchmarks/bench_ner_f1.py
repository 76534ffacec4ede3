"""Dev span F1 on WikiANN ug and wo, mean ± sd over seeds, for four conditions and two training
sizes, next to the published (test-set) figures.

Conditions (each with the full training split and with 100 sentences, chosen with the seed):
  lexicon     no model: every token gets its most frequent training tag (unknown tokens ``O``),
              repaired to IOB2; a floor any trained tagger must clear (seconds per cell)
  scratch     a micro BERT (hidden 128, 3 layers) initialised at random, no pretraining: the baseline
  pretrained  the encoder folder given by --pretrained (an ``lrl pretrain`` output)
  augmented   the pretrained encoder (or scratch when --pretrained is absent; recorded in ``base``)
              trained on originals + rows made by lrl's NER-aware augmentation ops (mention
              replacement, label-wise token replacement), generated ONLY from the sentences of the
              cell (so the 100-sentence cell sees no entity names from the other 1,500)

Each cell (condition, lang, size, seed) is one ``train_tagger`` run; its result is appended to a
JSONL file as soon as it ends, and cells already in the file are skipped, so the script can be
stopped and resumed (``--budget-min`` stops starting new cells after that many minutes). Cells run
seed by seed (every cell gets seed 0 before any gets seed 1), and within a seed in the order of
``--conditions`` (scratch first: it is the baseline).

    python benchmarks/bench_ner_f1.py --data ../shared/data --budget-min 30
    python benchmarks/bench_ner_f1.py --table-only          # print the table of what ran
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

# MicroBERT paper, Table 3 (TEST split span F1; ours are DEV figures, see the printed note).
PUBLISHED = {"ug": {"mBERT": 78.40, "MicroBERT MLM": 81.36, "MicroBERT MLM+XPOS": 85.45, "word2vec": 86.37},
             "wo": {"mBERT": 83.79, "MicroBERT MLM": 83.92, "word2vec": 86.89}}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--langs", default="ug,wo")
    p.add_argument("--conditions", default="lexicon,scratch,pretrained,augmented")
    p.add_argument("--sizes", default="full,100")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--pretrained", default=None, help="encoder folder from lrl pretrain (HF, with tokenizer)")
    p.add_argument("--epochs", type=float, default=20.0, help="epochs on the full split")
    p.add_argument("--steps-100", type=int, default=300, help="optimizer steps for the 100-sentence cells")
    p.add_argument("--lr", type=float, default=1e-3, help="peak LR for scratch (pretrained uses --lr-pre)")
    p.add_argument("--lr-pre", type=float, default=5e-4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--budget-min", type=float, default=None, help="start no new cell after this many minutes")
    p.add_argument("--out", default="benchmarks/out/ner_f1.jsonl")
    p.add_argument("--work", default="benchmarks/out/ner_f1_work", help="scratch encoder cache")
    p.add_argument("--table-only", action="store_true")
    return p.parse_args()


CONDITIONS = ("lexicon", "scratch", "pretrained", "augmented")


def hp(args: argparse.Namespace, cond: str, size: str) -> dict:
    """The fine-tuning hyperparameters of a cell (part of its key: changing them re-runs it)."""
    if cond == "lexicon":
        return {}
    pre = cond != "scratch" and args.pretrained is not None
    out = {"lr": args.lr_pre if pre else args.lr, "batch_size": args.batch_size,
           "schedule": {"type": "linear", "warmup_ratio": 0.1}, "max_length": 128, "threads": args.threads}
    if size == "full":
        out["epochs"] = args.epochs
    else:
        out["max_steps"] = args.steps_100
        out["few_shot"] = None  # selection happens before augmentation, see run_cell
        out["eval_every"] = max(1, args.steps_100 // 10)
    return out


def key(row: dict) -> tuple:
    return (row["condition"], row["lang"], row["size"], row["seed"], json.dumps(row["hp"], sort_keys=True),
            row.get("base"))


def scratch_encoder(args: argparse.Namespace, lang: str, train) -> str:
    from lrl.train.finetune_scratch import build_scratch_encoder

    out = Path(args.work) / f"scratch-{lang}"
    if not (out / "config.json").is_file():
        build_scratch_encoder(out, train.column("tokens").to_pylist(), [lang], vocab_size=4000, hidden=128,
                              layers=3, heads=2, max_positions=256, seed=0)
    return str(out)


def augment(table, seed: int):
    """Originals + one row each from mention replacement and label-wise token replacement."""
    from lrl.generate.augment import AugmentBatch, build_resources
    from lrl.generate.config import AugmentConfig

    cfg = AugmentConfig(ops=["mention", "labelwise"], copies=1)
    return AugmentBatch(cfg, build_resources(cfg, table), seed)(table)


def lexicon_f1(train, dev) -> float:
    """Dev span F1 of the lexicon tagger learned from ``train`` (see the module docstring)."""
    from collections import Counter, defaultdict

    from lrl.data.bio import repair_bio
    from lrl.evaluate.metrics import span_scores

    counts: dict[str, Counter] = defaultdict(Counter)
    for toks, tags in zip(train.column("tokens").to_pylist(), train.column("tags").to_pylist()):
        for t, g in zip(toks, tags):
            counts[t][g] += 1
    pred = [repair_bio([counts[t].most_common(1)[0][0] if t in counts else "O" for t in toks])
            for toks in dev.column("tokens").to_pylist()]
    return span_scores(dev.column("tags").to_pylist(), pred)["f1"]


def run_cell(args, cond: str, lang: str, size: str, seed: int, train, dev) -> dict:
    from lrl.job import load_job
    from lrl.train.finetune_data import few_shot
    from lrl.train.tagger import train_tagger

    if cond == "lexicon":
        t0 = time.time()
        cells_train = few_shot(train, 100, seed) if size == "100" else train
        return {"condition": cond, "lang": lang, "size": size, "seed": seed, "hp": {}, "base": "none",
                "model": None, "train_rows": cells_train.num_rows, "dev_f1": lexicon_f1(cells_train, dev),
                "time_s": round(time.time() - t0, 1), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "cmd": " ".join(sys.argv)}
    base = args.pretrained if (cond != "scratch" and args.pretrained) else scratch_encoder(args, lang, train)
    h = hp(args, cond, size)
    cells_train = few_shot(train, 100, seed) if size == "100" else train
    if cond == "augmented":
        cells_train = augment(cells_train, seed)
    over = [f"finetune.{k}={json.dumps(v)}" for k, v in h.items() if k != "schedule" and v is not None]
    over += [f"finetune.schedule.{k}={v}" for k, v in h["schedule"].items()]
    cfg = load_job(None, over).finetune
    t0 = time.time()
    res = train_tagger(cfg, base, cells_train, dev, seed=seed)
    return {"condition": cond, "lang": lang, "size": size, "seed": seed, "hp": h,
            "base": "pretrained" if base == args.pretrained else "scratch", "model": base,
            "train_rows": cells_train.num_rows, "dev_f1": res.dev_f1,
            "per_type": {t: v["f1"] for t, v in res.per_type.items()}, "steps": res.info.get("steps"),
            "best_step": res.info.get("best_step"), "time_s": round(time.time() - t0, 1),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "cmd": " ".join(sys.argv)}


def load_rows(path: str) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def mean_sd(vals: list[float]) -> tuple[float, float]:
    m = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else float("nan")
    return m, sd


def print_table(rows: list[dict], args: argparse.Namespace) -> None:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["lang"], r["size"], r["condition"], r["base"]), []).append(r)
    base = {(k[0], k[1]): mean_sd([r["dev_f1"] for r in v])[0] for k, v in groups.items() if k[2] == "scratch"}
    print("\nDEV span F1 (seqeval strict IOB2), mean ± sd over seeds; 'vs scratch' = difference in points "
          "from the scratch baseline of the same run/file")
    print(f"{'lang':<5}{'size':<6}{'condition':<12}{'encoder':<11}{'F1':>7}{'± sd':>7}{'n':>3}{'vs scratch':>12}"
          f"{'train s':>9}")
    for (lang, size, cond, enc), rs in sorted(groups.items()):
        m, sd = mean_sd([r["dev_f1"] for r in rs])
        ref = base.get((lang, size))
        diff = f"{100 * (m - ref):+.1f}" if ref is not None and cond != "scratch" else "—"
        secs = sum(r["time_s"] for r in rs) / len(rs)
        sd_s = "—" if math.isnan(sd) else f"{100 * sd:.1f}"
        print(f"{lang:<5}{size:<6}{cond:<12}{enc:<11}{100 * m:>7.1f}{sd_s:>7}{len(rs):>3}{diff:>12}{secs:>9.0f}")
    print("\nPublished (MicroBERT paper, Table 3) -- TEST split, full training data, not directly comparable:")
    for lang, figs in PUBLISHED.items():
        print(f"  {lang}: " + ", ".join(f"{k} {v:.2f}" for k, v in figs.items()))


def main() -> int:
    args = parse()
    rows = load_rows(args.out)
    if args.table_only:
        print_table(rows, args)
        return 0
    import torch

    from lrl.data.readers import read_conll

    torch.set_num_threads(args.threads)
    done = {key(r) for r in rows}
    t_start = time.time()
    data = {lang: (read_conll(f"{args.data}/wikiann/{lang}/train", lang).table,
                   read_conll(f"{args.data}/wikiann/{lang}/dev", lang).table) for lang in args.langs.split(",")}
    unknown = set(args.conditions.split(",")) - set(CONDITIONS)
    if unknown:
        raise SystemExit(f"--conditions: unknown {sorted(unknown)} (known: {', '.join(CONDITIONS)})")
    conds = [c for c in CONDITIONS if c in args.conditions.split(",")]
    if "pretrained" in conds and not args.pretrained:
        print("pretrained: skipped (no --pretrained folder given)")
        conds.remove("pretrained")
    plan = [(c, lang, s, seed) for seed in map(int, args.seeds.split(",")) for c in conds
            for s in args.sizes.split(",") for lang in data]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    for cond, lang, size, seed in plan:
        base = "none" if cond == "lexicon" else "pretrained" if (cond != "scratch" and args.pretrained) else "scratch"
        probe = {"condition": cond, "lang": lang, "size": size, "seed": seed, "hp": hp(args, cond, size), "base": base}
        if key(probe) in done:
            continue
        if args.budget_min is not None and time.time() - t_start > 60 * args.budget_min:
            print(f"budget of {args.budget_min} min reached; stopping before {cond}/{lang}/{size}/seed {seed}")
            break
        row = run_cell(args, cond, lang, size, seed, *data[lang])
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        rows.append(row)
        print(f"{cond}/{lang}/{size}/seed {seed}: dev F1 {100 * row['dev_f1']:.1f} ({row['time_s']:.0f} s)", flush=True)
    print_table(rows, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
