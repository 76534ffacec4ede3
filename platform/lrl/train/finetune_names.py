"""What of ``finetune`` names the finetune stage's output and its groups, and what its runs see.

A setting that changes nothing the stage writes is left at its default in the output's name
(``shaping``), so a changed value neither renames the folder nor trains every group again, and
a default config keeps the name it always had (``tests/test_finetune_hash.py`` pins it):

- ``sampling_alpha`` per language: it weighs the languages of one joint model.
- ``select_by`` per language: with one dev language its two figures are one
  (``tagger.selection_score``). The folder recorded the name (results.json, manifest, each run's
  info, the saved model's ``lrl_tagger.json``, the card), so per language the runs train under the
  default name (``run_view``): the same figure, and a folder that is the same for either value.
- ``RUN_CONTROL`` (``threads``, ``num_cpus``): how many CPUs train a run, not what it learns.
  The model card left them out (``card_settings``), the only place the folder recorded them.
"""

from __future__ import annotations

from typing import Any

from lrl.train.finetune_config import FinetuneConfig

#: Run control: where and how fast a run trains, not what it writes (``num_cpus`` also sets the
#: task's torch threads when ``threads`` is unset). ``num_gpus`` stays in the name: with
#: ``device: auto`` it chooses between CPU and GPU training.
RUN_CONTROL = frozenset({"threads", "num_cpus"})

#: Settings that do nothing to a per-language job's output (module docstring).
PER_LANGUAGE_UNUSED = ("sampling_alpha", "select_by")


def _defaults(ft: FinetuneConfig, fields: tuple[str, ...] | frozenset[str]) -> FinetuneConfig:
    return ft.model_copy(update={f: FinetuneConfig.model_fields[f].default for f in sorted(fields)})


def shaping(ft: FinetuneConfig) -> FinetuneConfig:
    """``ft`` as the output's name (and each group's key) sees it: run control, and per language
    ``PER_LANGUAGE_UNUSED``, at their defaults (a changed value retrained every language for
    nothing)."""
    unused = RUN_CONTROL if ft.mode == "joint" else RUN_CONTROL | set(PER_LANGUAGE_UNUSED)
    return _defaults(ft, unused)


def run_view(ft: FinetuneConfig) -> FinetuneConfig:
    """``ft`` as the runs get it: per language ``select_by`` at its default (the same figure, and
    the same records in the folder for either value); run control as set (the tasks use it)."""
    return ft if ft.mode == "joint" else _defaults(ft, ("select_by",))


def card_settings(ft: FinetuneConfig) -> dict[str, Any]:
    """The ``finetune`` settings a model card lists: those that named the folder, without run
    control (a card is the same for every value of what its folder's name leaves out)."""
    return shaping(ft).model_dump(mode="json", exclude=set(RUN_CONTROL))


__all__ = ["PER_LANGUAGE_UNUSED", "RUN_CONTROL", "card_settings", "run_view", "shaping"]
