"""One Ray Tune search per language over fine-tuning hyperparameters.

Pattern (DESIGN.md, machine facts): each trial is a FUNCTION trainable that calls
``train_tagger`` in-process and forwards every dev evaluation with ``tune.report``. A
``Tuner(TorchTrainer)`` fails under Ray Train V2, and a TorchTrainer launched inside a Tune
function hung under ASHA (a stopped trial never released its CPU), so trials never start Ray Train.
The train/dev tables travel to trials through ``tune.with_parameters`` (the object store, once),
not through closures that would be pickled with every trial.

Each language gets its own Tuner (and its own ASHA rungs): scores of different languages are not
comparable, so one shared scheduler would stop a hard language's trials in favour of an easy one.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lrl.train.finetune_config import FinetuneConfig, in_ray_task
from lrl.tune.config import TuneConfig

METRIC = "dev_f1"
#: Search-space name -> dotted path in the ``finetune`` config section it sets.
PARAM_PATHS: dict[str, str] = {
    "lr": "lr",
    "batch_size": "batch_size",
    "epochs": "epochs",
    "warmup_ratio": "schedule.warmup_ratio",
    "freeze_layers": "freeze_layers",
    "dropout": "dropout",
    "schedule": "schedule.type",
}

TrainFn = Callable[..., Any]


@dataclass
class LanguageSearch:
    """Outcome of the search for one language: every trial and the best one."""

    lang: str
    trials: list[dict[str, Any]]
    best: dict[str, Any]
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)


def lr_grid(lo: float, hi: float, points: int) -> list[float]:
    """``points`` learning rates spaced evenly in log space between ``lo`` and ``hi`` (fewer when
    bounds this close round to the same 3 significant digits: the grid never repeats a rate)."""
    if points == 1 or lo == hi:
        return [math.sqrt(lo * hi)] if points == 1 else [lo]
    step = (math.log(hi) - math.log(lo)) / (points - 1)
    return list(dict.fromkeys(float(f"{math.exp(math.log(lo) + i * step):.3g}") for i in range(points)))


#: Schedules with their own rise: their trials train with warmup 0 whatever the choice.
OWN_RISE = ("one_cycle", "triangular")
#: Key of the schedule/warmup pairs in a grid's param_space (see ``_grid_lists``).
PAIRED = "schedule_warmup"


def _grid_lists(cfg: TuneConfig, base: FinetuneConfig | None) -> dict[str, list]:
    """The searched lists of a grid, with schedule and warmup crossed into one list of pairs when
    some pairs would train alike (warmup is dropped for one_cycle and triangular): crossing them
    independently would run those trials twice."""
    lists = cfg.space.lists()
    warmups = lists.get("warmup_ratio", [])
    types = lists.get("schedule") or [base.schedule.type if base else "linear"]
    if len(warmups) > 1 and any(t in OWN_RISE for t in types):
        pairs = [{"schedule": t, "warmup_ratio": 0.0 if t in OWN_RISE else w} for t in types for w in warmups]
        if "schedule" not in lists:  # not searched: the pair only carries the warmup
            pairs = [{"warmup_ratio": p["warmup_ratio"]} for p in pairs]
        unique = list({tuple(p.items()): p for p in pairs}.values())
        lists = {k: v for k, v in lists.items() if k not in ("schedule", "warmup_ratio")}
        lists[PAIRED] = unique
    return lists


def trial_params(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's Tune config as flat ``{name: value}`` (the grid's schedule/warmup pairs undone)."""
    flat = {k: v for k, v in config.items() if k != PAIRED}
    flat.update(config.get(PAIRED) or {})
    return flat


def param_space(cfg: TuneConfig, base: FinetuneConfig | None = None) -> dict[str, Any]:
    """The Ray Tune ``param_space`` for ``cfg`` (random draws or a full grid): the learning rate
    and the lists ``tune.space`` sets, nothing else (the rest is ``base``'s, i.e. finetune's)."""
    from ray import tune

    s = cfg.space
    if cfg.search == "grid":
        space = {"lr": tune.grid_search(lr_grid(s.lr_min, s.lr_max, s.lr_grid_points))}
        space.update({k: tune.grid_search(v) if len(v) > 1 else v[0] for k, v in _grid_lists(cfg, base).items()})
        return space
    space = {"lr": tune.loguniform(s.lr_min, s.lr_max) if s.lr_min < s.lr_max else s.lr_min}
    space.update({k: tune.choice(v) if len(v) > 1 else v[0] for k, v in s.lists().items()})
    return space


