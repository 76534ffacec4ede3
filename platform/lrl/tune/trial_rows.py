"""A row per finished trial of a search: its searched and effective settings, its dev F1 over its
evaluations, its own training time, and whether it ran in full, was stopped early by ASHA or was
cut at ``tune.max_t`` (what ``trials.csv`` and the report show)."""

from __future__ import annotations

import os
from typing import Any

from lrl.train.finetune_config import FinetuneConfig
from lrl.tune.search import METRIC, effective_params, finetune_with, trial_params


def _last_attempt(df):
    """The reports of a trial's last attempt: a retried trial (``TRIAL_RETRIES``) starts over at
    ``training_iteration`` 1, and its lost attempt's reports stay in Ray's history."""
    if df is None or "training_iteration" not in df or df.empty:
        return df
    starts = df.index[df["training_iteration"] == 1]
    return df.loc[starts[-1]:] if len(starts) else df


def _ran_in_full(df) -> bool:
    """The trial's last evaluation was at its run's last step: ASHA may stop a trial at the rung of
    its final evaluation, before its closing marker, and such a trial counted as stopped early."""
    if df is None or df.empty or "step" not in df or "total_steps" not in df:
        return False  # a stand-in train_fn that reports no steps
    last = df.iloc[-1]
    return bool(last["step"] >= last["total_steps"])


def trial_rows(lang: str, results, base: FinetuneConfig, max_t: int, kept: bool = False) -> list[dict[str, Any]]:
    """A row per trial; ``kept``: the trial folders stay (``tune.storage_path``), and each row
    says where its trial's folder (Ray's result.json, params.json) is."""
    rows = []
    for r in results:
        df = _last_attempt(r.metrics_dataframe)
        if df is not None and "finished" in df:
            df = df[df["finished"] != 1]
        scores = [] if df is None or METRIC not in df else [float(x) for x in df[METRIC].dropna()]
        last = r.metrics or {}
        wall = float(last.get("time_total_s") or 0.0)
        # The trial's own training clock (train_tagger's time_s at its last evaluation): Ray's
        # time_total_s also holds the worker's start-up and imports, 2-17 s on the first trial of
        # each worker, which the report's "dev F1 vs time" drew as if those trials were slower.
        own = [float(x) for x in df["time_s"].dropna()] if df is not None and "time_s" in df else []
        row = {"lang": lang, "trial_id": last.get("trial_id") or os.path.basename(r.path or ""),
               # What the trial trained with: searched values, and finetune's for the rest.
               **effective_params(finetune_with(base, trial_params(r.config or {}))),
               METRIC: max(scores) if scores else None, "last_dev_f1": scores[-1] if scores else None,
               "evaluations": len(scores), "time_s": round(max(own) if own else wall, 3), "wall_s": round(wall, 3),
               "finished": bool(last.get("finished")) or (r.error is None and _ran_in_full(df)),
               "error": repr(r.error)[:300] if r.error else None}
        row["stopped_early"] = not row["finished"] and row["error"] is None and len(scores) < max_t
        # ASHA ends every trial at max_t evaluations: one that had more to run is neither finished
        # nor stopped early, and its dev F1 is of a shorter training than its config asks for.
        row["cut_at_max_t"] = not row["finished"] and row["error"] is None and len(scores) >= max_t
        row["trial_dir"] = r.path if kept else None
        rows.append(row)
    return rows


__all__ = ["trial_rows"]
