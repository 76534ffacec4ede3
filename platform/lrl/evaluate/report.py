"""The report stage: ONE self-contained HTML file describing a run.

Plots are PNGs drawn with matplotlib (Agg) and inlined as base64 ``data:`` URIs; styles are inline;
nothing is fetched from the network, so the file can be archived or mailed as is. Every section
reads one earlier stage's files through ``report_data``; a stage that did not run (or wrote nothing
usable) shows "not run", and a section that fails to draw shows its error, never crashing the rest.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from pathlib import Path

from lrl.evaluate import plots
from lrl.evaluate import report_data as rd
from lrl.evaluate.report_checks import check_inputs, seed_gaps, unnamed_note
from lrl.evaluate.report_config import ReportConfig
from lrl.evaluate.report_generate import generate_section
from lrl.evaluate.report_html import esc, img, not_run, pct, table

STAGES = ("generate", "pretrain", "finetune", "tune", "evaluate")
CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.na{color:#888;font-style:italic}
img{max-width:100%;display:block;margin:.5em 0}h2{border-bottom:2px solid #4c72b0;padding-bottom:2px}"""


#: The report's words for a score and a label class, per task (``finetune_scores()["task"]``): a
#: POS tagger's one-token spans are tags, and their span F1 is token F1.
WORDS = {"ner": ("span F1", "entity type"), "tokens": ("token F1", "tag")}


def _words(ft: dict | None) -> tuple[str, str]:
    """(score, label class) in the report's words for the run's task (``WORDS``)."""
    return WORDS[ft.get("task", "ner") if ft is not None else "ner"]


def _scores_section(ft: dict | None, ev: list[dict] | None) -> str:
    if ft is None and ev is None:
        return not_run("finetune and evaluate")
    out = []
    metric, kind = _words(ft)
    if ft is not None and ft["lang"]:
        rows = [[r["key"], pct(r["mean"]), pct(_sd(r)), r["n"]] for r in ft["lang"]]
        out += [f"<h3>Dev {metric} per language (mean ± sd over seeds)</h3>",
                table(["language", "F1", "± sd", "seeds"], rows),
                img(plots.bar_with_sd([r["key"] for r in ft["lang"]], [r["mean"] or 0 for r in ft["lang"]],
                                      [_sd(r) for r in ft["lang"]], "dev F1 per language", f"{metric} (%)"),
                    "F1 per language")]
    gaps = seed_gaps(ft)
    if gaps:
        out.append("<p><b>Missing seeds:</b> " + esc("; ".join(gaps)) + ".</p>")
    if ft is not None and ft["type"]:
        rows = [[r["group"], r["key"], pct(r["mean"]), pct(_sd(r)), r["n"]] for r in ft["type"]]
        out += [f"<h3>Dev {metric} per {kind} (mean ± sd over seeds)</h3>",
                table(["model", kind, "F1", "± sd", "seeds"], rows),
                img(plots.bar_with_sd([f"{r['group']}:{r['key']}" for r in ft["type"]],
                                      [r["mean"] or 0 for r in ft["type"]], [_sd(r) for r in ft["type"]],
                                      f"dev F1 per {kind}", f"{metric} (%)"), f"F1 per {kind}")]
    if ev is not None:
        types = sorted({t for r in ev for t in r["per_type"]})
        rows = [[r["model"], r["split"], pct(r["f1"]), pct(r["precision"]), pct(r["recall"]), pct(r.get("macro_f1")),
                 r["sentences"], *[pct(r["per_type"].get(t)) for t in types]] for r in ev]
        out += [f"<h3>Evaluate stage (one model per row, {metric} / P / R: micro, over all spans)</h3>",
                table(["model", "split", "F1", "P", "R", "macro F1", "sentences", *[f"F1 {t}" for t in types]], rows),
                _kept_seed_note(ft), _eval_languages(ev), _label_gaps(ev)]
    elif ft is not None:
        out.append(not_run("evaluate"))
    return "\n".join(out)


def _kept_seed_note(ft: dict | None) -> str:
    """Why the evaluate stage's dev F1 is not the mean over seeds above it: it scores the one saved
    model per group, the seed kept as best on dev (WikiANN ug, 2 seeds: 51.8 under a mean of 51.5,
    side by side with nothing to say why)."""
    if ft is None or not any((r.get("n") or 0) > 1 for r in ft["lang"]):
        return ""
    # Which seed that is (results.json best_seed): the page said "the seed kept as the best" and never named it.
    kept = "; ".join(f"{g}: seed {s}" for g, s in sorted((ft.get("best_seed") or {}).items()))
    return ('<p>The evaluate stage scores the saved model of each group: the seed kept as the best '
            f"on dev{f' ({esc(kept)})' if kept else ''}, so its dev F1 can exceed the mean over seeds above.</p>")


