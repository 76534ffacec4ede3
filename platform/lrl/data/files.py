"""Paths and files on any filesystem pyarrow knows (local, s3://, gs://, ...)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs


class InputError(ValueError):
    """An input that cannot be read; the message names the file, the line and the reason."""


def is_uri(path: str) -> bool:
    return "://" in path


#: Relative input paths ``resolve`` joined to ``data.root``: {joined path: (as written, root)}.
#: A "file not found" for one of them says where it was looked for and why: a job run without
#: ``data.root=`` looks inside the job file's folder, and the bare "jobs/wikiann/ug/train: file
#: not found" left the user guessing how a path they never wrote came about.
_RESOLVED: dict[str, tuple[str, str]] = {}


def resolve(path: str, root: str | None) -> str:
    """Resolve a relative input path against ``root`` (``data.root``); absolute paths and URIs
    pass through."""
    if path.startswith("~"):  # the home folder, as the shell would read it at a word's start
        path = os.path.expanduser(path)
    if is_uri(path) or os.path.isabs(path) or root is None:
        return path
    joined = root.rstrip("/") + "/" + path if is_uri(root) else str(Path(root) / path)
    _RESOLVED[joined] = _RESOLVED[joined if is_uri(joined) else os.path.abspath(joined)] = (path, root)
    return joined


def not_found(path: str, what: str = "file not found") -> InputError:
    """The error for a missing ``path``; it names ``data.root`` when ``path`` is a relative input joined to it."""
    written = _RESOLVED.get(path)
    if written is None:
        return InputError(f"{path}: {what}")
    rel, root = written
    return InputError(f"{path}: {what} (the relative path {rel} was resolved against data.root={root}, "
                      "the job file's folder unless set; set data.root=FOLDER to the folder that holds the inputs)")


def filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and in-filesystem path for a local path or URI."""
    if is_uri(path):
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), str(Path(path).absolute())


def folder_files(path: str) -> list[str] | None:
    """The files under the folder ``path`` (relative names, recursive), on its own filesystem;
    None when ``path`` is not a folder or cannot be listed (the reader that opens it then names
    the problem). ``os.path`` only sees local folders: a Parquet or ``save_to_disk`` folder under
    an s3://, gs:// or file:// root was read as one CoNLL file ("is a directory")."""
    if not is_uri(path):
        if not os.path.isdir(path):
            return None
        return [str(p.relative_to(path)) for p in Path(path).rglob("*") if p.is_file()]
    try:
        fs, inner = filesystem(path)
        if fs.get_file_info(inner).type != pafs.FileType.Directory:
            return None
        infos = fs.get_file_info(pafs.FileSelector(inner, recursive=True))
    except (OSError, ValueError):  # unreachable store, bad URI: not a folder we can read
        return None
    base = inner.rstrip("/") + "/"
    return [i.path.removeprefix(base) for i in infos if i.type == pafs.FileType.File]


#: Characters that make an input path a pattern (``corpus/ug-*.conll``), as in ``glob``.
GLOB_CHARS = "*?["


def is_glob(path: str) -> bool:
    """Whether ``path`` is a pattern: it has glob characters and names no existing file or folder
    (a file called ``a[1].conll`` is still read as itself)."""
    if not any(c in path.split("://", 1)[-1] for c in GLOB_CHARS):
        return False
    try:
        fs, inner = filesystem(path)
        return fs.get_file_info(inner).type == pafs.FileType.NotFound
    except (OSError, ValueError):  # pyarrow cannot parse a URI with "[" in it: a pattern, then
        return True


def _hidden(name: str) -> bool:
    """Names that a folder or a wildcard skips, as pyarrow datasets do: ``.DS_Store``, ``.git``,
    Spark's ``_SUCCESS`` are no input shards."""
    return name[:1] in (".", "_")


def glob_files(pattern: str) -> list[tuple[str, str]]:
    """The files ``pattern`` matches, sorted by name: (path, name relative to the pattern's
    leading folder without wildcards). As in ``glob``, ``*``, ``?`` and ``[...]`` match within
    one path component, and a name starting with ``.`` or ``_`` only matches a component that
    starts so. Works on any pyarrow filesystem that can list folders (local, file://, s3://...)."""
    head, sep, body = pattern.partition("://")
    head, body = (head + sep, body) if sep else ("", pattern)
    parts = body.split("/")
    k = next(i for i, p in enumerate(parts) if any(c in p for c in GLOB_CHARS))
    base = head + ("/".join(parts[:k]) or ("/" if body.startswith("/") else "."))
    try:
        fs, inner = filesystem(base)
        level = [(inner, "")]
        for i, comp in enumerate(parts[k:]):
            want = pafs.FileType.File if i == len(parts) - k - 1 else pafs.FileType.Directory
            found = []
            for folder, rel in level:
                for info in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
                    name = info.base_name
                    if info.type == want and fnmatchcase(name, comp) and (not _hidden(name) or comp[:1] == name[:1]):
                        found.append((info.path, f"{rel}/{name}" if rel else name))
            level = found
    except (OSError, ValueError) as exc:  # unreachable store, a file where a folder was expected
        raise InputError(f"{pattern}: cannot list the files this pattern names: {exc}") from exc
    if not level:
        raise not_found(pattern, "no file matches this pattern")
    return sorted(((_join(base, rel), rel) for _, rel in level), key=lambda f: f[1])


