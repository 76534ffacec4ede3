"""seqeval span scores (strict IOB2) per entity type and per language, and mean ± sd over seeds.

Strict mode counts a predicted span only when its type and both boundaries match a gold span;
an ``I-X`` that does not continue an ``X`` span starts no entity (seqeval's default
conlleval-style mode reads it as one). Such a tag is then neither a hit nor a false positive: it
costs recall, never precision, so a linear head that emits stray ``I-X`` tags scores higher here
than under conlleval, the convention of most published NER figures (a tiny model on WikiANN yo
dev, 62 stray ``I-`` tags: 62.7 strict, 49.6 conlleval; ug 71.7 and 68.4). A CRF head decodes
valid IOB2 only, where the two agree. ``conlleval_note`` measures the gap for the evaluate stage.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

_FIELDS = ("precision", "recall", "f1")


def span_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Micro precision/recall/F1 over entity spans plus the same per entity type.

    Returns ``{"precision", "recall", "f1", "support", "macro_f1", "per_type": {type: {...}}}``;
    support is the number of gold spans, ``macro_f1`` seqeval's unweighted mean of the per-type F1s
    (every type of the gold or predicted spans). Sentences must pair up with equal lengths.
    """
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
    gold_l, pred_l = [list(g) for g in gold], [list(p) for p in pred]
    if not any(t != "O" for s in gold_l + pred_l for t in s):
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "macro_f1": 0.0, "per_type": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on types with no gold spans
        rep = classification_report(gold_l, pred_l, mode="strict", scheme=IOB2, output_dict=True,
                                    zero_division=0)
    micro, macro = rep.pop("micro avg"), rep.pop("macro avg")
    rep.pop("weighted avg", None)
    per_type = {t: _clean(v) for t, v in sorted(rep.items())}
    # The micro F1 alone hid a rare type's collapse behind a frequent one's (WikiANN: LOC outnumbers ORG).
    return {**_clean(micro), "macro_f1": float(macro["f1-score"]), "per_type": per_type}


def _clean(d: dict) -> dict:
    return {"precision": float(d["precision"]), "recall": float(d["recall"]),
            "f1": float(d["f1-score"]), "support": int(d["support"])}


def scores_by_lang(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                   langs: Sequence[str]) -> dict:
    """``span_scores`` over all sentences, plus ``per_lang`` with the same figures per language."""
    out = span_scores(gold, pred)
    by: dict[str, tuple[list, list]] = {}
    for g, p, lang in zip(gold, pred, langs):
        by.setdefault(lang, ([], []))
        by[lang][0].append(g)
        by[lang][1].append(p)
    out["per_lang"] = {lang: span_scores(g, p) for lang, (g, p) in sorted(by.items())}
    return out


def label_gaps(model_labels: Sequence[str], scores: dict) -> dict:
    """Entity types the data and the model do not share, from a ``span_scores`` result.

    ``{"unknown_to_model": {type: gold spans}, "absent_from_data": [types]}`` (empty when they
    match). Every gold span still counts: a type the model cannot predict (``DATE`` for a WikiANN
    model) is all misses and lowers the micro F1, and a model type the data lacks (``MISC``) makes
    only false positives. The score is right for the data as given, but it said nothing of why
    (WikiANN ug dev with 2 ``B-DATE`` spans: DATE F1 0.0 among PER/ORG/LOC, no word on it)."""
    from lrl.evaluate.report_data import entity_type

    known = {entity_type(t) for t in model_labels} - {"O"}
    gold = {t: int(v["support"]) for t, v in scores.get("per_type", {}).items() if v.get("support")}
    return {"unknown_to_model": {t: n for t, n in sorted(gold.items()) if t not in known},
            "absent_from_data": sorted(known - set(gold))}


def gap_note(gaps: dict) -> str:
    """One line for the CLI, or "" when the label sets match."""
    parts = []
    if gaps.get("unknown_to_model"):
        parts.append(", ".join(f"{t} ({n} gold spans)" for t, n in gaps["unknown_to_model"].items())
                     + " not among the model's labels: scored as misses")
    if gaps.get("absent_from_data"):
        parts.append(", ".join(gaps["absent_from_data"]) + " of the model absent from the data: "
                     "its predictions count as false positives")
    return "; ".join(parts)


def stray_inside_tags(pred: Sequence[Sequence[str]]) -> int:
    """Predicted ``I-X`` tags that continue no ``X`` span (invalid IOB2, ignored by strict mode)."""
    n = 0
    for row in pred:
        prev = "O"
        for tag in row:
            n += tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:])
            prev = tag
    return n


