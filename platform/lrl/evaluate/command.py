"""``lrl evaluate``: span F1 of tagging models on labelled data, with predictions written out.

Two ways to call it:

- ``lrl evaluate --model M --data D [--lang ug] [--out DIR]``: any tagger folder on any labelled
  file (CoNLL/TSV, JSONL, Parquet) or dataset folder (a generate output or a Parquet folder);
  the language comes from ``--lang`` or the data's ``lang`` column.
- ``lrl evaluate CONFIG [overrides]``: the evaluate stage, ``run_evaluate``: every model of the
  finetune (or tune) output on the ``data.ner`` splits named in ``evaluate.splits``.

Both write ``predictions/<model>/<split>.{conll,parquet}`` (token, gold, predicted) and
``metrics.json`` (micro P/R/F1, per entity type, per language) through a ``StageOutput``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pyarrow as pa

from lrl.cli import add_job_arguments, load_job_args
from lrl.config import ConfigError
from lrl.data.files import InputError, filesystem, fingerprint, read_json, uncompressed_name
from lrl.data.output import StageOutput
from lrl.data.remote import is_file, is_remote, local_folder, local_output
from lrl.data.sited_print import data_print, sited_print
from lrl.evaluate.notes import align_key, print_scores, untrained_key
from lrl.model.special_text import folder_specials, typed_specials
from lrl.pipeline.stage import StageContext

STAGE = "evaluate"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser, config_required=False)
    parser.add_argument("--model", help="tagger folder, or a finetune/tune output folder: each of its "
                                          "models/<name>/ is scored on --data")
    parser.add_argument("--data", help="labelled file (conll/tsv, jsonl, parquet) or dataset folder")
    parser.add_argument("--lang", help="language of --data when it has no lang column (ISO 639)")
    parser.add_argument("--scheme", choices=["iob2", "tokens"], default="iob2",
                        help="tags of --data: iob2 (NER spans) or tokens (one label per token, e.g. POS; "
                             "as data.ner[].scheme). A .conllu file is read as tokens")
    parser.add_argument("--column", choices=["upos", "xpos"], default="upos",
                        help="the tag column of a .conllu --data (as data.ner[].column)")
    parser.add_argument("--out", default="runs", help="folder under which evaluate-<hash>/ is written")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per forward pass (one longer than the "
                                                                        "model's max_length counts once per chunk)")
    # --model mode has no config to override (a dotted evaluate.device=... is read as CONFIG).
    parser.add_argument("--device", help="device to predict on: cpu (the default with --model), cuda or cuda:N, "
                                         "a GPU of this process; with CONFIG the same as evaluate.device=...")


def model_folders(path: str) -> dict[str, str]:
    """``{name: folder}``: the folder itself when it is a model, else each ``models/<name>/`` in it."""
    if is_remote(path):  # a stage output on an object store (Path saw no file in it)
        return _remote_model_folders(path)
    p = Path(path)
    if (p / "config.json").is_file():
        return {p.name: str(p)}
    found = {d.name: str(d) for d in sorted((p / "models").glob("*")) if (d / "config.json").is_file()}
    if not found:
        raise InputError(f"{path}: neither a model folder (config.json) nor a stage output with models/<name>/")
    return found


def _check_weights(folder: str) -> None:
    """An InputError for a model folder without ``model.safetensors`` (nor its sharded index):
    ``Tagger.load`` ended such a folder in a transformers OSError traceback."""
    base = folder.rstrip("/")
    if not any(is_file(f"{base}/{w}") for w in ("model.safetensors", "model.safetensors.index.json")):
        raise InputError(f"{folder}: a model folder without weights (no model.safetensors): an unfinished "
                         "copy or upload? lrl and transformers' save_pretrained write it there")


def _remote_model_folders(path: str) -> dict[str, str]:
    import pyarrow.fs as pafs

    base = path.rstrip("/")
    if is_file(f"{base}/config.json"):
        return {base.rsplit("/", 1)[-1]: base}
    fs, inner = filesystem(f"{base}/models")
    subs = fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
    found = {i.base_name: f"{base}/models/{i.base_name}" for i in sorted(subs, key=lambda i: i.base_name)
             if i.type == pafs.FileType.Directory and is_file(f"{base}/models/{i.base_name}/config.json")}
    if not found:
        raise InputError(f"{path}: neither a model folder (config.json) nor a stage output with models/<name>/")
    return found


def evaluate_model(model_dir: str, table: pa.Table, out_dir: str, name: str, batch_size: int = 64,
                   device: str = "cpu", files_root: str | None = None) -> dict:
    """Predict ``table`` with the tagger in ``model_dir``, write predictions, return its scores.

    With ``files_root`` the prediction files are named relative to it: a stage writes into its
    temporary folder and renames it, so absolute paths would point at a folder that is gone."""
    from lrl.evaluate import metrics as mt
    from lrl.evaluate.predict import align_per_lang, predict_tags, write_predictions
    from lrl.train.finetune_model import Tagger

    _check_weights(model_dir)
    tagger = Tagger.load(folder := local_folder(model_dir)).to(device)  # one on an object store: copied here
    mt.check_iob2_labels(tagger.labels, model_dir)
    sents, langs = table.column("tokens").to_pylist(), table.column("lang").to_pylist()
    pred, stats = predict_tags(tagger, sents, langs, batch_size, device)
    files = write_predictions(table, pred, out_dir, name)
    if files_root is not None:
        files = {k: os.path.relpath(v, files_root) for k, v in files.items()}
    gold = table.column("tags").to_pylist()
    scores = mt.scores_by_lang(gold, pred, langs)
    gaps = mt.label_gaps(tagger.labels, scores)
    per_lang = align_per_lang(tagger, sents, langs)  # only for rows of several languages (align_key)
    return {**scores, "sentences": table.num_rows, "align": stats.as_dict(), "files": files,
            **({"align_per_lang": per_lang} if per_lang else {}),
            **({"label_gaps": gaps} if any(gaps.values()) else {}), **mt.conlleval_note(gold, pred),
            **({"untrained_langs": other} if (other := mt.untrained_langs(folder, langs)) else {})}


def run_evaluate(ctx: StageContext, quiet: bool = False) -> str:
    """Evaluate every model of the finetune/tune output on the configured splits; returns the folder.

    Prints the scores when it computed them (``lrl run`` said only "evaluate: done"), unless
    ``quiet`` (``lrl evaluate`` prints them itself, also for a reused folder)."""
    from lrl.data.readers import read_ner
    from lrl.pipeline.preflight import PreflightError, check_stage_folders
    from lrl.pipeline.preflight_inputs import check_evaluate_splits

    cfg = ctx.cfg
    check_stage_folders(cfg, "evaluate")  # evaluate.model=x: "no such folder", not "neither a model folder nor ..."
    try:  # the error of lrl run's preflight and of the dry runs, before models are looked for
        check_evaluate_splits(cfg, [STAGE], alone=True)
    except PreflightError as exc:
        raise ConfigError(str(exc)) from None
    source = cfg.evaluate.model or ctx.upstream.get("finetune") or ctx.upstream.get("tune")
    if not source:
        raise ConfigError("evaluate needs models: set evaluate.model (a finetune-<hash> or tune-<hash> output "
                          "folder, or a model folder), or run the stage in its pipeline (lrl run JOB --only "
                          "evaluate), which takes the finetune or tune stage's output")
    models = model_folders(source)
    # Every language of the job, not only those of one split: a per-language model must skip a
    # split without its language rather than be scored on the other languages' rows.
    job_langs = {src.lang for src in cfg.data.ner}
    tables: dict[str, list[pa.Table]] = {}
    rejects = 0
    for src in cfg.data.ner:
        if src.split in cfg.evaluate.splits:
            res = read_ner(src, cfg.data.root, cfg.data.bio_policy, cfg.data.labels)
            tables.setdefault(src.split, []).append(res.table)
            rejects += res.rejects.num_rows
    splits = {k: pa.concat_tables(v) for k, v in tables.items()}
    if unscored := _unscored(splits, models, job_langs, _chosen(cfg, ctx)):
        from lrl.config import config_warning

        config_warning(f"warning: evaluate: no model of {source} is for {', '.join(unscored)}: the per-language "
                       f"models ({', '.join(sorted(models))}) score their own language's rows only, so these rows "
                       "are left out of metrics.json and the report; fine-tune a model for each (a split: train "
                       "source in data.ner)")
    inputs = {"models": {n: _model_print(m) for n, m in models.items()},
              "data": {k: [fingerprint(_resolved(s, cfg.data.root)) for s in cfg.data.ner if s.split == k] for k in splits}}
    # The reading policy decides which rows are scored (quarantined ones are not), so it shapes
    # the output as much as the files do.
    shaping = {**cfg.evaluate.model_dump(mode="json"), "bio_policy": cfg.data.bio_policy, "labels": cfg.data.labels}
    # So does the form the tokens are read in (data.unicode): they are scored (a tokenizer without
    # NFKC reads NFC and NFD apart) and written back next to the predictions. Always named, so
    # that folders written before NFC reading (tokens as given) are not reused either.
    shaping["unicode"] = cfg.data.unicode
    # How the tags were read shapes the scores too (upos or xpos of one treebank file); named
    # only for token-level sources, so that the folders of IOB2 runs keep their names.
    tokens = [[s.path, s.split, s.scheme, s.column] for s in cfg.data.ner if s.scheme != "iob2"]
    if tokens:
        shaping["token_sources"] = tokens
    shaping |= _typed_specials(models, splits.values())  # a word "[SEP]": only then
    shaping |= untrained_key(models, {n: {x for t in splits.values()
                                          for x in _rows_for(t, n, job_langs).column("lang").to_pylist()} for n in models})
    shaping |= align_key(_rows_for(t, n, job_langs).column("lang").to_pylist() for n in models for t in splits.values())
    out = StageOutput(cfg.output.root, STAGE, {**shaping, **_decoding(models)}, inputs)
    if out.done:
        return out.path
    _check_device(cfg.evaluate.device)
    try:
        metrics: dict = {"models": {}, "rejected_rows": rejects}
        with local_output(out.tmp) as local:  # predictions are written as local files
            for name, folder in models.items():
                metrics["models"][name] = {}
                for split, table in splits.items():
                    part = _rows_for(table, name, job_langs)
                    if part.num_rows == 0:
                        continue
                    metrics["models"][name][split] = evaluate_model(
                        folder, part, f"{local}/predictions/{name}", split, cfg.evaluate.batch_size,
                        cfg.evaluate.device, files_root=local)
            seeds = f"{source.rstrip('/')}/results.json"
            if is_file(seeds):  # the finetune stage's per-seed dev scores (mean ± sd)
                metrics["seeds_dev"] = {g: e["summary"] for g, e in read_json(seeds).get("groups", {}).items()}
            _write_metrics(local, metrics)
        path = out.commit({"models": sorted(models), "splits": sorted(splits), "source": source,
                           "f1": {n: {s: v["f1"] for s, v in d.items()} for n, d in metrics["models"].items()}})
    except BaseException:
        out.abort()
        raise
    if not quiet:
        print_scores(path)
    return path


def _check_device(device: str, setting: str = "evaluate.device") -> None:
    """A ConfigError before any model loads when ``evaluate.device`` (``setting``: ``--device`` of
    the ``--model`` mode) names a GPU this process lacks.
    The stage runs in the driver, not in a Ray task: on a cluster whose GPUs are on workers, torch
    failed at the first model with "Found no NVIDIA driver" (or, CPU build, "Torch not compiled
    with CUDA enabled"), which did not say where the stage runs."""
    if not device.startswith("cuda"):
        return
    import torch

    seen = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if int(device.partition(":")[2] or 0) >= seen:
        raise ConfigError(f"{setting}={device}, but the process running the evaluate stage (the driver: lrl "
                          f"itself, not a Ray worker) sees {seen} GPU(s): set {setting}=cpu, or run lrl on a "
                          "machine with the GPU")


def cli_device(device: str | None) -> str:
    """``--device`` of the ``--model`` mode, validated as ``evaluate.device`` is at load (``cpu``
    when not given): ``auto`` or ``gpu`` failed only once predicting began."""
    from pydantic import ValidationError

    from lrl.evaluate.config import EvaluateConfig

    try:
        return EvaluateConfig(device=device or "cpu").device
    except ValidationError as exc:
        raise ConfigError(f"--device: {exc.errors()[0]['ctx']['error']}") from None


def _resolved(src, root: str | None) -> str:
    from lrl.data.files import resolve

    return resolve(src.path, root)


def _model_print(folder: str) -> str:
    p = f"{folder.rstrip('/')}/model.safetensors"
    return fingerprint(p) if is_file(p) else folder


#: Bumped when a CRF head decodes otherwise, so that evaluations of CRF models are made again
#: (2: one Viterbi pass over a long sentence's chunks, ``CRF.decode_rows``). Linear heads keep theirs.
CRF_DECODING = 2


def _decoding(models: dict[str, str]) -> dict[str, int]:
    return {"crf_decoding": CRF_DECODING} if any(is_file(f"{m.rstrip('/')}/crf.safetensors")
                                                 for m in models.values()) else {}


def _chosen(cfg, ctx: StageContext) -> set[str]:
    """The languages the models' stage was told to train (``finetune.languages``, for tune
    ``tune.languages`` or else that; both when ``evaluate.model`` names the models); empty: all."""
    if cfg.evaluate.model is None:
        tune = ctx.upstream.get("finetune") is None
        return set((cfg.tune.languages if tune else None) or cfg.finetune.languages or [])
    return set(cfg.tune.languages or []) | set(cfg.finetune.languages or [])


def _unscored(splits: dict[str, pa.Table], models: dict[str, str], job_langs: set[str],
              chosen: set[str] | None = None) -> list[str]:
    """``"<lang> <split> (<n> sentences)"`` for each language whose rows no model scores
    (``_rows_for``): per-language models (every one named after a language of the job) and a
    language without one, e.g. ``lang: yo, split: dev`` beside ug and wo train+dev sources. Not
    a language left out of ``chosen`` (``_chosen``: ``tune.languages=[ug]`` beside wo train+dev
    named wo, and said to add the train source it has)."""
    if not all(name in job_langs for name in models):
        return []  # a joint or single model scores every row
    out = []
    for split, table in splits.items():
        langs = table.column("lang").to_pylist()
        out += [f"{lang} {split} ({langs.count(lang)} sentences)" for lang in sorted(set(langs) - set(models))
                if not chosen or lang in chosen]
    return out


def _rows_for(table: pa.Table, model_name: str, langs: set[str] | None = None) -> pa.Table:
    """A per-language model (named by its language) sees only its language's rows; others all.

    ``langs`` adds languages known beyond this table (the job's), so that a model named after one
    of them gets no rows, not all, from a table that lacks its language."""
    import pyarrow.compute as pc

    langs = set(table.column("lang").to_pylist()) | set(langs or ())
    return table.filter(pc.equal(table.column("lang"), model_name)) if model_name in langs else table


def _typed_specials(models: dict[str, str], tables) -> dict[str, int]:
    """The ``typed_specials`` key when a word of the data spells a special token of a model's
    tokenizer (``[SEP]``), which prediction reads as its characters since (``lrl.train.align``),
    else nothing: the folders of other evaluations keep their names."""
    specials = set().union(*(folder_specials(m) for m in models.values()))
    return typed_specials(specials, [t.column("tokens") for t in tables])


def _write_metrics(folder: str, metrics: dict) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False, default=str))