def grid_size(cfg: TuneConfig, base: FinetuneConfig | None = None) -> int:
    """Number of trials per language that ``cfg`` will run."""
    if cfg.search == "random":
        return cfg.num_samples
    s = cfg.space
    n = len(lr_grid(s.lr_min, s.lr_max, s.lr_grid_points))
    for v in _grid_lists(cfg, base).values():
        n *= len(v)
    return n


def effective_params(ft: FinetuneConfig) -> dict[str, Any]:
    """The searchable hyperparameters a trial really trained with (searched or finetune's)."""
    tree = ft.model_dump(mode="json")
    out = {}
    for name, path in PARAM_PATHS.items():
        node = tree
        for part in path.split("."):
            node = node[part]
        out[name] = node
    return out


def make_scheduler(cfg: TuneConfig):
    """ASHA over dev evaluations (``training_iteration`` = one report per evaluation), or FIFO."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if cfg.scheduler == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(time_attr="training_iteration", max_t=cfg.max_t, grace_period=cfg.grace_period,
                         reduction_factor=cfg.reduction_factor)


def finetune_with(base: FinetuneConfig, params: dict[str, Any]) -> FinetuneConfig:
    """``base`` with the trial's hyperparameters set (validated like a loaded config)."""
    tree = base.model_dump()
    for name, value in params.items():
        path = PARAM_PATHS.get(name)
        if path is None:
            continue
        node = tree
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    if tree.get("schedule", {}).get("type") in OWN_RISE:
        tree["schedule"]["warmup_ratio"] = 0.0  # these schedules have their own rise
    return FinetuneConfig.model_validate(tree)


