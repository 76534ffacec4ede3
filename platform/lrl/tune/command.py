"""``lrl tune CONFIG [overrides]``: one Ray Tune search per language, then print the best configs.

Embedded local Ray by default; joins a cluster when ``RAY_ADDRESS`` (or ``ray.address``) is set.
"""

from __future__ import annotations

import argparse
import time

from lrl.cli import add_job_arguments, load_job_args, reused_line
from lrl.data.files import read_json
from lrl.data.remote import is_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)


def run(args: argparse.Namespace) -> int:
    cfg = load_job_args(args)
    from lrl.pipeline.stage import StageContext
    from lrl.tune.splits import warn_left_out
    from lrl.tune.stage import run_tune

    warn_left_out(cfg, "tune")  # what `lrl run` checks before its first stage
    started = time.time()
    path = run_tune(StageContext(cfg))
    print(f"tune: {path}")
    best = f"{path}/best.json"
    if is_file(best):  # on an object store too (Path saw no file there and printed no table)
        for row in read_json(best):
            errored = f", {row['errored']} FAILED (see trials.json)" if row.get("errored") else ""
            # every searched hyperparameter: only lr and batch were printed, and a search over
            # epochs, warmup and frozen layers (jobs/wikiann_ug.yaml) hid the rest of its answer
            chosen = ", ".join(f"{k} {row[k]:.3g}" if k == "lr" else f"{k} {row[k]}"
                               for k in ["lr", *cfg.tune.space.lists()] if k in row)
            print(f"  {row['lang']}: dev F1 {100 * row['dev_f1']:.1f} ({chosen}; "
                  f"{row['trials']} trials, {row['stopped_early']} stopped early{errored})")
            if row.get("dev_entities") is not None:  # tables written before these fields lack them
                print(f"    {_resolution(row)}")
    if reused := reused_line(path, started):
        print(reused)
    return 0


def _resolution(row: dict) -> str:
    """What the language's dev set can tell: its size, and the trials it cannot tell apart from
    the best (within one entity), or that no trial found an entity at all."""
    size = f"dev {row['dev_sentences']} sentences, {row['dev_entities']} entities"
    if not row["dev_f1"]:
        return f"{size}: no trial found a dev entity; this configuration is the first trial's, not a best one"
    close = row.get("close_trials") or 0
    if close:
        return (f"{size}: {close} other trial(s) within one entity ({100 / max(row['dev_entities'], 1):.1f} "
                "F1 points) of it; the dev set does not tell them apart")
    return size