def evaluate_files(model: str, data: str, lang: str | None, out_root: str, batch_size: int = 64,
                   device: str = "cpu", scheme: str = "iob2", column: str = "upos") -> str:
    """The ``--model/--data`` mode: every model in ``model`` on the labelled data ``data``, on
    ``device`` (``--device``, checked as ``evaluate.device`` is), its tags read by ``scheme`` and
    ``column`` (``--scheme``/``--column``, as ``data.ner[]``'s)."""
    from lrl.evaluate.predict import read_labelled

    models = model_folders(model)
    table, rejects = read_labelled(data, lang, scheme, column)
    # A per-language stage folder (models/ug, models/sw): each model scores only its language's
    # rows, and one whose language the data lacks is left out, as in the stage. Handed ug data,
    # the sw model was scored on it (its name was no language of the data, so it got every row).
    per_lang = set(models) if len(models) > 1 and not is_file(f"{model.rstrip('/')}/config.json") else None
    models = {n: m for n, m in models.items() if _rows_for(table, n, per_lang).num_rows}
    if not models:
        raise InputError(f"{data}: no model of {model} is for the language(s) of these rows "
                         f"({', '.join(sorted(set(table.column('lang').to_pylist())))})")
    # A GPU's predictions may differ from the CPU's in the last digits, so the device names the
    # output as evaluate.device does in the stage's; on the CPU it is left out, keeping the
    # folders of runs made before --device existed. The same for how the tags were read.
    read_as = {**({"scheme": scheme} if scheme != "iob2" else {}), **({"column": column} if column != "upos" else {})}
    # The models and the data by content, not where they lie (a moved or copied folder was evaluated
    # again): each model by ``sited_print`` under its name (which chooses its rows, ``_rows_for``),
    # the data by its format (how it is read) and fingerprint.
    shaping = {"data_form": _data_form(data), "per_lang": sorted(per_lang) if per_lang else None, "lang": lang,
               **({"device": device} if device != "cpu" else {}), **read_as}
    if Path(data).is_dir() or data.endswith(".parquet"):
        shaping["unicode"] = "nfc"  # Parquet tokens are read composed now; earlier folders kept them as given
    shaping |= _typed_specials(models, [table])
    shaping |= untrained_key(models, {n: _rows_for(table, n, per_lang).column("lang").to_pylist() for n in models})
    shaping |= align_key(_rows_for(table, n, per_lang).column("lang").to_pylist() for n in models)
    out = StageOutput(out_root, STAGE, {**shaping, **_decoding(models)},
                      {"models": {n: sited_print(m) for n, m in models.items()}, "data": data_print(data)})
    if out.done:
        return out.path
    _check_device(device, "--device")
    try:
        metrics: dict = {"models": {}, "data": data, "rejected_rows": rejects}
        with local_output(out.tmp) as local:  # --out on an object store: written here, then uploaded
            for name, folder in models.items():
                metrics["models"][name] = {"data": evaluate_model(folder, _rows_for(table, name, per_lang),
                                                                  f"{local}/predictions/{name}", "data", batch_size,
                                                                  device, files_root=local)}
            _write_metrics(local, metrics)
        return out.commit({"models": sorted(models), "data": data,
                           "f1": {n: d["data"]["f1"] for n, d in metrics["models"].items()}})
    except BaseException:
        out.abort()
        raise