def _references(cfg: ReportConfig, ft: dict | None) -> str:
    """``report.references`` (published or earlier scores) beside the run's dev F1 per language."""
    if not cfg.references:
        return ""
    ours = {r["key"]: r for r in (ft or {}).get("lang", [])}
    rows = []
    for lang, refs in cfg.references.items():
        mine = ours.get(lang)
        run = "—" if mine is None else pct(mine["mean"]) + (f" ± {pct(_sd(mine))}" if _sd(mine) is not None else "")
        rows += [[lang, run, name, f"{value:.1f}"] for name, value in refs.items()]
    return ("\n<h3>Reference points (report.references, as given)</h3>"
            + table(["language", "this run (dev)", "reference", "F1"], rows)
            + '<p class="na">Compare with care: a reference measured on another split, with other '
              "training data or for longer is not the same experiment.</p>")


def _sd(row: dict) -> float | None:
    """The sd of a mean over seeds, None ("—", no error bar) for one seed: results.json stores 0
    there, which the table printed as "± 0.0", a claim of stability across seeds never run (the
    model card already printed "—")."""
    return row["sd"] if (row.get("n") or 0) > 1 else None


def _eval_languages(ev: list[dict]) -> str:
    """Per-language rows of the evaluate stage, and which languages a split lacks. A joint model's
    test F1 covered only the languages that have a test split (WikiANN ug and wo have none), next
    to a dev F1 over all of them, and nothing on the page said so."""
    types = sorted({t for r in ev for s in (r.get("per_lang") or {}).values() for t in s.get("per_type") or {}})
    rows = [[r["model"], r["split"], lang, pct(s.get("f1")), pct(s.get("precision")), pct(s.get("recall")),
             s.get("support"), *[pct((s.get("per_type") or {}).get(t)) for t in types]]
            for r in ev for lang, s in sorted((r.get("per_lang") or {}).items())]
    splits = sorted({r["split"] for r in ev})
    gaps = []
    for model in sorted({r["model"] for r in ev}):
        have = {r["split"]: set(r.get("per_lang") or {}) for r in ev if r["model"] == model}
        langs = set().union(*have.values())
        for split in splits:
            missing = sorted(langs - have.get(split, set()))
            if missing:
                gaps.append(f"{model}: no {split} rows for {', '.join(missing)}"
                            + (f" (its {split} score covers {', '.join(sorted(have[split]))} only)"
                               if have.get(split) else ""))
    out = []
    if (rows and any(len(r.get("per_lang") or {}) > 1 for r in ev)) or gaps:
        out += ["<h3>Evaluate stage per language (each language on its own rows of the split)</h3>",
                table(["model", "split", "language", "F1", "P", "R", "gold spans", *[f"F1 {t}" for t in types]], rows)]
    if gaps:
        out.append("<p>Splits without some languages: " + esc("; ".join(gaps)) + ".</p>")
    return "\n".join(out)


def _label_gaps(ev: list[dict]) -> str:
    """Entity types a model and its data do not share (``metrics.label_gaps``): the F1 above
    counts them, as misses or false positives."""
    from lrl.evaluate.metrics import gap_note, untrained_note

    notes = [f"{r['model']} [{r['split']}]: {gap_note(r['label_gaps'])}" for r in ev if r.get("label_gaps")]
    langs = [f"{r['model']} [{r['split']}]: {untrained_note(r['untrained_langs'])}" for r in ev
             if r.get("untrained_langs")]  # a ug model scored on wo rows: F1 near 0, and no word why
    return ((f"<p>Labels not shared by model and data: {esc('; '.join(notes))}.</p>" if notes else "")
            + (f"<p>Languages the model was not trained on: {esc('; '.join(langs))}.</p>" if langs else ""))


