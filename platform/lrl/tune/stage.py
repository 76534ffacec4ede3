"""The tune stage: one Ray Tune search per language, a table of the best configs, the best model.

Output folder (``<output.root>/tune-<hash>/``): ``best.csv``/``best.json`` (best config and dev F1
per language, with the dev set's size and the trials within one dev entity of the best),
``trials.csv``/``trials.json`` (every trial: params, dev F1, evaluations, its training time
(``time_s``; ``wall_s`` with the worker's start-up), early stop, and its
folder under ``tune.storage_path``, ``tune-<hash>-<lang>/``, when one is set), ``models/<lang>/``
(Hugging Face folder + model card), ``results.json`` (the retrained runs per seed, shaped like the
finetune stage's) and ``manifest.json``. A language searched before with the same settings, data
and encoder (by a stopped run, or in another tune output, e.g. before a language was added) is
taken from there, not searched again (``lrl.tune.resume``).

Why the best model is RETRAINED rather than copied from its trial: under ASHA a trial may be
killed at any report, trial folders live on whichever node ran them (and are not synced without
checkpoints), and checkpointing every evaluation of every trial costs disk and time for models that
are mostly thrown away. Retraining the winning config once per seed of ``evaluate.seeds`` (as the
finetune stage trains its runs: scores over seeds are what the evaluation reports), in Ray tasks
that ship the saved folder back as bytes (only the best seed's is fetched), works the same on a
laptop and on a cluster; the mean dev F1 is recorded beside the trial's so any gap is visible.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa

from lrl.config import config_warning
from lrl.data.files import filesystem
from lrl.data.output import StageOutput
from lrl.data.sited_print import sited_print
from lrl.evaluate.model_card import (
    TASKS,
    CardInfo,
    Score,
    card_base,
    card_datasets,
    card_task,
    write_model_card,
)
from lrl.model.special_text import folder_specials
from lrl.pipeline.stage import StageContext
from lrl.runtime import init_ray
from lrl.train.finetune_config import FinetuneConfig
from lrl.train.finetune_data import TRAIN_SET_VERSION
from lrl.train.finetune_names import by_content, located
from lrl.train.finetune_reuse import own_few_shot
from lrl.tune.resume import FinishedLanguages, language_key
from lrl.tune.search import (
    METRIC,
    PARAM_PATHS,
    TrainFn,
    check_trial_resources,
    close_to_best,
    cut_trials,
    dev_entities,
    finetune_with,
    grid_size,
    idle_scheduler,
    search_language,
)
from lrl.tune.splits import check_encoder, dev_checks, fingerprint, language_splits, resolve_model

#: Tune fields left out of the output's hash: where Ray Tune keeps its trial folders changes no
#: result (tests/test_tune.py, test_storage_path_does_not_change_the_output).
RUN_CONTROL = {"storage_path"}


def _write_text(path: str, text: str) -> None:
    fs, inner = filesystem(path)
    with fs.open_output_stream(inner) as f:
        f.write(text.encode("utf-8"))


def _csv(rows: list[dict[str, Any]]) -> str:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _retrain(cfg_ft, model_path: str, train: pa.Table, dev: pa.Table, seed: int, threads: int,
             train_fn: TrainFn | None) -> tuple[Any, dict[str, bytes]]:
    """Train once with ``out_dir`` and return (result, {relative path: bytes}) of the saved folder."""
    import torch

    from lrl.train.finetune_config import in_ray_task
    from lrl.tune.search import _default_train_fn

    torch.set_num_threads(threads)
    fn = train_fn or _default_train_fn()
    cfg_ft = in_ray_task(cfg_ft, "tune.gpus_per_trial")  # device auto: the GPU the task reserved
    with tempfile.TemporaryDirectory(prefix="lrl-best-") as tmp:
        result = fn(cfg_ft, model_path, train, dev, seed=seed, out_dir=tmp, report=None)
        files = {str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
    result.model_dir = None  # the temporary folder is gone; the caller writes the files
    return result, files


def _save_best(ctx: StageContext, out: StageOutput, lang: str, best: dict, model_path: str,
               train: pa.Table, dev: pa.Table, train_fn: TrainFn | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Retrain the best configuration once per seed of ``evaluate.seeds`` (as the finetune stage
    trains its runs), keep the best seed's model; returns (best-row fields, results.json group)."""
    import dataclasses

    from lrl.evaluate.metrics import aggregate, mean_sd, type_summary

    cfg = ctx.cfg
    ray = init_ray(cfg.ray)
    # Only what was searched: the rest stays finetune's (the row holds the effective values).
    params = {k: best[k] for k in ["lr", *cfg.tune.space.lists()]}
    ft = finetune_with(cfg.finetune, params)
    # Scores come back, each seed's model files stay in the object store until the best is known.
    task = ray.remote(num_cpus=cfg.tune.cpus_per_trial, num_gpus=cfg.tune.gpus_per_trial, num_returns=2)(_retrain)
    seeds = cfg.evaluate.seeds
    refs = {s: task.remote(ft, model_path, train, dev, s, max(1, int(cfg.tune.cpus_per_trial)), train_fn)
            for s in seeds}
    from lrl.train.finetune import task_result  # a task's ConfigError as its one line, not Ray's traceback

    results = {s: task_result(refs[s][0]) for s in seeds}
    best_seed = max(seeds, key=lambda s: results[s].dev_f1)
    folder = f"{out.tmp}/models/{lang}"
    fs, inner = filesystem(folder)
    for rel, blob in ray.get(refs[best_seed][1]).items():
        fs.create_dir(os.path.dirname(f"{inner}/{rel}"), recursive=True)
        with fs.open_output_stream(f"{inner}/{rel}") as f:
            f.write(blob)
    runs = []
    for s in seeds:
        r = results[s]  # a TaggerResult, or a stand-in's namespace
        run = dataclasses.asdict(r) if dataclasses.is_dataclass(r) else dict(vars(r))
        run.pop("model_dir", None)
        runs.append({"seed": s, **run})
    summary = aggregate([r["scores"] for r in runs if r.get("scores")])
    per_type = type_summary(runs)
    f1 = mean_sd([float(r["dev_f1"]) for r in runs])
    scores = [Score(lang, "overall", f1["mean"], f1["sd"], f1["n"])]
    scores += [Score(lang, t, st["mean"], st["sd"], st["n"]) for t, st in sorted(per_type.items())]
    # The saved run's own counts: few-shot and the augmentation mix choose rows per seed. Worded as
    # the finetune stage's cards: the count under the first train file's name was the generate
    # stage's augmented total (WikiANN ug: "wikiann/ug/train | 5420" for a file of 1603 sentences).
    info_best = getattr(results[best_seed], "info", None) or {}
    from lrl.train.finetune import unk_warning

    said = unk_warning(lang, info_best.get("align") or {}, "tune")
    if said:  # as the finetune stage: an encoder that reads the language as unknown words
        print(said, file=sys.stderr)
    trained = info_best.get("train_rows_per_lang", {}).get(lang, train.num_rows)
    orig = info_best.get("train_orig_rows_per_lang", {}).get(lang, trained)
    counts = [{"source": "train (after few-shot / augmentation mix)", "lang": lang, "split": "train",
               "sentences": trained}]
    if orig != trained:
        counts.append({"source": "train, original sentences only", "lang": lang, "split": "train",
                       "sentences": orig})
    counts.append({"source": "dev", "lang": lang, "split": "dev", "sentences": dev.num_rows})
    # Named after what the model is: the folder's hash leaves the job name out (see finetune).
    task = card_task(cfg, [lang])
    info = CardInfo(name=f"lrl-{lang}-{TASKS[task]['suffix']}", languages=[lang], scores=scores,
                    base_model=card_base(cfg.tune.model_path or cfg.finetune.model, model_path),
                    # Only the language's own few_shot, as its search's key (``own_few_shot``).
                    config=own_few_shot({"finetune": ft.model_dump(mode="json"), "searched": params,
                                         "seeds": seeds, "best_seed": best_seed}, lang),
                    data=counts, license=cfg.report.license, task=task, datasets=card_datasets(cfg, [lang]))
    write_model_card(folder, info)  # on an object store too
    row = {"retrain_dev_f1": f1["mean"], "retrain_dev_f1_sd": f1["sd"], "retrain_seeds": len(seeds),
           "best_seed": best_seed, "model_dir": f"models/{lang}"}
    group = {"summary": summary, "per_type": per_type, "best_seed": best_seed, "runs": runs,
             "model_dir": f"models/{lang}"}
    return row, group


