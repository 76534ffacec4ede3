"""Input row ids that the generate stage would also give to rows it makes."""

from __future__ import annotations

import json

import pytest

from lrl.data.files import InputError
from lrl.generate.stage import read_inputs
from lrl.job import load_job

ROWS = [{"id": "s2|delete|0", "tokens": ["Adé", "lọ", "sí", "ilé"], "tags": ["B-PER", "O", "O", "O"]},
        {"id": "s2", "tokens": ["Òjó", "wà", "ní", "ọjà", "lónìí"], "tags": ["B-PER", "O", "O", "O", "O"]}]


def _job(tmp_path, *overrides):
    (tmp_path / "yo.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS),
                                       encoding="utf-8")
    return load_job(None, [f"data.root={tmp_path}", "data.ner=[{path: yo.jsonl, lang: yo}]", *overrides])


def test_an_input_id_that_a_generated_row_would_take_is_an_error(tmp_path):
    """Rows of an earlier generate output fed in again (Parquet or JSONL keeps their ids): the
    delete row made from ``s2`` is ``s2|delete|0`` too, and the output held two rows of that id
    (one the input row, one its namesake's child), which parent_id lookups, dedup and replay
    take for one row. Named before any work, with both ids and their file."""
    with pytest.raises(InputError, match=r"yo\.jsonl: row id 's2\|delete\|0' is the id generate gives a row "
                                         r"it makes from row 's2'"):
        read_inputs(_job(tmp_path, "augment.ops=[delete]"))
    with pytest.raises(InputError, match="from row 's2'"):  # through an oversampled copy's child
        ROWS[0]["id"] = "s2|oversample|1|delete|0"
        try:
            read_inputs(_job(tmp_path, "augment.ops=[delete]", "oversample.enabled=true",
                             "oversample.target_per_lang=6"))
        finally:
            ROWS[0]["id"] = "s2|delete|0"
    # Ops that do not run make no such id: the rows are read as before.
    assert read_inputs(_job(tmp_path, "augment.ops=[swap]")).ner[0].table.num_rows == 2
    assert read_inputs(_job(tmp_path)).ner[0].table.num_rows == 2


def test_a_chain_the_stage_cannot_make_is_no_clash(tmp_path):
    """Each augment op works on the rows entering the step (translate -> oversample -> augment), so
    no row of ``s2`` gets ``s2|delete|0|swap|0``: such an input id is no clash (it was refused,
    peeled through both ops to ``s2``). Chains in the steps' order still are."""
    for rid in ("s2|delete|0|swap|0", "s2|delete|0|oversample|1", "s2|oversample|1|oversample|0"):
        ROWS[0]["id"] = rid
        try:
            assert read_inputs(_job(tmp_path, "augment.ops=[delete, swap]", "oversample.enabled=true",
                                    "oversample.target_per_lang=6")).ner[0].table.num_rows == 2
        finally:
            ROWS[0]["id"] = "s2|delete|0"