def _curves_section(ft: dict | None) -> str:
    if ft is None or not ft["curves"]:
        return not_run("finetune learning curves")
    metric = _words(ft)[0]
    # A joint run's history also has the mean of the per-language F1s, the figure that kept its
    # models under select_by: language_mean; the pooled curve alone hid what chose the checkpoint.
    ys = ["dev_f1", *(["dev_f1_lang_mean"] if any(r.get("dev_f1_lang_mean") is not None
                                                  for h in ft["curves"].values() for r in h) else []), "train_loss"]
    chosen = {"pooled": f"pooled dev {metric} (all dev sentences)",
              "language_mean": f"mean of the per-language dev {metric}s"}.get(ft.get("select_by"), ft.get("select_by"))
    heads = set((ft.get("heads") or {}).values())
    labels = {"dev_f1": f"dev {metric} (%)", "dev_f1_lang_mean": f"mean of per-language dev {metric} (%)"}
    if "crf" in heads:
        labels["train_loss"] = plots.CRF_LOSS if heads == {"crf"} else plots.MIXED_LOSS
    return (f"<p>Each seed kept the model of the evaluation with the best {esc(str(chosen))} "
            "(finetune.select_by).</p>"
            + img(plots.curves(ft["curves"], "step", ys, "fine-tuning", labels), "learning curves"))


def _failed(trials: list[dict]) -> str:
    """", N FAILED (errors in trials.json)" when trials crashed: the best row is then the best of
    the rest, which the reader should know."""
    n = sum(t.get("error") is not None for t in trials)
    return f", <b>{n} FAILED</b> (errors in trials.json)" if n else ""


def _cut(trials: list[dict]) -> str:
    n = sum(bool(t.get("cut_at_max_t")) for t in trials)
    return f", {n} ended at tune.max_t before their schedule's end" if n else ""


def _tune_section(tr: dict | None) -> str:
    if tr is None:
        return not_run("tune")
    keys = [k for k in ("lang", "dev_f1", "lr", "batch_size", "epochs", "warmup_ratio", "freeze_layers", "dropout",
                        "schedule", "trials", "stopped_early", "errored", "dev_entities", "close_trials", "retrain_dev_f1")
            if any(k in b for b in tr["best"])]
    # A key some rows lack (a language whose trials all failed) printed "None" in its cells.
    rows = [[pct(b.get(k)) if "f1" in k else "—" if b.get(k) is None else b.get(k) for k in keys] for b in tr["best"]]
    trials = [t for t in tr["trials"] if t.get("dev_f1") is not None]
    out = ["<h3>Best configuration per language</h3>", table(keys, rows) if rows else not_run("best table"),
           f"<p>{len(tr['trials'])} trials, {sum(bool(t.get('stopped_early')) for t in tr['trials'])} "
           f"stopped early by the scheduler{_cut(tr['trials'])}{_failed(tr['trials'])}.</p>"]
    if trials:
        out += [img(plots.scatter_by_group(trials, "lr", "dev_f1", "lang", "trials: dev F1 vs learning rate",
                                           logx=True), "dev F1 vs learning rate"),
                img(plots.scatter_by_group(trials, "time_s", "dev_f1", "lang", "trials: dev F1 vs training time (s)"),
                    "dev F1 vs time")]
    return "\n".join(out)


def _confusion_section(conf: dict | None, kind: str = "entity type") -> str:
    if conf is None:
        return not_run("evaluate predictions")
    merged = "B-/I- merged, O included" if kind == "entity type" else "O is a word predicted no tag"
    out = [f"<p>Token level: gold {kind} (rows) against predicted {kind} (columns), {merged}; colours are "
           "row-normalised.</p>"]
    items = list(conf.items())
    for name, (labels, matrix) in items[:MAX_CONFUSIONS]:
        out.append(f"<h3>{esc(name)}</h3>")  # the image's title alone named the table's model and split
        out.append(img(plots.confusion(labels, matrix, name), f"confusion {name}"))
        out.append(table(["gold \\ pred", *labels], [[g, *row] for g, row in zip(labels, matrix)]))
    if len(items) > MAX_CONFUSIONS:
        # Seven languages with dev and test sources make 14: the last six went without a word.
        rest = [name for name, _ in items[MAX_CONFUSIONS:]]
        out.append(f'<p class="na">{len(rest)} more not drawn (at most {MAX_CONFUSIONS}): {esc(", ".join(rest))}; '
                   "their predictions are in the evaluate folder.</p>")
    return "\n".join(out)


#: Confusion matrices drawn at most (one per model and split).
MAX_CONFUSIONS = 8


