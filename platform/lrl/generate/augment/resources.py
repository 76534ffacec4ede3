"""What the operations look things up in, built once on the driver and shipped to workers.

Entity mentions by (language, type), tokens by (language, tag), synonyms by language. Plain
dicts of tuples of strings: picklable, deterministic (sorted by frequency, then text) and capped
in size, so the same training table always gives the same resources and the same augmented rows.
"""

from __future__ import annotations

import functools
import hashlib
import json
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from lrl.data.bio import spans
from lrl.data.files import resolve
from lrl.generate.augment.names import EntityWords, drop_entity_words, entity_words
from lrl.generate.augment.seeds import row_key
from lrl.generate.augment.synonyms import Synonyms, _script, cached_neighbours, read_lexicon
from lrl.generate.config import AugmentConfig

_SYNONYM_OPS = {"synonym", "insert"}


@dataclass(frozen=True)
class AugmentResources:
    """Inventories the ops draw replacements from (per language)."""

    entities: dict[str, dict[str, tuple[tuple[str, ...], ...]]] = field(default_factory=dict)
    """lang -> entity type -> distinct mentions (token tuples)."""
    tokens: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    """lang -> tag (``O``, ``B-PER``...) -> distinct tokens seen with that tag; the ``O`` pool
    leaves out entity words (``names``), which insert and label-wise replacement would add as O."""
    synonyms: dict[str, Synonyms] = field(default_factory=dict)
    """lang -> word -> synonyms (lexicon entries first, then corpus neighbours; entity words
    neither have nor are neighbours)."""
    originals: dict[str, frozenset[int]] = field(default_factory=dict)
    """lang -> ``row_key`` of every input row: a generated row equal to one of them is not new."""
    _by_script: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    """Cache of the inventories split by script (derived, built lazily once per process)."""

    def mentions(self, lang: str, etype: str) -> tuple[tuple[str, ...], ...]:
        return self.entities.get(lang, {}).get(etype, ())

    def tagged(self, lang: str, tag: str) -> tuple[str, ...]:
        return self.tokens.get(lang, {}).get(tag, ())

    # A language's inventory mixes scripts: WikiANN ug has Latin-script (ULY) rows and Latin
    # names, am/sw/wo rows quote Faroese, Chinese or Arabic words. Drawn from the whole inventory,
    # a replacement put another script into the sentence: on the multilingual recipe 7% of ug
    # mention rows got a Latin mention in an Arabic sentence (or the reverse), 14% of ug labelwise
    # and 6% of ug insert rows a Latin word, and am/sw/wo rows "føroyskt", "石家庄", "България".
    # Ops draw from the part of the inventory in the script of what they replace.
    def mentions_in(self, lang: str, etype: str, script: str | None) -> tuple[tuple[str, ...], ...]:
        """The mentions of ``mentions(lang, etype)`` written in ``script`` (see ``script_of``)."""
        return self._split(("mention", lang, etype), self.mentions(lang, etype)).get(script, ())

    def tagged_in(self, lang: str, tag: str, script: str | None) -> tuple[str, ...]:
        """The tokens of ``tagged(lang, tag)`` written in ``script``."""
        return self._split(("token", lang, tag), self.tagged(lang, tag)).get(script, ())

    def _split(self, key: tuple, items: tuple) -> dict[str | None, tuple]:
        table = self._by_script.get(key)
        if table is None:
            groups: dict[str | None, list] = defaultdict(list)
            for item in items:  # order (frequency, then text) kept: same picks for the same seed
                groups[script_of((item,) if isinstance(item, str) else item)].append(item)
            # Punctuation (no script) is never a replacement, nor replaced: see NUMBER.
            table = self._by_script[key] = {s: tuple(g) for s, g in groups.items() if s is not None}
        return table

    def synonyms_of(self, lang: str, word: str) -> tuple[str, ...]:
        return self.synonym_entry(lang, word)[0]

    def synonym_entry(self, lang: str, word: str) -> tuple[tuple[str, ...], bool]:
        """(synonyms of ``word``, whether they were found under its lower-cased form only): an
        entry of the word as written (a lexicon's ``Mji``) is the user's, used as written; one
        found by folding case is written in lower case (neighbours always are) and takes the
        word's case where it is used (``eda.synonym_for``)."""
        table = self.synonyms.get(lang)
        if not table:
            return (), False
        found = _lookup(table, word)
        if found[0] or word.isascii() or unicodedata.is_normalized("NFC", word):
            return found
        # A decomposed token read under data.unicode: none still finds the lexicon's entry (read
        # in NFC, ``read_lexicon``) and the neighbours of NFC text.
        return _lookup(table, unicodedata.normalize("NFC", word))

    def is_original(self, lang: str, tokens: list[str], tags: list[str]) -> bool:
        return row_key(tokens, tags) in self.originals.get(lang, ())

    def fingerprint(self) -> str:
        """Content hash (for manifests: replay needs the same resources)."""
        originals = {lang: sorted(keys) for lang, keys in self.originals.items()}
        blob = json.dumps([self.entities, self.tokens, self.synonyms, originals], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def _lookup(table: Synonyms, word: str) -> tuple[tuple[str, ...], bool]:
    found = table.get(word)
    if found:
        return found, False
    lower = word.lower()
    return (table.get(lower) or (), lower != word)


#: The "script" of a word without letters that has a digit (``1995``, ``3,5``): numbers are
#: replaced by numbers. A word with neither (punctuation) has no script, and no pool: label-wise
#: replacement swapped WikiANN titles' brackets ("Dodoma ( mji )" -> "Dodoma ) mji (", sw I-ORG
#: tokens include ``( ) , '' : .``), and insert put punctuation into a sentence of numbers.
NUMBER = "NUMBER"


def script_of(words: Sequence[str]) -> str | None:
    """The script most of the words are written in (``ARABIC``, ``LATIN``, ``ETHIOPIC``...: that
    of each word's first letter; the first one seen wins a tie); ``NUMBER`` when no word has a
    letter but one has a digit; None when no word has either (punctuation)."""
    if len(words) == 1:  # labelwise asks for every token: a Counter each made it 4x slower
        return _word_script(words[0])
    scripts = [_word_script(w) for w in words]
    counts = Counter(s for s in scripts if s is not None and s != NUMBER)
    if counts:
        return counts.most_common(1)[0][0]
    return NUMBER if NUMBER in scripts else None


@functools.lru_cache(maxsize=1 << 16)
def _word_script(word: str) -> str | None:
    script = _script(word)
    if script is None and any(ch.isdigit() for ch in word):
        return NUMBER
    return script


def _top(counter: Counter, limit: int) -> tuple:
    return tuple(k for k, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:limit])


