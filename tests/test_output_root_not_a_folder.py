"""An ``output.root`` where no folder can be made: one line naming the setting, no traceback."""

from __future__ import annotations

import pytest

from lrl.data.files import InputError
from lrl.data.root_lock import root_lock


def test_an_output_root_that_is_a_file_is_named_in_one_line(tmp_path, capsys):
    """``output.root=runs.yaml`` (a file, a slip of the shell's completion) or a folder under one:
    the lock's ``mkdir`` raised FileExistsError / NotADirectoryError and ``lrl generate`` ended in a
    28-line traceback that named neither ``output.root`` nor what was wrong with it."""
    from lrl.cli import main

    taken = tmp_path / "runs.yaml"
    taken.write_text("name: x\n", encoding="utf-8")
    for root in (taken, taken / "sub"):
        with pytest.raises(InputError, match=rf"output\.root={root}: cannot make the folder {root} \("):
            with root_lock(str(root), "job"):
                pass
    (tmp_path / "in.conll").write_text("Adé\tB-PER\nlọ\tO\n", encoding="utf-8")
    job = tmp_path / "job.yaml"
    job.write_text(f"data:\n  ner:\n    - {{path: in.conll, lang: yo}}\noutput:\n  root: {taken}\n", encoding="utf-8")
    assert main(["generate", str(job)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lrl generate: error: output.root={taken}: cannot make the folder") and "\n" not in err
    assert taken.read_text(encoding="utf-8") == "name: x\n"
