"""Keep the combining marks of a new language when extending an accent-stripping base
(``tokenizer.keep_accents``).

BERT uncased's normalizer (MiniLM's) decomposes text (NFD) and removes every combining mark, so
an extension to Yoruba learned its pieces without tone marks or dots below: 86% of held-out
mono/yo words changed, and different words such as "ọkọ", "oko" and "ọ̀kọ̀" became one. With the
option the base's normalizer keeps the marks that the new text writes often (``kept_marks``) and
strips the others as before, so words of other languages with rarer marks ("ü", "ñ" in Yoruba text)
still reach the base's own pieces; the kept marks are composed back onto their letters (NFC) for
the letters the new text has, so the saved tokenizer's pieces and decoded text are in the NFC that
lrl reads. Not a general NFC: that would also recompose Hangul, which the base sees as jamo.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable

from lrl.config import ConfigError

#: A combining mark is kept when it is at least this share of the new text's combining marks. On
#: mono/yo.txt the acute, grave and dot below are 40%, 33% and 27% of them; the next mark (the
#: vertical line below of an older spelling) is 0.006%, like the marks of foreign names.
KEEP_SHARE = 0.01


def combining_marks(text: str) -> str:
    """The combining marks (category Mn) of ``text`` decomposed: "ọ̀" -> dot below, grave."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) == "Mn")


def kept_marks(texts_by_lang: dict[str, Iterable[str]], nfkc: bool, always: str = "") -> tuple[str, list[str]]:
    """The combining marks to keep (a string of them, sorted) and the letters that carry them, as
    the extended normalizer composes them (NFC, one char each): the text's, in lower and upper
    case, and ``always`` (letters kept with their marks whatever their share).

    Both cases: where a base's Lowercase step comes after its StripAccents (ALBERT's), a capital
    the text never wrote ("Ḿ" where it has "ḿ") stayed a bare letter and a mark, read unlike the
    small one (BERT's is lowercased first, ``_replace_strip``). The text is read as NFC (FLORES
    yo is partly decomposed) and, with ``nfkc``, as NFKC too."""
    chars = _chars(texts_by_lang)
    counts = Counter({m: sum(by.values()) for m, by in _marks(chars, nfkc).items()})
    total = sum(counts.values())
    keep = "".join(sorted({m for m, n in counts.items() if n >= KEEP_SHARE * total} | set(combining_marks(always))))
    letters = set(always)
    for ch in chars:
        for form in {ch, unicodedata.normalize("NFKC", ch) if nfkc else ch}:
            bare = "".join(c for c in unicodedata.normalize("NFD", form)
                           if unicodedata.category(c) != "Mn" or c in keep)
            for out in {unicodedata.normalize("NFC", x) for x in (bare, bare.lower(), bare.upper())}:
                letters.update(c for c in out if len(unicodedata.normalize("NFD", c)) > 1 and combining_marks(c))
    return keep, sorted(letters)


def _chars(texts_by_lang: dict[str, Iterable[str]]) -> Counter[str]:
    """How often each character occurs in the text, read as NFC."""
    chars: Counter[str] = Counter()
    for lines in texts_by_lang.values():
        for line in lines:
            chars.update(unicodedata.normalize("NFC", line))
    return chars


def _marks(chars: Counter[str], nfkc: bool) -> dict[str, Counter[str]]:
    """Per combining mark, how often each character (NFC) carries it (read as NFKC with ``nfkc``)."""
    out: dict[str, Counter[str]] = {}
    for ch, n in chars.items():
        for m in combining_marks(unicodedata.normalize("NFKC", ch) if nfkc else ch):
            out.setdefault(m, Counter())[ch] += n
    return out


