"""Batch operations of translation on Ray Data: mark, translate (one hop), project.

A translation step is ``mark -> hop [-> hop] -> project`` over pyarrow batches. All rows go
through every operation in one pass (rows not to translate ride along untouched) so the input is
computed once, never re-executed by a union of two branches. Work columns start with ``_mt_``
and are gone after ``project``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lrl.data.schema import REJECT
from lrl.generate.mt_config import MTModelConfig, ProjectionConfig
from lrl.generate.translate.columns import REPAIRS, SRC_ENTS, SRC_TEXT, out_schema, row_text, widen
from lrl.generate.translate.hf import EMPTY, TOO_LONG, Refused
from lrl.generate.translate.markers import Entity, MarkerStyle, spans_from_tags
from lrl.generate.translate.project import Projector

DO, TEXT, ENTS, SRC = "_mt_do", "_mt_text", "_mt_ents", "_mt_src_ents"
WHY = "_mt_why"  # why a hop refused a row's translation (its later hops skip it)
_STR_LIST = pa.list_(pa.string())


def mark_batch(table: pa.Table, langs: list[str], markers: str, only_read: bool = False) -> pa.Table:
    """Add the work columns: which rows to translate, their marked text and entity strings.
    ``only_read``: only rows read from the inputs (op ``orig``), not rows an earlier step made."""
    style = MarkerStyle(markers)
    rows = table.to_pylist()
    do, text, ents = [], [], []
    for r in rows:
        ok = r["lang"] in langs and not r.get(REJECT) and (not only_read or r.get("op") in ("orig", None))
        do.append(ok)
        if not ok:
            text.append(None)
            ents.append(None)
        elif "tokens" in r:
            marked, entities = style.mark(list(r["tokens"]), list(r["tags"]))
            text.append(marked)
            ents.append([e.text for e in entities])
        else:
            text.append(r["text"])
            ents.append([])
    table = table.append_column(DO, pa.array(do, pa.bool_()))
    table = table.append_column(TEXT, pa.array(text, pa.string()))
    table = table.append_column(ENTS, pa.array(ents, _STR_LIST))
    table = table.append_column(WHY, pa.nulls(table.num_rows, pa.string()))
    return table.append_column(SRC, pa.array(ents, _STR_LIST))


def selected_rows(table: pa.Table, langs: list[str], only_read: bool = False) -> int:
    """How many rows of ``table`` ``mark_batch`` would mark to translate (the progress total)."""
    keep = pc.is_in(table.column("lang"), pa.array(langs, pa.string()))
    if REJECT in table.column_names:
        reject = table.column(REJECT)
        keep = pc.and_(keep, pc.or_(pc.is_null(reject), pc.equal(reject, "")))
    if only_read and "op" in table.column_names:
        op = table.column("op")
        keep = pc.and_(keep, pc.or_(pc.is_null(op), pc.equal(op, "orig")))
    return int(pc.sum(pc.fill_null(keep, False).cast(pa.int64())).as_py() or 0)


def _count(table: pa.Table, tally: Any) -> None:
    """Hand the rows of ``table`` this hop translated (or refused) to ``tally`` (``progress.Tally``)."""
    if tally is not None:
        tally.add(int(pc.sum(table.column(DO).cast(pa.int64())).as_py() or 0))


def translate_table(table: pa.Table, translator: Any, by_lang: bool = False) -> pa.Table:
    """Translate ``_mt_text`` and ``_mt_ents`` of the rows to translate (one call per batch, or per
    source language with ``by_lang``: rows of several sources, each with its own language code;
    repeated entity names are translated once). A refused translation (see ``HFTranslator``)
    sets ``_mt_why`` and keeps what the model made, if anything, in ``_mt_text``."""
    do = table.column(DO).to_pylist()
    text = table.column(TEXT).to_pylist()
    ents = table.column(ENTS).to_pylist()
    why = table.column(WHY).to_pylist() if WHY in table.column_names else [None] * len(do)
    langs = table.column("lang").to_pylist() if by_lang else [None] * len(do)
    # Rows an earlier hop refused are not translated again: a fragment's back-translation would
    # look like a paraphrase of the whole sentence.
    go = [f and w is None and t is not None for f, w, t in zip(do, why, text)]
    todo: dict[str | None, dict[str, None]] = {}
    for i, flag in enumerate(go):
        if flag:
            group = todo.setdefault(langs[i], {})
            group[text[i]] = None
            for e in ents[i] or []:
                group[e] = None
    done: dict[tuple[str | None, str], str | Refused | None] = {}  # None: over max_length
    for lang, group in todo.items():
        keys = list(group)
        out = translator.translate(keys, src=lang) if by_lang else translator.translate(keys)
        done.update(((lang, k), v) for k, v in zip(keys, out))
    new_text, new_ents, new_why = list(text), list(ents), list(why)
    for i, flag in enumerate(go):
        if not flag:
            continue
        got = done[(langs[i], text[i])]
        if got is None:
            got = Refused(TOO_LONG)
        elif isinstance(got, str) and not got.strip():
            # Refused here, not after the last hop: the way back translated "" into something.
            got = Refused(EMPTY, got)
        new_text[i] = got.text if isinstance(got, Refused) else got
        new_why[i] = got.reason if isinstance(got, Refused) else None
        # An entity name whose translation was refused is left empty (no fuzzy match for it).
        new_ents[i] = [v if isinstance(v := done[(langs[i], e)], str) else "" for e in ents[i] or []]
    table = table.set_column(table.column_names.index(TEXT), TEXT, pa.array(new_text, pa.string()))
    table = table.set_column(table.column_names.index(ENTS), ENTS, pa.array(new_ents, _STR_LIST))
    if WHY in table.column_names:
        return table.set_column(table.column_names.index(WHY), WHY, pa.array(new_why, pa.string()))
    return table.append_column(WHY, pa.array(new_why, pa.string()))


Post = tuple[Callable[..., pa.Table], dict[str, Any]] | None


def translate_batch(table: pa.Table, cfg: MTModelConfig, src: str, tgt: str, seed: int,
                    post: Post = None, by_lang: bool = False, pre: Post = None, tally: Any = None) -> pa.Table:
    """Task version of a hop, for translators that load nothing (the fake backend)."""
    from lrl.generate.translate.hf import make_translator

    table = pre[0](table, **pre[1]) if pre else table
    out = translate_table(table, make_translator(cfg, src, tgt, seed), by_lang)
    _count(table, tally)
    return post[0](out, **post[1]) if post else out


class TranslateActor:
    """Actor version of a hop: the model loads once, in ``__init__``, on the actor.

    ``post`` (a function and its keyword arguments) runs on the translated batch inside the
    actor: projecting there keeps the whole step in one operator, so no task of a second
    operator waits for CPUs that the actors hold (measured: on 2 CPUs with 2 actors a separate
    projection operator only ran after the pool had finished). ``pre`` (marking) runs before
    translating, for the same reason: a separate marking task needs a whole CPU, and with less
    than one left beside the pool (``ray.num_cpus=1``, one actor of 0.5) the step hung forever.
    ``tally`` (``progress.Tally``) counts each batch's rows for the driver's progress lines."""

    def __init__(self, cfg: MTModelConfig, src: str, tgt: str, seed: int, post: Post = None,
                 by_lang: bool = False, pre: Post = None, tally: Any = None) -> None:
        from lrl.generate.translate.hf import make_translator

        self.translator = make_translator(cfg, src, tgt, seed)
        self.pre, self.post = pre, post
        self.by_lang, self.tally = by_lang, tally

    def __call__(self, table: pa.Table) -> pa.Table:
        table = self.pre[0](table, **self.pre[1]) if self.pre else table
        out = translate_table(table, self.translator, self.by_lang)
        _count(table, self.tally)
        return self.post[0](out, **self.post[1]) if self.post else out


def hop(ds, cfg: MTModelConfig, src: str, tgt: str, seed: int, post: Post = None, setting: str = "model",
        by_lang: bool = False, pre: Post = None, tally: Any = None):
    """One translation direction over a Ray Dataset with work columns (lazy); ``pre`` runs on
    each batch before and ``post`` on each translated batch, in the same worker (one operator).
    ``setting`` names ``cfg`` in error messages; ``by_lang`` translates each row from its own
    ``lang`` (``src`` is then only the default); ``tally`` counts the rows of each batch
    (``progress.Tally``)."""
    import ray

    from lrl.generate.translate.hf import check_model

    check_model(cfg, setting)
    rows = cfg.batch_size * 4  # several generate calls per batch: sorting by length pads less
    kwargs = {"cfg": cfg, "src": src, "tgt": tgt, "seed": seed, "post": post, "by_lang": by_lang, "pre": pre,
              "tally": tally}
    if cfg.backend == "fake":
        return ds.map_batches(translate_batch, fn_kwargs=kwargs, batch_format="pyarrow", batch_size=rows)
    _check_gpus(cfg, setting)
    return ds.map_batches(
        TranslateActor, fn_constructor_kwargs=kwargs, batch_format="pyarrow", batch_size=rows,
        compute=ray.data.ActorPoolStrategy(size=cfg.num_actors), num_cpus=cfg.cpus_per_actor,
        num_gpus=cfg.num_gpus or None,
    )


def project_batch(table: pa.Table, proj: ProjectionConfig, lang: str, op: str, seed: int,
                  keep_source: bool) -> pa.Table:
    """Turn translated rows into new rows of ``lang`` (IOB2 tags from the markers, or a reject
    reason); rows not translated pass through, translated ones stay when ``keep_source``."""
    projector = Projector(MarkerStyle(proj.markers), proj.token_pattern, proj.split_at_markers,
                          proj.fuzzy, proj.fuzzy_threshold)
    schema = out_schema(table)
    base = widen(table)
    base_rows = base.to_pylist()
    out: list[dict] = []
    why = table.column(WHY).to_pylist() if WHY in table.column_names else [None] * table.num_rows
    cols = zip(table.column(DO).to_pylist(), table.column(TEXT).to_pylist(),
               table.column(ENTS).to_pylist(), table.column(SRC).to_pylist(), why)
    for row, (do, text, ents, src_ents, refused) in zip(base_rows, cols):
        if not do or keep_source:
            out.append(row)
        if do:
            out.append(_new_row(row, text, ents, src_ents, projector, lang, op, seed, refused))
    extra = [f for f in base.schema if f.name not in schema.names]
    return pa.Table.from_pylist(out, schema=pa.schema(list(schema) + extra))


def _new_row(row: dict, text: str | None, ents: list[str], src_ents: list[str], projector: Projector,
             lang: str, op: str, seed: int, refused: str | None = None) -> dict:
    """The translated row; ``refused`` is why the translator refused it (``text`` is then what
    it made, or None: an input over max_length, never translated)."""
    new = dict(row, id=f"{row['id']}>{op}:{lang}", lang=lang, op=op, parent_id=row["id"], seed=seed)
    new[REJECT] = None
    new[REPAIRS] = None  # the parent's, if it was translated too, are not this row's
    if text is None and refused is None:  # a translator that only says None (over max_length)
        refused = TOO_LONG
    if "tokens" not in row:
        new["text"] = text or ""
        new[SRC_TEXT] = row["text"]
        if refused:
            new[REJECT] = refused
        elif not text or not text.strip():
            new[REJECT] = EMPTY
        return _unchanged(new, row)
    types = [t for _, _, t in spans_from_tags(row["tags"])]
    new[SRC_TEXT] = " ".join(row["tokens"])
    new[SRC_ENTS] = types
    if refused:
        if text is None or not text.strip():  # the rejects show the source (too long, or nothing came)
            new.update(tokens=list(row["tokens"]), tags=list(row["tags"]), **{REJECT: refused})
        else:  # ... or the fragment the model made
            raw = text.split() or [""]
            new.update(tokens=raw, tags=["O"] * len(raw), **{REJECT: refused})
        return new
    entities = [Entity(i, t, s) for i, (t, s) in enumerate(zip(types, src_ents))]
    res = projector(text, entities, ents, new[SRC_TEXT])
    if res.reject:
        # Keep the raw output in the rejects dataset: it shows what the model did to the markers.
        raw = text.split() or [""]
        new.update(tokens=raw, tags=["O"] * len(raw), **{REJECT: res.reject})
    else:
        new.update(tokens=res.tokens, tags=res.tags, **{REPAIRS: sorted(set(res.repairs)) or None})
    return _unchanged(new, row)


def _unchanged(new: dict, row: dict) -> dict:
    """``new`` rejected as a duplicate when it is a back-translation that came back as its source
    (case, spaces and tokenisation aside): a copy, not a paraphrase, which was kept and counted as
    augmentation unless ``filter.ops`` had ``dedup``. The reason is dedup's, so both count together.
    (A translate-train row may equal its source: WikiANN rows are often bare names.)"""
    if new["op"] != "backtranslate" or new[REJECT]:
        return new
    if _squash(row_text(new)) == _squash(row_text(row)):
        new[REJECT] = f"duplicate: of {row['id']} (back-translation equals its source)"
    return new


def _squash(text: str) -> str:
    return "".join(unicodedata.normalize("NFC", text).casefold().split())


def _check_gpus(cfg: MTModelConfig, setting: str) -> None:
    """``check_pool`` against the Ray this process runs (not checked where Ray does not run yet),
    its warnings logged."""
    import logging

    import ray

    nodes, embedded = None, False
    if ray.is_initialized():
        from lrl.runtime import embedded_ray

        nodes = [n.get("Resources") or {} for n in ray.nodes() if n.get("Alive")]
        embedded = embedded_ray()
    for line in check_pool(cfg, setting, nodes, embedded):
        logging.getLogger(__name__).warning("%s", line)


def check_pool(cfg: MTModelConfig, setting: str, nodes: list[dict[str, float]] | None,
               embedded: bool) -> list[str]:
    """Fail (a ``ConfigError`` naming the setting) for GPU settings the pool cannot run with, and
    return warnings for one that runs badly. ``nodes``: the total resources of each node of the
    Ray cluster (None: unknown, and the placement is not checked); ``embedded``: they are the
    embedded local Ray's, which never grows. The generate stage calls it with the Ray it runs
    (``_check_gpus``), ``lrl generate --dry-run`` with the embedded Ray it would start, so both say
    the same. Checked against Ray 2.60 on CPUs; no GPU was at hand:

    - ``dtype: float16`` without ``num_gpus``: the actors' constructors failed, inside the pool.
    - ``num_gpus`` over 1: an actor puts its model on one device (``cuda``, the first GPU Ray gave
      it); the others stay reserved and idle. More GPUs are more actors (``num_actors``).
    - no actor fits anywhere on the embedded local Ray (``num_gpus: 1`` on a machine without a
      GPU): Ray Data waited for the pool for ever (measured: 0 rows in 120 s, "pending: 1 GPU").
      A joined cluster may still add GPU nodes: a warning, unless no node type of its published
      autoscaler config holds one actor. Fewer actors than ``num_actors`` fit: the pool runs with those.
    - a CPU pool that holds every CPU: the operators around it then cannot run and the pipeline
      stalls (seen here: 2 actors x 1 CPU on 2 CPUs); a warning."""
    from lrl.config import ConfigError

    if cfg.num_gpus == 0:
        if cfg.dtype == "float16":
            raise ConfigError(f"{setting}.dtype=float16 needs a GPU and {setting}.num_gpus is 0: set num_gpus "
                              "(e.g. 1), or use bfloat16 or float32 on CPU")
        total = sum(float(r.get("CPU", 0)) for r in nodes or [])
        if total and cfg.num_actors * cfg.cpus_per_actor >= total:
            return [f"translate: {cfg.num_actors} actors x {cfg.cpus_per_actor:.2f} CPUs take all {total:g} CPUs "
                    "of the cluster; reading and writing tasks will wait for them. Lower cpus_per_actor (e.g. "
                    f"{total / cfg.num_actors / 2:.2f})."]
        return []
    if cfg.num_gpus > 1:
        raise ConfigError(f"{setting}.num_gpus={cfg.num_gpus:g}: an actor runs its model on one GPU and would "
                          "hold the others idle; use num_gpus <= 1 (0.5: two actors share one GPU) and "
                          "num_actors for more GPUs")
    if nodes is None:
        return []
    from lrl.capacity import autoscaler_fit, largest_node_type, workers_that_fit

    fit = workers_that_fit(nodes, cfg.cpus_per_actor, cfg.num_gpus)
    if fit >= cfg.num_actors:
        return []
    gpus = sum(float(r.get("GPU", 0)) for r in nodes)
    what = (f"{setting}: {cfg.num_actors} actor(s) of {cfg.num_gpus:g} GPU and {cfg.cpus_per_actor:g} CPU, "
            f"{fit} of which fit on the Ray cluster now ({gpus:g} GPUs on {len(nodes)} node(s))")
    most = None if embedded else autoscaler_fit(cfg.cpus_per_actor, cfg.num_gpus)  # per node type
    if fit == 0 and (embedded or most == 0):
        where = ("the embedded local Ray never grows" if embedded
                 else f"no node its autoscaler can add holds one actor ({largest_node_type()})")
        raise ConfigError(f"{what}; {where}, and Ray Data would wait for the pool for ever: set "
                          f"{setting}.num_gpus=0 to translate on CPUs, or join a cluster with GPUs (ray.address)")
    return [f"{what}; the pool runs with the actors that fit and waits for the others (for ever for all of them "
            "when none fits and no autoscaler adds GPU nodes)"]
