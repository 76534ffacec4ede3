"""``pretrain.tokenizer_path`` and ``pretrain.model_path`` that name no usable folder: a one-line
error (exit 2) that names the field, before anything is built or Ray starts."""

from __future__ import annotations

import pytest
from pretrain_jobs import _job


@pytest.mark.parametrize("field, target, said", [
    ("tokenizer_path", "missing", "pretrain.tokenizer_path={}: no such folder"),
    ("tokenizer_path", "text", "pretrain.tokenizer_path={}: not a tokenizer folder"),
    ("model_path", "missing", "pretrain.model_path={}: no such folder"),
    ("model_path", "text", "pretrain.model_path={}: not a Hugging Face model folder"),
])
def test_a_path_that_is_no_such_folder_names_the_field(tmp_path, capsys, field, target, said):
    """A missing folder said only "<path>: file not found"; the text folder given as the tokenizer
    ended in transformers' traceback about converting a slow tokenizer (exit 1)."""
    from lrl.cli import main

    job = _job(tmp_path, {"engine": "torch"})
    path = tmp_path / "nothing" if target == "missing" else tmp_path  # the folder of ug.txt and wo.txt
    assert main(["pretrain", str(job), f"pretrain.{field}={path}"]) == 2
    err = capsys.readouterr().err
    assert said.format(path) in err and "Traceback" not in err, err
