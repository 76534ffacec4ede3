"""An evaluate output folder as the stage writes it, for report tests: one ug model scored on 2
dev sentences (F1 83.0), with its predictions."""

from __future__ import annotations

import json
from pathlib import Path


def write_evaluate(ev: Path) -> Path:
    """``metrics.json`` and ``predictions/ug/dev.parquet`` under ``ev``; returns ``ev``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (ev / "predictions" / "ug").mkdir(parents=True)
    (ev / "metrics.json").write_text(json.dumps({"models": {"ug": {"dev": {
        "f1": 0.83, "precision": 0.8, "recall": 0.86, "sentences": 2,
        "per_type": {"PER": {"f1": 0.9}, "LOC": {"f1": 0.5}}}}}}))
    pq.write_table(pa.table({"tags": [["B-PER", "I-PER", "O"], ["B-LOC", "O"]],
                             "pred": [["B-PER", "O", "O"], ["B-PER", "O"]]}), ev / "predictions" / "ug" / "dev.parquet")
    return ev
