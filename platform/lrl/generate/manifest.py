"""The generate stage's manifest: input counts, rows per operation and language, rejects per
reason, the resolved config. Counts come from the written Parquet (only the ``op``/``reason``
columns are read), so they describe exactly what is on disk. ``balance`` checks them against the
inputs per language: every sentence or text line read is written or rejected, never lost."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from lrl.data.files import filesystem, is_uri
from lrl.data.nfc import changed_in
from lrl.generate.write import DATA, REJECTS, TEXT, count_values
from lrl.job import JobConfig


@dataclass
class Inputs:
    """Everything read on the driver: one result per labelled training source, text tables, labels."""

    sources: list  # list[lrl.data.config.NerSource]: the training sources, in data.ner order
    ner: list  # list[lrl.data.readers.ReadResult], one per source
    texts: list[pa.Table]
    labels: list[str]

    def token_sources(self) -> frozenset[tuple[str, str]]:
        """``(lang, source)`` of the rows read under ``data.ner[].scheme: tokens`` (POS), one per
        file read (``source`` is ``<file>#<split>``): what tells them from the NER rows of the same
        language, which oversampling counts and copies (``lrl.generate.oversample``)."""
        return frozenset((src.lang, s) for src, res in zip(self.sources, self.ner) if src.scheme == "tokens"
                         for s in pc.unique(res.table.column("source")).to_pylist())


def build_manifest(cfg: JobConfig, inputs: Inputs, steps: Sequence[Any], folder: str, files: int,
                   text_rows: int, attempts: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The manifest body (``StageOutput.commit`` adds versions and wall time).

    ``steps`` are the steps that ran; one with a ``manifest()`` method adds its entries (the
    oversampling plan: targets, and those missed because of ``max_factor``). ``attempts``: the
    augment step's counts as the writer returned them (``<op>/<lang>/<count>``)."""
    ner_inputs = []
    for src, res in zip(inputs.sources, inputs.ner):
        ner_inputs.append({"path": res.source, "lang": src.lang, "split": src.split, "format": src.format,
                           "rows": res.table.num_rows, "rejects": res.rejects.num_rows,
                           "reject_reasons": res.reject_reasons, "repaired": res.repaired,
                           "nfc_changed": res.nfc_changed})
    text_inputs = [{"path": t.column("source")[0].as_py() if t.num_rows else src.path, "lang": src.lang,
                    "rows": t.num_rows, "nfc_changed": changed_in(t)} for src, t in zip(cfg.data.text, inputs.texts)]
    per_op = count_values(f"{folder}/{DATA}", ["op"])
    per_lang = count_values(f"{folder}/{DATA}", ["lang"])
    per_reason = count_values(f"{folder}/{REJECTS}", ["reason"], kind_of_reason=True)
    notes: dict[str, Any] = {}
    for s in steps:
        if callable(getattr(s, "manifest", None)):
            notes.update(s.manifest())
    lang_op = count_values(f"{folder}/{DATA}", ["lang", "op"])
    if "oversample" in notes:
        ov = cfg.oversample
        notes["oversample"] = oversample_on_disk(notes["oversample"], lang_op, folder, ov.min_sentences_per_type,
                                                 ov.rare_types, inputs.token_sources())
    rejects_origin = reject_origins(f"{folder}/{REJECTS}")
    text_lang_op = count_values(f"{folder}/{TEXT}", ["lang", "op"])
    balance = row_balance(ner_inputs, text_inputs, lang_op, text_lang_op, rejects_origin)
    t = cfg.translate
    if t.enabled and t.train is not None and not t.train.keep_source:
        # Translate-train without its sources writes only the translations: the source rows are
        # left out by that setting, not lost.
        for lang in t.train.sources:
            b = balance.get(f"ner/{lang}")
            if b is not None:
                b["left_out"] = b["read"] - b["written"] - b["rejected"]
    augment_attempts = attempts_by_op(attempts or {}, lang_op,
                                      count_values(f"{folder}/{REJECTS}", ["lang", "op"]) if attempts else {},
                                      cfg.augment.ops if attempts is not None else ())
    lost = {lang: b for lang, b in balance.items()
            if b["read"] != b["written"] + b["rejected"] + b.get("left_out", 0)}
    if lost:
        # A step that drops rows instead of marking them rejected: stop before this looks finished.
        raise RuntimeError(f"generate lost or invented rows (read != written + rejected): {lost}"
                           " (on a cluster: is output.root the same folder on every node?)")
    lost_generated = {f"{op}/{lang}": c for op, langs in augment_attempts.items() for lang, c in langs.items()
                      if c["generated"] != c["written"] + c["rejected"]}
    if lost_generated:
        # The same for the augmented rows: every row an op generated is on disk, written or rejected.
        raise RuntimeError(f"generate lost or invented augmented rows (generated != written + rejected): "
                           f"{lost_generated}")
    return {
        "layout": {DATA: "data/lang=<lang>/*.parquet (NER_SCHEMA without lang)",
                   REJECTS: "rejects/lang=<lang>/*.parquet (rejected rows with their reason)",
                   TEXT: "text/lang=<lang>/*.parquet (TEXT_SCHEMA without lang)"},
        # Paths as configured, relative to data_root (the folder's name does not say where that was).
        "data_root": _root(cfg.data.root),
        "inputs": {"ner": ner_inputs, "text": text_inputs,
                   "held_out": [f"{s.path}#{s.split}" for s in cfg.data.ner if s not in inputs.sources]},
        # input_rows: the sentences kept on reading (the rows the steps start from), as before;
        # input_read counts every sentence read, input_rejected those the readers rejected.
        "input_rows": sum(i["rows"] for i in ner_inputs),
        "input_read": sum(i["rows"] + i["rejects"] for i in ner_inputs),
        "input_rejected": sum(i["rejects"] for i in ner_inputs),
        "unicode": unicode_counts(cfg.data.unicode, ner_inputs, text_inputs),
        "labels": inputs.labels,
        "steps": [s.name for s in steps],
        "output_rows": sum(per_op.values()),
        "rows_per_op": per_op,
        "rows_per_lang": per_lang,
        "rows_per_lang_op": lang_op,
        "augment_attempts": augment_attempts,
        "rejects_total": sum(per_reason.values()),
        "rejects_per_reason": per_reason,
        "rejects_per_lang_origin": rejects_origin,
        "balance": balance,
        "text_rows": text_rows,
        # Text rows (text/) split as the labelled ones are: per op (orig, backtranslate) and lang/op.
        "text_rows_per_op": per_op_of(text_lang_op),
        "text_rows_per_lang_op": text_lang_op,
        "files": files,
        **notes,
        "config": cfg.model_dump(mode="json"),
    }


def per_op_of(lang_op: Mapping[str, int]) -> dict[str, int]:
    """``{op: rows}`` summed over the languages of ``{"<lang>/<op>": rows}``."""
    out: Counter[str] = Counter()
    for key, n in lang_op.items():
        out[key.rsplit("/", 1)[1]] += n
    return dict(sorted(out.items()))


def _root(root: str | None) -> str | None:
    """``data.root`` as the stage read it: absolute when local (the config may hold it relative)."""
    return root if root is None or is_uri(root) else os.path.abspath(root)


def unicode_counts(form: str, ner_inputs: list[dict], text_inputs: list[dict]) -> dict[str, Any]:
    """``data.unicode`` and what it changed: tokens of the kept input sentences and text lines
    that reading composed to NFC (per input under ``inputs``)."""
    return {"form": form, "tokens_changed": sum(i["nfc_changed"] for i in ner_inputs),
            "text_lines_changed": sum(i["nfc_changed"] for i in text_inputs)}


def totals_line(manifest: Mapping[str, Any]) -> str:
    """The summary's counts. Input rows are every sentence read: "input rows 20 ... rejects 1" of a
    21-sentence file left the reader's reject out of the input and in the rejects. A manifest
    written before ``input_read`` existed shows its ``input_rows`` (the sentences kept)."""
    read, at_read = manifest.get("input_read", manifest["input_rows"]), manifest.get("input_rejected")
    rejects = f"rejects {manifest['rejects_total']}" + (f" ({at_read} on reading)" if at_read else "")
    return (f"  input rows {read}, output rows {manifest['output_rows']}, {rejects}, "
            f"text rows {manifest['text_rows']}, {manifest.get('wall_time_s', '?')} s")


def unicode_line(manifest: Mapping[str, Any]) -> str | None:
    """The line ``lrl generate`` prints when reading changed any token or line to NFC, None
    otherwise: decomposed input is worth knowing of (other files of the language may be NFC)."""
    u = manifest.get("unicode") or {}
    tokens, lines = u.get("tokens_changed", 0), u.get("text_lines_changed", 0)
    if not tokens and not lines:
        return None
    def per(kind: str) -> str:  # per input: which files of the language were decomposed
        return ", ".join(f"{i['lang']} {i['nfc_changed']}" for i in manifest["inputs"][kind] if i.get("nfc_changed"))

    return (f"  unicode: read in NFC (data.unicode: nfc), changed {tokens} tokens ({per('ner') or 'none'}) and "
            f"{lines} text lines ({per('text') or 'none'}); data.unicode=none keeps them as given")


def missed_types_line(manifest: Mapping[str, Any]) -> str | None:
    """The summary's warning for the entity types below ``oversample.min_sentences_per_type`` on
    disk (``missed_rare_types``), each with the reject kinds that took its sentences (the filters:
    ``wo ORG 5 of 40 (rejected: duplicate 7)``); None when there are none."""
    types = (manifest.get("oversample") or {}).get("missed_rare_types") or {}
    if not types:
        return None

    def one(lang: str, t: str, m: Mapping[str, Any]) -> str:
        why = ", ".join(f"{kind} {n}" for kind, n in (m.get("rejected") or {}).items())
        return f"{lang} {t} {m['reached']} of {m['target']}" + (f" (rejected: {why})" if why else "")

    return "  warning: rare types below oversample.min_sentences_per_type: " + ", ".join(
        one(lang, t, m) for lang, per in types.items() for t, m in per.items())


def oversample_on_disk(note: dict[str, Any], lang_op: dict[str, int], folder: str | None = None,
                       min_per_type: int | None = None, rare_types: Sequence[str] | None = None,
                       skip: frozenset[tuple[str, str]] = frozenset()) -> dict[str, Any]:
    """The oversampling plan's manifest entry completed by what was written: ``rows_written``
    (orig and oversample rows on disk per language) and, in ``missed_targets``, every language
    below its target on disk (the rows of ``skip``'s ``(lang, source)``, POS rows, left out); with
    ``folder`` (the stage's, holding ``data/`` and ``rejects/``) and ``min_per_type``, the same
    for the entity types (``rare_type_sentences_written``, ``missed_rare_types``): every type
    ``min_per_type`` considers (``rare_types``, None: all) of each language's NER rows found in
    fewer sentences on disk, with ``rejected``: its sentences the filters rejected, per reject kind.

    The plan counts the sentences read, before the filters: with ``filter.ops=[dedup,near_dedup]``
    on the multilingual recipe, 16 of am's 100 train sentences and their copies were rejected, 840
    rows were written, and the manifest still said ``rows_after: 1000`` with no missed target.
    Rare types likewise: with ``dedup_scope: all`` on WikiANN sw (min 500 PER and ORG sentences),
    443 ORG sentences were written and the manifest said 501, no type missed, no warning. Only the
    rare types (those the plan copied) were then counted on disk, so a type read in at least
    ``min_per_type`` sentences that the filters took below it went unsaid (and with no type to
    copy there was no oversampling step, so no count at all): now every considered type is."""
    written: Counter[str] = Counter()
    for key, n in lang_op.items():
        lang, op = key.rsplit("/", 1)
        if op in ("orig", "oversample"):
            written[lang] += n
    if skip and folder is not None:  # POS rows count toward no target: with them a missed one was not said
        for key, n in count_values(f"{folder}/{DATA}", ["lang", "source", "op"]).items():
            lang, rest = key.split("/", 1)
            source, op = rest.rsplit("/", 1)  # a source is a path: "/" in it
            if (lang, source) in skip and op in ("orig", "oversample"):
                written[lang] -= n
    missed = dict(note.get("missed_targets", {}))
    for lang, target in note.get("targets", {}).items():
        reached = min(written[lang], missed.get(lang, {}).get("reached", target))
        if reached < target:
            missed[lang] = {"target": target, "reached": reached}
    out = {**note, "rows_written": {lang: written[lang] for lang in sorted(note.get("rows_after", written))},
           "missed_targets": dict(sorted(missed.items()))}
    if folder is None or min_per_type is None:
        return out
    rare = note.get("rare_type_sentences") or {}
    considered = set(rare_types) if rare_types is not None else None
    on_disk = type_sentences(f"{folder}/{DATA}", considered, skip)
    rejected = type_sentences(f"{folder}/{REJECTS}", considered, skip, by_reason=True)
    why: dict[tuple[str, str], dict[str, int]] = {}
    for (lang, t, kind), n in sorted(rejected.items()):
        why.setdefault((lang, t), {})[kind] = n
    types = {lang: dict(per) for lang, per in note.get("missed_rare_types", {}).items()}
    for lang, t in sorted(set(on_disk) | set(why) | {(lang, t) for lang, per in rare.items() for t in per}):
        planned = rare.get(lang, {}).get(t)  # None: not rare, read in min_per_type sentences or more
        reached = on_disk[(lang, t)] if planned is None else min(planned, on_disk[(lang, t)])
        if reached < min_per_type:
            types.setdefault(lang, {})[t] = {"target": min_per_type, "reached": reached,
                                             **({"rejected": why[(lang, t)]} if (lang, t) in why else {})}
    if rare:
        out["rare_type_sentences_written"] = {lang: {t: on_disk[(lang, t)] for t in sorted(per)}
                                              for lang, per in sorted(rare.items())}
    out["missed_rare_types"] = {lang: dict(sorted(per.items())) for lang, per in sorted(types.items())}
    return out


def type_sentences(folder: str, types: set[str] | None = None, skip: frozenset[tuple[str, str]] = frozenset(),
                   by_reason: bool = False) -> Counter[tuple[str, ...]]:
    """The orig and oversample rows of ``folder`` (``data/``, or ``rejects/`` with ``by_reason``)
    holding each entity type (as ``B-<type>``) per ``(lang, type)``, or ``(lang, type, reject
    kind)``; ``types`` None counts every type; rows whose ``(lang, source)`` is in ``skip`` (read
    under ``scheme: tokens``) are left out. Read column by column."""
    counts: Counter[tuple[str, ...]] = Counter()
    fs, inner = filesystem(folder)
    if fs.get_file_info(inner).type.name == "NotFound":
        return counts
    ds = pads.dataset(inner, filesystem=fs, format="parquet",
                      partitioning=pads.partitioning(pa.schema([("lang", pa.string())]), flavor="hive"))
    skipped = pa.array(sorted(f"{lang}\x1f{source}" for lang, source in skip), pa.string())
    columns = ["lang", "tags", "source", *(["reason"] if by_reason else [])]
    for b in ds.to_batches(columns=columns, filter=pc.field("op").isin(["orig", "oversample"])):
        if skip and b.num_rows:
            pair = pc.binary_join_element_wise(b.column("lang"), pc.fill_null(b.column("source"), ""), "\x1f")
            b = b.filter(pc.invert(pc.is_in(pair, value_set=skipped)))
        tags = b.column("tags")
        flat, row = pc.list_flatten(tags), pc.list_parent_indices(tags)
        begins = pc.starts_with(flat, "B-")
        rows = pc.filter(row, begins)
        parts = [rows.cast(pa.string()), pc.take(b.column("lang"), rows)]
        if by_reason:  # the reject kind, as ``rejects_per_reason`` counts it
            kind = pc.list_element(pc.split_pattern(pc.take(b.column("reason"), rows), ":", max_splits=1), 0)
            parts.append(pc.utf8_trim_whitespace(kind))
        # One key per (row, type): a sentence with two PER mentions counts once for PER.
        parts.append(pc.utf8_slice_codeunits(pc.filter(flat, begins), 2))
        for key in pc.unique(pc.binary_join_element_wise(*parts, "\x1f")).to_pylist():
            _, lang, *rest = key.split("\x1f")
            etype = rest[-1]
            if types is None or etype in types:
                counts[(lang, etype, *rest[:-1])] += 1
    return counts


#: The totals of an ``augment_attempts`` entry; its other counts are the no-row reasons.
ATTEMPT_TOTALS = ("attempts", "generated", "written", "rejected")


def attempts_by_op(flat: Mapping[str, int], lang_op: Mapping[str, int], rejects_lang_op: Mapping[str, int],
                   ops: Sequence[str] = ()) -> dict[str, dict[str, dict[str, int]]]:
    """The augment attempt counts as ``{op: {lang: counts}}``: ``attempts`` (``copies`` per kept
    row that reached the augment step, oversampling copies included), the rows ``generated``,
    of those the ``written`` and the ``rejected`` (by a filter) counted from the files, then each
    reason an attempt made no row for (``lrl.generate.augment.op.TALLY``: ``not_applicable``, the
    op does not apply to the sentence; ``unchanged``, the edit changed nothing; ``repeats_copy``,
    it repeats an earlier copy of its parent; ``equals_input``, it equals an input row).
    attempts = generated + the reasons; generated = written + rejected. ``ops`` (the augment
    ops that ran) are entered for every language they have rows of, counted or not."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for key, n in flat.items():
        op, rest = key.split("/", 1)
        lang, what = rest.rsplit("/", 1)
        out.setdefault(op, {}).setdefault(lang, {})[what] = n
    for key in lang_op:
        lang, op = key.rsplit("/", 1)
        if op in ops:  # rows on disk whose counts did not arrive: the check below says so
            out.setdefault(op, {}).setdefault(lang, {})
    for op, langs in out.items():
        for lang, counts in langs.items():
            counts.update(written=lang_op.get(f"{lang}/{op}", 0), rejected=rejects_lang_op.get(f"{lang}/{op}", 0))
            langs[lang] = {**{k: counts.get(k, 0) for k in ATTEMPT_TOTALS},
                           **{k: n for k, n in sorted(counts.items()) if k not in ATTEMPT_TOTALS}}
    return {op: dict(sorted(langs.items())) for op, langs in sorted(out.items())}


#: Where a rejected row came from: a reader quarantined it (it has a line), a read NER row or a
#: generated one was rejected by a step, or a text row (no tokens) was.
ORIGINS = ("read", "orig", "generated", "text_orig", "text_generated")


def reject_origins(folder: str) -> dict[str, int]:
    """Rejected rows per ``<lang>/<origin>`` (``ORIGINS``), read column by column from the files:
    what ``rejects_per_reason`` cannot tell, whether a reject was read, generated or text."""
    fs, inner = filesystem(folder)
    if fs.get_file_info(inner).type.name == "NotFound":
        return {}
    ds = pads.dataset(inner, filesystem=fs, format="parquet", partitioning="hive")
    counts: Counter[str] = Counter()
    for b in ds.to_batches(columns=["lang", "line", "tokens", "op"]):
        if b.num_rows == 0:
            continue
        read = pc.is_valid(b.column("line"))
        text = pc.is_null(b.column("tokens"))
        orig = pc.fill_null(pc.equal(b.column("op"), "orig"), False)
        origin = pc.if_else(read, "read", pc.if_else(text, pc.if_else(orig, "text_orig", "text_generated"),
                                                      pc.if_else(orig, "orig", "generated")))
        key = pc.binary_join_element_wise(b.column("lang").cast(pa.string()), origin, "/")
        for item in pc.value_counts(key).to_pylist():
            counts[item["values"]] += item["counts"]
    return dict(sorted(counts.items()))


def row_balance(ner_inputs: list[dict], text_inputs: list[dict], data_lang_op: dict[str, int],
                text_lang_op: dict[str, int], rejects_origin: dict[str, int]) -> dict[str, dict[str, int]]:
    """Per language and input kind (``ner/<lang>``, ``text/<lang>``): rows read (sentences or
    lines, quarantined ones included) against read rows written (op ``orig``) plus read rows
    rejected, all but ``read`` counted from the files. Generated rows are not part of it."""
    out: dict[str, dict[str, int]] = {}

    def add(key: str, field: str, n: int) -> None:
        out.setdefault(key, {"read": 0, "written": 0, "rejected": 0})[field] += n

    for i in ner_inputs:
        add(f"ner/{i['lang']}", "read", i["rows"] + i["rejects"])
    for i in text_inputs:
        add(f"text/{i['lang']}", "read", i["rows"])
    for key, n in data_lang_op.items():
        lang, op = key.rsplit("/", 1)
        if op == "orig":
            add(f"ner/{lang}", "written", n)
    for key, n in text_lang_op.items():
        lang, op = key.rsplit("/", 1)
        if op == "orig":
            add(f"text/{lang}", "written", n)
    for key, n in rejects_origin.items():
        lang, origin = key.rsplit("/", 1)
        if origin in ("read", "orig"):
            add(f"ner/{lang}", "rejected", n)
        elif origin == "text_orig":
            add(f"text/{lang}", "rejected", n)
    return dict(sorted(out.items()))
