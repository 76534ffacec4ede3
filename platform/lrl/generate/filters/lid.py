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

What is judged, and against what. A labelled row is judged on its O tokens: its entity mentions
are names, often of another language (``Papa Pius XII``, ``Quincy Jones`` in WikiANN sw), and
mention replacement draws other names from the inventory; judged with them, such rows were
"detected" as Latin, Portuguese or English. And a generated row is judged against the row it
came from: when its parent, in its language and kept as read (or itself spared), is detected as
the same wrong language, the op did not change the language and the row is spared. The filter is
there to catch generation that leaves the language (a translation in the pivot language, a
synonym of another language), not to judge the labelled data under the ``generated`` scope: on
WikiANN ug and sw with every augmentation op, 157 of 211 rejected rows came from an original that
langid misjudged itself (Uyghur in Latin script named ``jv``; English song credits in sw).
Parents are looked up in a second pass over the materialised rows (only those of failed rows).
"""

from __future__ import annotations

import copy
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from lrl.config import ConfigError
from lrl.data.schema import REJECT
from lrl.generate.filters.common import RowFilter, in_scope, set_rejects, texts
from lrl.generate.translate.columns import widen

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


@dataclass(frozen=True)
class Verdict:
    """Why one row fails language ID: the reject reason, and the language detected instead (None
    when its own language was detected, with too low a probability). The language is data, so that
    comparing a row with its parent (``failure_kind``) does not read it back out of the reason."""

    reason: str
    detected: str | None = None


class LangIdFilter(RowFilter):
    """Reject rows whose detected language is not their ``lang`` (or is, with too low a
    probability), unless their parent is detected the same way (module docstring); rows shorter
    than ``min_chars`` characters (O tokens only for labelled rows) are too short to judge and pass."""

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

    def verdicts(self, table: pa.Table, judge: list[bool]) -> list[Verdict | None]:
        """A failing verdict or None for each row; only rows with ``judge`` set are judged."""
        ident = identifier(self.candidates)
        out: list[Verdict | None] = []
        for text, lang, check in zip(judged_texts(table), table.column("lang").to_pylist(), judge):
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
                out.append(Verdict(f"lid: detected {top} ({prob:.2f}), expected {want}", top))
            elif p_want < self.min_prob:
                out.append(Verdict(f"lid: {want} probability {p_want:.2f} < {self.min_prob}"))
            else:
                out.append(None)
        return out

    def failed(self, table: pa.Table) -> pa.Table:
        """Pass 1: the rows in scope that fail, with their parent and language."""
        verdicts = self.verdicts(table, in_scope(table, self.scope))
        keep = pa.array([v is not None for v in verdicts], pa.bool_())  # typed: a 0-row table too
        cols = {c: table.column(c).filter(keep) for c in ("id", "lang", "parent_id")}
        failed = [v for v in verdicts if v is not None]
        return pa.table({**cols, "reason": pa.array([v.reason for v in failed], pa.string()),
                         "how": pa.array([failure_kind(v) for v in failed], pa.string())})

    def parents(self, table: pa.Table, wanted: set[str]) -> pa.Table:
        """Pass 2: for the rows whose id is in ``wanted``: language, whether kept as read (out of
        scope and not rejected) and how they fail too (``failure_kind``; judged whatever the scope)."""
        rows = [i in wanted for i in table.column("id").to_pylist()]
        how = [None if v is None else failure_kind(v) for v in self.verdicts(table, rows)]
        scope, old = in_scope(table, self.scope), table.column(REJECT).to_pylist()
        keep = pa.array(rows, pa.bool_())
        as_read = [o is None and not s for o, s in zip(old, scope)]
        return pa.table({"id": table.column("id").filter(keep), "lang": table.column("lang").filter(keep),
                         "as_read": pa.array(as_read, pa.bool_()).filter(keep),
                         "how": pa.array(how, pa.string()).filter(keep)})

    def reasons(self, table: pa.Table) -> list[str | None]:
        """The reasons for one table (parents looked up in it)."""
        table = widen(table)
        failed = self.failed(table)
        wanted = needed_parents(failed)
        found = self.parents(table, wanted) if wanted else None
        rejected = decide(failed, found)
        return [rejected.get(i) for i in table.column("id").to_pylist()]

    def apply(self, ds):
        import ray

        from lrl.data.blocks import materialize

        ds = materialize(ds.map_batches(widen, batch_format="pyarrow"))  # read by up to three passes
        failed = _concat(ds.map_batches(self.failed, batch_format="pyarrow"))
        wanted = needed_parents(failed) if failed is not None else set()
        found = (_concat(ds.map_batches(self.parents, fn_kwargs={"wanted": wanted}, batch_format="pyarrow"))
                 if wanted else None)
        rejected = decide(failed, found) if failed is not None else {}
        ref = ray.put(rejected)
        return ds.map_batches(_mark, fn_kwargs={"ref": [ref]}, batch_format="pyarrow")


def judged_texts(table: pa.Table) -> list[str]:
    """What language ID judges: a labelled row's O tokens (its mentions are names, module
    docstring), a text row's text."""
    if "tokens" not in table.column_names:
        return texts(table)
    return [" ".join(t for t, g in zip(toks or [], tags or []) if g == "O")
            for toks, tags in zip(table.column("tokens").to_pylist(), table.column("tags").to_pylist())]


