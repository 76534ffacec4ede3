"""The report's section on the generate stage (its ``manifest.json``)."""

from __future__ import annotations

from lrl.evaluate.report_html import esc, not_run, table


def generate_section(gen: dict | None) -> str:
    """The generate stage: rows in and out, rows per operation and language (labelled and text),
    rejects per reason, augmentation attempts and the oversampling plan (``report_data.generate_summary``)."""
    if gen is None:
        return not_run("generate")
    # Sentences read, rejects included (as rejected counts them); older manifests: those kept
    out = [f"<p>Input rows: {esc(gen.get('input_read', gen.get('input_rows')))}; output rows: {esc(gen.get('output_rows'))}; "
           f"rejected: {esc(gen.get('rejects_total'))}; steps: {esc(', '.join(gen.get('steps') or []))}.</p>"]
    for key, title in (("rows_per_op", "rows per operation"), ("rows_per_lang", "rows per language"),
                       ("text_rows_per_op", "text rows per operation"), ("rejects_per_reason", "rejects per reason")):
        d = gen.get(key) or {}
        if key == "text_rows_per_op" and not d:  # no unlabelled text, or an older manifest
            continue
        out += [f"<h3>{esc(title)}</h3>", table([key.split("_per_")[-1], "rows"], sorted(d.items()))
                if d else '<p class="na">none</p>']
    attempts = gen.get("augment_attempts") or {}
    if attempts:  # why `augment.copies` attempts per sentence gave fewer rows
        from lrl.generate.manifest import ATTEMPT_TOTALS  # totals first, then the no-row reasons

        keys = {k for langs in attempts.values() for c in langs.values() for k in c}
        counts = [k for k in ATTEMPT_TOTALS if k in keys] + sorted(keys - set(ATTEMPT_TOTALS))
        rows = [[op, lang, *(c.get(k, 0) for k in counts)] for op, langs in attempts.items() for lang, c in langs.items()]
        out += ["<h3>augmentation attempts (per op and language; the rest made no row, by reason)</h3>",
                table(["op", "lang", *counts], rows)]
    return "\n".join(out + _oversample_tables(gen.get("oversample")))


def _oversample_tables(ov: dict | None) -> list[str]:
    """Sentences per language before oversampling, the target and what was written, and the entity
    types below their minimum on disk (held there by ``max_factor``, or taken there by the filters,
    with their reject kinds): a missed target changes what the data is."""
    if not ov:
        return []
    before, written, targets = ov.get("rows_before") or {}, ov.get("rows_written") or {}, ov.get("targets") or {}
    missed = ov.get("missed_targets") or {}
    rows = [[lang, before.get(lang, ""), targets.get(lang, "—"), written.get(lang, ov.get("rows_after", {}).get(lang, "")),
             "missed" if lang in missed else ""] for lang in sorted(set(before) | set(targets))]
    out = ["<h3>oversampling (sentences per language)</h3>",
           table(["lang", "before", "target", "written", "target missed"], rows)]  # a blank header named nothing
    # Held below by max_factor (nothing rejected), or taken below by the filters (their reject kinds)
    types = [[lang, t, m.get("target"), m.get("reached"),
              ", ".join(f"{kind} {n}" for kind, n in (m.get("rejected") or {}).items()) or "—"]
             for lang, per in (ov.get("missed_rare_types") or {}).items() for t, m in per.items()]
    if types:
        out += ["<h3>entity types below oversample.min_sentences_per_type on disk</h3>",
                table(["lang", "type", "minimum", "written", "sentences rejected (by the filters)"], types)]
    return out


__all__ = ["generate_section"]
