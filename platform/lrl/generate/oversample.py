"""Oversampling to target counts by language and by rare entity type, planned small, applied streaming.

The driver turns counts into a plan: rows are grouped by (language, rare types they contain);
each group gets an integer total (rare-type groups first, up to ``min_sentences_per_type``, then
every group of a language scaled up to ``target_per_lang`` by largest remainders), and each row of
a group gets ``q`` copies or ``q + 1``. Which rows get the extra one is decided by a stable hash of
the row id against a per-group threshold, so totals are exact when the streamed rows are the
counted ones, and the plan stays a few numbers per group however many rows are emitted. A worker
then emits copies batch by batch, in chunks of at most ``chunk_rows``: nothing is materialised.

Oversampling is an NER operation: rows read under ``data.ner[].scheme: tokens`` (UD POS, each tag X
read as the span ``B-X``) pass once, and neither count toward a target nor give entity types.
"""

from __future__ import annotations

import math
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lrl.config import ConfigError
from lrl.data.schema import REJECT
from lrl.generate.augment.seeds import mix_array, stable_hash, unit
from lrl.generate.base import map_slices
from lrl.generate.config import OversampleConfig

if TYPE_CHECKING:
    import ray.data

    from lrl.job import JobConfig

OP = "oversample"
_SCALE = float(1 << 63)
GroupKey = tuple[str, tuple[str, ...]]
#: ``(lang, source)`` of the rows read under ``scheme: tokens`` (``manifest.Inputs.token_sources``):
#: a language can have a POS source beside its NER one, so the language alone cannot tell them.
TokenSources = frozenset[tuple[str, str]]


def token_rows(table: pa.Table, tokens: TokenSources) -> list[bool]:
    """Which rows of ``table`` were read under ``scheme: tokens`` (``lang``/``source`` in ``tokens``)."""
    if not tokens:
        return [False] * table.num_rows
    cols = table.select(["lang", "source"]).to_pydict()
    return [key in tokens for key in zip(cols["lang"], cols["source"])]


@dataclass(frozen=True)
class OversamplePlan:
    """Per group (lang, rare types present): base copies and the hash threshold for one more."""

    seed: int
    rare: dict[str, tuple[str, ...]]
    groups: dict[GroupKey, tuple[int, float]]
    before: dict[str, int] = field(default_factory=dict)
    """Rows per language in the counted table."""
    after: dict[str, int] = field(default_factory=dict)
    """Rows per language the plan emits (originals included)."""
    targets: dict[str, int] = field(default_factory=dict)
    """The requested ``target_per_lang`` of each language that has one."""
    types_after: dict[str, dict[str, int]] = field(default_factory=dict)
    """lang -> rare type -> sentences with that type the plan emits (originals included)."""
    min_per_type: int | None = None
    """The requested ``min_sentences_per_type``."""
    tokens: TokenSources = frozenset()
    """Rows that pass once, uncounted (``scheme: tokens``: POS rows tag every word ``B-X``; counted,
    they filled a language's target and their rare tags were taken for rare entity types)."""
    token_rows: dict[str, int] = field(default_factory=dict)
    """Rows per language read under ``scheme: tokens`` (passed as they are)."""

    def key(self, lang: str, tags: list[str]) -> GroupKey:
        rare = self.rare.get(lang, ())
        present = {t[2:] for t in tags if t.startswith("B-")} if rare else set()
        return lang, tuple(t for t in rare if t in present)

    def group(self, lang: str, tags: list[str]) -> tuple[int, float]:
        """(base copies, hash threshold for one more) of a row's group; (1, 0.0) if not planned."""
        return self.groups.get(self.key(lang, tags), (1, 0.0))

    def copies(self, row_id: str, lang: str, tags: list[str], digest: int | None = None) -> int:
        """Total multiplicity of a row (1 = only the original); rows not planned for get 1.

        ``digest`` is ``stable_hash(seed, OP, row_id)`` when the caller already has it."""
        q, threshold = self.group(lang, tags)
        if threshold <= 0.0:
            return q
        if digest is None:
            digest = stable_hash(self.seed, OP, row_id)
        return q + (digest / _SCALE < threshold)

    def expected_rows(self, table: pa.Table) -> np.ndarray:
        """Rows each row of ``table`` (``lang``, ``tags``) becomes on average, itself included:
        what the block plan balances, since a few hundred sentences can become 100k rows."""
        langs = table.column("lang").to_pylist()
        tags = table.column("tags").to_pylist() if self.rare else [[]] * table.num_rows
        out = np.empty(table.num_rows, dtype=np.float64)
        for i, (lang, row_tags, skip) in enumerate(zip(langs, tags, token_rows(table, self.tokens))):
            q, threshold = (1, 0.0) if skip else self.group(lang, row_tags)
            out[i] = q + min(max(threshold, 0.0), 1.0)  # the extra copy's probability
        return out

    @property
    def trivial(self) -> bool:
        return all(q == 1 and t <= 0.0 for q, t in self.groups.values())

    @property
    def missed(self) -> dict[str, dict[str, int]]:
        """Languages the plan leaves below their target (only ``max_factor`` can cause it):
        ``{lang: {"target": requested, "reached": rows emitted}}``."""
        return {lang: {"target": t, "reached": self.after.get(lang, 0)}
                for lang, t in sorted(self.targets.items()) if self.after.get(lang, 0) < t}

    @property
    def missed_types(self) -> dict[str, dict[str, dict[str, int]]]:
        """Rare types the plan leaves below ``min_sentences_per_type`` (``max_factor`` can cause
        it: 3 ug PER sentences with min 50 and cap 12 reach 36; or a listed ``rare_types`` entry
        that no sentence of the language has, reached 0): ``{lang: {type: {"target": min,
        "reached": sentences emitted}}}``."""
        if self.min_per_type is None:
            return {}
        out = {lang: {t: {"target": self.min_per_type, "reached": n} for t, n in sorted(per.items())
                      if n < self.min_per_type} for lang, per in sorted(self.types_after.items())}
        return {lang: per for lang, per in out.items() if per}


