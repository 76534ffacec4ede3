"""The finetune stage: one ``train_tagger`` run per (language or joint group, seed), as Ray tasks.

Each run is an ordinary ``@ray.remote`` task (plain torch inside, see ``tagger.py``), so seeds and
languages run in parallel when the cluster has CPUs for them. A task saves its model in a local
temporary folder and returns the files' bytes as a second object, so the driver can write them to
the stage output even when workers sit on other nodes; it fetches only the best seed's. That
model per language is kept as an HF folder with its tokenizer, id2label and a model card;
``results.json`` holds every seed's scores and their mean ± sd.

Output: ``<output.root>/finetune-<hash>/{models/<lang>/, results.json, manifest.json}``
(``models/joint/`` in joint mode). ``results.json["labels"]`` is the list of labels when every group
trained with the same one, and ``{group: labels}`` when they differ: a per-language job of NER and
POS (``scheme: tokens``) languages gives each scheme its own list (``_group_labels``). Nothing in
lrl reads it; a group's model states its own in ``models/<group>/config.json`` (``id2label``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa

from lrl.data.files import filesystem
from lrl.data.output import StageOutput
from lrl.data.sited_print import sited_print
from lrl.evaluate.metrics import aggregate, type_summary
from lrl.pipeline.stage import StageContext
from lrl.runtime import init_ray
from lrl.train.finetune_config import FinetuneConfig, in_ray_task
from lrl.train.finetune_names import by_content, card_settings, run_view, shaping
from lrl.train.finetune_reuse import own_few_shot
from lrl.train.progress_relay import LineSender

STAGE = "finetune"


def progress_line(group: str, seed: int, entry: dict[str, Any]) -> str:
    """One evaluation of a fine-tuning run, as the stage prints it while the run goes on (the
    stage said nothing until every run had finished: minutes for a real encoder)."""
    of = f"/{entry['total_steps']}" if entry.get("total_steps") else ""  # how far the run is
    return (f"finetune {group} seed {seed}: step {entry['step']}{of} (epoch {entry['epoch']:.2f})  "
            f"loss {entry['train_loss']:.4f}  dev F1 {100 * entry['dev_f1']:.1f}  [{entry['time_s']:.0f} s]")


def _train_task(cfg: FinetuneConfig, model_path: str, train: pa.Table, dev: pa.Table, seed: int,
                labels: list[str], group: str = "",
                progress: LineSender | None = None) -> tuple[dict[str, Any], dict[str, bytes]]:
    """One seeded run inside a Ray task: (result as a dict, {relative path: bytes} of the model).
    Each evaluation's line goes to ``progress`` (the driver prints it), else to stdout."""
    import dataclasses

    import torch

    from lrl.train.tagger import train_tagger

    torch.set_num_threads(cfg.threads or max(1, int(cfg.num_cpus)))
    cfg = in_ray_task(cfg)  # device auto: the GPU this task reserved (finetune.num_gpus), else CPU
    say = progress.send if progress else print
    with tempfile.TemporaryDirectory(prefix="lrl-ft-") as tmp:
        out = tmp if cfg.save_model else None
        res = train_tagger(cfg, model_path, train, dev, seed=seed, out_dir=out, labels=labels,
                           report=lambda entry: say(progress_line(group, seed, entry)))
        files = {str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
    if res.info.get("stopped_early"):  # else its last line, "step 25/93", read as a run that went on or died
        say(f"finetune {group} seed {seed}: stopped early at step {res.info['steps']}/{res.info['total_steps']} "
            f"({cfg.patience} evaluation{'s' * (cfg.patience != 1)} without a better dev F1); keeps step "
            f"{res.info['best_step']}")
    row = dataclasses.asdict(res)
    row.pop("model_dir")
    return {"seed": seed, **row}, files


def task_result(ref) -> Any:
    """``ray.get(ref)``, with a ``ConfigError`` or ``InputError`` the task raised (an encoder's
    truncated model.safetensors: ``readable_weights``) raised as itself. Ray's
    ``RayTaskError(ConfigError)`` is one too, but its message is the task's whole traceback, which
    ``lrl run`` printed as its one-line error."""
    import ray

    from lrl.config import ConfigError
    from lrl.data.files import InputError

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, (ConfigError, InputError)):
            raise exc.cause from exc
        raise


