"""Predict one tag per original token with a ``Tagger``, and write predictions.

Chunks are sorted by length before batching (less padding). The linear head's predictions are
mapped back to the words through ``align.merge_predictions``, which fails loudly if any word is
missed. A CRF decodes sentences, not chunks: the word emissions of a long sentence's chunks are
put together and decoded by one Viterbi pass (``CRF.decode_rows``), so that its transitions hold
across chunk boundaries and a decoded sentence is valid IOB2.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from lrl.train.align import AlignStats, Chunk, encode, merge_predictions
from lrl.train.finetune_model import Tagger, collate


def predict_tags(tagger: Tagger, sentences: Sequence[Sequence[str]], langs: Sequence[str | None] | None,
                 batch_size: int = 64, device: torch.device | str = "cpu",
                 autocast_dtype: torch.dtype | None = None) -> tuple[list[list[str]], AlignStats]:
    """Tags (label names) for every token of every sentence, and the alignment statistics."""
    chunks, stats = encode(tagger.tokenizer, sentences, None, tagger.max_length, langs, tagger.lang_tag)
    for m in tagger.modules():
        m.eval()
    lengths = [len(s) for s in sentences]
    outs: list = [None] * len(chunks)  # per chunk: its word predictions (linear), emissions (CRF)
    dev = torch.device(device)
    with torch.no_grad():
        for idx, batch in _batches(tagger, chunks, batch_size, dev):
            with torch.autocast(dev.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                if tagger.crf is None:
                    got = tagger.predict_batch(batch)
                else:  # kept (on the device) until the sentence's other chunks are in too
                    em = tagger.word_emissions(batch).float()
                    got = [em[j, : len(chunks[i].first)] for j, i in enumerate(idx)]
            for i, out in zip(idx, got):
                outs[i] = out
        if tagger.crf is None:
            words = merge_predictions(chunks, outs, lengths)
        else:
            words = tagger.crf.decode_rows(sentence_emissions(chunks, outs, lengths), batch_size)
    return [[tagger.labels[i] for i in row] for row in words], stats


def align_per_lang(tagger: Tagger, sentences: Sequence[Sequence[str]],
                   langs: Sequence[str | None]) -> dict[str, dict]:
    """The alignment counts (``AlignStats.as_dict``) of each language's rows, when the rows hold
    more than one language, else nothing. A joint model's counts summed over its languages hide a
    language its tokenizer cannot read (Ge'ez words beside Latin ones): each group is encoded as
    ``predict_tags`` encodes it (a row's pieces depend on the row and its language only), so the
    groups add up to the summed counts."""
    groups: dict[str, list[int]] = {}
    for i, lang in enumerate(langs):
        groups.setdefault(str(lang), []).append(i)
    if len(groups) < 2:
        return {}
    return {lang: encode(tagger.tokenizer, [sentences[i] for i in idx], None, tagger.max_length,
                         [langs[i] for i in idx], tagger.lang_tag)[1].as_dict()
            for lang, idx in sorted(groups.items())}


def _batches(tagger: Tagger, chunks: list[Chunk], batch_size: int,
             dev: torch.device) -> Iterator[tuple[list[int], dict]]:
    """(chunk indices, collated batch) in order of length: less padding."""
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i].input_ids))
    pad = tagger.tokenizer.pad_token_id or 0
    for start in range(0, len(order), batch_size):
        idx = order[start: start + batch_size]
        yield idx, collate([chunks[i] for i in idx], pad, dev, tagger.lang_types)


def sentence_emissions(chunks: Sequence[Chunk], chunk_em: Sequence[torch.Tensor],
                       lengths: Sequence[int]) -> list[torch.Tensor]:
    """Word emissions ``[n_words, L]`` of each sentence, from those of its chunks (``chunk_em[c]``
    for ``chunks[c].first``). As ``merge_predictions``: each word exactly once, else it raises."""
    parts: list[list[torch.Tensor]] = [[] for _ in lengths]
    words: list[list[int]] = [[] for _ in lengths]
    for chunk, em in zip(chunks, chunk_em):
        if em.shape[0] != len(chunk.first):
            raise AssertionError(f"chunk of sentence {chunk.sentence}: {em.shape[0]} emissions "
                                 f"for {len(chunk.first)} words")
        parts[chunk.sentence].append(em)
        words[chunk.sentence].extend(w for _, w in chunk.first)
    for i, (row, n) in enumerate(zip(words, lengths)):
        if row != list(range(n)):  # encode gives a sentence's chunks in order, its words in order
            raise AssertionError(f"sentence {i}: chunks cover words {row[:8]}... of {n}, not each once in order")
    return [torch.cat(p) if p else torch.zeros(0, 0) for p in parts]


def predictions_table(table: pa.Table, pred: list[list[str]]) -> pa.Table:
    """The input rows (id, lang, tokens, gold tags) with a ``pred`` column."""
    keep = [c for c in ("id", "lang", "tokens", "tags") if c in table.column_names]
    return table.select(keep).append_column("pred", pa.array(pred, type=pa.list_(pa.string())))


def write_predictions(table: pa.Table, pred: list[list[str]], out_dir: str, name: str) -> dict[str, str]:
    """``<name>.parquet`` and ``<name>.conll`` (token, gold, predicted; blank line between sentences)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pt = predictions_table(table, pred)
    pq.write_table(pt, out / f"{name}.parquet")
    lines: list[str] = []
    has_gold = "tags" in pt.column_names
    for row in pt.to_pylist():
        lines.append(f"# id = {row['id']}\tlang = {row['lang']}")
        gold = row["tags"] if has_gold else ["_"] * len(row["tokens"])
        for tok, g, p in zip(row["tokens"], gold, row["pred"]):
            lines.append(f"{tok}\t{g}\t{p}")
        lines.append("")
    (out / f"{name}.conll").write_text("\n".join(lines), encoding="utf-8")
    return {"parquet": str(out / f"{name}.parquet"), "conll": str(out / f"{name}.conll")}


def read_labelled(path: str, lang: str | None, scheme: str = "iob2", column: str = "upos") -> tuple[pa.Table, int]:
    """Any labelled input as NER rows, and the number of rows quarantined (invalid IOB2 ...).

    A folder is a generate output (its ``data/``) or a Parquet folder; a file is read by its
    extension (.parquet, .jsonl/.json, .conllu, else CoNLL/TSV). The language comes from ``lang``
    or, for Parquet and JSONL, from the rows' ``lang`` field; CoNLL and CoNLL-U need ``lang``.
    ``scheme`` and ``column`` are ``data.ner``'s: ``tokens`` reads one label per token (POS) as
    one-token spans, as a POS model was trained (``lrl.data.token_tags``); a .conllu file is
    always read so, with its ``column``.
    """
    from lrl.data.files import InputError, uncompressed_name
    from lrl.data.readers import read_conll, read_jsonl

    p = Path(path)
    if column != "upos" and not uncompressed_name(path).endswith(".conllu"):
        # As data.ner[].column: other formats have one tag column, so --column xpos was ignored
        # without a word and the scores were of whatever tags the file held.
        raise InputError(f"{path}: --column {column} applies to a .conllu file only (other formats hold one tag column)")
    if p.is_dir() or path.endswith(".parquet"):
        # A generate output holds its rows already as spans (a POS tag X as B-X): read as IOB2.
        generated = (p / "data").is_dir()
        return _read_parquet_rows(p / "data" if generated else p, lang, "iob2" if generated else scheme)
    if path.endswith((".jsonl", ".json")):
        langs = [lang] if lang is not None else _jsonl_langs(path)
        results = [read_jsonl(path, x, "eval", scheme=scheme) for x in langs]
        # Rows of the other languages show up as rejects of each per-language read: not errors. A
        # line rejected before its lang is looked at (not JSON, no tags) is a reject of every read:
        # counted once.
        bad = {line for r in results for line, reason in zip(r.rejects.column("line").to_pylist(),
                                                             r.rejects.column("reason").to_pylist())
               if not reason.startswith("lang ")}
        return pa.concat_tables([r.table for r in results]), len(bad)
    if lang is None:
        raise InputError(f"{path}: a CoNLL file has no language column; pass --lang")
    if uncompressed_name(path).endswith(".conllu"):
        from lrl.data.token_tags import read_conllu_tags

        res = read_conllu_tags(path, lang, "eval", column=column)
    else:
        res = read_conll(path, lang, "eval", scheme=scheme)
    return res.table, res.rejects.num_rows


def _jsonl_langs(path: str) -> list[str]:
    """The languages of a JSONL file's rows (``lrl evaluate`` without ``--lang``). A line that is
    not a JSON object is left to ``read_jsonl``, which rejects it with its reason, as with
    ``--lang`` (gathering the langs, such a line stopped the command with a raw JSONDecodeError or
    AttributeError). A row without a lang, or with one that is not a string, is an error naming its line."""
    import json

    from lrl.data.files import InputError, iter_lines, read_text

    langs: set[str] = set()
    # Lines end at \n only, as read_jsonl reads them: splitlines() cut one at a U+2028 in a token.
    for n, line in enumerate(iter_lines(read_text(path)), start=1):
        try:
            obj = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        got = obj.get("lang")
        if not got or not isinstance(got, str):
            why = "has no lang" if got in (None, "") else f"has lang {json.dumps(got)}, not a language code"
            raise InputError(f"{path}:{n}: the row {why}; pass --lang")
        langs.add(got)
    # No lang at all: every line is rejected (or the file is empty), which read_jsonl says with the first reason.
    return sorted(langs) or ["und"]


def _read_parquet_rows(path: Path, lang: str | None, scheme: str = "iob2") -> tuple[pa.Table, int]:
    """Parquet file or (hive-partitioned) folder -> NER rows; invalid rows are counted, dropped.

    Under ``scheme: tokens`` each tag X becomes B-X first (``token_spans``): read as IOB2, a POS
    file's ``NOUN`` tags made every row invalid, and ``lrl evaluate --scheme tokens`` then said only
    that no model was for "the language(s) of these rows ()". No usable row at all is an error
    naming the first reason, as the other readers' "no usable sentence"."""
    import pyarrow.dataset as pads

    from lrl.data.files import InputError
    from lrl.data.nfc import Composer
    from lrl.data.schema import ner_table

    try:
        table = pads.dataset(str(path), format="parquet", partitioning="hive").to_table()
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: cannot read Parquet: {exc}") from exc
    missing = {"tokens", "tags"} - set(table.column_names)
    if missing:
        raise InputError(f"{path}: Parquet lacks column(s) {sorted(missing)}")
    rows, bad, first = [], 0, ""
    # Composed as every other reader composes (``lrl.data.nfc``): the same Yoruba file scored as
    # CoNLL and as Parquet reached the model as other pieces and was written back otherwise.
    compose = Composer("nfc")
    for i, row in enumerate(table.to_pylist()):
        row_lang = lang or row.get("lang")
        if not row_lang:
            raise InputError(f"{path}: row {i + 1} has no lang; pass --lang")
        tags, reason = _row_tags(row, scheme)
        if reason:
            bad += 1
            first = first or f"row {i + 1}: {reason}"
            continue
        row["tokens"] = compose.tokens(row["tokens"])  # checked: strings only
        rows.append({**row, "tags": tags, "lang": str(row_lang), "id": str(row.get("id") or f"{row_lang}:eval:{i}")})
    if not rows and bad:
        raise InputError(f"{path}: no usable row: all {bad} were rejected (first: {first})")
    return ner_table(rows), bad


def _row_tags(row: dict, scheme: str) -> tuple[list[str], str]:
    """A Parquet row's tags as IOB2 under ``scheme``, and "" or why the row cannot be scored, in the
    main readers' words (``lrl.data.collect``): a null list read as "0 tokens but N tags", and a
    tab or line break in a token was kept, and broke the predictions .conll (``write_predictions``)."""
    from lrl.data.bio import bio_problems
    from lrl.data.collect import null_list_reason, sentence_problem
    from lrl.data.token_tags import token_spans

    tokens, tags = row["tokens"], row["tags"]
    null = null_list_reason({"tokens": tokens, "tags": tags})
    if null is not None:
        return [], null
    odd = next(((what, i, v) for what, values in (("token", tokens), ("tag", tags)) for i, v in enumerate(values)
                if v is not None and not isinstance(v, str)), None)
    if odd is not None:  # a column of numbers (a null is sentence_problem's "null value")
        return [], f"not a string: {odd[0]} {odd[1]} is {odd[2]!r}"
    problem = sentence_problem(tokens, tags)
    if problem is not None:
        return [], problem if isinstance(problem, str) else problem.reason
    if scheme == "tokens":
        spans, reason = token_spans(tags)
        return spans or [], reason or ""
    problems = bio_problems(tags)
    return list(tags), problems[0].reason if problems else ""
