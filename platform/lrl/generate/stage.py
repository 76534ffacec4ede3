"""The generate stage: read inputs, chain the generation steps on Ray Data, write Parquet.

translate (if enabled) -> oversample (if enabled) -> augment -> filters -> split rejects -> write.
Oversampling runs before augmentation so that every copy is augmented differently, and so that
its plan can be made exactly from the rows read on the driver (``oversample_steps`` counts them).
Inputs (a few thousand labelled sentences, text corpora) are read on the driver; every generated
row is produced and written by Ray tasks (``PartWriter``), so the output is never materialised
as a whole. Counts for the manifest are read back from the written files, column by column.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa

from lrl.data.blocks import from_tables
from lrl.data.config import HELDOUT
from lrl.data.files import InputError, resolve
from lrl.data.output import StageOutput
from lrl.data.readers import ReadResult, infer_labels, read_ner, read_text_lines, text_files
from lrl.data.schema import TEXT_SCHEMA
from lrl.generate.base import Step
from lrl.generate.manifest import ATTEMPT_TOTALS, Inputs, build_manifest, totals_line, unicode_line
from lrl.generate.sources import (
    check_generated_ids,
    check_held_out,
    input_fingerprints,
    relative,
    relative_column,
    root_prefix,
    training_sources,
)
from lrl.generate.write import (
    ATTEMPT,
    DATA,
    REJECTED_SCHEMA,
    REJECTS,
    REPAIR,
    TEXT,
    PartWriter,
    count_values,
    write_partitioned,
    write_text,
)
from lrl.job import JobConfig
from lrl.pipeline.stage import StageContext

STAGE = "generate"
#: Config sections that shape the output (and so its folder name); ``ray``/``output`` do not.
SHAPING = {"seed", "data", "augment", "translate", "filter", "oversample"}
#: Fields of the shaping sections that decide how the work is scheduled, not what it makes, left
#: out of the hash so that changing them reuses a finished output instead of regenerating the
#: same rows. Every augmented row's id and seed derive from (parent, op, copy), never from the
#: slice, task or actor that made it; tests/test_generate.py
#: (test_run_control_settings_change_neither_rows_nor_folder) runs both ways and compares the rows.
RUN_CONTROL: dict[str, set[str]] = {"augment": {"batch_size", "compute", "num_actors"},
                                     "oversample": {"batch_size", "chunk_rows"}}
#: Where the inputs lie, left out of the hash: they are named by their configured paths and
#: contents (``lrl.generate.sources``), so that the same data under another root (a copied runs
#: folder, a job submitted to a Ray cluster) reuses the output.
LOCATION: dict[str, set[str]] = {"data": {"root"}}
#: Input blocks: BLOCKS_PER_CPU per CPU, so that even a small input (a few thousand sentences that
#: oversampling multiplies) spreads over every CPU and the last tasks end close together; more
#: only when a block would exceed MAX_BLOCK_ROWS rows (task memory). Not smaller: each task
#: boundary leaves a worker idle (~0.15 s in Ray 2.60 as shipped; ~7 ms with lrl's Ray Data
#: settings), and even now 8 blocks per CPU left workers idler than 4 (7% against 4-5% of the
#: run, docs/benchmarks.md, session 8); blocks of decreasing size measured no better. Generated
#: rows stream out of a task in batches. When the first step multiplies rows (oversampling),
#: blocks are cut to equal *output* and MAX_BLOCK_ROWS counts output rows; the steps map whole
#: blocks (``lrl.generate.base.map_slices``), so these blocks are exactly the tasks.
BLOCKS_PER_CPU = 4
MAX_BLOCK_ROWS = 100_000


#: Part of the output hash, bumped when the same config and inputs give other rows (a fixed bug:
#: 2 = tone marks kept by synonyms and dedup, repeated copies dropped, cut translations rejected,
#: back-translation of read rows only; 3 = byte-order marks at line starts dropped, CoNLL lines
#: with another column count or an empty token quarantined, "# doc..." text lines kept; 4 = an
#: augmented row equal to an input row dropped; 5 = braces or parentheses a model put for square
#: markers removed from translated rows, swapped marker numbers corrected; replacements drawn in
#: the script of what they replace; oversampling copies of a rejected duplicate rejected with it;
#: 6 = swap, shuffle, delete and insert move or drop words, not punctuation; 7 = oversampling
#: groups held at their max_factor cap leave the rest of a target to the others, label-wise
#: replacement and insert never use punctuation; 8 = label-wise replacement changes the word and
#: keeps the token's punctuation; 9 = translated rows keep correctly placed markers, marker edges
#: inside a word snap to it, marker debris removed, translation rejects split into
#: translation_too_long / translation_cut / translation_empty, language ID judges NFKC text;
#: 10 = insert and label-wise replacement draw no word fragments, ``'s`` -> ``s``; 11 = near dedup
#: leaves a row's own family alone, language ID judges O tokens and spares a row whose parent it
#: misjudges the same way; 12 = lid spares only a child misjudged as the same language, near dedup
#: joins a row to every cluster of its bucket it is near; 13 = tokens and text lines read in NFC,
#: ``data.unicode``); 14 = insert, synonym and label-wise replacement of O tokens never add a word
#: the training rows tag as an entity at least as often as O (``augment.names``); 15 = square
#: projection markers reject a row whose same-text mentions differ in type; 16 = rows' and
#: rejects' ``source`` relative to ``data.root`` as configured, no longer absolute
#: (``lrl.generate.sources``; the folder name no longer hashes where data.root lies), so that a
#: finished output of older code is not reused.
ROWS_VERSION = 16


def stage_output(cfg: JobConfig) -> StageOutput:
    """The output folder this config and these inputs map to (fingerprints read the inputs)."""
    shaping = {**cfg.model_dump(mode="json", include=SHAPING, exclude={**RUN_CONTROL, **LOCATION}),
               "rows_version": ROWS_VERSION}
    if cfg.oversample.enabled and any(s.scheme == "tokens" for s in training_sources(cfg)):
        shaping["oversample_pos_version"] = 2  # POS rows now pass once (other rows); other jobs keep their hash
    aug = cfg.augment
    if {"synonym", "insert"} & set(aug.ops) and (aug.lexicons or (aug.neighbours.enabled and cfg.data.text)):
        # 2: synonyms take the case of the word they stand for; translate-train's target gets synonyms
        # without input rows of its own (augment.steps.translated_langs). Other jobs (insert with
        # no synonym source among them: the same rows) keep their hash.
        shaping["synonym_version"] = 2
    root = cfg.output.root
    # Ray workers run in their own working directories: hand them absolute paths only. (On a
    # multi-node cluster a local root must be a shared filesystem; or use s3:// / gs://.)
    root = root if "://" in root else os.path.abspath(root)
    inputs = input_fingerprints(cfg)  # a missing training input is named first
    check_held_out(cfg)
    return StageOutput(root, STAGE, shaping, inputs)


def read_inputs(cfg: JobConfig) -> Inputs:
    """Read every configured source; bad rows become rejects, file errors raise ``InputError``."""
    sources = training_sources(cfg)
    if not sources:
        raise InputError("data.ner has no training source (splits dev/test/validation are held out): "
                         "the generate stage needs at least one")
    results: list[ReadResult] = []
    for src in sources:
        results.append(read_ner(src, cfg.data.root, cfg.data.bio_policy, cfg.data.labels))
    seen: dict[str, str] = {}
    for res in results:
        for rid in res.table.column("id").to_pylist():
            if rid in seen:
                raise InputError(f"{res.source}: row id {rid!r} also occurs in {seen[rid]}; give sources "
                                 "of the same language distinct 'split' names or distinct ids")
            seen[rid] = res.source
    check_generated_ids(cfg, seen)
    # Text ids name the file, not its folder: two files of one language with the same name (or one
    # file listed twice) gave rows the same ids, and steps that mark rows by id (dedup) then
    # rejected unique rows. Checked per file, before reading: the ids follow from lang and name.
    text_seen: dict[tuple[str, str], str] = {}
    for tsrc in cfg.data.text:
        for path, name in text_files(resolve(tsrc.path, cfg.data.root)):  # a pattern or folder: each file
            key = (tsrc.lang, name)
            if key in text_seen:
                raise InputError(f"{path}: text row id '{tsrc.lang}:{key[1]}:1' also comes from {text_seen[key]} "
                                 "(ids are lang:file name:line); text files of one language need distinct file names")
            text_seen[key] = path
    texts = [relative_column(read_text_lines(t, cfg.data.root), root_prefix(t.path, cfg.data.root))
             for t in cfg.data.text]
    labels = list(cfg.data.labels) if cfg.data.labels is not None else infer_labels(r.table for r in results)
    return Inputs(sources, [_relative_result(r, root_prefix(s.path, cfg.data.root)) for s, r in zip(sources, results)],
                  texts, labels)


def _relative_result(res: ReadResult, prefix: str | None) -> ReadResult:
    """``res`` with its rows', rejects' and own ``source`` relative to ``data.root``: what the
    output holds names no absolute location (``lrl.generate.sources``)."""
    return replace(res, table=relative_column(res.table, prefix), rejects=relative_column(res.rejects, prefix),
                   source=relative(res.source, prefix))


def bio_rows(inputs: Inputs) -> pa.Table:
    """The rows of the entity-tagged sources: what tells names from other words. A token tagger's
    rows (``data.ner[].scheme: tokens``, UD POS) tag every word ``B-X``."""
    tables = [r.table for src, r in zip(inputs.sources, inputs.ner) if src.scheme != "tokens"]
    return pa.concat_tables(tables) if tables else inputs.ner[0].table.slice(0, 0)


def row_langs(cfg: JobConfig) -> set[str]:
    """The languages rows of the stage can have: its inputs' and those translation writes."""
    langs = {s.lang for s in training_sources(cfg)} | {t.lang for t in cfg.data.text}
    t = cfg.translate
    if t.enabled:
        langs |= {c.target for c in [t.train] if c} | {c.lang for c in [t.backtranslate] if c}
    return langs