def inventories(train: pa.Table, limit: int, names: dict[str, EntityWords] | None = None) -> tuple[dict, dict]:
    """Entity mentions by (lang, type) and tokens by (lang, tag) from labelled rows. The ``O``
    tokens leave out the language's entity words (``names``; by default those of ``train``),
    before the ``limit`` cut: insert and label-wise replacement put a pool word in tagged O."""
    names = entity_words(train) if names is None else names
    ents: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    toks: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    cols = train.select(["lang", "tokens", "tags"]).to_pydict()
    for lang, tokens, tags in zip(cols["lang"], cols["tokens"], cols["tags"]):
        for tok, tag in zip(tokens, tags):
            toks[lang][tag][tok] += 1
        for start, end, etype in spans(tags):
            ents[lang][etype][tuple(tokens[start:end])] += 1
    for lang, by in toks.items():
        if "O" in by and lang in names:
            by["O"] = Counter({tok: n for tok, n in by["O"].items() if tok not in names[lang]})
    entities = {lang: {t: _top(c, limit) for t, c in sorted(by.items())} for lang, by in sorted(ents.items())}
    tokens = {lang: {t: _top(c, limit) for t, c in sorted(by.items())} for lang, by in sorted(toks.items())}
    return entities, tokens


def synonym_tables(cfg: AugmentConfig, langs: list[str], texts: pa.Table | None, root: str | None,
                   seed: int = 0, names: dict[str, EntityWords] | None = None) -> dict[str, Synonyms]:
    """Lexicon entries per language, completed by corpus neighbours where text is given.
    Neighbours leave out the language's entity words (``names``; None: no filter): synonym and
    insert put them in tagged O. A lexicon is the user's word and is used as written."""
    out: dict[str, Synonyms] = {}
    by_lang: dict[str, list[str]] = defaultdict(list)
    if texts is not None and cfg.neighbours.enabled:
        cols = texts.select(["lang", "text"]).to_pydict()
        cap = cfg.neighbours.max_lines
        for lang, text in zip(cols["lang"], cols["text"]):
            if lang in langs and (cap is None or len(by_lang[lang]) < cap):
                by_lang[lang].append(text)
    for lang in langs:
        table: dict[str, tuple[str, ...]] = {}
        if by_lang.get(lang):
            neighbours = cached_neighbours(lang, by_lang[lang], cfg.neighbours, seed)
            table.update(drop_entity_words(neighbours, names[lang]) if names and lang in names else neighbours)
        if lang in cfg.lexicons:
            table.update(read_lexicon(resolve(cfg.lexicons[lang], root)))  # the user's word wins
        if table:
            out[lang] = table
    return out