def _join(folder: str, name: str) -> str:
    return name if folder == "." else folder + name if folder.endswith("/") else f"{folder}/{name}"


def source_files(path: str) -> list[tuple[str, str]] | None:
    """The files of a source that is a pattern or a folder, sorted: (path, name relative to the
    folder or to the pattern's leading folder); None when ``path`` is one file (or names nothing:
    the reader then says so). Names starting with ``.`` or ``_`` are skipped in folders."""
    if is_glob(path):
        return glob_files(path)
    listed = folder_files(path)
    if listed is None:
        return None
    names = sorted(n for n in listed if not any(_hidden(p) for p in n.split("/")))
    if not names:
        raise InputError(f"{path}: the folder holds no input files (names starting with . or _ are skipped)")
    return [(_join(path.rstrip("/"), n), n) for n in names]


#: What ``datasets.save_to_disk`` writes at the top of its folder (a Dataset, a DatasetDict).
SAVED_MARKERS = ("state.json", "dataset_dict.json")


def saved_dataset(path: str, files: list[str] | None = None) -> bool:
    """Whether ``path`` is a folder written by ``datasets.save_to_disk``, on any filesystem
    (``load_from_disk`` reads file://, s3:// ... through fsspec); otherwise an ``hf`` source's
    path is a hub id. The readers and the generate stage's input hash both decide by it.
    ``files``: the folder's ``folder_files`` when already listed."""
    files = folder_files(path) if files is None else files
    return files is not None and any(f in files for f in SAVED_MARKERS)


def read_bytes(path: str) -> bytes:
    fs, inner = filesystem(path)
    try:
        with fs.open_input_stream(inner) as f:
            return f.read()
    except FileNotFoundError:
        raise not_found(path) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc


#: The first bytes of files that are often given as text but are not UTF-8, and what the error
#: adds: "not UTF-8 (byte 0x8b at offset 1)" did not say that the file was gzip-compressed
#: without a .gz name, nor "byte 0xff at offset 0" that it was UTF-16 (Windows' "Unicode").
_SIGNATURES = ((b"\x1f\x8b", ": the file is gzip-compressed; name it .gz"),
               (b"BZh", ": the file may be bzip2-compressed; name it .bz2"),
               (b"\x28\xb5\x2f\xfd", ": the file is zstd-compressed; name it .zst"),
               (b"\xff\xfe", ": the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8"),
               (b"\xfe\xff", ": the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8"),
               (b"PK\x03\x04", ": the file is a zip archive; unzip it"),
               (b"PAR1", ": the file is Parquet; name it .parquet or set format: parquet"))


def read_text(path: str) -> str:
    """Read a UTF-8 file; undecodable bytes raise an error naming the line and byte.

    A byte-order mark (Windows editors write one) at the start of the file or of any line is
    dropped: left in, it became part of the first token, hid a ``-DOCSTART-`` or ``#`` line, and
    made a JSON line invalid. Files joined with ``cat`` keep each part's mark at a line start
    (13 lines of the shared mono/ug.txt begin with one, and so did 13 of its text rows)."""
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = data[: exc.start]
        # Lines as split_lines counts them: \n, \r\n or a lone \r (old Mac files) end a line.
        line = head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1
        what = next((w for sig, w in _SIGNATURES if data.startswith(sig)), "")
        raise InputError(
            f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}){what}"
        ) from None
    if "\x00" in text:  # valid UTF-8, yet no text: UTF-16 without a mark read as "A\x00l\x00i" rows
        head = text[: text.index("\x00")]
        line = head.count("\n") + head.count("\r") - head.count("\r\n") + 1
        nuls = text.count("\x00")
        # UTF-16 puts a NUL beside every ASCII letter; a stray one or two in a UTF-8 corpus is not
        # that file, and "save the file as UTF-8" would not help its owner.
        why = ("not UTF-8 text (UTF-16 without a byte-order mark, or binary data); save the file as UTF-8"
               if nuls * 10 >= len(text) else f"{nuls} NUL character(s) in the file; remove them")
        raise InputError(f"{path}:{line}: NUL character: {why}")
    if "\ufeff" in text:  # inside a line it is a (deprecated) zero-width no-break space: kept
        text = text.removeprefix("\ufeff").replace("\n\ufeff", "\n").replace("\r\ufeff", "\r")
    return text