def conlleval_note(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """``{"stray_inside_tags": n, "f1_conlleval": f1}`` when the predictions hold invalid IOB2
    (the strict span F1 then differs from the conlleval-style one that published figures use),
    else ``{}``."""
    n = stray_inside_tags(pred)
    if not n:
        return {}
    from seqeval.metrics import f1_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f1 = float(f1_score([list(g) for g in gold], [list(p) for p in pred], zero_division=0))
    return {"stray_inside_tags": n, "f1_conlleval": f1}


def mean_sd(values: Sequence[float]) -> dict:
    """Mean and sample standard deviation (0 for a single value) and n."""
    vals = [float(v) for v in values]
    if not vals:
        return {"mean": float("nan"), "sd": float("nan"), "n": 0}
    m = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return {"mean": m, "sd": sd, "n": len(vals)}


def aggregate(results: Sequence[dict]) -> dict:
    """Mean ± sd over seeds of results shaped like ``scores_by_lang``/``span_scores``.

    Returns ``{"precision": {"mean","sd","n"}, "recall", "f1", "per_type": {t: {"f1": ...}},
    "per_lang": {lang: {"f1": ..., "per_type": {t: {"f1": ...}}}}}``; a type or language missing
    in a run counts as absent, not as zero (n says how many runs had it). Each language keeps its
    own per-type figures: a joint model's pooled per-type F1 showed no language's (WikiANN yo PER).
    """
    out: dict = {k: mean_sd([r[k] for r in results]) for k in _FIELDS}
    types = _section(results, "per_type")
    if types:
        out["per_type"] = types
    langs = sorted({k for r in results for k in r.get("per_lang", {})})
    if langs:
        out["per_lang"] = {}
        for lang in langs:
            had = [r["per_lang"][lang] for r in results if lang in r.get("per_lang", {})]
            out["per_lang"][lang] = {f: mean_sd([h[f] for h in had]) for f in _FIELDS}
            if any(h.get("per_type") for h in had):
                out["per_lang"][lang]["per_type"] = _section(had, "per_type")
    return out


def _section(results: Sequence[dict], section: str) -> dict:
    """``{key: {field: mean_sd}}`` over the results that have ``key`` in ``section``."""
    keys = sorted({k for r in results for k in r.get(section, {})})
    return {k: {f: mean_sd([r[section][k][f] for r in results if k in r.get(section, {})]) for f in _FIELDS}
            for k in keys}


def type_summary(runs: Sequence[dict]) -> dict[str, dict]:
    """Per entity type: F1 mean ± sd over the seeded runs (``per_type`` rows) that had the type."""
    types = sorted({t for r in runs for t in r["per_type"]})
    return {t: mean_sd([r["per_type"][t]["f1"] for r in runs if t in r["per_type"]]) for t in types}


def format_mean_sd(stat: dict, scale: float = 100.0) -> str:
    """``81.2 ± 1.3`` (scaled to percent by default)."""
    return f"{stat['mean'] * scale:.1f} ± {stat['sd'] * scale:.1f}"


def untrained_langs(model_dir: str, langs: Sequence[str]) -> dict:
    """``{"model": [trained languages], "rows": {lang: sentences}}`` for the rows in a language the
    model in ``model_dir`` was not trained on (``langs`` in its ``lrl_tagger.json``), else ``{}``
    (also for a folder without that file). Cross-lingual scores are legitimate, but ``lrl
    evaluate`` scored a ug model on wo data (or on ug data read with ``--lang wo``, so without the
    ``[ug]`` tag) and printed F1 0.0 with no word that the languages differ."""
    import json
    from collections import Counter
    from pathlib import Path

    meta = Path(model_dir) / "lrl_tagger.json"
    try:
        trained = json.loads(meta.read_text(encoding="utf-8")).get("langs") if meta.is_file() else None
    except (OSError, ValueError):
        return {}
    if not isinstance(trained, list) or not trained:
        return {}
    other = Counter(x for x in langs if x not in set(trained))
    return {"model": sorted(map(str, trained)), "rows": dict(sorted(other.items()))} if other else {}


def untrained_note(gap: dict) -> str:
    """One line for ``untrained_langs``'s result (the CLI and the report)."""
    rows = ", ".join(f"{lang} ({n} sentences)" for lang, n in gap["rows"].items())
    return (f"rows of {rows} are in a language the model was not trained on ({', '.join(gap['model'])}): "
            "a cross-lingual score; check --lang / the data's lang column if that is not meant")


def check_iob2_labels(labels: Sequence[str], folder: str) -> None:
    """An ``InputError`` when a model's labels are not IOB2 tags (``O``, ``B-X``, ``I-X``), which
    span scoring needs: a pretrained encoder (``LABEL_0``, ``LABEL_1``) or a BIOES model was
    predicted in full and then ended in seqeval's "Invalid token is found" traceback."""
    bad = [t for t in labels if t != "O" and not (len(t) > 2 and t[:2] in ("B-", "I-"))]
    if bad:
        from lrl.data.files import InputError

        raise InputError(f"{folder}: labels {', '.join(map(str, bad[:4]))}{' ...' if len(bad) > 4 else ''} are not "
                         "IOB2 tags (O, B-X, I-X): not a tagger lrl can score (an encoder not yet fine-tuned?)")
