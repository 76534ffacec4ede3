"""Config sections for tokenizers and models."""

from __future__ import annotations

import unicodedata
from typing import Literal

from pydantic import Field, field_validator, model_validator

from lrl.config import StrictModel
from lrl.model.build import PresetName, preset_sizes


class TokenizerConfig(StrictModel):
    """Train a tokenizer with one tag token per language, or extend an existing one."""

    mode: Literal["train", "extend"] = "train"
    """``train`` a new tokenizer on the text of every language, or ``extend`` ``base`` with pieces
    learned from the text (existing ids unchanged)."""
    type: Literal["wordpiece", "unigram"] = "wordpiece"
    """Kind of tokenizer trained (``train``) or learned on the new text (``extend``; it must match
    the base's model, which is checked)."""
    base: str | None = None
    """Hugging Face tokenizer folder or hub id. Required for ``extend``; in ``train`` mode, when set,
    it is the "before" baseline of ``stats.json`` (else a character-level baseline). A relative
    folder is read from the working folder; a value no hub id can be (starting with ``/``, ``./``,
    ``../`` or ``~``, with two ``/``, or ``a/b`` where ``a`` is a local folder) that is no folder is
    an error before any stage runs; ``name`` and ``org/name`` otherwise go to the hub."""
    vocab_size: int = Field(default=8000, gt=10, le=1_000_000)
    """``train``: size of the whole vocabulary. ``extend``: size of the tokenizer learned on the new
    text; its pieces that the base lacks are added. Every character of the text is a piece before
    any longer one: a Unigram ``vocab_size`` below the text's characters is an error saying how
    many there are; a WordPiece one gives a character-level tokenizer of more entries than asked,
    which ``stats.json`` (``vocabulary``) and the summary warn of, as of a vocabulary that the text
    leaves smaller than asked (``lrl.model.vocab_size``). At most 1,000,000 (the trainers allocate
    for the size asked: 5e9 aborted the process)."""
    min_frequency: int = Field(default=2, ge=1)
    """WordPiece only: how often a pair of adjacent pieces must occur in the training text for their
    merge to be learned (too high, nothing longer than a character is: a warning). The Unigram
    trainer has no such threshold and ignores it."""
    max_lines_per_lang: int | None = Field(default=50000, gt=0)
    """Train on at most this many lines per language (the first read; speed); None uses all. Where
    the statistics' lines are the last read (``eval_lines``), the tail lines that repeat a training
    line are trained on too."""
    eval_lines: int = Field(default=500, ge=0)
    """Lines per language scored for the statistics: the first of pretraining's held-out rows
    (``pretrain.heldout_fraction``), which the tokenizer does not train on either, so that
    pretraining's held-out perplexity is on text that neither saw. Where pretraining holds out
    nothing of a language (fraction 0, one document), the last lines read are held out instead (at
    most a fifth); such a line that also occurs among the training lines is trained on instead of
    scored (5-10% of the last 500 lines of mono/ug.txt and mono/wo.txt)."""
    max_new_tokens: int | None = Field(default=None, gt=0)
    """``extend``: add at most this many learned pieces; None adds all missing. Single characters
    come first (a WordPiece word with a character that no piece holds is one [UNK]), the most frequent
    in the training text first and the punctuation it lacks (``lrl.model.alphabet``) after them, then
    longer pieces in the learner's order, the most frequent first (``lrl.model.piece_rank``).
    Pieces for Arabic hamza letters the base tokenizer could not read (up to 22) come on top, where
    the text has such letters (``lrl.model.extend._hamza_pieces``)."""
    keep_accents: bool = False
    """``extend`` only: where the base's normalizer strips accents (BERT uncased, e.g. MiniLM), keep
    the combining marks that the new text writes often (at least 1% of its marks: Yoruba's tone
    marks and dots below), in the learned pieces and in the saved tokenizer, on their letters in
    NFC. Rarer marks are still stripped, so "über" keeps the base's pieces ("café" gets new ones:
    the acute is a Yoruba mark). Off, MiniLM extended to Yoruba changes 86% of held-out mono/yo
    words and reads "ọkọ", "oko" and "ọ̀kọ̀" as one word: 2,701 of FLORES yo's 6,986 word types
    share their pieces with another, 9 with the option (pieces per word 1.26 -> 1.45). New rows
    start from the base's pieces of the stripped string ("ọkọ" from those of "oko"). Pieces for
    the kept marks and their letters come on top of ``max_new_tokens``. An error for a base that
    strips no accents (``lrl.model.accents``)."""
    keep_letters: list[str] = []
    """``extend`` with ``keep_accents`` only: letters whose combining mark is kept whatever its
    share of the text's marks (one character each, after NFC, that carries a mark; stored NFC, sorted, without repeats).
    The 1% rule cannot tell a native but rare letter from the marks of foreign names: Igbo ṅ is
    112 occurrences in 956k characters of mono/ig (0.13% of its marks, 0.17% of its n's), so it
    is stripped to n ("aṅụ", bee, reads as "anụ", meat), while Wolof writes the foreign ò 262
    times in 2.9M characters. List ``["ṅ"]`` to keep it. The letter's mark is then kept on every
    letter, as the marks kept by share are. ``lrl tokenizer`` and ``stats.json`` (``accents``) say
    which marks were kept and which stripped, with their counts and letters, and how often each
    listed letter occurs in the training text; one that never occurs is a warning naming its code
    points and the marked forms of its letter that the text writes (ȯ, dot above, typed for ọ)."""
    lowercase: bool = False
    """Lowercase text in the normalizer of a trained tokenizer (off: it merges distinct letters of
    some scripts and hurts case-sensitive tasks such as NER)."""
    strip_accents: bool = False
    """Strip combining marks after NFD in a trained tokenizer (off: it breaks Uyghur letters such as
    U+0626 and Latin-script tonal marks of Yoruba)."""
    nfkc: bool = True
    """Apply Unicode NFKC first in the normalizer, of a trained tokenizer and in front of an extended
    base's own normalizer (whose steps still run after it). On: compatibility forms become the
    letters they stand for. Part of mono/ug.txt is written in Arabic presentation forms (U+FB50-
    U+FEFF; 2.75% of its words): without NFKC a tokenizer learns them as pieces of their own (on
    50,000 lines 466 of the 6705 pieces added to MiniLM, 346 of them copies of pieces in ordinary
    letters; ~6% of an 8000-piece Uyghur WordPiece or Unigram vocabulary) and sees the same word as
    two unrelated piece sequences. Off only to keep an extended base's text handling exactly as
    it was (NFKC also folds e.g. ``²`` -> ``2`` and ``…`` -> ``...``)."""

    @model_validator(mode="after")
    def _need_base(self) -> TokenizerConfig:
        if self.mode == "extend" and not self.base:
            raise ValueError("tokenizer.mode=extend needs tokenizer.base (a Hugging Face tokenizer folder)")
        if self.keep_accents and self.mode != "extend":
            raise ValueError("tokenizer.keep_accents applies to tokenizer.mode=extend (a base that strips accents); "
                             "a trained tokenizer keeps accents unless tokenizer.strip_accents=true")
        if self.keep_letters and not self.keep_accents:
            raise ValueError("tokenizer.keep_letters needs tokenizer.keep_accents=true (it adds to the marks that "
                             "option keeps)")
        return self

    @field_validator("keep_letters")
    @classmethod
    def _letters(cls, v: list[str]) -> list[str]:
        out = [unicodedata.normalize("NFC", x) for x in v]
        for raw, x in zip(v, out):
            marks = [c for c in unicodedata.normalize("NFD", x) if unicodedata.category(c) == "Mn"]
            why = (_not_one_letter(x) if len(x) != 1
                   else "is a combining mark by itself, not a letter that carries one"
                   if unicodedata.category(x).startswith("M")
                   else "carries no combining mark (nothing of it is stripped)" if not marks else None)
            if why:
                raise ValueError(f"{raw!r} {why}")  # named tokenizer.keep_letters by load_job
        return sorted(set(out))  # a set of marks: order and repeats must not change the stage's hash