def read_json(path: str) -> Any:
    """The JSON document in the file ``path`` (any filesystem)."""
    fs, inner = filesystem(path)
    with fs.open_input_stream(inner) as f:
        return json.loads(f.read().decode("utf-8"))


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` as editors and Python's ``open()`` count them: ``\n``, ``\r\n`` or
    ``\r`` end a line. ``str.splitlines`` also splits at U+2028, U+0085, form feeds and other
    separators that occur inside Wikipedia sentences: a token was cut in two, every later line
    number in errors was off, and line-aligned parallel files fell out of alignment."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start an empty one
    return lines


def iter_lines(text: str, chunk: int = 1 << 16) -> Iterator[str]:
    """The lines of ``split_lines(text)``, one at a time: the list of every line of a big file
    (a str object per line, ~60 B each beyond its text) is never built. Split a piece of about
    ``chunk`` characters at a time, which is faster than a ``find`` per line."""
    if not text:
        return
    if "\r" in text:  # old Mac or Windows line ends: one normalised copy, as split_lines makes
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    end = len(text) - 1 if text.endswith("\n") else len(text)  # the final newline starts no line
    start = 0
    while True:
        cut = text.find("\n", start + chunk, end)
        if cut < 0:
            yield from text[start:end].split("\n")
            return
        yield from text[start:cut].split("\n")
        start = cut + 1


#: Extensions of the compressed files that pyarrow's input streams decompress on reading
#: (``pa.Codec.detect``): the format is named by the extension before them (``a.jsonl.gz``),
#: which ``auto`` missed, reading gzipped JSON lines as CoNLL.
COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")


def uncompressed_name(path: str) -> str:
    """``path`` without a compression extension (``a.conllu.gz`` -> ``a.conllu``)."""
    for ext in COMPRESSED:
        if path.endswith(ext):
            return path[: -len(ext)]
    return path


def fingerprint(path: str) -> str:
    """Content hash of a local file or folder (size + mtime for remote objects, where reading is
    costly); of a pattern, the names and hashes of every file it matches, so that a shard added
    to an input makes a new output."""
    if is_glob(path):
        h = hashlib.sha256()
        for file, name in glob_files(path):
            h.update(f"{name}\0{fingerprint(file)}\0".encode())
        return h.hexdigest()[:16]
    fs, inner = filesystem(path)
    info = fs.get_file_info(inner)
    if info.type == pafs.FileType.NotFound:
        raise not_found(path)
    if isinstance(fs, pafs.LocalFileSystem):
        h = hashlib.sha256()
        if info.type == pafs.FileType.Directory:
            for sub in sorted(Path(inner).rglob("*")):
                if sub.is_file():
                    h.update(str(sub.relative_to(inner)).encode())
                    h.update(_file_digest(sub).encode())
            return h.hexdigest()[:16]
        return _file_digest(Path(inner))[:16]
    if info.type == pafs.FileType.Directory:
        # A remote folder's own entry has no size, and object stores give it no mtime either:
        # its fingerprint was the same "None-None" whatever files it held.
        h = hashlib.sha256()
        base = inner.rstrip("/") + "/"
        for i in sorted(fs.get_file_info(pafs.FileSelector(inner, recursive=True)), key=lambda i: i.path):
            if i.type == pafs.FileType.File:
                h.update(f"{i.path.removeprefix(base)}\0{i.size}-{i.mtime_ns}\0".encode())
        return h.hexdigest()[:16]
    return f"{info.size}-{info.mtime_ns}"


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_parquet_checked(path: str, required: set[str], what: str = "Parquet"):
    """Read a Parquet file or folder; unreadable data or missing ``required`` columns raise an
    ``InputError`` naming the path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, inner = filesystem(path)
    try:
        table = pq.read_table(inner, filesystem=fs)
    except FileNotFoundError:
        raise not_found(path) from None
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: cannot read {what}: {exc}") from exc
    missing = required - set(table.column_names)
    if missing:
        raise InputError(f"{path}: {what} lacks column(s) {sorted(missing)}")
    return table


def parquet_file_rows(path: str, rows: int) -> list[tuple[str, int]] | None:
    """For a Parquet folder that ``read_parquet_checked`` read as one table of ``rows`` rows: each
    file and its row count, in the table's order (that of ``ParquetDataset``'s fragments, which
    ``read_table`` reads); None for one file, or when the counts do not add up. A reject of a
    folder's row named the folder and the row's index in the whole table, not its file and row."""
    import pyarrow.parquet as pq

    if folder_files(path) is None:
        return None
    fs, inner = filesystem(path)
    try:
        parts = [(f.path, f.count_rows()) for f in pq.ParquetDataset(inner, filesystem=fs).fragments]
    except (OSError, ValueError):
        return None
    base = inner.rstrip("/") + "/"
    named = [(f"{path.rstrip('/')}/{p.removeprefix(base)}", n) for p, n in parts]
    return named if sum(n for _, n in named) == rows else None