def _target(cfg: OversampleConfig, lang: str) -> int | None:
    if isinstance(cfg.target_per_lang, dict):
        return cfg.target_per_lang.get(lang)
    return cfg.target_per_lang


def _rare_types(cfg: OversampleConfig, rows: list[tuple[str, set[str]]]) -> dict[str, dict[str, float]]:
    """lang -> rare type -> factor bringing its sentence count up to the minimum."""
    per: dict[str, Counter] = defaultdict(Counter)
    for lang, types in rows:
        per[lang].update(types)
    out: dict[str, dict[str, float]] = {}
    if cfg.min_sentences_per_type is None:
        return out
    allowed = set(cfg.rare_types) if cfg.rare_types is not None else None
    for lang, counts in per.items():
        factors = {t: cfg.min_sentences_per_type / c for t, c in counts.items()
                   if c < cfg.min_sentences_per_type and (allowed is None or t in allowed)}
        if factors:
            out[lang] = factors
    return out


def _largest_remainder(base: dict[GroupKey, int], total: int, cap: dict[GroupKey, int]) -> dict[GroupKey, int]:
    """Scale integer group sizes up to sum to ``total`` (never below base, never above cap).

    Groups the scale would push past their cap are held at it and the rest is scaled again over
    the others: scaling every group once and clipping lost what the clipped ones could not take,
    so with rare types and ``max_factor`` (min 50, cap 12) WikiANN am/ig/yo stopped at 995/968/966
    of a 1000 target that 100 sentences x 12 reach, and the plan reported it missed."""
    fixed: dict[GroupKey, int] = {}
    free = dict(base)
    scale = 1.0
    while free:
        scale = (total - sum(fixed.values())) / sum(free.values())  # never decreases: see below
        over = [g for g, n in free.items() if n * scale >= cap[g]]
        if not over:
            break
        for g in over:  # each took less than its scaled share, so the others' scale only grows
            fixed[g] = cap[g]
            del free[g]
    ideal = {g: float(fixed[g]) if g in fixed else base[g] * scale for g in base}
    out = {g: max(base[g], math.floor(v)) for g, v in ideal.items()}
    short = total - sum(out.values())
    order = sorted(ideal, key=lambda g: (-(ideal[g] - math.floor(ideal[g])), g))
    for g in order:
        if short <= 0:
            break
        if out[g] < cap[g]:
            out[g] += 1
            short -= 1
    return out


