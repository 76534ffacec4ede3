"""Reading what earlier stages wrote, into plain rows the report draws from.

Each loader takes a stage output folder (or None) and returns None when the stage did not run or
wrote nothing usable, so a missing part becomes "not run" in the report instead of a crash.
Files read: finetune ``results.json``, evaluate ``metrics.json`` + ``predictions/*/*.parquet``,
tune ``best.json``/``trials.json``, pretrain ``metrics.json``, generate ``manifest.json``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


def _json(folder: str | None, name: str) -> Any:
    """The JSON file ``name`` of ``folder`` (local or on an object store), or None."""
    if not folder:
        return None
    from lrl.data.files import read_json

    try:
        return read_json(f"{folder.rstrip('/')}/{name}")
    except (OSError, ValueError):  # missing, unreadable, not JSON
        return None


def _stat(d: Any) -> tuple[float | None, float | None, int]:
    """(mean, sd, n) from ``{"mean","sd","n"}`` or a plain number."""
    if isinstance(d, dict):
        return d.get("mean"), d.get("sd"), int(d.get("n") or 1)
    if isinstance(d, (int, float)):
        return float(d), None, 1
    return None, None, 0


def finetune_scores(folder: str | None) -> dict[str, list[dict]] | None:
    """``{"lang": rows, "type": rows, "curves": {name: history}, "select_by": criterion}`` from
    finetune ``results.json``.

    Rows: {"group", "key", "mean", "sd", "n"} (F1 over seeds); curves are per group and seed;
    ``select_by`` is the dev figure that kept each model (``finetune.select_by``); ``task`` is
    ``ner`` or ``tokens`` (a token tagger, ``data.ner[].scheme: tokens``); ``heads`` the saved
    models' heads per group; ``seeds`` the seeds the stage was to run, ``run_seeds`` per group those
    it has runs of, ``summary_n`` per group the n of its mean (``report_checks.seed_gaps``),
    ``best_seed`` per group the seed of the saved model (``results.json`` ``best_seed``). A
    joint group's type rows are followed by its per-language ones (group ``joint <lang>``)."""
    res = _json(folder, "results.json")
    if not isinstance(res, dict) or not res.get("groups"):
        return None
    langs, types, curves, run_seeds, summary_n, best_seed = [], [], {}, {}, {}, {}
    for group, entry in res["groups"].items():
        summary = entry.get("summary") or {}
        m, sd, n = _stat(summary.get("f1"))
        if m is not None:
            langs.append({"group": group, "key": group if group != "joint" else "all", "mean": m, "sd": sd, "n": n})
            summary_n[group] = n
        if group == "joint":
            for lang, st in (summary.get("per_lang") or {}).items():
                m, sd, n = _stat(st.get("f1"))
                langs.append({"group": group, "key": lang, "mean": m, "sd": sd, "n": n})
        types += _type_rows(group, summary.get("per_type") or {})
        if group == "joint":  # per language and type: a joint model's pooled per-type F1 hid yo's PER
            for lang, st in (summary.get("per_lang") or {}).items():
                types += _type_rows(f"{group} {lang}", st.get("per_type") or {})
        run_seeds[group] = [run.get("seed") for run in entry.get("runs") or []]
        if entry.get("best_seed") is not None:
            best_seed[group] = entry["best_seed"]
        for run in entry.get("runs") or []:
            if run.get("history"):
                curves[f"{group} seed {run.get('seed')}"] = run["history"]
    return {"lang": langs, "type": types, "curves": curves, "select_by": res.get("select_by", "pooled"),
            "task": res.get("task", "ner"), "heads": _heads(folder, res["groups"]),
            "seeds": res.get("seeds") or [], "run_seeds": run_seeds, "summary_n": summary_n, "best_seed": best_seed}


def _type_rows(group: str, per_type: dict) -> list[dict]:
    """Rows {"group", "key", "mean", "sd", "n"} of a summary's ``per_type`` (F1 over seeds)."""
    rows = []
    for t, st in per_type.items():
        m, sd, n = _stat(st.get("f1") if isinstance(st, dict) and "f1" in st else st)
        rows.append({"group": group, "key": t, "mean": m, "sd": sd, "n": n})
    return rows


