"""What ``lrl evaluate`` says beside its scores, and the output-name key that keeps those notes.

``print_scores`` prints an evaluate folder's F1 with its notes (labels the model and the data do
not share, rows of a language the model was not trained on, stray ``I-`` tags) and a warning per
model (per language, for rows of several) whose tokenizer reads many of the evaluated words as its
unknown token alone. The warning is worked out from ``metrics.json``'s ``align`` (and
``align_per_lang``) counts, so a reused folder says it too.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

from lrl.data.files import read_json
from lrl.data.remote import is_file

#: Bumped when the notes an evaluate output records change for the outputs they concern
#: (1: ``untrained_langs``). Only an evaluation with rows of a language some model was not
#: trained on names it (``untrained_key``): the folders of every other evaluation hold the same
#: files as before and keep their names.
UNTRAINED_NOTES = 1


def trained_langs(model_dir: str) -> list[str] | None:
    """The languages a tagger was trained on (``langs`` of its ``lrl_tagger.json``), None when it
    does not say (a folder of another tool, an unreadable file); on an object store too."""
    meta = f"{model_dir.rstrip('/')}/lrl_tagger.json"
    try:
        langs = read_json(meta).get("langs") if is_file(meta) else None
    except (OSError, ValueError, AttributeError):  # unreadable, not JSON, not an object
        return None
    return [str(x) for x in langs] if isinstance(langs, list) and langs else None


def untrained_key(models: Mapping[str, str], rows: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """``{"untrained_notes": UNTRAINED_NOTES}`` when a model of ``models`` (name -> folder) is to
    score rows (``rows``: name -> the languages of its rows) in a language it was not trained on,
    else nothing. Outputs written before ``untrained_langs`` was recorded were reused without its
    note (a ug model's F1 0.0 on wo rows, with no word why); the key names those again."""
    for name, folder in models.items():
        trained = trained_langs(folder)
        if trained is not None and set(rows.get(name, ())) - set(trained):
            return {"untrained_notes": UNTRAINED_NOTES}
    return {}


#: Bumped when the alignment counts an evaluate output records change (1: ``align_per_lang``,
#: the counts of each language of a split's rows). Only an evaluation in which a model scores
#: rows of several languages in one split records them (``align_key``): the folders of every
#: other evaluation hold the same files as before and keep their names.
ALIGN_PER_LANG = 1


def align_key(row_langs: Iterable[Iterable[str]]) -> dict[str, int]:
    """``{"align_per_lang": ALIGN_PER_LANG}`` when one of ``row_langs`` (the languages of the rows
    one model scores in one split) holds more than one language, else nothing. Outputs written
    before hid an unreadable language's [UNK] words in the counts summed over languages."""
    return {"align_per_lang": ALIGN_PER_LANG} if any(len(set(x)) > 1 for x in row_langs) else {}


def _split_langs(split: Mapping[str, Any]) -> dict[str, dict] | None:
    """The alignment counts of a split per language: its ``align_per_lang``, or its ``align`` when
    its rows are of one language (``per_lang`` scores); None when unknown (an older output)."""
    if isinstance(split.get("align_per_lang"), dict):
        return split["align_per_lang"]
    langs = list(split.get("per_lang") or {})
    return {langs[0]: split.get("align") or {}} if len(langs) == 1 else None


def _lang_counts(by_split: Mapping[str, Any]) -> dict[str, tuple[int, int]] | None:
    """(words, unk_words) per language over a model's splits, None unless every split says."""
    out: dict[str, tuple[int, int]] = {}
    for s in by_split.values():
        per = _split_langs(s) if isinstance(s, dict) else None
        if per is None:
            return None
        for lang, a in per.items():
            w, u = out.get(lang, (0, 0))
            out[lang] = (w + (a.get("words") or 0), u + (a.get("unk_words") or 0))
    return out


def _unk_line(name: str, unk: int, words: int, splits: str, lang: str | None) -> str:
    of = f"evaluated {lang} words" if lang else "evaluated words"
    return (f"warning: evaluate {name}: the model's tokenizer reads {unk / words:.0%} of the {of} ({unk} of {words}, "
            f"{splits}) as its unknown token alone, so the model sees nothing of them and its F1 "
            f"{f'on {lang} ' if lang else ''}says as much about the tokenizer: extend the tokenizer with the "
            "language's text (tokenizer.mode=extend), continue pretraining, then fine-tune again")


def unk_lines(metrics: Mapping[str, Any]) -> list[str]:
    """One warning per model whose tokenizer read more than ``UNK_WARN`` (fine-tuning's threshold)
    of the evaluated words, over all its splits, as its unknown token alone: its F1 is then the
    tokenizer's doing as much as the model's, and nothing in the output said so. A model scored on
    several languages gets one per language above it, named: summed, a language the tokenizer
    cannot read was hidden by the others. An older output without per-language counts gets the
    summed warning."""
    from lrl.train.finetune import UNK_WARN

    out = []
    for name, by_split in (metrics.get("models") or {}).items():
        splits = ", ".join(by_split)
        per_lang = _lang_counts(by_split)
        if per_lang is not None and len(per_lang) > 1:
            out += [_unk_line(name, u, w, splits, lang) for lang, (w, u) in per_lang.items() if w and u / w > UNK_WARN]
            continue
        aligns = [s.get("align") or {} for s in by_split.values() if isinstance(s, dict)]
        words = sum(a.get("words") or 0 for a in aligns)
        unk = sum(a.get("unk_words") or 0 for a in aligns)
        if words and unk / words > UNK_WARN:
            out.append(_unk_line(name, unk, words, splits, None))
    return out


def print_scores(path: str) -> None:
    """The evaluate output's span F1, precision and recall per model and split, with its notes;
    the unknown-word warnings on stderr, as fine-tuning prints its own."""
    from lrl.evaluate.metrics import gap_note, untrained_note
    from lrl.evaluate.report_data import macro_f1
    from lrl.evaluate.report_html import pct

    metrics = read_json(f"{path}/metrics.json")
    print(f"evaluate: {path}")
    if metrics.get("rejected_rows"):  # only metrics.json counted them: the scores looked like the whole file's
        print(f"  {metrics['rejected_rows']} row(s) of the data rejected when read (bad tags or lengths), not scored")
    if not any(metrics["models"].values()):
        print("  no model had rows to score in evaluate.splits (a per-language model is scored on its language's rows)")
    for name, by_split in metrics["models"].items():
        for split, s in by_split.items():
            print(f"  {name} [{split}]: F1 {100 * s['f1']:.1f}  P {100 * s['precision']:.1f}  "
                  f"R {100 * s['recall']:.1f}  macro F1 {pct(macro_f1(s))}  ({s['sentences']} sentences)")
            if s.get("label_gaps"):
                print(f"    note: {gap_note(s['label_gaps'])}")
            if s.get("untrained_langs"):
                print(f"    note: {untrained_note(s['untrained_langs'])}")
            if s.get("stray_inside_tags"):  # strict F1 ignores them; published (conlleval) figures do not
                print(f"    note: {s['stray_inside_tags']} predicted I- tag(s) continue no span (invalid IOB2): "
                      f"strict F1 ignores them; conlleval-style F1 {100 * s['f1_conlleval']:.1f}")
    sys.stdout.flush()  # the warnings after the scores they concern, also when both go to one terminal
    for line in unk_lines(metrics):
        print(line, file=sys.stderr)


__all__ = ["align_key", "print_scores", "trained_langs", "untrained_key", "unk_lines", "ALIGN_PER_LANG",
           "UNTRAINED_NOTES"]