def groups(splits: dict[str, tuple[pa.Table, pa.Table]], mode: str) -> dict[str, tuple[pa.Table, pa.Table]]:
    """Per-language groups as given, or one ``joint`` group with every language's rows."""
    if mode == "per_language":
        return splits
    trains = [t for t, _ in splits.values()]
    devs = [d for _, d in splits.values()]
    return {"joint": (pa.concat_tables(trains), pa.concat_tables(devs))}


def check_gpu_request(ft: FinetuneConfig, gpus: float | None = None, key: str = "finetune.num_gpus") -> None:
    """Before Ray starts: a run that must train on a GPU (``device: cuda``, or fp16) needs its
    Ray tasks to reserve one. With ``finetune.num_gpus: 0`` each task took the node's first GPU,
    which Ray reserved for none of them (``in_ray_task``), or, on a node without one, failed in
    every task behind a long remote traceback ("Torch not compiled with CUDA enabled")."""
    from lrl.config import ConfigError

    reserved = ft.num_gpus if gpus is None else gpus  # tune's trials: tune.gpus_per_trial
    if reserved == 0 and (ft.device == "cuda" or ft.precision == "fp16"):
        asked = "finetune.device=cuda" if ft.device == "cuda" else "finetune.precision=fp16"
        raise ConfigError(f"{asked} but {key}=0: the fine-tuning tasks would reserve no GPU; set {key} (e.g. 1)")


def check_task_fits(ft: FinetuneConfig, embedded: bool | None = None) -> str | None:
    """Before the first task: None when one fine-tuning task (``finetune.num_cpus``, ``num_gpus``)
    fits on a node of the Ray this process uses; a ``ConfigError`` when it never can; else a
    warning line (``lrl.train.placement``). ``num_cpus: 4`` on the embedded Ray of 2 CPUs waited
    for ever (the tune and pretrain stages already stopped at once)."""
    from lrl.train.placement import check_placement

    what = f"finetune.num_cpus={ft.num_cpus:g}" + (f" and num_gpus={ft.num_gpus:g}" if ft.num_gpus else "")
    return check_placement(what, ft.num_cpus, ft.num_gpus, "fine-tuning task", "the stage", embedded)


def best_seed(runs: list[dict]) -> int:
    """The seed whose kept evaluation scores highest by ``finetune.select_by`` (each run's
    ``info["select_f1"]``): the figure that chose each seed's evaluation also chooses among seeds,
    so a ``language_mean`` joint model is not then picked by the pooled F1. Ties: the first seed."""
    return max(runs, key=lambda r: r["info"]["select_f1"])["seed"]


def _write_files(folder: str, files: dict[str, bytes]) -> None:
    fs, inner = filesystem(folder)
    for rel, blob in files.items():
        fs.create_dir(os.path.dirname(f"{inner}/{rel}"), recursive=True)
        with fs.open_output_stream(f"{inner}/{rel}") as f:
            f.write(blob)


def _card(ctx: StageContext, folder: str, group: str, langs: list[str], runs: list[dict], summary: dict,
          model_path: str, best: dict, dev: pa.Table, labels: list[str]) -> None:
    """README.md for a saved model (best effort: a card problem must not lose the trained model)."""
    from lrl.evaluate.model_card import (
        TASKS,
        CardInfo,
        Score,
        card_base,
        card_datasets,
        card_task,
        write_model_card,
    )

    n = summary["f1"]["n"]
    scores = [Score("all" if group == "joint" else group, "overall", summary["f1"]["mean"], summary["f1"]["sd"], n)]
    for lang, st in summary.get("per_lang", {}).items():
        if group == "joint":
            scores.append(Score(lang, "overall", st["f1"]["mean"], st["f1"]["sd"], st["f1"]["n"]))
    for t, st in sorted(type_summary(runs).items()):
        scores.append(Score(group if group != "joint" else "all", t, st["mean"], st["sd"], st["n"]))
    # The saved (best) run's own count: few-shot and the augmentation mix choose rows per seed.
    seen = best["info"].get("train_rows_per_lang", {})
    orig = best["info"].get("train_orig_rows_per_lang", seen)
    data = [{"source": "train (after few-shot / augmentation mix)", "lang": lang, "split": "train",
             "sentences": seen.get(lang, 0)} for lang in langs]
    # Of which original sentences (few_shot counts these): shown when generated rows are mixed in.
    data += [{"source": "train, original sentences only", "lang": lang, "split": "train",
              "sentences": orig.get(lang, 0)} for lang in langs if orig.get(lang, 0) != seen.get(lang, 0)]
    data += [{"source": "dev", "lang": lang, "split": "dev",
              "sentences": sum(1 for x in dev.column("lang").to_pylist() if x == lang)} for lang in langs]
    # Named after what the model is, not the job: the folder's hash leaves the job name out (a
    # renamed job reuses the trained models), so a job name here would be the first job's.
    task = card_task(ctx.cfg, langs)
    config = {"finetune": card_settings(ctx.cfg.finetune), "seeds": ctx.cfg.evaluate.seeds}
    info = CardInfo(name=f"lrl-{group}-{TASKS[task]['suffix']}", languages=langs, scores=scores,
                    base_model=card_base(ctx.cfg.finetune.model, model_path),
                    # Per language only the group's own few_shot, as its key: a reused model's card
                    # (by the run that trained it) then reads the same in every folder.
                    config=own_few_shot(config, group) if ctx.cfg.finetune.mode == "per_language" else config,
                    data=data, labels=labels, license=ctx.cfg.report.license, task=task,
                    datasets=card_datasets(ctx.cfg, langs))
    write_model_card(folder, info)