def marks_report(texts_by_lang: dict[str, Iterable[str]], nfkc: bool, normalize: Callable[[str], str],
                 top: int = 5, keep_letters: Iterable[str] = ()) -> dict[str, list]:
    """Which combining marks of the text the extended tokenizer's ``normalize`` keeps, and the
    ``top`` most frequent it strips, with their counts and the letters (lowercased) that carry them
    most: for ``stats.json`` and ``lrl tokenizer``. A native but rare letter falls under the 1%
    rule unseen otherwise (Igbo ṅ, 0.13% of mono/ig's marks: stripped to n); ``tokenizer.keep_letters``
    keeps it. Kept or stripped as the normalizer actually treats the mark's commonest letter.
    With ``keep_letters``, also how often each occurs and a warning per one that never does
    (``letters_report``): on Yoruba text ṅ was kept without a word, the marks lines naming only
    marks the text writes."""
    kept: list[dict] = []
    stripped: list[dict] = []
    for m, by in sorted(_marks(_chars(texts_by_lang), nfkc).items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
        letters: Counter[str] = Counter()
        for ch, n in by.items():
            letters[ch.lower() if len(ch.lower()) == 1 else ch] += n
        first = letters.most_common(1)[0][0]
        row = {"mark": _mark_name(m),
               "count": sum(by.values()),
               "letters": {(f"\u25cc{c}" if c == m else c): n for c, n in letters.most_common(3)}}
        (kept if m in unicodedata.normalize("NFD", normalize(first)) else stripped).append(row)
    out: dict[str, list] = {"kept": kept, "stripped": stripped[:top]}
    if keep_letters := list(keep_letters):
        out["keep_letters"], out["warnings"] = letters_report(texts_by_lang, nfkc, keep_letters)
    return out


def spell(letter: str) -> str:
    """A letter with its code points, mark by mark: "ṅ (U+1E45 = n + U+0307 dot above)". A dot
    above typed for a dot below looks alike in most fonts; the code points tell them apart."""
    return f"{letter} ({_code_points(letter)})"


def _code_points(letter: str) -> str:
    base, *marks = unicodedata.normalize("NFD", letter)
    return f"U+{ord(letter):04X} = " + " + ".join([base, *(f"U+{ord(m):04X} {_mark_name(m)}" for m in marks)])


def _mark_name(m: str) -> str:
    return unicodedata.name(m, f"U+{ord(m):04X}").lower().removeprefix("combining ")


def letters_report(texts_by_lang: dict[str, Iterable[str]], nfkc: bool, letters: Iterable[str],
                   top: int = 3) -> tuple[list[dict], list[str]]:
    """How often each ``tokenizer.keep_letters`` entry occurs in the training text (NFC, either case,
    read as NFKC with ``nfkc``), per language, and a warning for each that never occurs, naming it
    with its code points and the marked forms of its base letter that the text does write (a dot
    above typed for a dot below was taken without a word: the letter meant kept its mark only
    where the 1% rule kept it)."""
    by_lang = {lang: _chars({lang: lines}) for lang, lines in texts_by_lang.items()}
    rows: list[dict] = []
    warnings: list[str] = []
    for letter in letters:
        counts = {lang: sum(n for ch, n in chars.items() if _read(ch, nfkc).lower() == letter.lower())
                  for lang, chars in by_lang.items()}
        rows.append({"letter": letter, "code_points": _code_points(letter),
                     "count": sum(counts.values()), "langs": counts})
        if sum(counts.values()):
            continue
        bare = unicodedata.normalize("NFD", letter)[0].lower()
        alike: Counter[str] = Counter()
        for chars in by_lang.values():
            for ch, n in chars.items():
                low = _read(ch, nfkc).lower()
                nfd = unicodedata.normalize("NFD", low)
                if len(low) == 1 and nfd[0] == bare and combining_marks(low):
                    alike[low] += n
        seen = ("; the text writes " + ", ".join(f"{spell(c)} {n:,} time{'s' if n != 1 else ''}" for c, n in alike.most_common(top))
                if alike else f"; the text writes no {bare} with a mark")
        warnings.append(f"tokenizer.keep_letters: {spell(letter)} occurs 0 times in the training text "
                        f"({', '.join(sorted(counts))}): check that it is the letter meant{seen}")
    return rows, warnings


def _read(ch: str, nfkc: bool) -> str:
    return unicodedata.normalize("NFKC", ch) if nfkc else ch


def report_lines(report: dict[str, list]) -> list[str]:
    """``marks_report`` for the ``lrl tokenizer`` summary: "dot above 112 (ṅ)" per mark, the count
    of each ``tokenizer.keep_letters`` entry and the warnings (an entry the text never writes)."""
    def say(rows: list[dict]) -> str:
        return ", ".join(f"{r['mark']} {r['count']:,} ({' '.join(r['letters'])})" for r in rows) or "none"

    lines = [f"  accents kept: {say(report['kept'])}"]
    if report["stripped"]:
        lines.append(f"  accents stripped (most frequent): {say(report['stripped'])}; list a letter in "
                     "tokenizer.keep_letters to keep its mark")
    if report.get("keep_letters"):
        lines.append("  tokenizer.keep_letters in the training text: " + ", ".join(
            f"{r['letter']} {r['count']:,} ({r['code_points']})" for r in report["keep_letters"]))
    return lines + [f"  warning: {w}" for w in report.get("warnings", [])]


def keep_accents(normalizer: dict | None, texts_by_lang: dict[str, Iterable[str]], nfkc: bool,
                 always: str = "") -> tuple[dict | None, list[str]]:
    """``normalizer`` (JSON) with its accent stripping turned off for the marks of the new text
    (``kept_marks``; ``always``: letters kept with their marks in any case), and those marks and
    their composed letters (for ``mark_pieces``). ``ConfigError`` when it strips no accents."""
    if not strips_accents(normalizer):
        raise ConfigError("tokenizer.keep_accents: the base tokenizer's normalizer strips no accents "
                          "(no accent-stripping BertNormalizer or StripAccents step); leave keep_accents off")
    keep, letters = kept_marks(texts_by_lang, nfkc, always)
    return (_replace_strip(normalizer, keep, letters) if keep else normalizer), [*keep, *letters]


def strips_accents(normalizer: dict | None) -> bool:
    """Whether ``normalizer`` (JSON) removes combining marks (BERT uncased's does)."""
    if normalizer is None:
        return False
    if normalizer.get("type") == "Sequence":
        return any(strips_accents(n) for n in normalizer.get("normalizers") or [])
    if normalizer.get("type") == "StripAccents":
        return True
    strip = normalizer.get("strip_accents")
    return normalizer.get("type") == "BertNormalizer" and bool(
        strip if strip is not None else normalizer.get("lowercase", True))


def _replace_strip(normalizer: dict, keep: str, letters: list[str]) -> dict:
    """``normalizer`` with each accent-stripping step replaced by steps that remove only the marks
    not in ``keep`` and compose ``letters`` back (``_compose``); other steps, lowercasing
    included, as they were."""
    kind = normalizer.get("type")
    if kind == "Sequence":  # spliced in place: one flat list of steps
        steps = [_replace_strip(n, keep, letters) for n in normalizer.get("normalizers") or []]
        return {**normalizer, "normalizers": [x for s in steps
                                              for x in (s["normalizers"] if s["type"] == "Sequence" else [s])]}
    if not strips_accents(normalizer):
        return normalizer
    strip_rest = [{"type": "Replace", "content": "",
                   "pattern": {"Regex": "(?![" + "".join(f"\\x{{{ord(m):x}}}" for m in keep) + "])\\p{Mn}"}}]
    if kind == "StripAccents":
        return {"type": "Sequence", "normalizers": strip_rest + _compose(letters)}
    lower = bool(normalizer.get("lowercase", True))
    # Lowercased before composing (marks have no case), as the base strips and then lowercases:
    # only the small letters need a step (Yoruba: 26 steps, not 48; FLORES yo normalized 25% faster).
    small = [c for c in letters if c.lower() == c] if lower else letters
    return {"type": "Sequence", "normalizers": [{**normalizer, "strip_accents": False, "lowercase": False},
                                                {"type": "NFD"}, *strip_rest,
                                                *([{"type": "Lowercase"}] if lower else []), *_compose(small)]}


def _compose(letters: list[str]) -> list[dict]:
    """A Replace step per letter, its NFD by itself; longest decomposition first ("ộ" before "ọ")."""
    return [{"type": "Replace", "pattern": {"String": unicodedata.normalize("NFD", c)}, "content": c}
            for c in sorted(letters, key=lambda c: (-len(unicodedata.normalize("NFD", c)), c))]


def mark_pieces(kind: str, prefix: str, chars: list[str], old: dict[str, int], have: set[str],
                scores: list[float]) -> list[tuple[str, float]]:
    """Pieces for the kept marks and their composed letters (``chars``), word-initial and inside a
    word, where neither the base nor the learned pieces have them: a WordPiece word with one
    character that no piece holds is one [UNK]. A kept mark on a letter the new text never wrote
    with it ("ḅ") stays a bare mark after the letter; a letter the text wrote only at the start of
    words lacked its ``##`` piece (FLORES yo "èýkéyìí" was [UNK]). Unigram pieces get the lowest
    learned score."""
    wanted = [p for c in chars for p in ((c, prefix + c) if kind == "wordpiece" else (c,))]
    low = min(scores, default=0.0) if kind == "unigram" else 0.0
    return [(p, low) for p in wanted if p not in old and p not in have]