def _heads(folder: str | None, groups: dict) -> dict[str, str]:
    """``{group: head}`` of the saved models (``models/<group>/lrl_tagger.json``; ``linear`` or
    ``crf``), for the groups that saved one: a CRF's training loss is not a cross-entropy."""
    out = {}
    for group, entry in groups.items():
        meta = _json(f"{folder}/{entry.get('model_dir') or f'models/{group}'}", "lrl_tagger.json")
        if isinstance(meta, dict) and isinstance(meta.get("head"), str):
            out[group] = meta["head"]
    return out


def evaluate_scores(folder: str | None) -> list[dict] | None:
    """One row per (model, split): F1, precision, recall, sentences, per-type F1, and ``per_lang``
    ({lang: {"f1", "precision", "recall", "support", "per_type"}}, the languages that split had rows
    of; ``per_type`` {type: F1}) and
    ``label_gaps`` (entity types the model and the data do not share, or None) and ``untrained_langs``
    (rows in languages the model was not trained on, ``metrics.untrained_langs``, or None)."""
    met = _json(folder, "metrics.json")
    if not isinstance(met, dict) or not met.get("models"):
        return None
    rows = []
    for model, splits in met["models"].items():
        for split, s in (splits or {}).items():
            rows.append({"model": model, "split": split, "f1": s.get("f1"), "macro_f1": macro_f1(s),
                         "precision": s.get("precision"),
                         "recall": s.get("recall"), "sentences": s.get("sentences"),
                         "per_type": {t: v.get("f1") for t, v in (s.get("per_type") or {}).items()},
                         "per_lang": {lang: {**{k: v.get(k) for k in ("f1", "precision", "recall", "support")},
                                             "per_type": {t: x.get("f1") for t, x in (v.get("per_type") or {}).items()}}
                                      for lang, v in (s.get("per_lang") or {}).items()},
                         "label_gaps": s.get("label_gaps"), "untrained_langs": s.get("untrained_langs")})
    return rows or None


def macro_f1(s: dict) -> float | None:
    """``macro_f1``, or for an evaluate output written before it was kept the same figure from its
    ``per_type`` rows (seqeval's macro average is their unweighted mean); None when there are none."""
    if isinstance(s.get("macro_f1"), (int, float)):
        return s["macro_f1"]
    f1s = [v.get("f1") for v in (s.get("per_type") or {}).values() if isinstance(v, dict)]
    return sum(f1s) / len(f1s) if f1s and all(isinstance(f, (int, float)) for f in f1s) else None


def entity_type(tag: str) -> str:
    """``B-PER``/``I-PER`` -> ``PER``; ``O`` (and anything unprefixed) stays as is."""
    return tag[2:] if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIES" else tag


