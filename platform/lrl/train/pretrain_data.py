"""Pretraining data: text rows -> tokenized, packed fixed-length sequences (through Ray Data).

Each packed sequence holds text of one language only: ``[CLS] [lang] pieces... [SEP]`` padded
to ``seq_len``. Rows of a Ray Data batch are grouped by language and their pieces concatenated
before cutting, so short sentences do not waste a whole sequence each. A ``word_start`` column
(1 where a piece begins a word) lets the masker do whole-word masking.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from lrl.data.blocks import from_tables
from lrl.data.files import InputError, filesystem, fingerprint, read_parquet_checked, resolve
from lrl.data.output import input_print
from lrl.data.readers import read_text_lines
from lrl.model.special_text import SPLIT, folder_specials, typed_specials

if TYPE_CHECKING:
    import ray.data

    from lrl.job import JobConfig


def load_text(cfg: JobConfig, generate_dir: str | None = None) -> tuple[pa.Table, object]:
    """Unlabelled text rows (``text``, ``lang`` and ``doc`` when known) and a fingerprint of
    where they came from: the generate stage's ``text/`` Parquet when that stage ran and wrote
    text (as the tokenizer stage does), else ``data.text``."""
    if generate_dir is not None:
        path = f"{generate_dir.rstrip('/')}/text"
        fs, inner = filesystem(path)
        if fs.get_file_info(inner).type != pafs.FileType.NotFound:
            table = read_parquet_checked(path, {"text", "lang"}, "the generate stage's text Parquet")
            if "doc" not in table.column_names:
                table = table.append_column("doc", pa.nulls(table.num_rows, pa.string()))
            table = table.select(["text", "lang", "doc"])
            # Partitioned writes may hand ``lang`` back as a dictionary column.
            return table.cast(pa.schema([("text", pa.string()), ("lang", pa.string()), ("doc", pa.string())])), \
                {"generate": input_print(generate_dir)}
    if not cfg.data.text:
        raise InputError("pretraining needs text: set data.text or run the generate stage with text output")
    tables = [read_text_lines(src, cfg.data.root).select(["text", "lang", "doc"]) for src in cfg.data.text]
    prints = [[fingerprint(resolve(s.path, cfg.data.root)), s.lang, s.max_lines] for s in cfg.data.text]
    # The files' prints do not show the form they were read in: with a tokenizer that does not
    # NFKC (``pretrain.tokenizer_path``, e.g. MiniLM's), ``data.unicode: none`` trains on other ids
    # than the default. Named only when not the default, so that finished runs keep their hash.
    form = {} if cfg.data.unicode == "nfc" else {"unicode": cfg.data.unicode}
    return pa.concat_tables(tables), {"data.text": prints, **form}


def specials_key(tokenizer_dir: str, table: pa.Table, aux: list[str]) -> dict[str, int]:
    """The pretrain hash's ``typed_specials`` key when the text (or a CoNLL-U file of the auxiliary
    task) holds a special token's string of the tokenizer, which packing reads as its characters
    since (``lrl.model.special_text``), else nothing: other outputs keep their names."""
    return typed_specials(folder_specials(tokenizer_dir), [table.column("text")], aux)


def resolve_paths(paths: list[str], root: str | None) -> list[str]:
    return [resolve(p, root) for p in paths]


@functools.lru_cache(maxsize=4)
def _tokenizer(path: str):
    """One tokenizer per process and folder (Ray reuses worker processes across tasks); a folder
    on an object store is copied to this machine first (``lrl.data.remote.local_folder``)."""
    from transformers import AutoTokenizer

    from lrl.data.remote import local_folder

    return AutoTokenizer.from_pretrained(local_folder(path))


def tag_id(tokenizer, lang: str) -> int:
    """Id of the language tag token of ``lang``; a clear error when the tokenizer lacks it."""
    from lrl.model.tokenizer import lang_tag

    tid = tokenizer.convert_tokens_to_ids(lang_tag(lang))
    if tid is None or tid == tokenizer.unk_token_id:
        raise InputError(f"tokenizer has no tag token {lang_tag(lang)} for language {lang!r}: "
                         "train the tokenizer on every language of the pretraining text")
    return int(tid)


def pack_batch(batch: dict[str, Any], tokenizer_dir: str, seq_len: int, langs: list[str]) -> dict[str, np.ndarray]:
    """Tokenize and pack one batch (``text`` and ``lang`` columns) into fixed-length sequences.

    Output columns: ``input_ids`` and ``word_start`` (N x seq_len), ``lang_id`` (index into
    ``langs``), ``n_tokens`` (non-pad tokens)."""
    tok = _tokenizer(tokenizer_dir)
    texts = [str(t) for t in batch["text"]]
    lang_col = [str(x) for x in batch["lang"]]
    content = seq_len - 3
    ids_out: list[np.ndarray] = []
    starts_out: list[np.ndarray] = []
    lang_out: list[int] = []
    for lang in sorted(set(lang_col)):
        if lang not in langs:
            raise InputError(f"text of language {lang!r} but the model knows only {langs}")
        rows = [t for t, x in zip(texts, lang_col) if x == lang]
        # A "[MASK]", "[PAD]" or "[ug]" typed in a line is its characters (lrl.model.special_text);
        # [CLS], the tag and [SEP] are added by id below, where long rows are cut.
        enc = tok(rows, add_special_tokens=False, verbose=False, **SPLIT)
        pieces: list[int] = []
        starts: list[int] = []
        for i, ids in enumerate(enc["input_ids"]):
            words = enc.word_ids(i)
            prev = None
            for tid, w in zip(ids, words):
                pieces.append(tid)
                starts.append(1 if w is None or w != prev else 0)
                prev = w
        head = [tok.cls_token_id, tag_id(tok, lang)]
        for at in range(0, len(pieces), content):
            chunk = head + pieces[at: at + content] + [tok.sep_token_id]
            start = [1, 1] + starts[at: at + content] + [1]
            pad = seq_len - len(chunk)
            ids_out.append(np.array(chunk + [tok.pad_token_id] * pad, dtype=np.int32))
            starts_out.append(np.array(start + [1] * pad, dtype=np.int8))
            lang_out.append(langs.index(lang))
    if not ids_out:
        return {"input_ids": np.zeros((0, seq_len), np.int32), "word_start": np.zeros((0, seq_len), np.int8),
                "lang_id": np.zeros(0, np.int32), "n_tokens": np.zeros(0, np.int32)}
    # The loop above yields the batch's sequences grouped by language (all of one, then the next),
    # and the training loop's local shuffle buffer (8 micro batches) is too small to break such
    # runs up: a short run saw one language only. Spread them evenly instead (the i-th of n
    # sequences of a language at (i + 0.5) / n): deterministic, so the driver and Ray Data paths
    # still give the same order, and each language keeps its own order.
    lang_arr = np.array(lang_out, dtype=np.int32)
    pos = np.empty(len(lang_arr))
    for lid in np.unique(lang_arr):
        at = np.flatnonzero(lang_arr == lid)
        pos[at] = (np.arange(len(at)) + 0.5) / len(at)
    order = np.argsort(pos, kind="stable")
    ids = np.stack(ids_out)[order]
    return {"input_ids": ids, "word_start": np.stack(starts_out)[order], "lang_id": lang_arr[order],
            "n_tokens": (ids != tok.pad_token_id).sum(axis=1).astype(np.int32)}


def packed_dataset(table: pa.Table, tokenizer_dir: str, seq_len: int, langs: list[str],
                   rows_per_batch: int = 512, driver_rows: int = 0) -> ray.data.Dataset:
    """The training stream as a materialized Ray Dataset of packed sequences (tokenized once,
    reused every epoch; the row order of ``table`` is kept).

    Inputs of at most ``driver_rows`` rows are packed here, in the driver, batch by batch exactly
    as the Ray Data tasks would pack them (same sequences, same order): for a few thousand lines
    that takes about a second, while Ray Data first starts workers that import transformers
    (~10 s for 7.5k lines on 2 CPUs, docs/benchmarks.md)."""
    table = table.select(["text", "lang"])
    if table.num_rows <= driver_rows:
        return _from_packed(pack_in_batches(table, tokenizer_dir, seq_len, langs, rows_per_batch))
    # Several blocks so that packing runs in parallel on the available CPUs (one block = one task),
    # each a whole number of batches so that batches start where the driver path starts them.
    size = rows_per_batch * max(1, -(-table.num_rows // (16 * rows_per_batch)))
    ds = from_tables([table.slice(at, size) for at in range(0, max(table.num_rows, 1), size)])
    ds = ds.map_batches(pack_batch, batch_size=rows_per_batch, batch_format="numpy",
                        fn_kwargs={"tokenizer_dir": tokenizer_dir, "seq_len": seq_len, "langs": langs})
    # Ray Data emits blocks as tasks finish unless told otherwise; the packed stream must follow
    # the table (and match the driver path), so order is asked for on this dataset only.
    ds.context.execution_options.preserve_order = True
    return ds.materialize()


def pack_in_batches(table: pa.Table, tokenizer_dir: str, seq_len: int, langs: list[str],
                    rows_per_batch: int = 512) -> dict[str, np.ndarray]:
    """``pack_batch`` over consecutive ``rows_per_batch`` slices of ``table``, concatenated: what
    ``map_batches(pack_batch, batch_size=rows_per_batch)`` produces, in one process."""
    parts = [pack_batch(table.slice(at, rows_per_batch).to_pydict(), tokenizer_dir, seq_len, langs)
             for at in range(0, table.num_rows, rows_per_batch)]
    # pack_batch gives typed (0, seq_len) arrays for an empty batch, so an empty table still works.
    parts = parts or [pack_batch({"text": [], "lang": []}, tokenizer_dir, seq_len, langs)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _from_packed(packed: dict[str, np.ndarray], blocks: int = 8) -> ray.data.Dataset:
    """A Ray Dataset over packed arrays, with the schema ``map_batches(pack_batch)`` gives
    (N x seq_len columns as Ray tensor columns), in a few blocks for the workers' shards."""
    from ray.data.extensions import ArrowTensorArray

    table = pa.table({k: ArrowTensorArray.from_numpy(v) if v.ndim > 1 else v for k, v in packed.items()})
    step = max(1, -(-table.num_rows // blocks))
    return from_tables([table.slice(at, step) for at in range(0, max(table.num_rows, 1), step)])


def pack_local(table: pa.Table, tokenizer_dir: str, seq_len: int, langs: list[str],
               max_per_lang: int | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Packed sequences per language without Ray (held-out slices: small, read by every worker)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    cols = table.select(["text", "lang"]).to_pydict()
    for lang in sorted(set(cols["lang"])):
        texts = [t for t, x in zip(cols["text"], cols["lang"]) if x == lang]
        packed = pack_batch({"text": texts, "lang": [lang] * len(texts)}, tokenizer_dir, seq_len, langs)
        if max_per_lang is not None:
            packed = {k: v[:max_per_lang] for k, v in packed.items()}
        out[lang] = packed
    return out


__all__ = ["load_text", "pack_batch", "packed_dataset", "pack_in_batches", "pack_local", "tag_id", "resolve_paths",
           "specials_key"]