def _pretrain_section(pt: dict | None) -> str:
    if pt is None:
        return not_run("pretrain")
    out = []
    if pt.get("trained") is False:
        out.append("<p>Not trained (<code>pretrain.steps: 0</code>): the folder holds the starting model as "
                   "built, for fine-tuning; the held-out perplexity below is that model's.</p>")
    ys = [y for y in ("loss", "aux_loss", "lr", "tokens_per_s") if any(h.get(y) is not None for h in pt["history"])]
    if ys:
        out.append(img(plots.curves({"pretrain": pt["history"]}, "step", ys, "pretraining"), "pretraining curves"))
    if pt.get("perplexity"):  # one line per language, on one axis
        out.append(img(plots.curves(pt["perplexity"], "step", ["perplexity"], "held-out"), "held-out perplexity"))
    if not ys and not pt.get("perplexity") and pt.get("trained") is not False:
        out.append('<p class="na">No per-step curve recorded; final figures only.</p>')
    if pt.get("mixture"):
        # What alpha sampling did per language: the final table holds numbers only, so these
        # dicts of metrics.json (the headline of a multilingual job) were left out of the report.
        alpha = pt["final"].get("alpha")
        out.append(f"<h3>Language mixture</h3><p>Languages sampled with p ∝ n^{esc(alpha)} over their training "
                   "rows (target p); realised p is their share of the stream's rows, token share that of "
                   "the tokens training saw.</p>")
        rows = [[m["lang"], m["train_rows"], m["heldout_rows"], m["sampled_rows"],
                 *(("—" if m[k] is None else f"{m[k]:.3f}") for k in ("target_p", "realised_p", "token_share"))]
                for m in pt["mixture"]]
        out.append(table(["language", "training rows", "held-out rows", "stream rows", "target p", "realised p",
                          "token share"], rows))
    out.append(table(["metric", "value"], [[k, f"{v:.4g}"] for k, v in sorted(pt["final"].items())]))
    return "\n".join(out)


