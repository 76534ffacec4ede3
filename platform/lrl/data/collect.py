"""What a reader accumulates while it walks one NER input: accepted sentences, as Arrow tables
built a chunk at a time, and rejects with file, line and reason (``ReadResult``)."""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from lrl.data.bio import BioCheck, BioError, BioPolicy, TagProblem, check_tags, reason_kind
from lrl.data.files import InputError
from lrl.data.nfc import Composer, UnicodeForm
from lrl.data.schema import NER_SCHEMA, ner_table, reject_table
from lrl.data.token_tags import TagScheme, token_span_tags

#: Accepted sentences held as Python dicts before they become one Arrow chunk. Held as dicts
#: until the end, a 179 MB CoNLL file (2M sentences) took 6.7 GB of driver memory (peak RSS) for a 435 MB
#: table; a chunk at a time, 1.1 GB: the text, the table and one chunk of dicts.
CHUNK_ROWS = 8192

#: What no token may hold: a tab, or a line break to ``str.splitlines`` (or the unit separator \x1f).
_BREAK = re.compile(r"[\t\n\r\x0b\x0c\x1c-\x1f\x85\u2028\u2029]")


@dataclass
class ReadResult:
    """Rows read from one input, the rows quarantined with reasons, and the input's name."""

    table: pa.Table
    rejects: pa.Table
    source: str
    reject_reasons: dict[str, int] = field(default_factory=dict)
    repaired: int = 0
    """Sentences kept with tags changed by the ``repair`` policy (I- without B- made B-)."""
    nfc_changed: int = 0
    """Tokens of the kept sentences that reading composed to NFC (``data.unicode``)."""


