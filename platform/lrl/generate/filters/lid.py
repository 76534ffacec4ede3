"""Language-ID filter: generated text must be in the language its row claims.

Uses ``langid`` with its bundled model (offline; it knows Uyghur: 1012/1012 FLORES ug lines);
the model loads once per worker process, on first use, not when the step is built.

Language ID needs text to judge. On prefixes of news sentences (mono/*.txt, 300 each) langid
named Swahili right for 40% at 20 characters, 85% at 40, 93% at 50, 99% at 80; Amharic (its own
script) always. WikiANN rows are mostly entity names (sw train: median 24 characters): judged
all, 59% of the sw train rows and 88% of rw were rejected though genuine. So rows shorter than
``min_chars`` (``filter.lid_min_chars``, default 50) are too short to judge and pass: the sw
rejects fall to 2.8%, rw 8%, ug 10.4% -> 0.9% (92%, 85%, 66% of those rows are not judged).
Kinyarwanda stays unreliable at any length (29-53% right at 30-80 characters): leave it out of
``filter.lid_langs``, as languages langid does not know (wo, ha, ig, yo) must be.

Rows are judged in NFKC form. Uyghur text is often typed in Arabic presentation forms (U+FB50 to
U+FEFF, 2.5% of mono/ug.txt lines), which langid never saw: it named 92% of such ug lines
"zh" (275 of 300 lines of 50+ characters) and 1% in NFKC form; the row itself is not changed.
"""

from __future__ import annotations

import copy
import unicodedata
from collections.abc import Iterable

import pyarrow as pa

from lrl.config import ConfigError
from lrl.generate.filters.common import RowFilter, in_scope, texts

# Three-letter / NLLB-style codes -> the ISO 639-1 codes langid uses.
_TO_LANGID = {"uig": "ug", "eng": "en", "wol": "wo", "amh": "am", "hau": "ha", "ibo": "ig", "kin": "rw",
              "swh": "sw", "swa": "sw", "yor": "yo", "kir": "ky", "tuk": "tk", "tur": "tr", "fra": "fr"}
_IDENT: dict[tuple[str, ...], object] = {}
#: The languages of langid's bundled model (its ``nb_classes``; tests/test_generate_checks.py checks the
#: list against the model), so that the driver can check a config without unpacking the model.
LANGID_LANGS = frozenset(
    "af am an ar as az be bg bn br bs ca cs cy da de dz el en eo es et eu fa fi fo fr ga gl gu he hi hr ht hu "
    "hy id is it ja jv ka kk km kn ko ku ky la lb lo lt lv mg mk ml mn mr ms mt nb ne nl nn no oc or pa pl ps "
    "pt qu ro ru rw se si sk sl sq sr sv sw ta te th tl tr ug uk ur vi vo wa xh zh zu".split())


def langid_code(lang: str) -> str:
    """``uig_Arab`` / ``uig`` / ``ug`` -> ``ug``."""
    base = lang.split("_")[0]
    return _TO_LANGID.get(base, base)


def identifier(candidates: tuple[str, ...]):
    """A langid identifier (probabilities normalised), cached per process and candidate set."""
    if candidates not in _IDENT:
        if () not in _IDENT:  # unpacking the bundled model takes seconds: once per process
            from langid.langid import LanguageIdentifier, model

            _IDENT[()] = LanguageIdentifier.from_modelstring(model, norm_probs=True)
        if candidates:
            # set_languages rebinds (never mutates) the trimmed arrays: a shallow copy is enough.
            ident = copy.copy(_IDENT[()])
            unknown = sorted(set(candidates) - set(ident.nb_classes))  # type: ignore[attr-defined]
            if unknown:
                raise ValueError(f"lid: langid does not know {unknown} (filter.lid_candidates)")
            ident.set_languages(list(candidates))  # type: ignore[attr-defined]
            _IDENT[candidates] = ident
    return _IDENT[candidates]


def check_lid(langs: Iterable[str], lid_langs: Iterable[str], candidates: Iterable[str]) -> None:
    """Raise ``ConfigError`` when the language-ID filter could not judge a language it would be
    asked to: one of ``lid_langs`` (or, when it is empty, of ``langs``, the languages of the rows)
    that langid does not know or that ``candidates`` leaves out, or a candidate langid does not
    know. Checked on the driver before any work: found by the filter's tasks, the same error came
    after reading and augmenting everything, as a Ray traceback of a hundred lines, and only when
    a row was long enough to be judged (``min_chars``)."""
    known = {langid_code(x) for x in candidates} or set(LANGID_LANGS)
    unknown = sorted(known - LANGID_LANGS)
    if unknown:
        raise ConfigError(f"filter.lid_candidates {unknown}: langid does not know them (it knows "
                          f"{' '.join(sorted(LANGID_LANGS))})")
    judged = {x: langid_code(x) for x in (lid_langs or langs)}
    cannot = sorted(x for x, code in judged.items() if code not in known)
    if cannot:
        where = "filter.lid_langs" if lid_langs else "the data's languages"
        among = "filter.lid_candidates" if candidates else "langid's languages"
        able = sorted(x for x, code in judged.items() if code in known)
        raise ConfigError(f"filter.ops has 'lid' but {where} {cannot} are not among {among}: langid cannot "
                          "detect them and would reject every row; set filter.lid_langs to the languages to "
                          f"check{f' (here: {able})' if able else ''}")


class LangIdFilter(RowFilter):
    """Reject rows whose detected language is not their ``lang`` (or is, with too low a
    probability); rows shorter than ``min_chars`` characters are too short to judge and pass."""

    name = "lid"

    def __init__(self, langs: list[str], candidates: list[str], min_prob: float = 0.0,
                 scope: str = "generated", min_chars: int = 0) -> None:
        self.langs = {langid_code(x) for x in langs}
        self.candidates = tuple(sorted({langid_code(x) for x in candidates}))
        self.min_prob = min_prob
        self.scope = scope
        self.min_chars = min_chars
        if self.candidates and self.langs - set(self.candidates):
            raise ValueError(f"lid: languages {sorted(self.langs - set(self.candidates))} are not among the candidates")

    def reasons(self, table: pa.Table) -> list[str | None]:
        ident = identifier(self.candidates)
        out: list[str | None] = []
        for text, lang, check in zip(texts(table), table.column("lang").to_pylist(), in_scope(table, self.scope)):
            want = langid_code(lang)
            if not check or (self.langs and want not in self.langs):
                out.append(None)
                continue
            if len(" ".join(text.split())) < self.min_chars:  # too short to judge (module docstring)
                out.append(None)
                continue
            if want not in ident.nb_classes:  # type: ignore[attr-defined]
                # langid would name some other language for every row (it knows no wo, ha, ig,
                # yo): all generated rows of the language were rejected. Stop and say so.
                raise ValueError(f"lid: langid cannot detect {lang!r} (not among its languages or "
                                 "filter.lid_candidates); set filter.lid_langs to the languages to check")
            ranked = ident.rank(unicodedata.normalize("NFKC", text))  # type: ignore[attr-defined]
            top, prob = ranked[0]
            p_want = next((p for code, p in ranked if code == want), 0.0)
            if top != want:
                out.append(f"lid: detected {top} ({prob:.2f}), expected {want}")
            elif p_want < self.min_prob:
                out.append(f"lid: {want} probability {p_want:.2f} < {self.min_prob}")
            else:
                out.append(None)
        return out