def needed_parents(failed: pa.Table) -> set[str]:
    """Parents of failed rows that pass 1 did not judge as failed (looked up in pass 2)."""
    ids = set(failed.column("id").to_pylist())
    return {p for p in failed.column("parent_id").to_pylist() if p is not None and p not in ids}


def failure_kind(verdict: Verdict) -> str:
    """How a row failed, for comparing a row with its parent: the language detected instead
    (``lid: detected en (0.93), expected sw`` -> ``en``), or ``low probability``."""
    return verdict.detected or "low probability"


def decide(failed: pa.Table, parents: pa.Table | None) -> dict[str, str]:
    """Id -> reason of the failed rows that are rejected: all but those whose parent, in their
    language, fails the same way (the same wrong language detected) and is kept as read or spared
    itself (a chain of failed generated rows). A parent misjudged as ``az`` does not spare a child
    detected as ``en``: generation may have leaked the pivot language (a row failing on low
    probability alone is spared only by a parent failing that way too). Chains are walked without
    recursion; a ``parent_id`` cycle spares nobody in it."""
    info = {r["id"]: r for r in failed.to_pylist()}
    found = {r["id"]: r for r in parents.to_pylist()} if parents is not None else {}
    spared: dict[str, bool] = {}
    for rid in info:
        chain: list[str] = []
        seen: set[str] = set()
        x, result = rid, False
        while True:
            if x in spared:
                result = spared[x]
                break
            if x in seen:  # a cycle
                break
            chain.append(x)
            seen.add(x)
            row, parent = info[x], info[x]["parent_id"]
            if parent in info:  # a failed generated parent: spared if it is, failing the same way
                if info[parent]["lang"] != row["lang"] or info[parent]["how"] != row["how"]:
                    break
                x = parent
                continue
            p = found.get(parent)
            result = bool(p) and p["lang"] == row["lang"] and p["as_read"] and p["how"] == row["how"]
            break
        for y in chain:
            spared[y] = result
    return {rid: row["reason"] for rid, row in info.items() if not spared[rid]}


def _concat(ds) -> pa.Table | None:
    parts = [b for b in ds.iter_batches(batch_format="pyarrow", batch_size=None) if b.num_rows]
    return pa.concat_tables(parts) if parts else None


def _mark(table: pa.Table, ref: list) -> pa.Table:
    """Set the decided reasons (the reference is wrapped in a list so Ray passes it as is)."""
    import ray

    rejected: dict[str, str] = ray.get(ref[0])
    return set_rejects(table, [rejected.get(i) for i in table.column("id").to_pylist()])
