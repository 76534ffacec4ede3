"""Text readers: unlabelled text (``data.text``) and line-aligned parallel files, one row per
line, each line in ``data.unicode``'s form (``lrl.data.nfc``). ``lrl.data.readers`` re-exports them."""

from __future__ import annotations

import re

import pyarrow as pa

from lrl.data import collect
from lrl.data.config import TextSource
from lrl.data.files import InputError, iter_lines, read_text, resolve, source_files, split_lines
from lrl.data.nfc import Composer, UnicodeForm, with_changed
from lrl.data.schema import PARALLEL_SCHEMA, TEXT_SCHEMA


def text_id_name(path: str) -> str:
    """The file-name part of text row ids (``lang:name:line``): ids stay unique across several
    files of a language as long as their names differ."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def text_files(path: str) -> list[tuple[str, str]]:
    """The files of a text source and the name each gives its row ids: the file name for one
    file, for a pattern or a folder each file's path relative to it (``lrl.data.sources``)."""
    return source_files(path) or [(path, text_id_name(path))]


#: A document header: ``# doc`` alone or followed by whitespace and a title. A bare prefix test
#: also took "# doctors say ..." for a header and dropped the line without a trace.
_DOC = re.compile(r"# doc(\s|$)")


def read_text_lines(src: TextSource, root: str | None) -> pa.Table:
    """Plain text, one sentence or paragraph per line; ``# doc <title>`` lines start a document
    and are not themselves rows. Blank lines are skipped (they carry no text). A pattern or a
    folder is read file by file, in sorted order, ``max_lines`` counting over all of them. The
    table's metadata holds the count of lines that reading composed to NFC (``nfc.changed_in``)."""
    compose = Composer(src.unicode_form)
    titles = Composer(src.unicode_form)  # a document's title is no row: not counted
    rows: list[dict] = []
    chunks: list[pa.Table] = []  # rows made Arrow a chunk at a time, as in ``Collector``
    kept = 0
    for path, name in text_files(resolve(src.path, root)):
        if src.max_lines is not None and kept >= src.max_lines:
            break
        text = read_text(path)
        doc = None
        start = kept
        for lineno, line in enumerate(iter_lines(text), start=1):
            line = line.strip()
            if not line:
                continue
            if _DOC.match(line):
                doc = titles.text(line[5:].strip().removeprefix("\ufeff")) or f"doc@{lineno}"  # "# doc \ufeffTitle": 2 in ug.txt
                continue
            rows.append({"id": f"{src.lang}:{name}:{lineno}", "lang": src.lang, "text": compose.text(line), "doc": doc,
                         "source": path, "op": "orig", "parent_id": None, "seed": None})
            kept += 1
            if len(rows) >= collect.CHUNK_ROWS:  # the module's, read each time: tests shrink it
                chunks.append(pa.Table.from_pylist(rows, schema=TEXT_SCHEMA))
                rows = []
            if src.max_lines is not None and kept >= src.max_lines:
                break
        if kept == start:
            raise InputError(f"{path}: empty file (no text lines)")
    return with_changed(pa.concat_tables([*chunks, pa.Table.from_pylist(rows, schema=TEXT_SCHEMA)]), compose.changed)


def read_parallel(src_path: str, tgt_path: str, src_lang: str, tgt_lang: str,
                  unicode: UnicodeForm = "nfc") -> pa.Table:
    """Two line-aligned files; a differing line count, two empty files or a line blank on one
    side only is an error naming the files (and the line). Lines are read in ``unicode``'s form;
    the metadata counts those changed on either side."""
    compose = Composer(unicode)
    src = [compose.text(line) for line in split_lines(read_text(src_path))]
    tgt = [compose.text(line) for line in split_lines(read_text(tgt_path))]
    # Blank lines an editor left after the last line of one file are no pair: counted, they made
    # two aligned files "not line-aligned" without a word of the blank lines.
    src, tgt = _blank_tail_cut(src, len(tgt)), _blank_tail_cut(tgt, len(src))
    if len(src) != len(tgt):
        raise InputError(f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: not line-aligned")
    if not src:  # two empty files made an empty table without a word, where every other reader raises
        raise InputError(f"{src_path}: empty file (no lines), and so is {tgt_path}")
    # A line blank on one side only (an untranslated sentence) became a pair with an empty side.
    lone = [i for i, (s, t) in enumerate(zip(src, tgt)) if bool(s.strip()) != bool(t.strip())]
    if lone:
        i = lone[0]
        blank, other = (src_path, tgt_path) if not src[i].strip() else (tgt_path, src_path)
        raise InputError(f"{blank}:{i + 1}: blank line, but line {i + 1} of {other} is not: a pair with one side "
                         f"missing ({len(lone)} such line(s)); remove the pair from both files or fill it in")
    rows = [{"id": f"{src_lang}-{tgt_lang}:{i + 1}", "src_lang": src_lang, "tgt_lang": tgt_lang,
             "src": s, "tgt": t, "source": f"{src_path}|{tgt_path}"} for i, (s, t) in enumerate(zip(src, tgt))]
    return with_changed(pa.Table.from_pylist(rows, schema=PARALLEL_SCHEMA), compose.changed)


def _blank_tail_cut(lines: list[str], n: int) -> list[str]:
    """``lines`` cut to ``n`` when every line past the n-th is blank, else as they are."""
    return lines[:n] if len(lines) > n and not any(line.strip() for line in lines[n:]) else lines


__all__ = ["text_id_name", "text_files", "read_text_lines", "read_parallel"]
