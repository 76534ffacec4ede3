"""Groups the finetune stage already trained, found again by a later run (one operation).

A group's runs (one per seed of ``evaluate.seeds``) depend only on the group's own train and dev
rows, the encoder, the label list and the settings. Adding a language to a per-language job (a
new stage folder) trained every language again, ``seeds`` runs each; a run stopped in its last
language trained the finished ones again. Each group now has a key (``group_key``), and a group is
taken from a committed finetune output whose manifest lists the same key (``group_keys``), or from
a stopped run's ``<output.root>/.finetune-<group>-<key>/`` (``lrl.data.finished``).

A per-language group's key sees only its own language's ``few_shot`` (``own_few_shot``): with the
whole mapping in it, a wo model under ``{ug: 5}`` (all its rows, as without few-shot) had another
key than the same model with ``few_shot`` unset, and was trained again. Tune's searches, one per
language, are keyed the same way (``lrl.tune.resume``).
"""

from __future__ import annotations

from typing import Any

from lrl.data.finished import FinishedParts, part_key, read_json


def own_few_shot(settings: dict[str, Any], lang: str) -> dict[str, Any]:
    """``settings`` (``{"finetune": dump, ...}``) as a one-language part's key sees them: a
    ``few_shot`` mapping that leaves ``lang`` out is None (``finetune_data.few_shot`` keeps every
    row of its table, as without few-shot); one that names it is ``{lang: k}``, not the int k: its
    table keeps the translations into ``lang`` of other languages' sentences, which an int k drops.
    An int or None is as it is. Only for per-language parts: a joint group is cut by every key."""
    few = settings["finetune"].get("few_shot")
    if not isinstance(few, dict):
        return settings
    return {**settings, "finetune": {**settings["finetune"], "few_shot": {lang: few[lang]} if lang in few else None}}


def group_key(settings: dict[str, Any], group: str, data_print: Any, model_print: str) -> str:
    """What names one group's runs: the stage's settings that shape them (without the language
    list), the group, its train/dev content and the encoder."""
    return part_key("finetune-group", settings, group, data_print, model_print)


class FinishedGroups(FinishedParts):
    """Earlier trained groups: an entry is ``{"group": results.json group}``."""

    stage = "finetune"
    key_field = "group_keys"

    def read_committed(self, folder: str, part: str) -> dict[str, Any] | None:
        group = read_json(f"{folder}/results.json").get("groups", {}).get(part)
        return {"group": group} if group else None


__all__ = ["FinishedGroups", "group_key", "own_few_shot"]
