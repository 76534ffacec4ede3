"""Line-aligned parallel files whose only difference is blank lines at the end of one of them."""

from __future__ import annotations

import pytest

from lrl.data.files import InputError
from lrl.data.readers import read_parallel


def test_blank_lines_at_the_end_of_one_file_keep_the_files_aligned(data_root, tmp_path):
    """An editor's trailing blank lines (``\\r\\n\\r\\n`` after the last line of one side) counted as
    lines: two aligned FLORES slices were "not line-aligned" (6 lines against 4) with no word of
    the blank lines. Blank lines past the other side's end are no pair; every other
    line-count difference stays an error."""
    d = data_root / "parallel" / "flores200_devtest"
    eng = (d / "eng_Latn.devtest").read_text(encoding="utf-8").splitlines()[:4]
    yor = (d / "yor_Latn.devtest").read_text(encoding="utf-8").splitlines()[:4]
    en, yo = tmp_path / "en.txt", tmp_path / "yo.txt"
    en.write_text("\n".join(eng) + "\n", encoding="utf-8")
    yo.write_bytes(("\ufeff" + "\r\n".join(yor) + "\r\n\r\n \r\n").encode("utf-8"))
    for args in ((en, yo, "en", "yo"), (yo, en, "yo", "en")):
        table = read_parallel(str(args[0]), str(args[1]), args[2], args[3])
        assert table.num_rows == 4
        assert table.column("src").to_pylist() == (eng if args[0] == en else yor)
        assert table.column("tgt").to_pylist() == (yor if args[0] == en else eng)
    # A real line past the other side's end is still misalignment.
    yo.write_text("\n".join(yor) + "\n\nextra\n", encoding="utf-8")
    with pytest.raises(InputError, match="has 4 lines but .*yo.txt has 6: not line-aligned"):
        read_parallel(str(en), str(yo), "en", "yo")