def check_filters(cfg: JobConfig) -> None:
    """Config errors of the filters that only the data's languages show, before any work."""
    from lrl.generate.filters.lid import check_lid

    f = cfg.filter
    if "lid" in f.ops:
        check_lid(sorted(row_langs(cfg)), f.lid_langs, f.lid_candidates)


def check_translation(cfg: JobConfig) -> None:
    """Translation models and language codes, on the driver before Ray (``translate.preflight``)."""
    from lrl.generate.translate.preflight import check_models

    check_models(cfg)


def build_steps(cfg: JobConfig, train: pa.Table, texts: pa.Table, names_from: pa.Table | None = None,
                tokens: frozenset = frozenset()) -> list[Step]:
    """The configured chain: translate -> oversample -> augment -> filters. ``names_from``: the
    NER rows of ``train`` (``augment.resources.build_resources``); ``tokens``: (lang, source) of
    its ``scheme: tokens`` rows (``Inputs.token_sources``), which oversampling passes once."""
    from lrl.generate import augment, filters, oversample, translate

    steps: list[Step] = []
    if cfg.translate.enabled:
        steps += translate.steps(cfg)
    if cfg.oversample.enabled:
        steps += oversample.oversample_steps(cfg, train, tokens)
    steps += augment.augment_steps(cfg, train, texts, count=True,  # counts: manifest augment_attempts
                                   names_from=names_from)
    steps += filters.steps(cfg)
    return steps