def _data_form(data: str) -> str:
    """How ``read_labelled`` reads ``data``: a folder, else the file's format and compression
    extensions (``.conllu.gz``), which choose the reader, not its name or location."""
    if Path(data).is_dir():
        return "folder"
    plain = uncompressed_name(data)
    return Path(plain).suffix + data[len(plain):]


def run(args: argparse.Namespace) -> int:
    if args.config is None:
        if not args.model or not args.data:
            raise InputError("give CONFIG, or both --model and --data")
        from lrl.data.local_or_hub import missing_local_folder

        # As evaluate.model: "--model=x: no such folder (<path> not found ...)", not "neither a model folder ..."
        if (problem := missing_local_folder("--model", args.model)) is not None:
            raise InputError(problem)
        path = evaluate_files(args.model, args.data, args.lang, args.out, args.batch_size, cli_device(args.device),
                              args.scheme, args.column)
    else:
        if args.device is not None:  # after the dotted overrides: the flag wins, as given last
            args.overrides = [*args.overrides, f"evaluate.device={args.device}"]
        cfg = load_job_args(args)
        path = run_evaluate(StageContext(cfg, {}), quiet=True)
    print_scores(path)
    return 0


__all__ = ["add_arguments", "run", "run_evaluate", "print_scores", "evaluate_model", "evaluate_files", "model_folders"]