def plan_oversample(cfg: OversampleConfig, counts: pa.Table, seed: int = 0,
                    tokens: TokenSources = frozenset()) -> OversamplePlan:
    """Plan copies from the rows to be oversampled (columns ``lang``, ``tags``; ``id`` for exact
    totals; ``source`` with ``tokens``; rows with a ``reject`` reason or read under ``scheme:
    tokens``, whose (lang, source) is in ``tokens``, are not counted)."""
    cols = counts.select([c for c in ("id", "lang", "tags", REJECT) if c in counts.column_names]).to_pydict()
    rejected = cols.get(REJECT) or [None] * counts.num_rows
    pos = token_rows(counts, tokens)
    keep = [i for i in range(counts.num_rows) if rejected[i] is None and not pos[i]]
    typed = [(cols["lang"][i], {t[2:] for t in cols["tags"][i] if t.startswith("B-")}) for i in keep]
    token_count = Counter(lang for lang, skip in zip(cols["lang"], pos) if skip)
    if isinstance(cfg.target_per_lang, dict):
        missing = sorted(set(cfg.target_per_lang) - {lang for lang, _ in typed})
        if missing:
            # A ConfigError (config against data): the CLI prints it as one line, not a traceback.
            only = [lang for lang in missing if token_count[lang]]
            why = (f" to oversample: {only} only have rows read under scheme: tokens (one label per token, "
                   "e.g. POS), which oversampling passes as they are") if only else ""
            raise ConfigError(f"oversample.target_per_lang names {missing} but the data has no rows of "
                              f"them{why}")
    factors = _rare_types(cfg, typed)
    rare = {lang: tuple(sorted(f)) for lang, f in factors.items()}
    members: dict[GroupKey, list[int]] = defaultdict(list)
    for i, (lang, types) in zip(keep, typed):
        members[(lang, tuple(t for t in rare.get(lang, ()) if t in types))].append(i)
    cap = {g: (math.floor(len(m) * cfg.max_factor) if cfg.max_factor else 1 << 62) for g, m in members.items()}
    totals: dict[GroupKey, int] = {}
    for g, m in members.items():  # rare-type groups first: every row with type t gets >= min/c_t
        w = max([factors[g[0]][t] for t in g[1]], default=1.0)
        totals[g] = max(len(m), min(math.ceil(len(m) * w - 1e-9), cap[g]))
    for lang in sorted({g[0] for g in members}):
        target, mine = _target(cfg, lang), {g: n for g, n in totals.items() if g[0] == lang}
        if target is not None and target > sum(mine.values()):
            totals.update(_largest_remainder(mine, target, cap))
    groups: dict[GroupKey, tuple[int, float]] = {}
    for g, m in members.items():
        q, r = divmod(totals[g], len(m))
        if r == 0:
            threshold = 0.0
        elif "id" in cols:  # exact: the r rows with the smallest hash get one more copy
            us = sorted(unit(seed, OP, cols["id"][i]) for i in m)
            threshold = us[r] if r < len(m) else 2.0
        else:
            threshold = r / len(m)
        groups[g] = (q, threshold)
    before = Counter(lang for lang, _ in typed)
    after: Counter = Counter()
    for g, n in totals.items():
        after[g[0]] += n
    targets = {lang: t for lang in sorted(before) if (t := _target(cfg, lang)) is not None}
    types_after: dict[str, dict[str, int]] = {lang: dict.fromkeys(ts, 0) for lang, ts in rare.items()}
    for (lang, present), n in totals.items():
        for t in present:
            types_after[lang][t] += n
    if cfg.min_sentences_per_type is not None and cfg.rare_types is not None:
        # A listed type that no sentence of a language has cannot be copied up to the minimum. It
        # stayed out of the plan, so with rare_types=[ORG] a language without ORG sentences kept 0
        # and neither the warning nor missed_rare_types said so: recorded at 0 (missed_types).
        found: dict[str, set[str]] = defaultdict(set)
        for row_lang, types in typed:  # one pass over the rows, not one per language
            found[row_lang] |= types
        for lang in sorted(before):
            for t in sorted(set(cfg.rare_types) - found[lang]):
                types_after[lang] = dict(sorted({**types_after.get(lang, {}), t: 0}.items()))
    return OversamplePlan(seed, rare, groups, dict(before), dict(after), targets, types_after,
                          cfg.min_sentences_per_type, frozenset(tokens), dict(sorted(token_count.items())))