def build_resources(cfg: AugmentConfig, train: pa.Table, texts: pa.Table | None = None,
                    root: str | None = None, names_from: pa.Table | None = None,
                    translated: Sequence[str] = ()) -> AugmentResources:
    """Everything ``cfg.ops`` needs, from the training table (and text for neighbours).
    ``names_from``: the rows whose tags say which words are names (default ``train``); the
    generate stage leaves out a token tagger's rows (``data.ner[].scheme: tokens``, UD POS), which
    tag every word ``B-X``: counted, they made most words of their language entity words.
    ``translated``: languages that translation writes rows in before augment runs
    (``steps.translated_langs``); they get synonyms too, though ``train`` has none of their rows."""
    names = entity_words(train if names_from is None else names_from)  # once, for the O pool and neighbours
    entities, tokens = inventories(train, cfg.max_inventory, names)
    synonyms: dict[str, Synonyms] = {}
    if _SYNONYM_OPS & set(cfg.ops):
        rows = sorted(set(train.column("lang").to_pylist()))
        _check_lexicon_langs(cfg, rows, sorted(set(translated) - set(rows)))
        synonyms = synonym_tables(cfg, sorted(set(rows) | set(translated)), texts, root, names=names)
    return AugmentResources(entities=entities, tokens=tokens, synonyms=synonyms, originals=original_keys(train))


def _check_lexicon_langs(cfg: AugmentConfig, rows: list[str], translated: list[str]) -> None:
    """A lexicon is read only for the languages of the rows and the one translate-train writes
    (``wol`` beside ``lang: wo``): one for another language was ignored without a word, as
    ``oversample.target_per_lang`` naming it is not."""
    missing = sorted(set(cfg.lexicons) - set(rows) - set(translated))
    if missing:
        from lrl.config import ConfigError  # config against data: the CLI prints one line

        made = f", and {translated} that translate.train writes" if translated else ""
        raise ConfigError(f"augment.lexicons names {missing} but no training row (data.ner, held-out splits "
                          f"aside) has that language (the rows' languages: {rows}{made}); synonyms are built "
                          "for those languages only")


def original_keys(train: pa.Table) -> dict[str, frozenset[int]]:
    """``row_key`` of each input row, by language. 64-bit keys, not the rows: a few MB for a
    million rows, where the token lists themselves would take hundreds in every worker."""
    keys: dict[str, set[int]] = defaultdict(set)
    cols = train.select(["lang", "tokens", "tags"]).to_pydict()
    for lang, tokens, tags in zip(cols["lang"], cols["tokens"], cols["tags"]):
        keys[lang].add(row_key(tokens, tags))
    return {lang: frozenset(k) for lang, k in sorted(keys.items())}