@dataclass
class SourceIds:
    """The ids that the earlier files of a multi-file source (a pattern or a folder) accepted, so
    that an id repeated across its files is a reject as it is within one file."""

    given: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Each id a file gave (JSONL, Parquet): its file and line."""
    made: dict[str, tuple[str, array]] = field(default_factory=dict)
    """Per file name: its path and the lines of its made ids (``Collector.made``)."""

    def seen(self, rid: str, base: str) -> str | None:
        """Where an earlier file accepted ``rid`` ("line N of FILE"), None if none did."""
        if rid in self.given:
            path, line = self.given[rid]
            return f"line {line} of {path}"
        name, _, num = rid.removeprefix(base).rpartition(":") if rid.startswith(base) else ("", "", "")
        if name in self.made:
            path, made = self.made[name]
            line = _made_line(num, made)
            return f"line {line} of {path}" if line else None
        return None


@dataclass
class Shard:
    """One file of a multi-file source: its name (relative to the source's folder) goes into the
    made ids, ``lang:split:<name>:n``, n counted within the file. A counter shared by the files
    would renumber every later file when a shard is added or removed; per-file counters without
    the name would give each file its own ``lang:split:0``."""

    name: str
    ids: SourceIds


def _made_line(num: str, made: array) -> int:
    """The line of made id number ``num`` (its decimal form only: ``03`` is not 3), 0 if none."""
    if num.isdigit() and str(int(num)) == num and int(num) < len(made):
        return made[int(num)]
    return 0


def _token_line(index: int, token_lines: Sequence[int] | None) -> int | None:
    """The input line of token ``index`` (the one a problem names), when the reader knows it."""
    if token_lines is None or not 0 <= index < len(token_lines):
        return None
    return token_lines[index]


def null_list_reason(cells: dict[str, object]) -> str | None:
    """Why a row whose token or tag list (``cells``: column -> cell) is null (JSON null, a Parquet
    or Arrow null cell) cannot be read, naming the column; None when no cell is null. Read as an
    empty list, such a row was an "empty sentence" or a "length mismatch"."""
    null = next((name for name, cell in cells.items() if cell is None), None)
    return None if null is None else f"null list: {null!r} is null; need a list with one entry per token"


def sentence_problem(tokens: Sequence[str], tags: Sequence[str]) -> str | TagProblem | None:
    """What makes a sentence unusable whatever its tags mean: a reason of the whole sentence (no
    tokens, lengths differ), or the token or tag at fault (null, blank, a tab or line break); None
    when there is none. The checks of ``Collector.sentence``, also used by ``lrl evaluate``'s own
    Parquet reader (``lrl.evaluate.predict``), which gives the same reasons."""
    if not tokens:
        return "empty sentence: no tokens"
    if len(tokens) != len(tags):
        return f"length mismatch: {len(tokens)} tokens but {len(tags)} tags"
    # JSON null / Parquet and Arrow nulls: a None token would be written as a null list item and
    # a None tag crashed the BIO check; neither can be repaired without inventing a value.
    for what, values in (("token", tokens), ("tag", tags)):
        if None in values:
            i = values.index(None)
            return TagProblem(i, f"{what} {i} is null", "null value")
    # An empty or blank token has no characters to tokenize: its tag (B-PER on "") vanished in
    # subword alignment, and a text built from the tokens had doubled spaces.
    blank = next((i for i, t in enumerate(tokens) if not t.strip()), None)
    if blank is not None:
        return TagProblem(blank, f"token {blank} is {tokens[blank]!r}", "empty token")
    # A tab or line break inside a token (JSONL, Parquet, Hugging Face) was kept: the token-per-
    # line files written from the rows (evaluate's predictions .conll) got a column or a line
    # too many, which no CoNLL reader reads back as that token. Line breaks are also those that
    # str.splitlines() breaks at (U+2028, U+0085, \v, \f, \x1c-\x1e) and \x1f, which split() cuts at.
    joined = " ".join(tokens)  # printable (no tab, no break): one C scan per sentence, no regex
    if not joined.isprintable() and _BREAK.search(joined):
        cut = next(i for i, t in enumerate(tokens) if _BREAK.search(t))
        return TagProblem(cut, f"token {cut} is {tokens[cut]!r}", "tab or line break in a token")
    return None


class Collector:
    """Accumulates accepted sentences and rejects while a reader walks one file."""

    def __init__(self, path: str, lang: str, split: str, policy: BioPolicy, labels: Iterable[str] | None,
                 shard: Shard | None = None, scheme: TagScheme = "iob2", unicode: UnicodeForm = "nfc"):
        self.path, self.lang, self.split, self.policy = path, lang, split, policy
        self.compose = Composer(unicode)  # kept tokens in NFC (lrl.data.nfc), rejects' raw as given
        self.scheme = scheme  # tokens: each tag X read as the one-token span B-X (lrl.data.token_tags)
        self.shard = shard
        self.base = f"{lang}:{split}:"  # made ids: base, then the shard's name and ":", then n
        self.prefix = self.base + (f"{shard.name}:" if shard is not None else "")
        self.labels = list(labels) if labels is not None else None
        self.rows: list[dict] = []  # accepted since the last chunk
        self.chunks: list[pa.Table] = []
        self.kept = 0  # accepted sentences, chunked or not
        self.rejects: list[dict] = []
        # Line of each accepted id that the input gave (JSONL, Parquet); a repeated id is a reject.
        # The ids the collector makes (lang:split:n) are unique among themselves, so for those the
        # line in an array indexed by n is enough: a dict entry per sentence of a CoNLL file cost
        # ~130 B more than these 8.
        self.id_lines: dict[str, int] = {}
        self.made = array("Q")  # made[n]: line of the accepted sentence with made id lang:split:n, or 0
        # A Parquet folder is read as one table, ``path`` set to each row's own file: where an id
        # was taken names that file ("also on line 1" read as the same file's line 1).
        self.home = path
        self.id_files: dict[str, str] = {}  # given id -> its file, when not ``home``
        self.made_files: list[tuple[int, str]] = []  # (first made n, its file), when not ``home``
        self.repaired = 0  # kept sentences whose tags the repair policy changed

    def next_id(self) -> str:
        """The id of the next sentence or reject that brings none: unique within the source."""
        return f"{self.prefix}{self.kept + len(self.rejects)}"

    def reject(self, line: int, reason: str, raw: str, rid: str | None = None) -> None:
        if self.policy == "error":
            raise InputError(f"{self.path}:{line}: {reason}")
        # Rejects found before a sentence is built (tag missing, invalid JSON) get the id the
        # sentence would have had, so that every quarantined row can be named like a kept one.
        self.rejects.append({"source": self.path, "line": line, "id": self.next_id() if rid is None else rid,
                             "reason": reason, "raw": raw})

    def null_list(self, line: int, cells: dict[str, object], raw: str, rid: object = None) -> bool:
        """Reject (under ``error`` raise) a row whose token or tag list (``cells``: column -> cell)
        is null, JSON null or a Parquet/Arrow null cell, naming the column; True when it did. Read
        as an empty list, such a row was an "empty sentence" or a "length mismatch"."""
        reason = null_list_reason(cells)
        if reason is not None:
            self.reject(line, reason, raw, None if rid is None else str(rid))
        return reason is not None

    def sentence(self, line: int, tokens: list[str], tags: list[str], raw: str, rid: str | None = None,
                 token_lines: Sequence[int] | None = None) -> None:
        """Check and keep one sentence that starts on ``line``; ``token_lines`` (CoNLL, CoNLL-U: a
        token per line) give a token's or tag's problem the line of its own token, not only the
        sentence's first line."""
        made = rid is None
        n = self.kept + len(self.rejects)
        rid = str(rid) if rid is not None else self.next_id()
        problem = sentence_problem(tokens, tags)
        if isinstance(problem, str):
            return self.reject(line, problem, raw, rid)
        if problem is not None:
            return self._token_reject(line, problem, raw, rid, token_lines)
        seen = self._seen(rid, made)
        if seen is not None:
            return self.reject(line, f"duplicate id: {rid!r} also on {seen}", raw, rid)
        if self.scheme == "tokens":  # here, so that every reader maps the same way before the IOB2 check
            spans = token_span_tags(tags)
            if isinstance(spans, TagProblem):
                return self._token_reject(line, spans, raw, rid, token_lines)
            tags = spans
        try:
            checked = check_tags(tags, self.policy, self.labels, f"{self.path}:{line}")
        except BioError as exc:  # policy error: raised below, naming the offending token's own line
            if exc.problem is None:
                raise
            checked = BioCheck(None, exc.problem.reason, exc.problem)
        if checked.problem is not None:
            return self._token_reject(line, checked.problem, raw, rid, token_lines, bio=True)
        if made:
            self.made.extend([0] * (n + 1 - len(self.made)))
            self.made[n] = line
            if self.path != self.home and (not self.made_files or self.made_files[-1][1] != self.path):
                self.made_files.append((n, self.path))
        else:
            self.id_lines[rid] = line
            if self.path != self.home:
                self.id_files[rid] = self.path
        self.repaired += checked.tags != list(tags)
        self.rows.append(
            {"id": rid, "lang": self.lang, "tokens": self.compose.tokens(tokens), "tags": checked.tags,
             "source": f"{self.path}#{self.split}", "op": "orig", "parent_id": None, "seed": None}
        )
        self.kept += 1
        if len(self.rows) >= CHUNK_ROWS:
            self.chunks.append(ner_table(self.rows))
            self.rows = []

    def _token_reject(self, line: int, problem: TagProblem, raw: str, rid: str,
                      token_lines: Sequence[int] | None, bio: bool = False) -> None:
        """Reject (or under ``error`` raise; ``BioError`` when ``bio``) a sentence for one token's
        problem, naming the token's own line when ``token_lines`` give it (CoNLL, CoNLL-U): the
        error's ``file:line`` is that line, and a reject, kept at the sentence's first line, ends in
        ``(line N)``."""
        at = _token_line(problem.index, token_lines)
        if self.policy == "error":
            message = f"{self.path}:{line if at is None else at}: {problem.reason}"
            raise BioError(message, problem) if bio else InputError(message)
        self.reject(line, problem.reason + ("" if at is None else f" (line {at})"), raw, rid)

    def _seen(self, rid: str, made: bool) -> str | None:
        """Where the accepted sentence with id ``rid`` is ("line N", or "line N of FILE" in an
        earlier file of the source), None if there is none."""
        if rid in self.id_lines:
            return f"line {self.id_lines[rid]}{self._of(self.id_files.get(rid))}"
        # Made ids never repeat one another; a given one taken first is in id_lines.
        line = 0 if made or not rid.startswith(self.prefix) else _made_line(rid[len(self.prefix):], self.made)
        if line:
            n = int(rid[len(self.prefix):])
            return f"line {line}{self._of(next((f for at, f in reversed(self.made_files) if at <= n), None))}"
        return self.shard.ids.seen(rid, self.base) if self.shard is not None else None

    def _of(self, file: str | None) -> str:
        return "" if file is None or file == self.path else f" of {file}"

    def result(self) -> ReadResult:
        if self.rejects and not self.kept:
            # Every sentence rejected is a file-level problem (wrong format, BIOES/BILOU tags, wrong
            # lang): stop here rather than write a finished output with no rows of this input.
            first = self.rejects[0]
            of = "" if first["source"] == self.path else f" of {first['source']}"  # a Parquet folder's file
            raise InputError(f"{self.path}: no usable sentence: all {len(self.rejects)} were rejected "
                             f"(first: line {first['line']}{of}: {first['reason']})")
        reasons: dict[str, int] = {}
        for r in self.rejects:
            key = reason_kind(r["reason"])
            reasons[key] = reasons.get(key, 0) + 1
        tables = self.chunks + [ner_table(self.rows)]
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        if self.shard is not None:  # the source's later files check their ids against this one's
            self.shard.ids.made[self.shard.name] = (self.path, self.made)
            self.shard.ids.given.update((rid, (self.path, line)) for rid, line in self.id_lines.items())
        return ReadResult(table, reject_table(self.rejects), self.path, reasons, self.repaired, self.compose.changed)


__all__ = ["ReadResult", "Collector", "Shard", "SourceIds", "CHUNK_ROWS", "NER_SCHEMA", "null_list_reason",
           "sentence_problem"]
