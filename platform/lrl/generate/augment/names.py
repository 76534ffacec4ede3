"""Entity words: the words a language's labelled rows tag as an entity at least as often as O.

Insert and label-wise replacement of an O token draw words from the tokens the training rows tag
O, and synonym and insert from corpus neighbours; both put the word in tagged O. Both held names:
WikiANN tags a name O in some rows (a missed or partial annotation: ug ئۈرۈمچى "Urumqi" is B-LOC
13 times and O 3 times, wo ``Luga`` an entity 6 times and O twice), and the neighbours of a word
of Arabic or Ethiopic script, which has no capitals to tell names by (``proper_nouns``), include
names of its class (ug "of the city" -> ئاقسۇ "Aksu"). On WikiANN ug/wo/yo with 20k lines of
mono/ug.txt, 87 of 1,300 ug synonym rows, 168 of 3,202 ug insert rows, 161 of 2,923 ug label-wise
rows and 77 / 73 wo insert / label-wise rows added as O a word the training rows mostly tag as an
entity: label noise that teaches the tagger those names are not names.

The rule (``EntityWords.__contains__``), per language:

- A word is counted without the punctuation attached to its token (``ئۈرۈمچى،`` counts as
  ``ئۈرۈمچى``, as the ops split it, ``words.split_punct``), in NFC; a tag B- or I- of any type
  counts as an entity.
- A word form the labelled rows hold is an entity word when they tag it as an entity at least as
  often as O (a tie counts as a name: the data does not say it is a common word). Each case form
  is judged by its own counts: ``May`` and ``may`` can differ, and the labels say which.
- A form they never hold (corpus neighbours are lower-cased: ``luga``) is judged by all its case
  forms together (``str.lower``, as neighbours and ``synonyms_of`` fold case).
- A word no case form of which is in the labelled rows is not an entity word: only the corpus
  knows it, and the corpus rules apply (``synonyms.proper_nouns``).

Words inside multi-word names count like any other: a function word ("of" in "Bank of Uganda")
is tagged O far more often than it is inside a name, and stays; a word the data tags inside
names at least as often as outside them (ug تىلى "language", I- 24 times and O 20 times, as in
"Uyghur language") is left out of the O pool: the labels make it part of names more often than
not. It stays in the pools of its entity tags.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass

import pyarrow as pa

from lrl.generate.augment.words import split_punct


def _nfc(word: str) -> str:
    if word.isascii() or unicodedata.is_normalized("NFC", word):
        return word
    return unicodedata.normalize("NFC", word)


@dataclass(frozen=True)
class EntityWords:
    """The entity words of one language (see the module docstring for the rule)."""

    exact: frozenset[str]
    """Word forms (NFC) the labelled rows tag as an entity at least as often as O."""
    seen: frozenset[str]
    """Every word form (NFC) of the labelled rows."""
    folded: frozenset[str]
    """Lower-cased words whose case forms together are tagged as an entity at least as often as O."""

    def __contains__(self, token: object) -> bool:
        """Whether the word of ``token`` (its punctuation split off) is an entity word."""
        if not isinstance(token, str):
            return False
        word = _nfc(split_punct(token)[1])
        if not word:
            return False
        if word in self.seen:
            return word in self.exact
        return word.lower() in self.folded

    @classmethod
    def count(cls, entity: Counter, other: Counter) -> EntityWords:
        """From the times each word (NFC, punctuation split off) is tagged as an entity / O."""
        folded_e: Counter = Counter()
        folded_o: Counter = Counter()
        for word, n in entity.items():
            folded_e[word.lower()] += n
        for word, n in other.items():
            folded_o[word.lower()] += n
        return cls(exact=frozenset(w for w, n in entity.items() if n >= other[w]),
                   seen=frozenset(entity) | frozenset(other),
                   folded=frozenset(w for w, n in folded_e.items() if n >= folded_o[w]))


def entity_words(train: pa.Table) -> dict[str, EntityWords]:
    """``EntityWords`` of every language of the labelled rows (``lang``, ``tokens``, ``tags``)."""
    entity: dict[str, Counter] = defaultdict(Counter)
    other: dict[str, Counter] = defaultdict(Counter)
    cols = train.select(["lang", "tokens", "tags"]).to_pydict()
    for lang, tokens, tags in zip(cols["lang"], cols["tokens"], cols["tags"]):
        ent, oth = entity[lang], other[lang]
        for tok, tag in zip(tokens, tags):
            word = split_punct(tok)[1]
            if word:
                (oth if tag == "O" else ent)[_nfc(word)] += 1
    return {lang: EntityWords.count(entity[lang], other[lang]) for lang in sorted(set(entity) | set(other))}


def drop_entity_words(table: dict[str, tuple[str, ...]], names: EntityWords) -> dict[str, tuple[str, ...]]:
    """A neighbour table without entity words, as heads or as neighbours (a head left with no
    neighbour is dropped): names neither get nor are neighbours, as ``proper_nouns`` are not."""
    out: dict[str, tuple[str, ...]] = {}
    for word, syns in table.items():
        if word in names:
            continue
        kept = tuple(s for s in syns if s not in names)
        if kept:
            out[word] = kept
    return out