#: Finetune settings a search never reads: it trains one language at a time, so the joint mode,
#: the sampling across languages and ``select_by`` (one dev language: its two figures are one,
#: ``tagger.selection_score``) do nothing to it, and its trials take their threads and CPUs from
#: ``tune.cpus_per_trial``, not ``finetune.threads``/``num_cpus``. Left at their defaults in its
#: output's name (a changed value searched every language again for the same trials), and in what
#: the trials and retrained runs get, so that the folder's records (runs' ``select_by``, cards) are
#: the same for any value of them.
UNUSED_BY_SEARCH = ("mode", "sampling_alpha", "select_by", "threads", "num_cpus")


def _shaping(ft: FinetuneConfig) -> FinetuneConfig:
    """``ft`` as the tune output's name and its runs see it (``UNUSED_BY_SEARCH`` at their defaults)."""
    return ft.model_copy(update={f: FinetuneConfig.model_fields[f].default for f in UNUSED_BY_SEARCH})


def run_tune(ctx: StageContext, train_fn: TrainFn | None = None) -> str:
    """Search every language, write the tables and the best model per language; returns the folder.

    ``train_fn`` replaces ``train_tagger`` (tests and benchmarks use stand-ins); a finished
    folder for the same config and inputs is returned without work.
    """
    import dataclasses

    from lrl.model.crf import head_version
    from lrl.train.finetune_dropout import dropout_version, encoder_config, unreached

    cfg = ctx.cfg
    from lrl.pipeline.preflight import check_stage_folders
    from lrl.train.finetune import check_gpu_request

    check_gpu_request(cfg.finetune, cfg.tune.gpus_per_trial, "tune.gpus_per_trial")  # before every trial fails on it
    check_stage_folders(cfg, "tune")  # a missing encoder folder: before the data is read
    said: list[str] = []  # printed only when the stage searches
    splits = language_splits(ctx, cfg.tune.languages, said=said)
    model_path = resolve_model(ctx, splits)
    searched = cfg.tune.space.freeze_layers is not None  # before any trial, not inside each
    check_encoder(model_path, cfg.finetune.max_length,
                  cfg.tune.space.freeze_layers if searched else [cfg.finetune.freeze_layers],
                  "tune.space.freeze_layers" if searched else "finetune.freeze_layers")
    # the encoder by content; a remote one by its path too, its print being only sizes and mtimes (``sited_print``)
    inputs = {"data": fingerprint(splits, folder_specials(model_path)), "model": sited_print(model_path)}
    # evaluate.seeds only when the best configuration is retrained with them (save_best): without
    # it a changed list searched every language again for the same trials.
    # finetune.dropout or a searched tune.space.dropout on an encoder with a dropout key that
    # earlier code left alone trains otherwise now (``lrl.train.finetune_dropout``); others keep their name.
    dropout = max(cfg.tune.space.dropout) if cfg.tune.space.dropout else cfg.finetune.dropout
    common = {"seed": cfg.seed, **({"seeds": cfg.evaluate.seeds} if cfg.tune.save_best else {}),
              "license": cfg.report.license,  # on the cards
              "train_set_version": TRAIN_SET_VERSION, **head_version(cfg.finetune.head),
              **dropout_version(encoder_config(model_path), dropout)}
    # tune.model_path, finetune.model and finetune.data, when set, by content only (``inputs``):
    # a moved or copied folder is the same output. Unset, they name it as before.
    tune = {**cfg.tune.model_dump(mode="json", exclude=RUN_CONTROL), "model_path": located(cfg.tune.model_path)}
    out = StageOutput(cfg.output.root, "tune", {"tune": tune, "finetune": by_content(_shaping(cfg.finetune).model_dump(
        mode="json")), **common}, inputs)
    if out.done:
        return out.path
    setting = "tune.space.dropout" if cfg.tune.space.dropout else "finetune.dropout"
    for line in [*said, unreached(encoder_config(model_path), dropout, model_path, setting)]:
        if line:
            print(line, file=sys.stderr)
    # The runs get finetune as the name sees it (UNUSED_BY_SEARCH: nothing they read changes).
    cfg = cfg.model_copy(update={"finetune": _shaping(cfg.finetune)})
    ctx = dataclasses.replace(ctx, cfg=cfg)
    # The trials train with the job's seed, the retrained best model (save_best) with each of evaluate.seeds.
    seeds = [cfg.seed, *(cfg.evaluate.seeds if cfg.tune.save_best else [])]
    dev_said = dev_checks(splits, "tune", cfg.finetune, seeds, False)  # one search, one model per language
    # Per language, what its search depends on: the same without the language lists, and with the
    # data and encoder by content only (``inputs``), not by the settings that name them.
    settings = {"tune": cfg.tune.model_dump(mode="json", exclude=RUN_CONTROL | {"languages", "model_path"}),
                "finetune": _shaping(cfg.finetune).model_dump(mode="json", exclude={"languages", "data", "model"}),
                **common}
    # Each language's key with only its own few_shot k (``own_few_shot``): a language a mapping
    # leaves out is searched as with few_shot unset, and is taken from such a search.
    keys = {lang: language_key(own_few_shot(settings, lang), lang, inputs["data"][lang], inputs["model"])
            for lang in splits}
    init_ray(cfg.ray)
    warning = check_trial_resources(cfg.tune)  # before a search that would wait for ever
    if warning:
        config_warning(warning)
    best_rows: list[dict[str, Any]] = []
    trial_rows: list[dict[str, Any]] = []
    # Shaped like the finetune stage's results.json, so that evaluate and the report show the
    # retrained models' scores over seeds (mean ± sd) the same way.
    results: dict[str, Any] = {"mode": "per_language", "model": model_path, "seeds": cfg.evaluate.seeds,
                               "source": "tune (best configuration retrained per seed)",
                               "task": card_task(cfg, list(splits)), "groups": {}}
    finished = FinishedLanguages(out.root, keys)
    kept: list[str] = []
    try:
        for lang, (train, dev) in splits.items():
            earlier = finished.load(lang)
            if earlier is not None:  # the same search, finished before
                print(f"tune: {lang}: searched before with the same settings, data and encoder "
                      f"({finished.sources[lang]}); kept", file=sys.stderr)
                if earlier["group"] is not None:
                    finished.restore_model(lang, f"{out.tmp}/models/{lang}")
                    results["groups"][lang] = earlier["group"]
                trial_rows += earlier["trials"]
                best_rows.append(earlier["best"])
                kept.append(lang)
                continue
            # Progress, also under `lrl run` (only `lrl tune` prints the table at the end): a
            # search of minutes said nothing but Ray's path of a temporary folder it then removed.
            # Where the results go (Ray's banner named its trial folders, by default a temporary
            # folder removed after the search; it is off, see ``lrl.tune.search._fit_scope``).
            store = cfg.tune.storage_path
            trials_at = "" if not store else \
                f"; trial folders {store if '://' in store else os.path.abspath(store)}/tune-{out.hash}-{lang}"
            print(f"tune: {lang}: searching {grid_size(cfg.tune, cfg.finetune)} configuration(s), "
                  f"{train.num_rows} train / {dev.num_rows} dev sentences, scheduler {cfg.tune.scheduler}; "
                  f"results in {out.path}{trials_at}", flush=True)
            res = search_language(lang, train, dev, cfg.tune, cfg.finetune, model_path, cfg.seed, train_fn,
                                  experiment=f"tune-{out.hash}-{lang}")
            print(f"tune: {lang}: best dev F1 {100 * res.best[METRIC]:.1f} of {len(res.trials)} trial(s) "
                  f"in {res.wall_s:.0f} s" + (", retraining it per seed" if cfg.tune.save_best else ""), flush=True)
            trial_rows += res.trials
            for warning in (idle_scheduler(cfg.tune, lang, res.trials), cut_trials(cfg.tune, lang, res.trials, res.best)):
                if warning:
                    config_warning(warning)
            row = {"lang": lang, **{k: res.best[k] for k in PARAM_PATHS}, METRIC: res.best[METRIC],
                   "trial_id": res.best["trial_id"], "trials": len(res.trials),
                   "stopped_early": sum(bool(t["stopped_early"]) for t in res.trials),
                   # Crashed trials do not stop the search (the best of the rest is still a result),
                   # but a best row that hid them would claim a search that never ran in full.
                   "errored": sum(t["error"] is not None for t in res.trials), "search_wall_s": res.wall_s}
            # How far the dev set can tell trials apart: WikiANN am, ig, rw and yo have 100 dev
            # sentences (106-110 entities), where the "best" of 4 trials beat the next by 0.2 points.
            ents = dev_entities(dev)
            row.update(dev_sentences=dev.num_rows, dev_entities=ents,
                       close_trials=close_to_best(res.trials, res.best, ents))
            if cfg.tune.save_best:
                fields, results["groups"][lang] = _save_best(ctx, out, lang, res.best, model_path, train, dev,
                                                             train_fn)
                row.update(fields)
            best_rows.append(row)
            finished.save(lang, {"best": row, "trials": res.trials, "group": results["groups"].get(lang)},
                          f"{out.tmp}/models/{lang}" if cfg.tune.save_best else None)
        if results["groups"]:
            _write_text(f"{out.tmp}/results.json", json.dumps(results, indent=2, ensure_ascii=False, default=str))
        _write_text(f"{out.tmp}/best.json", json.dumps(best_rows, indent=2, default=str))
        _write_text(f"{out.tmp}/best.csv", _csv(best_rows))
        _write_text(f"{out.tmp}/trials.json", json.dumps(trial_rows, indent=2, default=str))
        _write_text(f"{out.tmp}/trials.csv", _csv(trial_rows))
        return out.commit({"languages": list(splits), "model": model_path, "trials": len(trial_rows),
                           "errored": sum(t["error"] is not None for t in trial_rows),
                           "trials_per_language": grid_size(cfg.tune, cfg.finetune), "scheduler": cfg.tune.scheduler,
                           "search": cfg.tune.search, "best": {r["lang"]: r[METRIC] for r in best_rows},
                           "kept_from_earlier_run": kept, "language_keys": keys, **dev_said})
    except BaseException:
        out.abort()  # the finished languages stay in ``finished`` for the rerun
        raise
    finally:
        if out.done:
            finished.clear()


__all__ = ["run_tune"]
