"""Readers: every input format becomes rows of the shared schemas (see ``schema.py``).

Row-level problems go to a rejects table with file, line and reason (or raise, under the
``error`` policy); file-level problems (missing, not UTF-8, empty, every sentence rejected) always
raise ``InputError``. Kept tokens are read in NFC unless ``unicode="none"`` (``data.unicode``,
``lrl.data.nfc``); the text readers are in ``lrl.data.text_readers``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable

import pyarrow as pa

from lrl.data import files as _files
from lrl.data.bio import BioPolicy, is_valid_tag
from lrl.data.collect import CHUNK_ROWS, ReadResult, Shard
from lrl.data.collect import Collector as _Collector
from lrl.data.config import NerSource
from lrl.data.files import (
    InputError,
    iter_lines,
    parquet_file_rows,
    read_parquet_checked,
    read_text,
    resolve,
    saved_dataset,
    source_files,
    uncompressed_name,
)
from lrl.data.nfc import UnicodeForm
from lrl.data.schema import NER_SCHEMA
from lrl.data.sources import check_split_names, read_files
from lrl.data.tag_ids import column_types, named_tags
from lrl.data.text_readers import read_parallel, read_text_lines, text_files
from lrl.data.token_tags import TagScheme, read_conllu_tags


def read_conll(path: str, lang: str, split: str = "train", policy: BioPolicy = "quarantine",
               labels: Iterable[str] | None = None, shard: Shard | None = None,
               scheme: TagScheme = "iob2", unicode: UnicodeForm = "nfc") -> ReadResult:
    """CoNLL/TSV: one token per line, tab- or space-separated columns, the last column the tag;
    blank lines end sentences; ``-DOCSTART-`` and ``#`` comment lines are skipped (a ``#`` line
    that opens a sentence and ends in a valid tag is a token)."""
    text = read_text(path)
    if not text.strip():
        raise InputError(f"{path}: empty file (no sentences)")
    col = _Collector(path, lang, split, policy, labels, shard, scheme, unicode)
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []  # each token's line: a tag problem names its own line
    raw: list[str] = []
    start = 0
    bad: str | None = None
    # Lines are walked twice (the usual width first), never held as a list: one str per line
    # of a 179 MB file took more memory than the table read from it.
    width = _usual_width(iter_lines(text))
    for lineno, line in enumerate(itertools.chain(iter_lines(text), [""]), start=1):
        stripped = line.strip()
        # -DOCSTART- ends a sentence as a blank line does: skipped inside one, it joined the
        # sentences of two documents when the file lacked the blank line after it.
        if not stripped or stripped.startswith("-DOCSTART-"):
            if raw:
                if bad:
                    col.reject(start, bad, "\n".join(raw))
                else:
                    col.sentence(start, tokens, tags, "\n".join(raw), token_lines=lines)
            tokens, tags, lines, raw, bad = [], [], [], [], None
            continue
        parts = _columns(line)
        if stripped.startswith("#") and not raw and not _token_line(line, parts, width, scheme):
            continue
        if not raw:
            start = lineno
        raw.append(line)
        reason = None
        if len(parts) < 2:
            reason = f"tag missing: line {lineno} has no tag column (expected token<TAB>tag, got {stripped!r})"
        elif len(parts) != width:
            # Read as token + last column, "New York B-LOC" in a space-separated file became "New"
            # and a stray tab dropped the text after it: the sentence lost words without a trace.
            reason = f"column count: line {lineno} has {len(parts)} columns, the file's lines have {width}"
        if reason is not None:
            if policy == "error":
                raise InputError(f"{path}:{lineno}: {reason}")
            bad = bad or reason
            continue
        tokens.append(parts[0])
        tags.append(parts[-1])
        lines.append(lineno)
    if not col.rows and not col.rejects:
        raise InputError(f"{path}: empty file (no sentences)")
    return col.result()


#: What separates the columns of a space-separated line: whitespace but the line breaks of
#: ``str.splitlines`` (U+2028, U+0085, \v, \f, \x1c-\x1e) and \x1f. Split there, "Da\u2028kar B-LOC"
#: was 3 columns, in a 3-column file the token "Da"; kept, the collector rejects the token.
_SPACES = re.compile(r"[^\S\x0b\x0c\x1c-\x1f\x85\u2028\u2029]+")


def _columns(line: str) -> list[str]:
    """The columns of a CoNLL line: tab-separated when it has a tab (each column stripped, so an
    empty or blank first column is an empty token, not a missing tag), else space-separated
    (``_SPACES``)."""
    body = line.rstrip()
    if "\t" in body:
        return [p.strip() for p in body.split("\t")]
    return body.split() if body.isprintable() else [p for p in _SPACES.split(body) if p]


def _usual_width(lines: Iterable[str]) -> int:
    """The most common column count of the file's token lines (comments and -DOCSTART- aside):
    what every token line must have. The most common, not the first line's, so that one odd
    first line does not quarantine the whole file."""
    counts = Counter(len(_columns(x)) for x in lines if x.strip() and not x.lstrip().startswith(("#", "-DOCSTART-")))
    wide = [(n, w) for w, n in counts.items() if w >= 2]
    return max(wide)[1] if wide else 2


def _token_line(line: str, parts: list[str], width: int, scheme: TagScheme = "iob2") -> bool:
    """A ``#`` line that is ``token<TAB>tag`` with a valid tag (``#Kano<TAB>B-LOC``, a hashtag that
    opens a tweet) is a token, not a comment; skipping it lost the sentence's first token. Under
    ``scheme: tokens`` any word is a tag, so there it takes a tab-separated line of the file's
    width (a comment such as ``# sent_id = 3`` has no tab)."""
    if scheme == "tokens":
        return "\t" in line and len(parts) == width >= 2
    return len(parts) >= 2 and is_valid_tag(parts[-1])


def read_jsonl(path: str, lang: str, split: str = "train", policy: BioPolicy = "quarantine",
               labels: Iterable[str] | None = None, shard: Shard | None = None,
               scheme: TagScheme = "iob2", tag_names: list[str] | None = None,
               unicode: UnicodeForm = "nfc") -> ReadResult:
    """JSON lines with ``tokens`` and ``tags`` (or ``ner_tags``) lists; optional ``id`` and ``lang``.
    Integer tags are ids, named through ``tag_names`` (``lrl.data.tag_ids``)."""
    text = read_text(path)
    if not text.strip():
        raise InputError(f"{path}: empty file (no sentences)")
    col = _Collector(path, lang, split, policy, labels, shard, scheme, unicode)
    for lineno, line in enumerate(iter_lines(text), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            col.reject(lineno, f"not valid JSON: {exc.msg} at column {exc.colno}", line)
            continue
        if not isinstance(obj, dict):
            col.reject(lineno, f"not a JSON object: got {type(obj).__name__}", line)
            continue
        tag_key = "tags" if "tags" in obj else "ner_tags"
        if "tokens" not in obj or tag_key not in obj:
            col.reject(lineno, "tokens or tags missing: need lists 'tokens' and 'tags' (or 'ner_tags')", line)
            continue
        toks, tags = obj["tokens"], obj[tag_key]
        if col.null_list(lineno, {"tokens": toks, tag_key: tags}, line):  # was "tokens or tags missing"
            continue
        wrong = next((k for k, v in (("tokens", toks), (tag_key, tags)) if not isinstance(v, list)), None)
        if wrong is not None:  # a string was "tokens or tags missing", though the field was there
            col.reject(lineno, f"not a list: '{wrong}' is {_json_type(obj[wrong])} ({json.dumps(obj[wrong])[:40]}); "
                       "need a list with one entry per token", line)
            continue
        if obj.get("lang", lang) != lang:
            col.reject(lineno, f"lang mismatch: {obj.get('lang')!r} differs from the source's {lang!r}", line)
            continue
        odd = next(((what, i, v) for what, values in (("token", toks), ("tag", tags))
                    for i, v in enumerate(values) if isinstance(v, (list, dict, bool))
                    or (what == "token" and isinstance(v, float))), None)
        if odd is not None:  # str() made ["New", "York"] the token "['New', 'York']", true "True", and
            # a number token its float's text: 1.50 "1.5", 1e5 "100000.0", NaN "nan" (a float tag is a tag id)
            col.reject(lineno, f"not a string: {odd[0]} {odd[1]} is {json.dumps(odd[2])[:80]}", line)
            continue
        named, why = named_tags(tags, tag_names, scheme)
        if named is None:
            col.reject(lineno, why or "", line)
            continue
        col.sentence(lineno, [_str(t) for t in toks], named, line, obj.get("id"))
    return col.result()


def _json_type(value: object) -> str:
    return {str: "a string", bool: "a boolean", dict: "an object"}.get(type(value), "a number")


def _str(value: object) -> str | None:
    """A JSON string or number as text; null stays None so that the row is rejected rather than
    read as "None" (lists, objects and booleans are rejected before)."""
    return None if value is None else str(value)


def read_parquet_ner(path: str, lang: str, split: str = "train", policy: BioPolicy = "quarantine",
                     labels: Iterable[str] | None = None, shard: Shard | None = None,
                     scheme: TagScheme = "iob2", tag_names: list[str] | None = None,
                     unicode: UnicodeForm = "nfc") -> ReadResult:
    """Parquet file or folder with list columns ``tokens`` and ``tags`` (or ``ner_tags``, as in
    JSONL); other schema columns optional. Integer tags (a Hugging Face Parquet export) are mapped
    to names through the ClassLabel that ``datasets`` records in the file's metadata, else through
    ``tag_names``."""
    table = read_parquet_checked(path, {"tokens"})
    tag_col = "tags" if "tags" in table.column_names else "ner_tags"
    if tag_col not in table.column_names:
        raise InputError(f"{path}: Parquet lacks column(s) ['tags'] (or 'ner_tags')")
    names = column_types(path, table, tag_col, tag_names)
    col = _Collector(path, lang, split, policy, labels, shard, scheme, unicode)
    # Batch by batch: the whole table as Python dicts took ~10x its Arrow size.
    rows = (row for batch in table.to_batches(max_chunksize=CHUNK_ROWS) for row in batch.to_pylist())
    parts = parquet_file_rows(path, table.num_rows)  # a folder's row is named by its own file and row
    where = ((f, n + 1) for f, count in parts for n in range(count)) if parts else ((path, n) for n in itertools.count(1))
    for row, (col.path, line) in zip(rows, where):
        raw = json.dumps(row, ensure_ascii=False, default=str)[:500]
        if row.get("lang") is not None and row["lang"] != lang:  # as in JSONL: never relabel a row
            col.reject(line, f"lang mismatch: {row['lang']!r} differs from the source's {lang!r}", raw)
            continue
        if col.null_list(line, {"tokens": row["tokens"], tag_col: row[tag_col]}, raw, row.get("id")):
            continue
        tags, why = named_tags(list(row[tag_col]), names, scheme)
        if tags is None:  # an id out of range of the tag names (either scheme), or a bad id
            col.reject(line, why or "", raw, row.get("id"))
            continue
        col.sentence(line, list(row["tokens"]), tags, raw, row.get("id"))
    col.path = path
    return col.result()


def read_hf(path: str, lang: str, split: str = "train", policy: BioPolicy = "quarantine",
            labels: Iterable[str] | None = None, hf_config: str | None = None,
            scheme: TagScheme = "iob2", tag_names: list[str] | None = None,
            unicode: UnicodeForm = "nfc") -> ReadResult:
    """A Hugging Face dataset: a folder from ``save_to_disk`` or a hub id with a config.

    Integer ``ner_tags`` are mapped to names through the dataset's ClassLabel feature, else
    through ``tag_names``."""
    import datasets

    try:
        ds = datasets.load_from_disk(path) if saved_dataset(path) else datasets.load_dataset(path, hf_config)
    except Exception as exc:  # hub unreachable, unknown id/config, not a saved dataset: one clear error
        raise InputError(f"{path}: cannot load Hugging Face dataset (config {hf_config!r}): "
                         f"{type(exc).__name__}: {exc}") from exc
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise InputError(f"{path}: no split {split!r} (has {sorted(ds)})")
        ds = ds[split]
    tag_col = "ner_tags" if "ner_tags" in ds.column_names else "tags"
    if "tokens" not in ds.column_names or tag_col not in ds.column_names:
        raise InputError(f"{path}: dataset lacks tokens/ner_tags columns (has {ds.column_names})")
    names = getattr(getattr(ds.features[tag_col], "feature", None), "names", None)
    # The column types, as for Parquet: a string column of tokens was read character by character
    # (kept when the tags matched), a string tag column or integer tokens crashed with a traceback.
    names = column_types(path, ds.data, tag_col, tag_names, list(names) if names is not None else None)
    name = f"{path}[{hf_config}]" if hf_config else path  # "sw_hf[]" named no config
    col = _Collector(name, lang, split, policy, labels, scheme=scheme, unicode=unicode)
    for i, row in enumerate(ds):
        # ClassLabel -1 means "no label" in datasets; as an index it named the last class.
        raw = json.dumps(row, ensure_ascii=False)[:500]
        if row.get("lang") is not None and row["lang"] != lang:  # as in JSONL and Parquet: was kept, relabelled
            col.reject(i + 1, f"lang mismatch: {row['lang']!r} differs from the source's {lang!r}", raw)
            continue
        if col.null_list(i + 1, {"tokens": row["tokens"], tag_col: row[tag_col]}, raw):
            continue  # read as [], "empty sentence" or "length mismatch"; as a list, a TypeError
        tags, why = named_tags(row[tag_col], names, scheme)
        if tags is None:
            col.reject(i + 1, why or "", raw)
            continue
        col.sentence(i + 1, list(row["tokens"]), tags, raw)
    return col.result()


def read_ner(src: NerSource, root: str | None, policy: BioPolicy = "quarantine",
             labels: Iterable[str] | None = None) -> ReadResult:
    """Read one configured labelled source with the reader its format names; a pattern or a folder
    of CoNLL/JSONL files is read file by file (``lrl.data.sources``)."""
    path = resolve(src.path, root)
    fmt = src.format
    files = _files.folder_files(path) if fmt in ("auto", "hf", "parquet") else None
    saved = files is not None and fmt != "parquet" and saved_dataset(path, files)
    if fmt == "hf" and not saved:  # a hub id such as ``wikiann``, as written (with data.root=
        # ../shared/data, ``wikiann`` is also the folder of the CoNLL files); a path no hub id can
        # be is an error naming its folder (load_dataset said "Couldn't reach ... on the Hub")
        check_hf_path(src, path, root)
        path = src.path
    if fmt == "auto" and files is not None and (saved or any(f.endswith(".parquet") for f in files)):
        # A save_to_disk dataset (it holds state.json or dataset_dict.json) or Parquet files: read
        # as one table, as they always were; any other folder is read file by file below.
        fmt = "hf" if saved else "parquet"
    if fmt == "hf":
        return read_hf(path, src.lang, src.split, policy, labels, src.hf_config, src.scheme, src.tag_names,
                       src.unicode_form)
    many = None if fmt == "parquet" and files is not None else source_files(path)
    if many is None:
        return _read_file(path, fmt, src, policy, labels)
    check_split_names(path, many, src.split)
    return read_files(path, many, lambda file, shard: _read_file(file, fmt, src, policy, labels, shard))


def check_hf_path(src: NerSource, path: str, root: str | None) -> None:
    """An ``InputError`` for a ``format: hf`` source whose path (``path``: resolved against
    ``root``) is no folder written by ``datasets.save_to_disk`` and that no hub id can be
    (``lrl.data.local_or_hub.looks_like_path``): ``load_dataset`` took ``corpora/ug_hf`` for a hub
    id ("Couldn't reach 'corpora/ug_hf' on the Hub", after retries with a network), naming no
    folder. A hub id is left to ``load_dataset``; the generate stage checks held-out sources so."""
    from lrl.data.local_or_hub import looks_like_path

    local_root = [] if root is None or _files.is_uri(root) else [root]
    if "://" in src.path or not looks_like_path(src.path, local_root) or saved_dataset(path):
        return
    what = "not a folder written by datasets.save_to_disk (it holds no state.json or dataset_dict.json)" \
        if _files.folder_files(path) is not None else "no such folder"
    raise _files.not_found(path, f"{what}; format: hf reads such a folder or a Hugging Face hub id, which "
                                 f"{src.path} cannot be")


def check_source(src: NerSource, root: str | None, what: str = "file not found") -> None:
    """An ``InputError`` (``files.not_found``) when the ``data.ner`` source ``src`` names nothing,
    its path resolved against ``root`` as ``read_ner`` does: a ``format: hf`` path that is no
    ``save_to_disk`` folder and no hub id can be (``check_hf_path``), a pattern no file matches,
    a path that is no file or folder (``what``). Existence and matching only, nothing is read; a
    hub id is left to ``load_dataset``. ``OSError`` when the store cannot be reached."""
    path = resolve(src.path, root)
    if src.format == "hf" and not saved_dataset(path):
        try:
            check_hf_path(src, path, root)
        except InputError:  # "no such folder": a failed listing read as an empty one, unless the store answers
            if _files.is_uri(path):
                fs, inner = _files.filesystem(path)
                fs.get_file_info(inner)  # OSError when the store cannot be reached
            raise
    elif _files.is_glob(path):
        _files.glob_files(path)  # raises not_found when nothing matches
    else:
        fs, inner = _files.filesystem(path)
        if fs.get_file_info(inner).type.name == "NotFound":
            raise _files.not_found(path, what)


def _read_file(path: str, fmt: str, src: NerSource, policy: BioPolicy, labels: Iterable[str] | None,
               shard: Shard | None = None) -> ReadResult:
    """One CoNLL, CoNLL-U, JSONL or Parquet input (a file, or a Parquet folder): ``auto`` picks by
    extension."""
    if fmt == "auto":
        name = uncompressed_name(path)
        if name.endswith(".conllu") and src.scheme != "tokens":
            # Read as CoNLL, its MISC column became the tags and every sentence was "invalid BIO".
            raise InputError(f"{path}: CoNLL-U has no NER tag column; data.ner reads CoNLL (token, tag last), "
                             "JSONL, Parquet or Hugging Face data (a treebank goes to pretrain.aux.conllu). "
                             "To fine-tune a POS tagger on it, set scheme: tokens (column: upos or xpos)")
        fmt = ("conllu" if name.endswith(".conllu") else "jsonl" if name.endswith((".jsonl", ".json"))
               else "parquet" if name.endswith(".parquet") else "conll")
    if fmt in ("conll", "conllu") and src.tag_names is not None:  # a .conll path under format auto
        raise InputError(f"{path}: tag_names applies to JSONL, Parquet and Hugging Face input (integer tag "
                         "ids); a CoNLL file's tags are text")
    if fmt == "conllu":
        return read_conllu_tags(path, src.lang, src.split, policy, labels, shard, src.column, src.unicode_form)
    if fmt == "conll":
        return read_conll(path, src.lang, src.split, policy, labels, shard, src.scheme, src.unicode_form)
    reader = {"jsonl": read_jsonl, "parquet": read_parquet_ner}[fmt]
    return reader(path, src.lang, src.split, policy, labels, shard, src.scheme, src.tag_names, src.unicode_form)


def infer_labels(tables: Iterable[pa.Table]) -> list[str]:
    """Entity types seen in the tags of ``tables`` (sorted), for when data.labels is not given."""
    found: set[str] = set()
    for t in tables:
        for tags in t.column("tags").to_pylist():
            found.update(tag[2:] for tag in tags if tag != "O")
    return sorted(found)


__all__ = ["ReadResult", "check_hf_path", "check_source", "read_conll", "read_jsonl", "read_parquet_ner", "read_hf", "read_ner",
           "read_text_lines", "text_files", "read_parallel", "infer_labels", "NER_SCHEMA"]