def mixed_schemes(splits: dict) -> bool:
    """Whether the languages' tables were read under more than one tag scheme (POS beside NER)."""
    from lrl.data.schema import table_scheme

    return len({table_scheme(t) for pair in splits.values() for t in pair}) > 1


def _group_labels(splits: dict, types: list[str] | None, joint: bool) -> dict[str, list[str]]:
    """Each group's label list: the one of every language of its tag scheme, so that per-language
    models of one scheme share label ids. A POS language beside NER ones got the NER languages'
    BIO labels (``O``, ``I-X``) from one list over every table. A joint model of both schemes keeps
    the full BIO list (``label_list`` over tables of mixed schemes)."""
    from lrl.data.schema import table_scheme
    from lrl.train.finetune_data import label_list

    if joint:
        return {"joint": label_list([t for pair in splits.values() for t in pair], types)}
    scheme = {lang: "/".join(sorted({table_scheme(t) for t in pair})) for lang, pair in splits.items()}
    return {lang: label_list([t for other, pair in splits.items() if scheme[other] == scheme[lang] for t in pair],
                             types) for lang in splits}


def run_finetune(ctx: StageContext) -> str:
    """Fine-tune every language (or all jointly) for each seed in ``evaluate.seeds``; returns the
    folder. A group trained before with the same key is taken from there (``finetune_reuse``)."""
    from lrl.evaluate.model_card import card_task
    from lrl.model.crf import head_version
    from lrl.model.special_text import folder_specials
    from lrl.pipeline.preflight import check_stage_folders
    from lrl.train.finetune_data import TRAIN_SET_VERSION
    from lrl.train.finetune_dropout import dropout_version, encoder_config, unreached
    from lrl.train.finetune_reuse import FinishedGroups, group_key
    from lrl.train.progress_relay import ProgressRelay
    from lrl.tune.splits import check_encoder, dev_checks, fingerprint, language_splits, resolve_model

    cfg = ctx.cfg
    ft = cfg.finetune
    check_gpu_request(ft)
    check_stage_folders(cfg, STAGE)  # finetune.model=models/x: before the data is read, not "no config.json" after
    said: list[str] = []  # printed only when the stage trains
    splits = language_splits(ctx, ft.languages, STAGE, said)
    model_path = resolve_model(ctx, splits, STAGE)
    check_encoder(model_path, ft.max_length, [ft.freeze_layers], "finetune.freeze_layers")
    # the encoder by content; a remote one by its path too, its print being only sizes and mtimes (``sited_print``)
    inputs = {"data": fingerprint(splits, folder_specials(model_path)), "model": sited_print(model_path)}
    # report.license: the model cards written here carry it (a changed license must not be
    # answered with cards of the old one).
    # finetune.dropout on an encoder with a dropout key that earlier code left alone: it trains
    # otherwise now (``finetune_dropout``); every other job keeps its name.
    common = {"seeds": cfg.evaluate.seeds, "license": cfg.report.license, "train_set_version": TRAIN_SET_VERSION,
              **head_version(ft.head), **dropout_version(encoder_config(model_path), ft.dropout)}
    named = shaping(ft)  # run control, and per language sampling_alpha and select_by, left out
    # A per-language job of mixed schemes trains each scheme with its own labels (``_group_labels``):
    # its outputs of older code (one BIO list for every language) are not reused. Others hash as before.
    per_scheme = {"labels_per_scheme": 1} if ft.mode == "per_language" and mixed_schemes(splits) else {}
    # finetune.model/data, when set, by content only (``inputs``): a moved folder is the same output.
    out = StageOutput(cfg.output.root, STAGE, {"finetune": by_content(named.model_dump(mode="json")), **common,
                                               "labels": cfg.data.labels, **per_scheme}, inputs)
    if out.done:  # a re-run does no work, but still says where the output is
        man = out.manifest()
        _print_summary(out.path, man.get("dev_f1", {}), len(man.get("seeds", [])))
        return out.path
    for line in [*said, unreached(encoder_config(model_path), ft.dropout, model_path)]:
        if line:
            print(line, file=sys.stderr)
    dev_said = dev_checks(splits, STAGE, ft, cfg.evaluate.seeds, ft.mode != "per_language")
    ft = run_view(ft)  # per language select_by as its default: the same figure (``finetune_names``)
    todo = groups(splits, ft.mode)
    group_labels = _group_labels(splits, cfg.data.labels, ft.mode != "per_language")
    # results.json "labels": one list, or {group: labels} when the groups' lists differ (module docstring)
    labels = group_labels[next(iter(todo))] if len({tuple(v) for v in group_labels.values()}) == 1 else group_labels
    langs = {g: sorted(set(dev.column("lang").to_pylist())) for g, (_, dev) in todo.items()}
    # Per group, what its runs depend on: the same without the language list, by content only;
    # per language, only the group's own few_shot k (``own_few_shot``).
    settings = {"finetune": named.model_dump(mode="json", exclude={"languages", "data", "model"}), **common}
    own = {g: own_few_shot(settings, g) if ft.mode == "per_language" else settings for g in todo}
    keys = {g: group_key({**own[g], "labels": group_labels[g], "task": card_task(cfg, langs[g])}, g,
                         inputs["data"][g] if ft.mode == "per_language" else inputs["data"], inputs["model"])
            for g in todo}
    finished = FinishedGroups(out.root, keys)
    ray = init_ray(cfg.ray)
    relay: ProgressRelay | None = None  # started with the first task: a run that keeps every group has none
    # Two returns: the scores come to the driver, each seed's model files stay in the object store
    # (spilled to disk when large) and only the best seed's are fetched. Returning both in one
    # value pulled every seed's weights into the driver at once: seeds x languages x model size.
    task = ray.remote(num_cpus=ft.num_cpus, num_gpus=ft.num_gpus, num_returns=2)(_train_task)
    entries: dict[str, dict] = {}
    try:
        pending = {}
        for group, (train, dev) in todo.items():
            earlier = finished.load(group)
            if earlier is not None:  # the same runs, finished before
                print(f"finetune: {group}: trained before with the same settings, data and encoder "
                      f"({finished.sources[group]}); kept", file=sys.stderr)
                if earlier["group"].get("model_dir"):
                    finished.restore_model(group, f"{out.tmp}/models/{group}")
                entries[group] = earlier["group"]
                continue
            if relay is None:  # the first task to start: one no node can hold is waited for for ever
                wait = check_task_fits(ft)
                if wait:
                    print(wait, file=sys.stderr)
            tr, dv = ray.put(train), ray.put(dev)
            relay = relay or ProgressRelay()
            for seed in cfg.evaluate.seeds:
                pending[(group, seed)] = task.remote(ft, model_path, tr, dv, seed, group_labels[group], group,
                                                     relay.sender())
        kept = sorted(entries)
        waiting = {refs[0]: key for key, refs in pending.items()}
        done: dict[tuple[str, int], dict] = {}
        while waiting:
            ready, _ = ray.wait(list(waiting), num_returns=1, timeout=1.0)
            if relay:
                relay.print_new()
            for ref in ready:
                group, seed = waiting.pop(ref)
                done[(group, seed)] = task_result(ref)
                if all((group, s) in done for s in cfg.evaluate.seeds):  # the group is complete
                    entries[group] = _finish_group(ctx, out, finished, group, langs[group], todo[group][1],
                                                   [done[(group, s)] for s in cfg.evaluate.seeds],
                                                   pending, model_path, group_labels[group])
        if relay:
            relay.print_new()
        # select_by: which dev figure chose each seed's evaluation and the saved seed.
        # task: ner, or tokens when every source is one label per token (the report's wording)
        results: dict[str, Any] = {"mode": ft.mode, "task": card_task(cfg, sorted(splits)), "model": model_path,
                                   "labels": labels, "seeds": cfg.evaluate.seeds, "select_by": ft.select_by,
                                   "groups": {g: entries[g] for g in todo}}
        fs, inner = filesystem(f"{out.tmp}/results.json")
        with fs.open_output_stream(inner) as f:
            f.write(json.dumps(results, indent=2, ensure_ascii=False, default=str).encode())
        dev_f1 = {g: _dev_f1(e["summary"], joint=g == "joint") for g, e in results["groups"].items()}
        path = out.commit({"languages": sorted(splits), "mode": ft.mode, "model": model_path,
                           "seeds": cfg.evaluate.seeds, "select_by": ft.select_by, "dev_f1": dev_f1,
                           "models": {g: e.get("model_dir") for g, e in results["groups"].items()},
                           "kept_from_earlier_run": kept, "group_keys": keys, **dev_said})
    except BaseException:
        out.abort()  # the finished groups stay in ``finished`` for the rerun
        raise
    finally:
        if relay:
            relay.close()
        if out.done:
            finished.clear()
    _print_summary(path, dev_f1, len(cfg.evaluate.seeds))
    return path