def build_text_steps(cfg: JobConfig) -> list[Step]:
    """Steps over text rows: back-translation (when enabled), then the filters that apply to text."""
    from lrl.generate import filters, translate

    steps: list[Step] = list(translate.text_steps(cfg)) if cfg.translate.enabled else []
    # Without back-translation every text row is as read: filters that spare such rows are left out.
    return steps + list(filters.text_steps(cfg, generated=bool(steps)))


def warn_augmented_copies(cfg: JobConfig) -> None:
    """Warn when augmentation runs on oversampled copies and no dedup filter follows: each copy is
    augmented with its own seed, so a short sentence's variants repeat one another across its
    copies (15.7% of the augmented rows of jobs/multilingual.yaml, 80-85% of am and yo swaps).
    A warning, not a change of the rows: oversampling then augmenting is a valid choice, and
    ``dedup_scope: generated`` rejects the repeats without touching the originals."""
    from lrl.config import config_warning

    if cfg.oversample.enabled and cfg.augment.ops and not {"dedup", "near_dedup"} & set(cfg.filter.ops):
        config_warning("warning: augment runs on the oversampled copies, each with its own seed, so augmented "
                       "rows of one sentence can repeat one another; add filter: {ops: [dedup], dedup_scope: "
                       "generated} to reject the repeats (the originals and their copies stay)")


