"""Synonym tables for EDA: a user lexicon, or neighbours learned from the language's own text.

Most low-resource languages have no WordNet. Words that occur in similar contexts are the best
cheap stand-in: positive PMI co-occurrence vectors, reduced by a randomized truncated SVD (numpy
only), and the top-k cosine neighbours of the frequent words. On a Wikipedia-sized corpus these
are often near-synonyms, inflections or words of the same class (months, numbers, place words):
noisy, which is what EDA tolerates. The table is computed once on the driver.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lrl.data.files import InputError, read_text, split_lines
from lrl.data.nfc import Composer
from lrl.generate.config import NeighbourConfig


@functools.cache
def word_pattern() -> re.Pattern[str]:
    """Word pattern for corpus text: letters/digits (any script) with their combining marks, joined
    by inner hyphens/apostrophes.

    ``\\w`` alone does not match combining marks (Mn/Mc/Me), so it cut words at every mark that
    has no precomposed form: Yoruba ``Agbóhùnsáfẹ́fẹ́`` became ``agbóhùnsáfẹ`` and ``fẹ`` (a fifth
    of the words of mono/yo.txt carry such a mark), and the table paired fragments that are not
    words. Python's ``re`` has no ``\\p{M}``: the class is built once from the Unicode database
    (~0.4 s, only when neighbours are learned)."""
    marks, start, prev = [], None, -2
    for cp in range(sys.maxunicode + 1):
        if unicodedata.category(chr(cp)).startswith("M"):
            if cp != prev + 1:
                if start is not None:
                    marks.append((start, prev))
                start = cp
            prev = cp
    marks.append((start, prev))
    cls = "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in marks)
    return re.compile(rf"\w[\w{cls}]*(?:[-'’]\w[\w{cls}]*)*")


def _script(word: str) -> str | None:
    """The script of a word's first letter (``ARABIC``, ``LATIN``...; kana and Han are ``CJK``);
    None when it has no letter."""
    for ch in word:
        if unicodedata.category(ch).startswith("L"):
            name = unicodedata.name(ch, "").split(" ", 1)[0]
            return "CJK" if name in ("HIRAGANA", "KATAKANA") else name or None
    return None

Synonyms = dict[str, tuple[str, ...]]

#: Part of the neighbour cache key: bumped when the same corpus and settings give another table
#: (2: words keep their combining marks, neighbours in another script are dropped; 3: names are
#: dropped), so that a cache written by older code is not reused.
_TABLE_VERSION = 3


def read_lexicon(path: str) -> Synonyms:
    """TSV ``word<TAB>syn1,syn2,...``; ``#`` lines and blank lines are skipped.

    A malformed line raises ``InputError`` naming the file and line. Read in NFC, whatever
    ``data.unicode`` says (``AugmentResources.synonyms_of`` looks a token up in NFC too): a word
    written decomposed (Yoruba ``e`` + combining marks) matched no token of NFC data, and its
    entry was unused without a word; the two forms of a word are one entry.
    """
    table: dict[str, list[str]] = {}
    compose = Composer("nfc")
    for lineno, line in enumerate((compose.text(x) for x in split_lines(read_text(path))), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) != 2 or not parts[0].strip():
            raise InputError(f"{path}:{lineno}: expected word<TAB>syn1,syn2 (got {line!r})")
        word = parts[0].strip()
        syns = [s.strip() for s in parts[1].split(",") if s.strip() and s.strip() != word]
        if not syns:
            raise InputError(f"{path}:{lineno}: no synonyms for {word!r}")
        table.setdefault(word, [])
        table[word].extend(s for s in syns if s not in table[word])
    if not table:
        raise InputError(f"{path}: empty lexicon")
    return {w: tuple(s) for w, s in table.items()}


def corpus_neighbours(lines: Iterable[str], cfg: NeighbourConfig, seed: int = 0) -> Synonyms:
    """Top-k distributional neighbours of the ``cfg.max_words`` most frequent words; names
    (``proper_nouns``) neither get nor are neighbours."""
    word = word_pattern()
    cased = [word.findall(line) for line in lines]
    sentences = [[w.lower() for w in s] for s in cased]
    counts = Counter(w for s in sentences for w in s)
    ranked = sorted((w for w, c in counts.items() if c >= cfg.min_count), key=lambda w: (-counts[w], w))
    vocab = ranked[: cfg.max_vocab]
    if len(vocab) < cfg.k + 2:
        return {}
    index = {w: i for i, w in enumerate(vocab)}
    ppmi = _ppmi(_cooccurrence(sentences, index, min(cfg.contexts, len(vocab)), cfg.window))
    vectors = _svd_vectors(ppmi, min(cfg.dims, min(ppmi.shape) - 1), seed)
    return _neighbours(vectors, vocab, cfg, proper_nouns(cased))


def proper_nouns(sentences: list[list[str]]) -> frozenset[str]:
    """Lower-cased words written with a capital in most of their occurrences after a line's first
    word: names. Neighbours of common words include names of the same class (``pénc`` -> ``fredrick``
    in Wolof, ``rògbòdìyàn`` -> ``martin`` in Yoruba, a number -> ``hernández``), and synonym or
    insert put them, lower-cased, into O positions: a name tagged O teaches a tagger that names
    are not entities. Scripts without case (Arabic, Ethiopic) have no such signal: none is a name
    here; the words the labelled rows tag as entities are left out later, once the training table
    is known (``names.EntityWords``, ``resources.synonym_tables``): they cover every script.
    A word after a full stop is counted like any other (paragraph lines hold several sentences):
    common words start a sentence far less often than they occur inside one."""
    upper: Counter[str] = Counter()
    lower: Counter[str] = Counter()
    for words in sentences:
        for w in words[1:]:
            if w[0].isupper():
                upper[w.lower()] += 1
            elif w[0].islower():
                lower[w.lower()] += 1
    return frozenset(w for w, n in upper.items() if n > lower[w])


def _cooccurrence(sentences: list[list[str]], index: dict[str, int], n_ctx: int, window: int) -> np.ndarray:
    # One id stream with `window` gaps (-1) between sentences, so no pair crosses a line.
    gap = [-1] * window
    stream: list[int] = []
    for s in sentences:
        stream.extend(index.get(w, -1) for w in s)
        stream.extend(gap)
    ids = np.asarray(stream, dtype=np.int64)
    keys = []
    for d in range(1, window + 1):
        a, b = ids[:-d], ids[d:]
        ok = (a >= 0) & (b >= 0)
        a, b = a[ok], b[ok]
        keys.append(a[b < n_ctx] * n_ctx + b[b < n_ctx])  # b as context of a
        keys.append(b[a < n_ctx] * n_ctx + a[a < n_ctx])  # a as context of b
    uniq, cnt = np.unique(np.concatenate(keys), return_counts=True)
    matrix = np.zeros(len(index) * n_ctx, dtype=np.float32)
    matrix[uniq] = cnt
    return matrix.reshape(len(index), n_ctx)


def _ppmi(m: np.ndarray, alpha: float = 0.75) -> np.ndarray:
    """Positive PMI with context-distribution smoothing (Levy et al. 2015), in place."""
    total = m.sum()
    rows = m.sum(axis=1, keepdims=True)
    ctx = m.sum(axis=0, keepdims=True) ** alpha
    ctx /= ctx.sum()
    nz = m > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(m / total) - np.log(np.maximum(rows, 1) / total) - np.log(np.maximum(ctx, 1e-30))
    m[:] = np.where(nz & (pmi > 0), pmi, 0).astype(np.float32)
    return m


def _one_thread():
    """BLAS limited to one thread for the small QR/SVD calls: on a busy 2-core machine a
    multi-threaded LAPACK call on a 3000x50 matrix was measured 10-25x slower than one thread."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it the calls are only slower
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _qr(a: np.ndarray) -> np.ndarray:
    with _one_thread():
        return np.linalg.qr(a)[0]