def concurrency(cfg: TuneConfig, cluster_cpus: float) -> int:
    """Trials at once: bounded by the cluster's CPUs / cpus_per_trial and by ``max_concurrent``."""
    fit = max(1, int(cluster_cpus // cfg.cpus_per_trial))
    return min(fit, cfg.max_concurrent) if cfg.max_concurrent else fit


def check_trial_resources(cfg: TuneConfig, embedded: bool | None = None) -> str | None:
    """Fail with a ``ConfigError`` when no node of the Ray cluster can ever hold one trial
    (``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs on one node); None when one fits now, or a
    warning when one fits only if the cluster grows (``lrl.train.placement``). Ray must be running."""
    from lrl.train.placement import check_placement

    what = f"tune.cpus_per_trial={cfg.cpus_per_trial:g}" + (
        f" and gpus_per_trial={cfg.gpus_per_trial:g}" if cfg.gpus_per_trial else "")
    return check_placement(what, cfg.cpus_per_trial, cfg.gpus_per_trial, "trial", "Ray Tune", embedded)


def _default_train_fn() -> TrainFn:
    from lrl.train.tagger import train_tagger

    return train_tagger


def trial_fn(config: dict[str, Any], *, train: pa.Table, dev: pa.Table, base: FinetuneConfig,
             model_path: str, seed: int, threads: int, train_fn: TrainFn | None = None) -> None:
    """The function trainable: one fine-tuning run, each dev evaluation reported to Tune."""
    import torch
    from ray import tune

    from lrl.tune.trial_exit import quiet_stopped_trial_exit

    quiet_stopped_trial_exit()  # Tune's stop of this trial's process printed a SystemExit traceback
    torch.set_num_threads(threads)
    fn = train_fn or _default_train_fn()
    last: list[float] = []

    def report(metrics: dict) -> None:
        last[:] = [float(metrics[METRIC])]
        tune.report({k: v for k, v in metrics.items() if isinstance(v, (int, float))})

    # device auto: the GPU this trial reserved (tune.gpus_per_trial), else the CPU
    ft = in_ray_task(finetune_with(base, trial_params(config)), "tune.gpus_per_trial")
    result = fn(ft, model_path, train, dev, seed=seed, out_dir=None, report=report)
    # A closing marker (Tune insists every result carries the metric, so it repeats the last
    # score): trials without it were stopped early. It is not counted as an evaluation.
    tune.report({METRIC: last[0] if last else float(result.dev_f1), "finished": 1})


#: Attempts a trial gets after its first fails. A trial whose worker process died (a lost node,
#: the OOM killer, kill -9) counted as errored: the search was committed without it, under the
#: same folder name as a complete one, and every rerun reused it. Trials keep no checkpoints, so
#: the retry starts the trial over (same seed: the same scores); a trial whose config fails it
#: fails again, one attempt later.
TRIAL_RETRIES = 1

#: Ray Tune's documented switch for its Ctrl-C handler (read when ``fit`` starts).
TUNE_SIGINT_ENV = "TUNE_DISABLE_SIGINT_HANDLER"
#: Ray's documented switch back to its older console output, which ``verbose=0`` silences.
TUNE_OUTPUT_ENV = "RAY_AIR_NEW_OUTPUT"


@contextlib.contextmanager
def _fit_scope() -> Iterator[None]:
    """Ray Tune's settings for one ``fit``, restored after it.

    Ctrl-C during ``fit`` raises ``KeyboardInterrupt``, as everywhere else in lrl. Tune's own
    handler ends the search early and RETURNS the partial results as though complete (it saves
    them to resume from, but lrl searches anew): the stage then failed with "no trial reported
    dev_f1", or, once trials had reported, retrained the best of a cut-short search and committed
    it as finished. Tune also left its handler installed after a search it did not interrupt, so
    a Ctrl-C while the best config retrained only set a finished search's flag. Its trials, in Ray
    actors, end with the driver (``lrl`` exits) or when their handles are collected.

    Tune's own console lines are off too: its newer output prints, whatever ``verbose``, a banner
    with "View detailed results here: <trial folders>" and a TensorBoard command, and it logs
    where it "Wrote the latest version of all result files": without ``tune.storage_path`` a
    temporary folder, removed when the search ends, that ``lrl tune`` showed as where the results
    were. The stage prints its own lines, with the real output folder (``lrl.tune.stage``)."""
    import logging

    saved = {name: os.environ.get(name) for name in (TUNE_SIGINT_ENV, TUNE_OUTPUT_ENV)}
    os.environ.update({TUNE_SIGINT_ENV: "1", TUNE_OUTPUT_ENV: "0"})
    log = logging.getLogger("ray.tune.tune")
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(level)
        for name, previous in saved.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous


def search_language(lang: str, train: pa.Table, dev: pa.Table, cfg: TuneConfig, base: FinetuneConfig,
                    model_path: str, seed: int, train_fn: TrainFn | None = None,
                    experiment: str | None = None) -> LanguageSearch:
    """Run one Tuner for ``lang``; every trial's scores and the best trial (max dev F1 over all
    evaluations of all trials; errored trials never win).

    ``experiment`` names the folder of the trials under ``tune.storage_path`` (default
    ``tune-<lang>``); the stage names it after its output (``tune-<hash>-<lang>``): under one name
    the trial folders of every search of a language, whatever its config, landed in one folder,
    with nothing but the trial ids in trials.json to tell them apart."""
    import ray
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    t0 = time.time()
    # Trials run in their own working directory: a relative local path would not resolve there.
    model_path = os.path.abspath(model_path) if os.path.exists(model_path) else model_path
    cpus = ray.cluster_resources().get("CPU", 1.0)
    trainable = tune.with_parameters(trial_fn, train=train, dev=dev, base=base, model_path=model_path,
                                     seed=seed, threads=max(1, int(cfg.cpus_per_trial)), train_fn=train_fn)
    trainable = tune.with_resources(trainable, {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial})
    tmp = None if cfg.storage_path else tempfile.TemporaryDirectory(prefix="lrl-tune-")
    storage = cfg.storage_path or tmp.name  # type: ignore[union-attr]
    try:
        tuner = tune.Tuner(
            trainable,
            param_space=param_space(cfg, base),
            tune_config=tune.TuneConfig(
                metric=METRIC, mode="max", scheduler=make_scheduler(cfg), reuse_actors=True,
                num_samples=cfg.num_samples if cfg.search == "random" else 1,
                search_alg=BasicVariantGenerator(random_state=seed, max_concurrent=concurrency(cfg, cpus)),
            ),
            run_config=tune.RunConfig(name=experiment or f"tune-{lang}", storage_path=os.path.abspath(storage)
                                      if "://" not in storage else storage, verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=TRIAL_RETRIES)),
        )
        with _fit_scope():
            results = tuner.fit()
        from lrl.tune.trial_rows import trial_rows  # it reads this module's parameter helpers

        rows = trial_rows(lang, results, base, cfg.max_t, kept=tmp is None)
    finally:
        if tmp is not None:
            tmp.cleanup()
    scored = [r for r in rows if r[METRIC] is not None and r["error"] is None]
    if not scored:
        errors = "; ".join(str(r["error"]) for r in rows if r["error"])[:1000]
        raise RuntimeError(f"tune {lang}: no trial reported {METRIC} ({errors or 'no trials'})")
    best = max(scored, key=lambda r: r[METRIC])  # a tie: the first in trial order (reproducible)
    return LanguageSearch(lang, rows, dict(best), round(time.time() - t0, 3))


def idle_scheduler(cfg: TuneConfig, lang: str, trials: list[dict[str, Any]]) -> str | None:
    """A warning when ASHA could stop no trial early: no trial evaluated on dev more often than
    ``grace_period``, so each one's first rung was its last evaluation (with ``finetune``'s
    default of one evaluation an epoch, ``grace_period: 3`` and ``epochs: [2, 3]`` ran every trial
    to its end, as FIFO would, with nothing said); None otherwise."""
    most = max((t["evaluations"] for t in trials), default=0)
    if cfg.scheduler != "asha" or len(trials) < 2 or most == 0 or most > cfg.grace_period:
        return None
    return (f"warning: tune {lang}: ASHA stopped nothing early: no trial evaluated on dev more than "
            f"tune.grace_period={cfg.grace_period} time(s) (finetune evaluates once an epoch unless "
            "finetune.eval_every is set); lower grace_period or evaluate more often")


def cut_trials(cfg: TuneConfig, lang: str, trials: list[dict[str, Any]], best: dict[str, Any]) -> str | None:
    """A warning when ASHA ended trials at ``max_t`` before their schedule did: their dev F1 (the
    best one's included, when it was cut) comes from a shorter training than the retrained best
    model, trained with the whole schedule, gets; None when no trial was cut."""
    cut = [t for t in trials if t.get("cut_at_max_t")]
    if not cut:
        return None
    which = "the best trial among them: its" if best.get("cut_at_max_t") else "their"
    return (f"warning: tune {lang}: {len(cut)} trial(s) were ended at tune.max_t={cfg.max_t} dev evaluations "
            f"before their schedule's end ({which} dev F1 is of a shorter training than the retrained model "
            "gets); raise tune.max_t to the evaluations a trial makes")


def dev_entities(dev: pa.Table) -> int:
    """Gold entity spans of a dev table (a B- tag, or an I- tag that does not continue a span of
    its type): what one more or one fewer found entity is measured against."""
    n = 0
    for tags in dev.column("tags").to_pylist():
        prev = "O"
        for t in tags:
            if t.startswith("B-") or (t.startswith("I-") and prev[2:] != t[2:]):
                n += 1
            prev = t
    return n


def close_to_best(trials: list[dict[str, Any]], best: dict[str, Any], entities: int) -> int:
    """Other scored trials whose best dev F1 is within one dev entity of the best trial's.

    One more entity found (or one fewer) moves span F1 by about 1 / (gold entities): 0.9 points on
    WikiANN am's dev set (100 sentences, 110 entities). Trials that close are not told apart by the
    dev set, and the best one among them is the first in trial order (``search_language``)."""
    if entities <= 0 or best.get(METRIC) is None:
        return 0
    return sum(1 for t in trials if t["trial_id"] != best["trial_id"] and t["error"] is None and t[METRIC] is not None
               and t[METRIC] >= best[METRIC] - 1.0 / entities)


__all__ = ["LanguageSearch", "search_language", "param_space", "make_scheduler", "finetune_with",
           "lr_grid", "grid_size", "concurrency", "check_trial_resources", "trial_fn", "trial_params",
           "effective_params", "idle_scheduler", "cut_trials", "dev_entities", "close_to_best", "PARAM_PATHS", "METRIC"]