def warn_unfiltered_translation(cfg: JobConfig) -> None:
    """Translation without its filters (``lrl.generate.translate.checks``)."""
    from lrl.generate.translate.checks import warn_unfiltered_translation as warn

    warn(cfg)


def run_generate(ctx: StageContext, *, extra_steps: Sequence[Step] = (), quiet: bool = False) -> str:
    """Run the generate stage (or return at once when its output already exists).

    ``extra_steps`` run after the configured chain (tests use it to observe the running tasks)."""
    cfg = ctx.cfg
    warn_augmented_copies(cfg)
    warn_unfiltered_translation(cfg)
    out = stage_output(cfg)
    if out.done:
        return out.path
    check_filters(cfg)
    check_translation(cfg)
    inputs = read_inputs(cfg)
    try:
        train = pa.concat_tables([r.table for r in inputs.ner])
        texts = pa.concat_tables(inputs.texts) if inputs.texts else TEXT_SCHEMA.empty_table()
        steps = build_steps(cfg, train, texts, bio_rows(inputs), inputs.token_sources()) + list(extra_steps)
        text_steps = build_text_steps(cfg)
        _write_reader_rejects(inputs, out.tmp)
        repairs: Counter[str] = Counter()
        if text_steps and texts.num_rows:
            repairs += _generate(cfg, texts, text_steps, out.tmp, TEXT)[1]
            text_rows = sum(count_values(f"{out.tmp}/{TEXT}", ["lang"]).values())
        else:  # nothing to generate: the driver writes the text it read
            text_rows = write_text(inputs.texts, out.tmp)
        written, more, attempts = _generate(cfg, train, steps, out.tmp)
        manifest = build_manifest(cfg, inputs, steps, out.tmp, written, text_rows, attempts)
        manifest["text_steps"] = [s.name for s in text_steps]
        # Kept translated rows whose labels projection had to repair (a lost marker found again by
        # the entity's own translation, a moved one...): how far to trust them, per op and kind.
        manifest["translation_repairs"] = dict(sorted((repairs + more).items()))
        path = out.commit(manifest)
    except BaseException:
        out.abort()
        raise
    if not quiet:
        print(summary(path, out.manifest()))
    return path


def _generate(cfg: JobConfig, train: pa.Table, steps: Sequence[Step], tmp: str,
              kind: str = DATA) -> tuple[int, Counter, Counter]:
    """Build the Ray Dataset, chain the steps, write every batch from its task; returns the files
    written, the projection repairs and the augment attempt counts (``PartWriter``; a retried
    task's result replaces the lost one's, so nothing is counted twice)."""
    from lrl.generate.translate.progress import translation_progress
    from lrl.runtime import init_ray, plan_cpus

    init_ray(cfg.ray)
    # The first step may say how many rows each input row becomes (oversampling): blocks are then
    # cut to equal output, not equal input, so no task is left with most of the work.
    weigh = getattr(steps[0], "row_weights", None) if steps else None
    blocks = plan_blocks(train, plan_cpus(cfg.ray), weigh(train) if weigh else None)
    ds = from_tables(blocks)  # metadata computed here, not in remote tasks (lrl.data.blocks)
    files, repairs, attempts = 0, Counter(), Counter()
    # Translation's progress lines (rows, rows/s, ETA; lrl.generate.translate.progress says how).
    with translation_progress(steps, train, "text rows" if kind == TEXT else "labelled rows"):
        for s in steps:
            ds = s.apply(ds)
        ds = ds.map_batches(PartWriter(tmp, kind), batch_format="pyarrow", batch_size=None)
        for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
            for kind_, key, n in zip(*(batch.column(c).to_pylist() for c in ("kind", "path", "rows"))):
                if kind_ == REPAIR:
                    repairs[key] += n
                elif kind_ == ATTEMPT:
                    attempts[key] += n
                else:
                    files += 1
    return files, repairs, attempts