def _svd_vectors(m: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """Randomized truncated SVD (Halko et al.): U * sqrt(S), rows L2-normalised."""
    rng = np.random.default_rng(seed)
    q = m @ rng.standard_normal((m.shape[1], dims + 10)).astype(np.float32)
    for _ in range(2):  # power iterations sharpen the spectrum of a flat PPMI matrix
        q = m @ (m.T @ _qr(q))
    q = _qr(q)
    with _one_thread():
        ub, s, _ = np.linalg.svd(q.T @ m, full_matrices=False)
    vec = (q @ ub[:, :dims]) * np.sqrt(s[:dims])
    norm = np.linalg.norm(vec, axis=1, keepdims=True)
    return vec / np.maximum(norm, 1e-12)


def _neighbours(vec: np.ndarray, vocab: list[str], cfg: NeighbourConfig, names: frozenset[str] = frozenset()) -> Synonyms:
    out: Synonyms = {}
    heads = [i for i in range(min(cfg.max_words, len(vocab))) if not vocab[i].isdigit() and vocab[i] not in names]
    for start in range(0, len(heads), 1024):
        rows = heads[start : start + 1024]
        sims = vec[rows] @ vec.T
        sims[np.arange(len(rows)), rows] = -np.inf
        top = np.argpartition(-sims, cfg.k, axis=1)[:, : cfg.k]
        for r, i in enumerate(rows):
            order = top[r][np.argsort(-sims[r, top[r]], kind="stable")]
            # A neighbour in another script is never a synonym: Uyghur Wikipedia's Latin names
            # (macintosh, iq, x) were neighbours of Uyghur words (~3% of pairs on 3,000 lines).
            script = _script(vocab[i])
            syns = tuple(vocab[j] for j in order if sims[r, j] >= cfg.min_similarity and not vocab[j].isdigit()
                         and _script(vocab[j]) in (script, None) and vocab[j] not in names)
            if syns:
                out[vocab[i]] = syns
    return out


def cached_neighbours(lang: str, lines: list[str], cfg: NeighbourConfig, seed: int = 0) -> Synonyms:
    """``corpus_neighbours`` with an optional disk cache keyed by corpus and settings hash."""
    if cfg.cache_dir is None:
        return corpus_neighbours(lines, cfg, seed)
    h = hashlib.sha256("\n".join(lines).encode("utf-8"))
    h.update(json.dumps([cfg.model_dump(exclude={"cache_dir"}), seed, _TABLE_VERSION], sort_keys=True).encode())
    path = Path(cfg.cache_dir) / f"neighbours-{lang}-{h.hexdigest()[:16]}.json"
    if path.is_file():
        return {w: tuple(s) for w, s in json.loads(path.read_text(encoding="utf-8")).items()}
    table = corpus_neighbours(lines, cfg, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    return table
