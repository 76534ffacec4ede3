"""Warnings about machine translation that the generate stage gives: before the work (filters it
runs without) and after it (translation steps that kept few of the rows they translated).

Kept here, not in ``lrl.generate.stage``, which calls each with one line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lrl.job import JobConfig

#: A translation step that kept (wrote) fewer than this fraction of the rows it translated gets a
#: warning with its top reject reasons. Kept rows are what the step made that no step or filter
#: rejected. Measured here: a tiny Marian (sw -> ug, WikiANN train, max_length 48) kept 82% of
#: 1,000 rows, the fake translator 100%; the same model with max_length 128 kept none (every
#: output cut at the limit) and exited 0 without a word, its output equal to its input.
MIN_KEPT = 0.5
#: What to change for the reject kinds a setting causes.
HINTS = {"translation_cut": "outputs stopped at max_length: a model repeating itself, or max_length too low",
         "translation_too_long": "inputs over max_length tokens: raise max_length",
         "projection": "the markers did not come through: try markers: numbered, or another model",
         "projection_ambiguous": "one text with two types: use markers: numbered"}


def warn_unfiltered_translation(cfg: JobConfig) -> None:
    """Warn when machine translation runs without ``length_ratio`` (``filter.ops`` is empty by
    default): a model that drops half a sentence, or repeats itself short of ``max_length``,
    gave rows that were kept. Not about ``projection``: the translate step itself rejects a row
    whose projection lost an entity (``projection: entity lost ...``) or cannot tell its mentions
    apart, so translated rows leave it with their source's entity types; the filter only
    re-checks them as written. A warning: the user may know their model, and filters reject rows."""
    from lrl.config import config_warning

    t = cfg.translate
    if not t.enabled or not (t.train or t.backtranslate):
        return
    if "length_ratio" not in cfg.filter.ops:
        ops = ", ".join([*cfg.filter.ops, "length_ratio"])
        config_warning("warning: translate runs without filter.ops ['length_ratio']: translations cut short or "
                       f"padded out (short of max_length) are kept; add it: filter: {{ops: [{ops}]}}")


def kept_lines(rows_per_op: Mapping[str, int], rejects_op_kind: Mapping[str, int],
               ops: tuple[str, ...] = ("translate", "backtranslate")) -> list[str]:
    """The summary's warning per translation op that kept fewer than ``MIN_KEPT`` of the rows it
    translated. ``rows_per_op``: rows written per op; ``rejects_op_kind``: rejected rows per
    ``<op>/<reject kind>``."""
    lines = []
    for op in ops:
        reasons = {k.split("/", 1)[1]: n for k, n in rejects_op_kind.items() if k.split("/", 1)[0] == op}
        kept, rejected = rows_per_op.get(op, 0), sum(reasons.values())
        if not rejected or kept >= MIN_KEPT * (kept + rejected):
            continue
        top = sorted(reasons.items(), key=lambda kv: -kv[1])[:3]
        why = ", ".join(f"{k} {n}" + (f" ({HINTS[k]})" if k in HINTS else "") for k, n in top)
        lines.append(f"  warning: {op} kept {kept} of the {kept + rejected} rows it translated "
                     f"(under {MIN_KEPT:.0%}); rejects: {why}")
    return lines


def translation_warnings(path: str, manifest: Mapping[str, Any]) -> list[str]:
    """``kept_lines`` of a finished generate output: rows written per op (labelled and text rows),
    and rejected ones by op and kind, read column by column from its files."""
    from lrl.generate.write import DATA, REJECTS, TEXT, count_values

    ran = {*(manifest.get("steps") or []), *(manifest.get("text_steps") or [])}
    if not ran & {"translate", "backtranslate"}:
        return []
    kept = Counter(manifest.get("rows_per_op") or count_values(f"{path}/{DATA}", ["op"]))
    kept.update(count_values(f"{path}/{TEXT}", ["op"]))
    counts = count_values(f"{path}/{REJECTS}", ["reason", "op"], kind_of_reason=True)
    return kept_lines(kept, {f"{k.rsplit('/', 1)[1]}/{k.rsplit('/', 1)[0]}": n for k, n in counts.items()})