def _not_one_letter(x: str) -> str:
    """Why ``x`` (NFC, not one character) is no item of ``keep_letters``. The letters are used as
    single characters; a letter with marks but no precomposed form (``m̀``) needs none of its own:
    a kept mark is kept on every letter, so any letter that carries the mark keeps it."""
    nfd = unicodedata.normalize("NFD", x)
    marks = list(dict.fromkeys(c for c in nfd[1:] if unicodedata.category(c) == "Mn"))
    if not nfd or not nfd[0].isalpha() or len(marks) != len(nfd) - 1:
        return f"is {len(x)} characters after NFC, not one letter"
    bases = nfd[0] + "aeiounmcsz"  # its own letter first: "ọ" and "ò" for "ọ̀"
    examples = [next((y for y in (unicodedata.normalize("NFC", b + m) for b in bases) if len(y) == 1), None)
                for m in marks]
    if None in examples:
        return f"is {len(x)} characters after NFC, not one letter, and no one letter carries all of its marks"
    listed = ", ".join(f"{e!r} for the {unicodedata.name(m, 'mark').lower().removeprefix('combining ')}"
                       for e, m in zip(examples, marks))
    return (f"is {len(x)} characters after NFC (no precomposed letter): list any letter that carries the same "
            f"mark{'s' if len(marks) > 1 else ''} instead ({listed}); a kept mark is kept on every letter")


#: Most positions a preset is built with (``max_length``; ``finetune.max_length`` of a ``preset:``).
MAX_POSITIONS = 8192


class ModelConfig(StrictModel):
    """Which masked-LM encoder to build (a preset) or load (a checkpoint)."""

    preset: PresetName = "micro"
    """Size preset of a freshly initialised BERT: ``tiny`` (tests and smoke runs: hidden 32,
    2 layers, 2 heads, FFN 128), ``micro`` (MicroBERT scale: 128, 3, 2, 512), ``small``
    (BERT-Mini: 256, 4, 4, 1024), ``base`` (BERT-base: 768, 12, 12, 3072). Ignored when
    ``checkpoint`` is set. ``finetune.model=preset:<name>`` takes the same names and sizes."""
    checkpoint: str | None = None
    """Local folder or hub id of a Hugging Face masked-LM (or encoder) checkpoint to start from;
    loaded from safetensors only. None builds ``preset`` from scratch. A relative folder is read
    from the working folder; a value no hub id can be (as for ``tokenizer.base``) that is no folder
    is an error before any stage runs, unless a finished pretrain output started from it may be
    reused (then a warning, and the stage checks it when it starts)."""
    trust_remote_code: bool = False
    """Allow a checkpoint's own Python code to run (off unless you trust its source)."""
    max_length: int = Field(default=128, ge=8, le=MAX_POSITIONS)
    """Longest sequence in tokens, special and tag tokens included (position embeddings of presets)."""
    lang_embedding: bool = False
    """Learn one embedding per language, added to every token: BERT's token-type embeddings with one
    type per language, the language id passed as ``token_type_ids`` (see ``lrl.model.build``)."""
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    """Hidden and attention dropout probability."""

    @field_validator("preset", mode="before")
    @classmethod
    def _preset(cls, v: object) -> object:
        if isinstance(v, str):
            preset_sizes(v)  # the error ``preset:<name>`` gives too, listing the valid names
        return v