def plan_blocks(table: pa.Table, cpus: int, weights: np.ndarray | None = None) -> list[pa.Table]:
    """Zero-copy slices of ``table``: the input blocks, one task each (see ``BLOCKS_PER_CPU``).

    ``weights`` (one per row: the rows it will become) makes the blocks equal in output rows
    instead of input rows, and counts output rows against ``MAX_BLOCK_ROWS``."""
    rows = table.num_rows
    total = float(weights.sum()) if weights is not None else float(rows)
    n_blocks = max(1, min(rows, max(BLOCKS_PER_CPU * max(1, cpus), math.ceil(total / MAX_BLOCK_ROWS))))
    if weights is None or total <= 0:
        step = max(1, math.ceil(rows / n_blocks))
        return [table.slice(i, step) for i in range(0, rows, step)] or [table]
    # Cut after the row where the running total first reaches each k/n of the whole.
    cuts = np.searchsorted(np.cumsum(weights), total * np.arange(1, n_blocks) / n_blocks, side="left") + 1
    bounds = sorted({0, rows, *(int(c) for c in cuts if 0 < c < rows)})
    return [table.slice(a, b - a) for a, b in zip(bounds, bounds[1:])]


def _write_reader_rejects(inputs: Inputs, tmp: str) -> None:
    for i, (res, src) in enumerate(zip(inputs.ner, inputs.sources)):
        lang = src.lang
        if res.rejects.num_rows:
            rej = res.rejects.append_column("lang", pa.array([lang] * res.rejects.num_rows, pa.string()))
            write_partitioned(rej, f"{tmp}/{REJECTS}", REJECTED_SCHEMA, f"read{i}")


def summary(path: str, manifest: dict[str, Any]) -> str:
    """A few human lines: where the output is and what it holds."""
    lines = [f"generate: {path}", totals_line(manifest)]
    for key in ("rows_per_op", "rows_per_lang", "text_rows_per_op", "rejects_per_reason"):
        if manifest.get(key):
            lines.append(f"  {key}: " + ", ".join(f"{k}={v}" for k, v in manifest[key].items()))
    attempts = manifest.get("augment_attempts") or {}
    if attempts:
        # Per op over the languages: why `copies` attempts per sentence gave fewer rows.
        lines.append("  augment attempts -> generated: " + ", ".join(
            f"{op} {sum(c['attempts'] for c in langs.values())} -> {sum(c['generated'] for c in langs.values())}"
            + _reasons(langs) for op, langs in attempts.items()))
    # Said, not only in manifest.json: filters (dedup) can leave a language below its target.
    missed = (manifest.get("oversample") or {}).get("missed_targets") or {}
    if missed:
        lines.append("  warning: oversampling targets missed: " + ", ".join(
            f"{lang} {m['reached']} of {m['target']}" for lang, m in missed.items()))
    from lrl.generate.manifest import missed_types_line  # types below the minimum, with their filters

    lines += [types] if (types := missed_types_line(manifest)) else []
    from lrl.generate.translate.checks import translation_warnings  # a translation step that kept few rows

    lines += translation_warnings(path, manifest)
    # Tokens or lines that were not in NFC (data.unicode): said, as other files may be NFC.
    unicode = unicode_line(manifest)
    if unicode:
        lines.append(unicode)
    return "\n".join(lines)


def _reasons(langs: dict[str, dict[str, int]]) -> str:
    """`` (not_applicable 3, ...)``: an op's attempts that made no row, by reason, summed over
    languages (reasons with none left out)."""
    total: Counter[str] = Counter()
    for counts in langs.values():
        total.update({k: n for k, n in counts.items() if k not in ATTEMPT_TOTALS and n})
    return f" ({', '.join(f'{k} {n}' for k, n in total.items())})" if total else ""


__all__ = ["run_generate", "stage_output", "RUN_CONTROL", "LOCATION", "input_fingerprints", "check_held_out", "read_inputs",
           "build_steps", "build_text_steps", "summary", "training_sources", "plan_blocks", "HELDOUT"]