def oversample_batch(batch: pa.Table, plan: OversamplePlan, chunk_rows: int = 65536) -> Iterator[pa.Table]:
    """Each row followed by its copies (``op=oversample``, new id, parent_id, seed), in chunks.

    Works on pyarrow batches; a generator, so Ray Data receives bounded blocks."""
    cols = batch.select([c for c in ("id", "lang", "tags", "op", REJECT) if c in batch.column_names]).to_pydict()
    ids, n = cols["id"], batch.num_rows
    rejected = cols.get(REJECT) or [None] * n
    # The plan counted the rows read from data.ner (op=orig). Rows made upstream (translate-train,
    # back-translation) were not counted: copying them by their language's factor multiplied them
    # far past the target, so they pass once; so do the POS rows (scheme: tokens) read beside them.
    ops = cols.get("op") or ["orig"] * n
    pos = token_rows(batch, plan.tokens)
    # One digest per input row: it picks the rows that get the extra copy and seeds the copies.
    base = np.fromiter((stable_hash(plan.seed, OP, i) for i in ids), dtype=np.uint64, count=n)
    k = np.fromiter((1 if rejected[i] is not None or ops[i] not in ("orig", None) or pos[i]
                     else plan.copies(ids[i], cols["lang"][i], cols["tags"][i], int(base[i]))
                     for i in range(n)), dtype=np.int64, count=n)
    index = np.repeat(np.arange(n), k)
    copy = np.arange(len(index)) - np.repeat(np.cumsum(k) - k, k)  # 0 = original, 1.. = copies
    for start in range(0, len(index), chunk_rows):
        idx, cp = index[start : start + chunk_rows], copy[start : start + chunk_rows]
        part = batch.take(pa.array(idx))
        if not cp.any():
            yield part
            continue
        is_copy = pa.array(cp > 0)
        parent = part.column("id").combine_chunks()
        suffix = pc.binary_join_element_wise(pa.scalar(OP), pa.array(cp).cast(pa.string()), "|")
        changes = {  # child_id(parent, OP, copy) and row_seed(seed, OP, parent, copy), vectorised
            "id": pc.if_else(is_copy, pc.binary_join_element_wise(parent, suffix, "|"), parent),
            "op": pc.if_else(is_copy, pa.scalar(OP), part.column("op").combine_chunks()),
            "parent_id": pc.if_else(is_copy, parent, part.column("parent_id").combine_chunks()),
            "seed": pc.if_else(is_copy, pa.array(mix_array(base[idx], cp)), part.column("seed").combine_chunks()),
        }
        for name, values in changes.items():
            i = part.schema.get_field_index(name)
            part = part.set_column(i, part.schema.field(i), values.cast(part.schema.field(i).type))
        yield part


@dataclass
class OversampleStep:
    """Streams each row and its planned copies (originals pass through unchanged)."""

    plan: OversamplePlan
    batch_size: int = 256
    chunk_rows: int = 65536
    name: str = "oversample"

    def apply(self, ds: ray.data.Dataset) -> ray.data.Dataset:
        if self.plan.trivial:  # kept only to report missed targets (see oversample_steps)
            return ds
        return map_slices(ds, oversample_batch, self.batch_size, plan=self.plan, chunk_rows=self.chunk_rows)

    def manifest(self) -> dict[str, dict]:
        """What the generate stage's manifest records about the plan: rows per language before and
        after, the requested targets and those ``max_factor`` kept out of reach (language targets
        and rare-type minimums); rows read under ``scheme: tokens``, passed as they are."""
        p = self.plan
        return {"oversample": {"rows_before": dict(sorted(p.before.items())),
                               "rows_after": dict(sorted(p.after.items())),
                               "targets": dict(p.targets), "missed_targets": p.missed,
                               "rare_type_sentences": p.types_after, "missed_rare_types": p.missed_types,
                               "token_scheme_rows": dict(p.token_rows)}}

    def row_weights(self, table: pa.Table) -> np.ndarray | None:
        """Output rows per input row, for ``plan_blocks`` (see ``OversamplePlan.expected_rows``);
        None when the plan copies nothing: blocks are cut as without the step (weights of 1 cut
        1,001 rows as 126 + 7 x 125, the plain cut 7 x 126 + 119: other files, the same rows)."""
        return None if self.plan.trivial else self.plan.expected_rows(table)


