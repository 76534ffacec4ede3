"""The generate stage's manifest: input counts, rows per operation and language, rejects per
reason, the resolved config. Counts come from the written Parquet (only the ``op``/``reason``
columns are read), so they describe exactly what is on disk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from lrl.data.files import resolve
from lrl.generate.write import DATA, REJECTS, TEXT, count_values
from lrl.job import JobConfig


@dataclass
class Inputs:
    """Everything read on the driver: one result per labelled training source, text tables, labels."""

    sources: list  # list[lrl.data.config.NerSource]: the training sources, in data.ner order
    ner: list  # list[lrl.data.readers.ReadResult], one per source
    texts: list[pa.Table]
    labels: list[str]


def build_manifest(cfg: JobConfig, inputs: Inputs, steps: Sequence[Any], folder: str, files: int,
                   text_rows: int) -> dict[str, Any]:
    """The manifest body (``StageOutput.commit`` adds versions and wall time).

    ``steps`` are the steps that ran; one with a ``manifest()`` method adds its entries (the
    oversampling plan: targets, and those missed because of ``max_factor``)."""
    ner_inputs = []
    for src, res in zip(inputs.sources, inputs.ner):
        ner_inputs.append({"path": res.source, "lang": src.lang, "split": src.split, "format": src.format,
                           "rows": res.table.num_rows, "rejects": res.rejects.num_rows,
                           "reject_reasons": res.reject_reasons, "repaired": res.repaired})
    text_inputs = [{"path": t.column("source")[0].as_py() if t.num_rows else src.path, "lang": src.lang,
                    "rows": t.num_rows} for src, t in zip(cfg.data.text, inputs.texts)]
    per_op = count_values(f"{folder}/{DATA}", ["op"])
    per_lang = count_values(f"{folder}/{DATA}", ["lang"])
    per_reason = count_values(f"{folder}/{REJECTS}", ["reason"], kind_of_reason=True)
    notes: dict[str, Any] = {}
    for s in steps:
        if callable(getattr(s, "manifest", None)):
            notes.update(s.manifest())
    return {
        "layout": {DATA: "data/lang=<lang>/*.parquet (NER_SCHEMA without lang)",
                   REJECTS: "rejects/lang=<lang>/*.parquet (rejected rows with their reason)",
                   TEXT: "text/lang=<lang>/*.parquet (TEXT_SCHEMA without lang)"},
        "inputs": {"ner": ner_inputs, "text": text_inputs,
                   "held_out": [f"{resolve(s.path, cfg.data.root)}#{s.split}" for s in cfg.data.ner
                                if s not in inputs.sources]},
        "input_rows": sum(i["rows"] for i in ner_inputs),
        "labels": inputs.labels,
        "steps": [s.name for s in steps],
        "output_rows": sum(per_op.values()),
        "rows_per_op": per_op,
        "rows_per_lang": per_lang,
        "rows_per_lang_op": count_values(f"{folder}/{DATA}", ["lang", "op"]),
        "rejects_total": sum(per_reason.values()),
        "rejects_per_reason": per_reason,
        "text_rows": text_rows,
        "files": files,
        **notes,
        "config": cfg.model_dump(mode="json"),
    }