def confusion_from_pairs(gold: list[list[str]], pred: list[list[str]]) -> tuple[list[str], list[list[int]]]:
    """Token-level confusion of entity types (O included): labels and matrix[gold][pred]."""
    counts: Counter = Counter()
    for g_row, p_row in zip(gold, pred):
        for g, p in zip(g_row, p_row):
            counts[(entity_type(g), entity_type(p))] += 1
    types = sorted({t for pair in counts for t in pair} - {"O"})
    labels = ["O", *types] if any("O" in pair for pair in counts) or not types else types
    idx = {t: i for i, t in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for (g, p), c in counts.items():
        matrix[idx[g]][idx[p]] += c
    return labels, matrix


def confusions(folder: str | None, max_rows: int) -> dict[str, tuple[list[str], list[list[int]]]] | None:
    """``{"<model> [<split>]": (labels, matrix)}`` from the evaluate stage's prediction files."""
    if not folder:
        return None
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    from lrl.data.files import filesystem

    fs, inner = filesystem(f"{folder.rstrip('/')}/predictions")  # on an object store too
    try:
        found = fs.get_file_info(pafs.FileSelector(inner, recursive=True))
    except OSError:  # no predictions folder
        return None
    names = sorted(rel for i in found if i.type == pafs.FileType.File
                   and (rel := i.path.removeprefix(inner.rstrip("/") + "/")).count("/") == 1 and rel.endswith(".parquet"))
    out = {}
    for rel in names:  # predictions/<model>/<split>.parquet
        try:
            t = pq.read_table(f"{inner.rstrip('/')}/{rel}", columns=["tags", "pred"], filesystem=fs)
        except Exception:  # a malformed file is reported as missing, not fatal
            continue
        t = t.slice(0, max_rows)
        model, split = rel[:-len(".parquet")].split("/")
        out[f"{model} [{split}]"] = confusion_from_pairs(t.column("tags").to_pylist(),
                                                                   t.column("pred").to_pylist())
    return out or None


def tune_results(folder: str | None) -> dict[str, list[dict]] | None:
    """``{"best": rows, "trials": rows}`` from the tune stage."""
    best, trials = _json(folder, "best.json"), _json(folder, "trials.json")
    if not isinstance(trials, list) or not trials:
        return None
    return {"best": best if isinstance(best, list) else [], "trials": trials}


def pretrain_metrics(folder: str | None) -> dict[str, Any] | None:
    """``{"history": rows, "perplexity": {lang: rows}, "final": {key: value}}`` from pretrain metrics.

    ``history`` rows: step, loss, aux_loss, lr, tokens_per_s (the points pretraining's ``history``
    holds, ``pretrain_metrics.history_entry``); ``perplexity``: per language, the steps that were
    evaluated on held-out text and their perplexity; ``mixture``: per language, what alpha sampling
    did (``_mixture``). Looks in the folder and in ``model/`` (where the HF folder may sit)."""
    met = _json(folder, "metrics.json") or _json(f"{folder}/model" if folder else None, "metrics.json")
    if not isinstance(met, dict):
        return None
    history = met.get("history") or met.get("curve") or []
    rows: list[dict] = []
    ppl: dict[str, list[dict]] = {}
    for h in history if isinstance(history, list) else []:
        if not (isinstance(h, dict) and isinstance(h.get("step"), (int, float))):
            continue
        rows.append({k: _number(h.get(k)) for k in ("step", "loss", "aux_loss", "lr", "tokens_per_s")})
        for key, value in h.items():  # ppl_<lang>, or one unnamed perplexity
            name = key[4:] if key.startswith("ppl_") else "all" if key in ("perplexity", "ppl") else None
            if name and _number(value) is not None:
                ppl.setdefault(name, []).append({"step": h["step"], "perplexity": _number(value)})
    final = {k: v for k, v in met.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if met.get("trained") is False:  # pretrain.steps 0: the starting model as built, no mixture sampled
        return {"history": [], "perplexity": {}, "final": final, "mixture": [], "trained": False}
    return {"history": rows, "perplexity": ppl, "final": final, "mixture": _mixture(met)}


def _mixture(met: dict) -> list[dict]:
    """Per language: training and held-out rows, target and realised share of the alpha-sampled
    stream (``target_mixture``), and the token share training saw (``stream_mixture``), as the
    pretrained model's card shows them; [] when metrics.json records no mixture."""
    target = met.get("target_mixture") if isinstance(met.get("target_mixture"), dict) else {}
    stream = met.get("stream_mixture") if isinstance(met.get("stream_mixture"), dict) else {}
    train = met.get("train_rows") if isinstance(met.get("train_rows"), dict) else {}
    held = met.get("heldout_rows") if isinstance(met.get("heldout_rows"), dict) else {}
    out = []
    for lang in sorted({*target, *stream, *train}):
        t = target.get(lang) if isinstance(target.get(lang), dict) else {}
        s = stream.get(lang) if isinstance(stream.get(lang), dict) else {}
        out.append({"lang": lang, "train_rows": train.get(lang, t.get("rows")), "heldout_rows": held.get(lang),
                    "target_p": _number(t.get("target_p")), "sampled_rows": t.get("sampled_rows"),
                    "realised_p": _number(t.get("realised_p")), "token_share": _number(s.get("token_share"))})
    return out


def _number(value: Any) -> float | None:
    """A finite number, else None (a NaN perplexity, a malformed entry: not drawn)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
        return None
    return value


def generate_summary(folder: str | None) -> dict[str, Any] | None:
    """Rows per operation and language, rejects per reason, input/output totals, the augment
    attempts per op and language and the oversampling plan against what was written (manifest;
    the last two are absent from outputs made before they were counted)."""
    man = _json(folder, "manifest.json")
    if not isinstance(man, dict) or "rows_per_op" not in man:
        return None
    return {k: man.get(k) for k in ("input_rows", "input_read", "output_rows", "rows_per_op", "rows_per_lang",
                                    "text_rows_per_op", "rejects_total", "rejects_per_reason", "steps", "augment_attempts", "oversample")}