def _check_rare_types(ov: OversampleConfig, table: pa.Table, pos: list[bool]) -> None:
    """``rare_types`` that no sentence of the data has are an error: a misspelt ``per`` (or a
    ``MISC`` that WikiANN lacks) made an empty plan, no copies and not a word about it. The tags
    of rows read under ``scheme: tokens`` (``pos``) are no entity types."""
    if not ov.rare_types or ov.min_sentences_per_type is None:
        return
    tags = table.column("tags").to_pylist()
    found = {t[2:] for row, skip in zip(tags, pos) if not skip for t in row if t != "O"}
    unknown = sorted(set(ov.rare_types) - found)
    if unknown:
        raise ConfigError(f"oversample.rare_types {unknown}: no sentence of the data has this entity type "
                          f"(the data has {sorted(found)})")


def oversample_steps(cfg: JobConfig, counts_table: pa.Table,
                     tokens: TokenSources = frozenset()) -> list[OversampleStep]:
    """Steps for ``cfg.oversample`` given the rows that will stream through them (or at least
    their ``id``, ``lang`` and ``tags`` columns; ``source`` with ``tokens``, the rows read under
    ``scheme: tokens``, which pass once). None when disabled, or when nothing needs copies, no
    target is missed and neither ``target_per_lang`` nor ``min_sentences_per_type`` is set; a
    target (language or rare type) missed because of ``max_factor`` is printed as a warning. A
    ConfigError when every row is a ``scheme: tokens`` row: nothing can be oversampled."""
    ov = cfg.oversample
    if not ov.enabled:
        return []
    pos = token_rows(counts_table, tokens)
    if pos and all(pos):
        # An error, as for the other settings the data contradicts (rare_types, target_per_lang):
        # the job asks for copies a POS-only job cannot have; a warning would let the stage finish
        # an output with none of the targets it set.
        raise ConfigError("oversample.enabled but every data.ner training source has scheme: tokens (one "
                          "label per token, e.g. UD POS): oversampling copies entity-tagged (scheme: iob2) "
                          "sentences up to oversample.target_per_lang / min_sentences_per_type, so it has "
                          "nothing to do here; set oversample.enabled=false")
    _check_rare_types(ov, counts_table, pos)
    plan = plan_oversample(ov, counts_table, cfg.seed if ov.seed is None else ov.seed, tokens)
    if plan.missed:
        # A missed target changes what the data is (am stays at 800 sentences, not 1000): say so
        # now, and keep the step (even with nothing to copy) so the manifest records it.
        short = ", ".join(f"{lang} {m['reached']} of {m['target']}" for lang, m in plan.missed.items())
        print(f"warning: oversample targets missed (max_factor={ov.max_factor}): {short} sentences",
              file=sys.stderr)
    if plan.missed_types:
        short = ", ".join(f"{lang} {t} {m['reached']} of {m['target']}" + (" (no sentence has it)" if not m["reached"] else "")
                          for lang, per in plan.missed_types.items() for t, m in per.items())
        print(f"warning: oversample.min_sentences_per_type missed (max_factor={ov.max_factor}): {short} sentences",
              file=sys.stderr)
    # Kept with a target or a minimum even when nothing needs copies: the manifest then counts the
    # languages and types on disk, which filters can take below them (oversample_on_disk), as they
    # can those that were copied (30 sentences read for a target of 30, 19 left by dedup: unsaid).
    if plan.trivial and not (plan.missed or plan.missed_types) and ov.min_sentences_per_type is None \
            and ov.target_per_lang is None:
        return []
    return [OversampleStep(plan, ov.batch_size, ov.chunk_rows)]