def _finish_group(ctx: StageContext, out: StageOutput, finished, group: str, langs: list[str], dev: pa.Table,
                  runs: list[dict], pending: dict, model_path: str, labels: list[str]) -> dict[str, Any]:
    """A group whose seeds have all finished: its results.json entry, the best seed's model and
    card in the output, and both kept for a rerun (``finished``) in case the stage stops later."""
    import ray

    said = unk_warning(group, runs[0]["info"].get("align") or {})
    if said:
        print(said, file=sys.stderr)
    summary = aggregate([r["scores"] for r in runs if r["scores"]])
    best = best_seed(runs)
    entry = {"summary": summary, "per_type": type_summary(runs), "best_seed": best, "runs": runs}
    folder = None
    if ctx.cfg.finetune.save_model:
        folder = f"{out.tmp}/models/{group}"
        _write_files(folder, ray.get(pending[(group, best)][1]))
        entry["model_dir"] = f"models/{group}"
        _card(ctx, folder, group, langs, runs, summary, model_path, next(r for r in runs if r["seed"] == best),
              dev, labels)
    for r in runs:  # this group's models leave the object store now
        pending.pop((group, r["seed"]))
    finished.save(group, {"group": entry}, folder)
    return entry


#: Share of the training words an encoder's tokenizer reads as its unknown token alone, above
#: which the stage says so: the English MiniLM read 46% of WikiANN ug words that way, and its
#: scores were explained by nothing in the output.
UNK_WARN = 0.1


