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
- where ``model`` and ``data`` lie, when set (``by_content``): the stage's inputs name the encoder
  and the rows by content, so a moved or copied folder trained again for the same output.
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


#: What stands for a set ``model`` folder or ``data`` folder in an output's name: the stage's
#: inputs already name both by content (``input_print``, the rows' fingerprints).
BY_CONTENT = "<by content>"


def located(model: str | None) -> str | None:
    """An encoder setting (``finetune.model``, ``tune.model_path``) as an output's name sees it:
    ``BY_CONTENT`` for a folder; None and a ``preset:<name>`` (no location: the encoder it builds
    is named by its rows) as they are, so those jobs keep their names."""
    return model if model is None or model.startswith("preset:") else BY_CONTENT


def by_content(dump: dict[str, Any]) -> dict[str, Any]:
    """A ``finetune`` dump for an output's name: ``model`` and ``data`` left to the inputs when
    set (``located``); unset, as they were."""
    return {**dump, "model": located(dump["model"]), "data": None if dump["data"] is None else BY_CONTENT}


def run_view(ft: FinetuneConfig) -> FinetuneConfig:
    """``ft`` as the runs get it: per language ``select_by`` at its default (the same figure, and
    the same records in the folder for either value); run control as set (the tasks use it)."""
    return ft if ft.mode == "joint" else _defaults(ft, ("select_by",))


def card_settings(ft: FinetuneConfig) -> dict[str, Any]:
    """The ``finetune`` settings a model card lists: those that named the folder, without run
    control (a card is the same for every value of what its folder's name leaves out)."""
    return shaping(ft).model_dump(mode="json", exclude=set(RUN_CONTROL))


__all__ = ["BY_CONTENT", "PER_LANGUAGE_UNUSED", "RUN_CONTROL", "by_content", "card_settings", "located", "run_view", "shaping"]