def _safe(name: str, fn: Callable[[], str]) -> str:
    """One section; a drawing error is shown in its place instead of losing the whole report."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the report must survive any single bad input
        return f'<p class="na">{esc(name)}: could not be drawn ({esc(type(exc).__name__)}: {esc(exc)})</p>' \
               f"<!-- {esc(traceback.format_exc())} -->"


#: The stages each section of ``build_html`` draws from, in its order: a report without a job
#: file leaves out the sections none of whose stages was named (``report_checks.unnamed_note``).
SECTION_STAGES = (("finetune", "tune", "evaluate"), ("finetune", "tune"), ("tune",), ("evaluate",), ("pretrain",),
                  ("generate",))


def build_html(cfg: ReportConfig, folders: dict[str, str | None], job_name: str | None = "job",
               named_only: bool = False) -> str:
    """The whole report as one HTML string. ``named_only`` (``lrl report`` run alone, which does
    not search ``output.root``): of the folders named only, the sections of other stages left out
    and said; ``job_name`` None: made without a job file (implies ``named_only``)."""
    named_only = named_only or job_name is None
    # Scores over seeds: the finetune stage's runs, or else tune's retrained best (same results.json).
    ft = rd.finetune_scores(folders.get("finetune") or folders.get("tune"))
    ev = rd.evaluate_scores(folders.get("evaluate"))
    kind = _words(ft)[1]  # a POS tagger's report speaks of tags, not entity types
    sections = [
        (f"F1 per language and {kind}", lambda: _scores_section(ft, ev) + _references(cfg, ft)),
        ("Learning curves", lambda: _curves_section(ft)),
        ("Hyperparameter search (Ray Tune)", lambda: _tune_section(rd.tune_results(folders.get("tune")))),
        (f"{kind.capitalize()} confusions", lambda: _confusion_section(
            rd.confusions(folders.get("evaluate"), cfg.max_prediction_rows), kind)),
        ("Pretraining", lambda: _pretrain_section(rd.pretrain_metrics(folders.get("pretrain")))),
        ("Generated data", lambda: generate_section(rd.generate_summary(folders.get("generate")))),
    ]
    if named_only:  # "Pretraining: not run" was a claim about stages it knew nothing of
        sections = [sec for sec, needs in zip(sections, SECTION_STAGES) if any(folders.get(s) for s in needs)]
    absent = "not given" if named_only else "not run"
    src = table(["stage", "output folder"], [[s, folders.get(s) or absent] for s in STAGES])
    src += unnamed_note(folders, job_file=job_name is not None) if named_only else ""
    body = "\n".join(f"<h2>{esc(t)}</h2>\n{_safe(t, f)}" for t, f in sections)
    job = f"Job <b>{esc(job_name)}</b>" if job_name is not None else "No job file: the folders named on the command line"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(cfg.title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{esc(cfg.title)}</h1>"
            f"<p>{job}, built {esc(time.strftime('%Y-%m-%d %H:%M:%S %Z'))}. Scores are "
            "seqeval span F1 (strict IOB2) in percent" + (TOKENS_NOTE if ft is not None and ft.get("task") == "tokens"
                                                           else "") +
            "; the dev split was also used for model selection, so dev scores are optimistic.</p>"
            "<h2>Inputs</h2>" + src + body + "</body></html>")


#: Said of a token tagger's scores (``data.ner[].scheme: tokens``).
TOKENS_NOTE = (" over one-token spans (each tag X read as B-X): token F1, which is token accuracy when every "
               "token has a gold tag and is predicted one")


#: The modules whose code draws the page. Their source is part of the report's hash: a finished
#: page was reused after the code that draws it had changed (the hash held config and inputs only).
#: Other stages name a version bumped by hand (``ROWS_VERSION``); a report takes about a second, so
#: any edit of these files draws it again, and no change can forget the bump.
CODE = ("lrl.evaluate.report", "lrl.evaluate.report_data", "lrl.evaluate.report_checks", "lrl.evaluate.plots",
        "lrl.evaluate.metrics", "lrl.evaluate.report_generate", "lrl.evaluate.report_html", "lrl.generate.manifest")


def code_print() -> str:
    """A digest of the source files of the modules in ``CODE``."""
    import hashlib
    from importlib.util import find_spec

    h = hashlib.sha256()
    for name in CODE:
        h.update(name.encode() + b"\0" + Path(find_spec(name).origin).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _inputs(folders: dict[str, str | None]) -> dict[str, str | None]:
    """What identifies each input: its manifest (hash + finish time) or, lacking one, the sizes and
    times of the files the page reads (a predictions file rewritten alone kept the old confusions).

    With its absolute path, unlike the stages' inputs (``input_print``): the report links to
    its input folders, so a moved runs folder gets a report whose links work (in ~1 s)."""
    out: dict[str, str | None] = {}
    for stage, folder in folders.items():
        if not folder:
            out[stage] = None
            continue
        man = rd._json(folder, "manifest.json")
        if isinstance(man, dict) and man.get("hash"):
            out[stage] = f"{folder}|{man['hash']}|{man.get('finished_at')}"
        else:
            p = Path(folder)  # what the page reads: JSON files and the predictions' parquet files
            files = sorted(f for f in p.rglob("*") if f.suffix in (".json", ".parquet")) if p.is_dir() else []
            out[stage] = f"{folder}|" + ";".join(f"{f.relative_to(p)}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
                                                  for f in files)
    return out


def run_report(ctx, job_file: bool = True, named_only: bool = False) -> str:
    """Write ``report.html`` for the configured (or upstream) stage folders; returns the folder.
    ``named_only``: ``lrl report`` run alone, of the folders it was given (``build_html``);
    ``job_file`` False: without a job (``build_html``'s ``job_name`` None)."""
    from lrl.config import ConfigError
    from lrl.data.files import filesystem
    from lrl.data.output import StageOutput
    from lrl.data.remote import is_dir

    cfg = ctx.cfg
    # A folder the user named must exist: a typo would otherwise become a quiet "not run".
    missing = [f"report.{s}={getattr(cfg.report, s)}" for s in STAGES  # on an object store too
               if getattr(cfg.report, s) and not is_dir(getattr(cfg.report, s))]
    if missing:
        raise ConfigError(f"stage output folder(s) not found: {', '.join(missing)}")
    folders = {s: getattr(cfg.report, s) or ctx.upstream.get(s) for s in STAGES}
    check_inputs({s: getattr(cfg.report, s) for s in STAGES}, folders, cfg.output.root)
    # The job's name is printed on the page: a renamed job must not reuse a report with the old one.
    shaping = {**cfg.report.model_dump(mode="json"), "job_name": cfg.name, "code": code_print(),
               **({} if job_file else {"job_file": False}),  # named only then: a job's reports keep their names
               **({"named_only": True} if named_only and job_file else {})}  # other sections than lrl run's
    out = StageOutput(cfg.output.root, "report", shaping, _inputs(folders))
    if out.done:
        return out.path
    try:
        text = build_html(cfg.report, folders, cfg.name if job_file else None, named_only)
        fs, tmp = filesystem(out.tmp)  # on an object store too
        with fs.open_output_stream(f"{tmp}/report.html") as f:
            f.write(text.encode("utf-8"))
        return out.commit({"file": "report.html", "bytes": len(text.encode()),
                           "sections_not_run": text.count('class="na"'),
                           "inputs": {k: v for k, v in folders.items()}})
    except BaseException:
        out.abort()
        raise


__all__ = ["run_report", "build_html"]
