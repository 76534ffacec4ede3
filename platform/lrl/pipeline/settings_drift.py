"""Settings drift for ``lrl run --from/--only``: which settings of this run the reused outputs of
earlier stages were not built with.

``--from`` and ``--only`` reuse recorded outputs without running their stages, so a setting changed
since (``pretrain.steps=6``) silently did not apply to them. The state file keeps the settings each
output was built under; this module compares them with the current config and words the warning.
"""

from __future__ import annotations

import json
from typing import Any

from lrl.job import JobConfig

#: Config sections that shape only the outputs of the named stage (and so of the stages after it,
#: which read those outputs): a change there cannot concern the recorded outputs of earlier
#: stages that ``--from``/``--only`` reuse. ``tune`` trains with the ``finetune`` settings too.
OWN_SECTIONS: dict[str, set[str]] = {
    "generate": {"augment", "translate", "filter", "oversample"}, "tokenizer": {"tokenizer"},
    "pretrain": {"pretrain"}, "finetune": {"finetune"}, "tune": {"tune", "finetune"}, "evaluate": {"evaluate"},
    "report": {"report"},
}
#: Sections that any stage may read (their changes concern every reused output).
SHARED_SECTIONS = {"data", "model", "seed"}
#: ``ray``, ``output``, ``pipeline`` and ``name`` shape no stage's content (left out of the state).
UNSHAPING = {"ray", "output", "pipeline", "name"}
#: Settings that say only where inputs lie: kept in the state (what a run used) but no drift. The
#: stages name their outputs by each input's path relative to ``data.root`` and its content, never
#: by where the root lies (``lrl.generate.sources``), so the same data moved or copied under a new
#: root (a runs folder taken to another machine, ``lrl submit``'s unpacked working dir, a job file
#: moved while ``data.root`` defaults to its folder) is what the reused outputs were built from.
#: A changed relative path (``data.ner[0].path``) is still drift: it is part of ``data.ner``.
LOCATION_ONLY = {"data.root"}
#: Settings of one stage's section that shape the outputs of other stages too: finetune trains
#: once per evaluation seed, and tune retrains its best configuration once per seed (their output
#: hashes hold them), so ``--from evaluate evaluate.seeds=...`` reuses models of the old seeds;
#: their model cards carry ``report.license``; the tokenizer leaves pretraining's held-out slice out
#: of its training (``lrl.model.text_split``).
ALSO_READ: dict[str, set[str]] = {"evaluate.seeds": {"finetune", "tune"}, "report.license": {"finetune", "tune"},
                                  "pretrain.heldout_fraction": {"tokenizer"}}


def flat_config(cfg: JobConfig) -> dict[str, Any]:
    """The job config as ``{"section.key": value}`` (lists are values), for the state file."""
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            out[prefix.rstrip(".")] = node

    walk(cfg.model_dump(mode="json", exclude=UNSHAPING), "")
    return out


def shapes(key: str, stages: list[str]) -> bool:
    """Whether the setting ``key`` (``section.field``) can have shaped the outputs of ``stages``."""
    section = key.split(".")[0]
    readers = {s for s, sections in OWN_SECTIONS.items() if section in sections}
    if not readers:  # a shared section (data, model, seed)
        return True
    return bool((readers | ALSO_READ.get(key, set())) & set(stages))


def changed_settings(state: dict[str, Any], cfg: JobConfig, reused: list[str]) -> dict[str, tuple[Any, Any]]:
    """Settings (key -> (recorded, now)) that differ between this config and the one a reused
    output was recorded with, among those that shaped it: shared sections and the sections of it and
    of the stages before it (``reused`` is in pipeline order). The rest are applied by the stages
    that run, or shape no output that is reused."""
    now: dict[str, Any] = flat_config(cfg)
    found: dict[str, tuple[Any, Any]] = {}
    for i, name in enumerate(reused):
        recorded = state.get("configs", {}).get(state["stages"].get(name, {}).get("config", ""))
        if recorded is None:  # a state file written before configs were recorded
            continue
        for key in sorted(set(now) | set(recorded)):
            if (key in found or key in LOCATION_ONLY or now.get(key) == recorded.get(key)
                    or not shapes(key, reused[: i + 1])):
                continue
            found[key] = (recorded.get(key), now.get(key))
    if found:  # only then: the stage modules that define run control import torch and Ray
        found = {k: v for k, v in found.items() if k not in _run_control_keys()}
    return found


def _run_control_keys() -> set[str]:
    """Settings the stages keep out of their output hashes (how often to report or checkpoint,
    batching): they change no output, so reusing an output built with other values is no news."""
    keys: set[str] = set()
    try:
        from lrl.generate.stage import RUN_CONTROL as GENERATE
        from lrl.train.finetune_names import RUN_CONTROL as FINETUNE
        from lrl.train.pretrain import RUN_CONTROL as PRETRAIN
        from lrl.tune.stage import RUN_CONTROL as TUNE
    except ImportError:  # a broken optional stage: warn about more rather than fail
        return keys
    keys.update(f"pretrain.{k}" for k in PRETRAIN)
    keys.update(f"tune.{k}" for k in TUNE)
    keys.update(f"finetune.{k}" for k in FINETUNE)  # threads, num_cpus: how fast a run trains
    keys.update(f"{section}.{k}" for section, names in GENERATE.items() for k in names)
    return keys


def _short(value: Any, width: int = 60) -> str:
    # A float field given a whole number (finetune.epochs=2) is 2.0 in the state file; the user
    # wrote 2, and "recorded 3.0, now 2.0" read as if something had turned it into a fraction.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."


def stale_warning(reused: list[str], changed: dict[str, tuple[Any, Any]]) -> str | None:
    """The warning ``--from``/``--only`` give when reused outputs were built with other settings."""
    if not changed:
        return None
    shown = "; ".join(f"{k} (recorded {_short(old)}, now {_short(new)})" for k, (old, new) in changed.items())
    # Only the outputs those settings shaped: the stage that reads one, and the stages after it.
    stale = [name for i, name in enumerate(reused) if any(shapes(k, reused[: i + 1]) for k in changed)] or reused
    return (f"warning: the reused outputs of {', '.join(stale)} were recorded with other settings, "
            f"which this run does not apply to them: {shown}. "
            "Run without --from/--only to rebuild what they shape.")


__all__ = ["OWN_SECTIONS", "SHARED_SECTIONS", "UNSHAPING", "LOCATION_ONLY", "ALSO_READ", "shapes", "flat_config",
           "changed_settings", "stale_warning"]
