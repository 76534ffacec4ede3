"""Which text lines the tokenizer stage trains on, and which it scores for its statistics.

Pretraining holds out a slice of each language's rows (``pretrain.heldout_fraction``, whole
documents, ``lrl.data.sampling.heldout_split``) to report held-out perplexity. The tokenizer stage
reads the same rows (``lrl.train.pretrain_data.load_text``) and leaves that slice out of its
training too. It used to hold out the last lines read instead, so it learned its pieces from the
very documents pretraining then scored as unseen text: a held-out word that had become one piece
was easier to predict than unseen text is.

The slice's first ``tokenizer.eval_lines`` lines are the tokenizer's statistics lines. Where
pretraining holds nothing out for a language (fraction 0, a single document), the last lines read
are held out instead, as before.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from lrl.job import JobConfig

#: The note of a language whose statistics are on its training lines.
ON_TRAINING = "no held-out lines: statistics on the training lines"


@dataclass
class TokenizerText:
    """Lines per language: trained on, scored for the statistics, and a note where they overlap."""

    train: dict[str, list[str]]
    held: dict[str, list[str]]
    note: dict[str, str] = field(default_factory=dict)
    pretrain_heldout: dict[str, int] = field(default_factory=dict)
    """Rows per language of pretraining's held-out slice, none of which is trained on."""


def tokenizer_text(cfg: JobConfig, generate_dir: str | None, table: pa.Table | None = None) -> TokenizerText:
    """The text of ``cfg`` (the generate stage's when it wrote text) split for the tokenizer.
    ``table``: ``load_text(cfg, generate_dir)``'s rows where the caller has read them already
    (naming the stage's folder does on a first run), so that they are not read twice."""
    from lrl.data.sampling import heldout_split
    from lrl.train.pretrain_data import load_text

    if table is None:
        table, _ = load_text(cfg, generate_dir)
    rest, held = heldout_split(table, cfg.pretrain.heldout_fraction)
    train_lines = _by_lang(rest)
    held_lines = _by_lang(held)
    t = cfg.tokenizer
    cap = t.max_lines_per_lang
    out = TokenizerText({}, {}, pretrain_heldout={k: len(v) for k, v in held_lines.items()})
    for lang in sorted(set(train_lines) | set(held_lines)):
        lines = train_lines.get(lang, [])
        if held_lines.get(lang):  # pretraining's slice: never trained on, scored where wanted
            train = lines if cap is None else lines[:cap]
            scored = held_lines[lang][:t.eval_lines]
            out.train[lang] = train
            out.held[lang] = scored or train
            if not scored:
                out.note[lang] = ON_TRAINING
        else:  # nothing held out by pretraining: the last lines read, as many as eval_lines
            tail = tail_split({lang: lines if cap is None else lines[:cap + t.eval_lines]}, t.eval_lines, cap)
            out.train[lang], out.held[lang] = tail[0][lang], tail[1][lang]
            out.note.update(tail[2])
    return out


def tail_cap_changed(cap: int | None, eval_lines: int) -> bool:
    """Whether ``tail_split`` trains such a config on fewer lines than before it applied ``cap``
    (it trained on up to 4/5 of ``cap + eval_lines`` lines): ``eval_lines`` above a fifth of those.
    The tokenizer stage's hash names only these configs, so that no other output rebuilds."""
    return cap is not None and eval_lines > (cap + eval_lines) // 5


def _by_lang(table) -> dict[str, list[str]]:
    """Non-empty text lines per language, in the order read."""
    out: dict[str, list[str]] = defaultdict(list)
    for lang, text in zip(table.column("lang").to_pylist(), table.column("text").to_pylist()):
        if text:
            out[lang].append(text)
    return dict(out)


def tail_split(texts: dict[str, list[str]], eval_lines: int, cap: int | None = None
               ) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, str]]:
    """Hold out the last lines of each language (at most a fifth of them) for the statistics, and
    train on the first ``cap`` of the others at most (``tokenizer.max_lines_per_lang``).

    A held-out line that also occurs among the training lines is training text: corpora repeat
    lines (boilerplate, stubs, re-crawled pages), and scoring such a line would flatter the new
    tokenizer, which learned its pieces from it. Such lines go to training instead (beyond ``cap``:
    repeats of its lines). Where nothing is left to hold out (fewer than 5 lines, ``eval_lines=0``,
    or every tail line repeated), the statistics are taken on the training lines and the third
    mapping says so per language."""
    train, held, note = {}, {}, {}
    for lang, lines in texts.items():
        n = min(eval_lines, len(lines) // 5)
        head, tail = (lines[:-n], lines[-n:]) if n else (list(lines), [])
        # Reading cap + eval_lines lines and holding out a fifth trained on up to 4/5 (cap + eval_lines)
        # lines where eval_lines > cap / 4 (1,200 of 1,500 at max_lines_per_lang=1000, eval_lines=500).
        head = head if cap is None else head[:cap]
        seen = set(head)
        train[lang] = head + [line for line in tail if line in seen]
        held[lang] = [line for line in tail if line not in seen]
        if not held[lang]:
            held[lang] = train[lang]
            note[lang] = ON_TRAINING
    return train, held, note


__all__ = ["TokenizerText", "tokenizer_text", "tail_split", "tail_cap_changed", "ON_TRAINING"]
