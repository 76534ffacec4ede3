"""Training-set shaping for fine-tuning: few-shot selection, original : augmented mix, labels and
temperature-balanced language sampling. All choices are seeded, so a run is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from lrl.data.schema import table_scheme


def label_list(tables: Sequence[pa.Table], types: Sequence[str] | None = None) -> list[str]:
    """``O`` then ``B-X``, ``I-X`` for each entity type (sorted), from ``types`` or the tags seen.

    Tables all marked ``scheme: tokens`` (``lrl.data.schema.with_scheme``: POS and other one label
    per token) get ``B-X`` per tag only, and ``O`` only when some token has no tag (UD's ``_``):
    such data has no ``I-X`` and, fully tagged, no ``O``. With them a UD Uyghur UPOS model had 31
    labels for 15 tags, and every ``O`` or ``I-X`` it predicted was a label no row taught."""
    tokens = bool(tables) and all(table_scheme(t) == "tokens" for t in tables)
    found: set[str] = set()
    untagged = False
    if types is None or tokens:
        for t in tables:
            for tags in t.column("tags").to_pylist():
                found.update(tag[2:] for tag in tags if tag != "O")
                untagged = untagged or "O" in tags
    chosen = sorted(found if types is None else types)
    if tokens:
        return ["O"] * untagged + [f"B-{x}" for x in chosen]
    return ["O"] + [f"{p}-{x}" for x in chosen for p in ("B", "I")]


def is_orig(table: pa.Table) -> pa.Array:
    """Boolean mask of original rows (``op`` null or ``orig``); generated rows have another op."""
    if "op" not in table.column_names:
        return pa.array([True] * table.num_rows)
    op = table.column("op")
    return pc.fill_null(pc.equal(op, "orig"), True)


#: Part of the finetune and tune output hashes: bump it when the rows a config trains on change
#: (2: few-shot keeps every entity type and the augmented oversample copies of its sentences;
#: ``aug_ratio`` per language), so that outputs trained on the old selection are rebuilt.
TRAIN_SET_VERSION = 2


def few_shot(table: pa.Table, k: int | Mapping[str, int], seed: int) -> pa.Table:
    """k original sentences per language (all when fewer), plus the generated rows derived from them.
    With a mapping language -> k (``finetune.few_shot: {ug: 10}``) only the languages it names are
    cut: every sentence of another language is kept, as without few-shot, and so are the rows
    generated from it (its translations into ug too); rows generated from an unchosen ug sentence
    are left out in every language (its translations into wo too). Per language (a table of one
    language) only that language's k cuts: a translation into it of another language's sentence
    (not in the table) is kept, and a model of an unnamed language trains on all its rows.

    Every entity type of a language is kept when k allows (see ``_pick``): a plain random draw of
    10 WikiANN Uyghur sentences left out a type for 37 of 50 seeds (PER is in 99 of 1603
    sentences), so most "10-shot" models never saw a person name. Generated rows are kept when
    their chain of ``parent_id`` leads to a chosen original (an augmented oversample copy names the
    copy as its parent). Choice depends only on (seed, language, sorted ids), not on row order, so
    it is stable across readers and machines.
    """
    ks = k if isinstance(k, Mapping) else None
    if ks is not None and not ks.keys() & set(table.column("lang").to_pylist()):
        return table  # per language, a model of a language the mapping leaves out: all of it
    mask = is_orig(table)
    orig = table.filter(mask)
    chosen: set[str] = set()
    for lang in sorted(set(orig.column("lang").to_pylist())):
        part = orig.filter(pc.equal(orig.column("lang"), lang))
        if ks is not None and lang not in ks:
            # All of them, so that a row generated from one in a named language (a translation
            # into ug of a wo sentence) is kept as it is when an int k chose that wo sentence.
            chosen.update(part.column("id").to_pylist())
            continue
        types = dict(sorted(zip(part.column("id").to_pylist(), part.column("tags").to_pylist())))
        # The same draw as an int k: {ug: 10} picks the 10 ug sentences few_shot: 10 picks.
        chosen.update(_pick(types, k if ks is None else ks[lang], random.Random(f"{seed}:{lang}")))
    keep = pc.and_(mask, pc.is_in(table.column("id"), pa.array(sorted(chosen), pa.string())))
    if "parent_id" in table.column_names:
        keep = pc.or_(keep, pa.array(_descends(table, mask, chosen)))
    if ks is not None:
        keep = pc.or_(keep, pa.array(_from_outside(table, mask, ks)))
    return table.filter(keep)


def _from_outside(table: pa.Table, mask: pa.Array, named: Mapping[str, int]) -> list[bool]:
    """Per row, under a ``few_shot`` mapping: a generated row whose ``parent_id`` chain leaves the
    table (or that has no parent), does not come from a source file of a named language's rows
    (its ``source`` is its original's), and either entered the table by translation (per language,
    the translations into ug of wo sentences: no choice of this table concerns them) or is of a
    language the mapping does not name. A first version kept every row of an unnamed language,
    translations of the named language's unchosen sentences among them, and per language dropped
    every translation from another language (``_descends`` finds no chosen root for them); a
    review found the translation of a ug sentence that a generate filter rejected (its parent
    gone from the table) kept under ``{ug: 1}``, where ``few_shot: 1`` leaves it out."""
    ids = table.column("id").to_pylist()
    n_rows = len(ids)
    parents = table.column("parent_id").to_pylist() if "parent_id" in table.column_names else [None] * n_rows
    ops = table.column("op").to_pylist() if "op" in table.column_names else [None] * n_rows
    sources = table.column("source").to_pylist() if "source" in table.column_names else [None] * n_rows
    langs, origs = table.column("lang").to_pylist(), mask.to_pylist()
    at = {i: n for n, i in enumerate(ids)}
    named_sources = {s for s, o, lang in zip(sources, origs, langs) if o and lang in named and s is not None}
    # Per row, the row of its chain whose parent is not in the table (None: the chain reaches an
    # original of the table, or loops). Filled along each walk, so a chain is walked once.
    entry: dict[int, int | None] = {}
    out = []
    for n in range(n_rows):
        if origs[n]:
            out.append(False)
            continue
        path, j = [], n
        while j not in entry:
            path.append(j)
            if origs[j] or parents[j] not in at:
                entry[j] = None if origs[j] else j
                break
            j = at[parents[j]]
            if j in path:  # a cycle reaches no original
                entry[j] = None
                break
        for i in path:
            entry[i] = entry[j]
        top = entry[n]
        out.append(top is not None and sources[n] not in named_sources
                   and (ops[top] == "translate" or langs[n] not in named))
    return out


def _pick(tags_by_id: dict[str, list[str]], k: int, rng: random.Random) -> list[str]:
    """k ids of ``tags_by_id`` (sorted by id) drawn at random; then, rarest type first, each entity
    type the draw missed replaces the latest-drawn sentence that no other type needs. A draw that
    already has every type is kept as it is (the same choice as before types were looked at)."""
    picked = rng.sample(list(tags_by_id), min(k, len(tags_by_id)))
    types = {i: {tag[2:] for tag in tags if tag != "O"} for i, tags in tags_by_id.items()}
    carriers: dict[str, list[str]] = {}
    for i, found in types.items():
        for t in sorted(found):
            carriers.setdefault(t, []).append(i)
    for t in sorted(carriers, key=lambda t: (len(carriers[t]), t)):
        if any(t in types[i] for i in picked):
            continue
        for j in range(len(picked) - 1, -1, -1):
            others = picked[:j] + picked[j + 1:]
            if all(any(u in types[o] for o in others) for u in types[picked[j]]):
                taken = set(picked)
                picked[j] = rng.choice([i for i in carriers[t] if i not in taken])
                break
        # else: every picked sentence is the only one with some type (k is below the type count)
    return picked


def _descends(table: pa.Table, mask: pa.Array, chosen: set[str]) -> list[bool]:
    """Per row: a generated row whose ``parent_id`` chain reaches an id in ``chosen``."""
    ids, parents = table.column("id").to_pylist(), table.column("parent_id").to_pylist()
    parent_of = dict(zip(ids, parents))
    root: dict[str, str | None] = {}

    def find(i: str | None) -> str | None:
        seen = []
        while i is not None and i not in root and i not in chosen and i in parent_of and i not in seen:
            seen.append(i)
            i = parent_of[i]
        top = root.get(i, i) if i is not None else None
        for j in seen:
            root[j] = top
        return top

    return [not o and find(p) in chosen for o, p in zip(mask.to_pylist(), parents)]


def mix(table: pa.Table, aug_ratio: float | None, seed: int) -> pa.Table:
    """Originals plus ``aug_ratio`` generated rows per original (sampled, seeded) in each language;
    None keeps all.

    Per language: one draw from all generated rows gave each language generated rows in proportion
    to how many it had, not to its originals, so a joint run's small languages (whose generate
    output is often small too) got far fewer than ``aug_ratio`` per original and the big ones more.
    """
    if aug_ratio is None:
        return table
    mask = is_orig(table)
    orig, aug = table.filter(mask), table.filter(pc.invert(mask))
    parts, cut = [orig], False
    for lang in sorted(set(aug.column("lang").to_pylist())):
        mine = aug.filter(pc.equal(aug.column("lang"), lang))
        n_orig = pc.sum(pc.equal(orig.column("lang"), lang)).as_py() or 0
        want = min(mine.num_rows, int(round(aug_ratio * n_orig)))
        if want < mine.num_rows:
            rng = random.Random(f"mix:{seed}:{lang}")
            mine, cut = mine.take(pa.array(sorted(rng.sample(range(mine.num_rows), want)), pa.int64())), True
        parts.append(mine)
    return pa.concat_tables(parts) if cut else table  # nothing to leave out: rows in their order


def prepare_train(table: pa.Table, few_shot_k: int | Mapping[str, int] | None, aug_ratio: float | None,
                  seed: int) -> pa.Table:
    """Few-shot selection (if asked: k per language, or per language named), then the original :
    augmented mix."""
    if few_shot_k is not None:
        table = few_shot(table, few_shot_k, seed)
    return mix(table, aug_ratio, seed)


def language_weights(langs: Sequence[str], alpha: float) -> list[float]:
    """Per-row sampling weights so that language l is drawn with probability ∝ n_l**alpha.

    Uses the shared ``lrl.data.sampling`` when it offers the same, else this local formula.
    """
    counts: dict[str, int] = {}
    for lang in langs:
        counts[lang] = counts.get(lang, 0) + 1
    probs = _lang_probs(counts, alpha)
    return [probs[lang] / counts[lang] for lang in langs]


def _lang_probs(counts: dict[str, int], alpha: float) -> dict[str, float]:
    try:
        from lrl.data.sampling import temperature_probs  # pretraining's sampler, when present

        return dict(temperature_probs(counts, alpha))
    except (ImportError, TypeError):
        z = sum(n**alpha for n in counts.values())
        return {lang: n**alpha / z for lang, n in counts.items()}


def dev_in_train(train: pa.Table, dev: pa.Table) -> int:
    """Dev sentences whose tokens are exactly those of a training row (an original or a generated
    one). WikiANN repeats sentences across its splits: 51 of ug's 200 dev sentences are also
    training sentences, so part of a dev F1 there measures memory, not generalisation."""
    seen = {tuple(t) for t in train.column("tokens").to_pylist()}
    return sum(tuple(t) in seen for t in dev.column("tokens").to_pylist())