def unk_warning(group: str, align: dict[str, Any], stage: str = STAGE) -> str | None:
    """A warning line when more than ``UNK_WARN`` of the words (``align``: a run's alignment
    statistics, ``lrl.train.align.AlignStats``) reach the model as the unknown token only."""
    words, unk = align.get("words") or 0, align.get("unk_words") or 0
    if not words or unk / words <= UNK_WARN:
        return None
    return (f"warning: {stage} {group}: the encoder's tokenizer reads {unk / words:.0%} of the training words "
            f"({unk} of {words}) as its unknown token alone, so the model sees nothing of them: extend the "
            "tokenizer with the language's text (tokenizer.mode=extend) and continue pretraining")


def _dev_f1(summary: dict[str, Any], joint: bool) -> dict[str, Any]:
    """A group's dev F1 (mean, sd over seeds) for the manifest; a joint model's also per language:
    its pooled figure alone hid a language the model fails."""
    out = {"mean": summary["f1"]["mean"], "sd": summary["f1"]["sd"]}
    if joint and summary.get("per_lang"):
        out["per_lang"] = {lang: {"mean": s["f1"]["mean"], "sd": s["f1"]["sd"]} for lang, s in summary["per_lang"].items()}
    return out


def _print_summary(path: str, dev_f1: dict[str, dict], seeds: int) -> None:
    print(f"finetune: {path}")
    # One seed has no spread: "± 0.0" claimed a stability no second seed showed (the report and the
    # model card print "—" there).
    spread = (lambda s: f"± {100 * s['sd']:.1f} over {seeds} seeds") if seeds > 1 else (lambda s: "(one seed)")
    for g, s in dev_f1.items():
        print(f"  {g}: dev F1 {100 * s['mean']:.1f} {spread(s)}")
        for lang, one in (s.get("per_lang") or {}).items():
            print(f"    {lang}: dev F1 {100 * one['mean']:.1f} {spread(one)}")


__all__ = ["run_finetune", "groups", "best_seed", "check_gpu_request", "check_task_fits", "task_result", "unk_warning",
           "STAGE"]
