"""Train a WordPiece or Unigram tokenizer with one atomic tag token per language, and measure
tokenizers (unknown-token rate, pieces per word).

Normalization is NFKC (``tokenizer.nfkc``), removing invisible format characters (zero width space,
bidi marks, soft hyphen: ``lrl.model.invisible``) and collapsing whitespace runs to one space by
default, so ``decode(encode(x))`` gives back NFKC(x) with single spaces (Unigram; WordPiece
decoding, like BERT's, also puts spaces around punctuation). Lowercasing and accent stripping
(BERT-uncased style) decompose Arabic-script letters such as U+0626 (yeh + hamza above) and remove
the hamza, and they erase the tone marks of Yoruba, so they are opt-in
(``tokenizer.lowercase``/``strip_accents``).
"""

from __future__ import annotations

import bisect
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lrl.data.config import check_lang
from lrl.model.alphabet import missing_punctuation, split_alone
from lrl.model.invisible import PATTERN, missing_joiners, strip_invisible

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

    from lrl.model.config import TokenizerConfig

#: BERT-style special tokens, in id order 0..4 of every tokenizer trained here.
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_WORD = re.compile(r"\S+")


def portable_tokenizer_config(folder: str | Path) -> None:
    """Make a saved ``tokenizer_config.json`` load in transformers 4 as well as 5.

    transformers 5 writes ``tokenizer_class: TokenizersBackend`` and the tag tokens as a list under
    ``extra_special_tokens``; transformers 4 (4.57.1) fails on both ("Tokenizer class
    TokenizersBackend does not exist", then "'list' object has no attribute 'keys'"), so a Hub user
    on 4.x could load the model but not its tokenizer. ``PreTrainedTokenizerFast`` is the same class
    in 5 and ``additional_special_tokens`` the list's name in 4, which 5 still reads as
    ``extra_special_tokens``: both versions then load the same tokenizer."""
    path = Path(folder) / "tokenizer_config.json"
    if not path.is_file():
        return
    conf = json.loads(path.read_text(encoding="utf-8"))
    if conf.get("tokenizer_class") == "TokenizersBackend":
        conf["tokenizer_class"] = "PreTrainedTokenizerFast"
    if isinstance(conf.get("extra_special_tokens"), list) and "additional_special_tokens" not in conf:
        conf["additional_special_tokens"] = conf.pop("extra_special_tokens")
    path.write_text(json.dumps(conf, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def save_tokenizer(tokenizer, folder: str | Path, max_positions: int | None = None) -> None:
    """``tokenizer.save_pretrained(folder)``, loadable by transformers 4 and 5 (``portable_tokenizer_config``).

    ``max_positions`` (the model's position embeddings) caps the saved ``model_max_length``: a
    tokenizer trained here says 512 and MiniLM's says 512 whatever the model beside it holds, and
    ``pipeline("fill-mask")`` on a model pretrained with ``model.max_length=64`` crashed in the position
    embeddings on a 245-piece text even with ``truncation=True``. The tokenizer object is unchanged."""
    limit = getattr(tokenizer, "model_max_length", None)
    cap = max_positions is not None and (not isinstance(limit, int) or limit > max_positions)
    if cap:
        tokenizer.model_max_length = max_positions
    try:
        tokenizer.save_pretrained(str(folder))
    finally:
        if cap:
            tokenizer.model_max_length = limit
    portable_tokenizer_config(folder)


def lang_tag(lang: str) -> str:
    """The tag token of a language (``ug`` -> ``[ug]``); the code is checked against ISO 639."""
    return f"[{check_lang(lang)}]"


def tag_langs(tokenizer: PreTrainedTokenizerFast) -> list[str]:
    """The languages whose tag tokens a tokenizer carries (in the order they were added)."""
    out = []
    for tok in tokenizer.extra_special_tokens if isinstance(tokenizer.extra_special_tokens, list) else []:
        tok = str(tok)
        if tok.startswith("[") and tok.endswith("]"):
            try:
                out.append(check_lang(tok[1:-1]))
            except ValueError:
                continue
    return out


def tag_id(tokenizer, lang: str) -> int:
    """Id of a language's tag token; a clear error when the tokenizer has none for it."""
    tag = lang_tag(lang)
    tid = tokenizer.convert_tokens_to_ids(tag)
    if tid is None or tid == tokenizer.unk_token_id or tag not in tokenizer.get_vocab():
        raise ValueError(f"the tokenizer has no tag token {tag}: train or extend it with text of {lang!r}")
    return tid


def _normalizer(lowercase: bool, strip_accents: bool, nfkc: bool = True):
    from tokenizers import Regex, normalizers

    # Runs of whitespace become one space and the ends are stripped (SentencePiece's default):
    # Metaspace (Unigram) made every extra space a bare "▁" piece, and masakhane's sw.txt has 120
    # lines padded with ~9000 spaces each: 805 of 984 packed sequences of 400 Swahili lines were
    # only "▁" (pieces per word 7.2 instead of 2.2).
    # Invisible format characters go first (``lrl.model.invisible``): one the alphabet lacks made
    # its whole WordPiece word [UNK], and "a \u200b b" is then one space like "a  b".
    steps = [normalizers.Replace(Regex(PATTERN), ""), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    if nfkc:  # Arabic presentation forms (part of mono/ug.txt) -> the ordinary letters
        steps.insert(0, normalizers.NFKC())
    if strip_accents:
        steps += [normalizers.NFD(), normalizers.StripAccents(), normalizers.NFC()]
    if lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


def _iter_all(texts_by_lang: dict[str, Iterable[str]]) -> Iterator[str]:
    for texts in texts_by_lang.values():
        for line in texts:
            if line and not line.isspace():
                yield line


def new_backend(kind: str, vocab_size: int, min_frequency: int, special: list[str],
                normalizer=None, pre_tokenizer=None, prefix: str = "##", unk: str = "[UNK]"):
    """An untrained ``tokenizers.Tokenizer`` of ``kind`` and its trainer.

    ``normalizer``/``pre_tokenizer`` default to NFKC and the BERT (whitespace + punctuation)
    splitter for WordPiece, Metaspace for Unigram; extension passes the base's own ones so that
    learned pieces match what the base will see."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=unk, continuing_subword_prefix=prefix))
        tok.pre_tokenizer = pre_tokenizer or pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece(prefix=prefix)
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=special, continuing_subword_prefix=prefix,
                                            show_progress=False)
    elif kind == "unigram":
        tok = Tokenizer(models.Unigram())
        # Metaspace first: it marks word starts with "▁", then punctuation is split off. In the
        # other order each punctuation mark became a word of its own ("la," -> "▁la" "▁" ","):
        # an extra piece per mark, and decoding put a space before every one of them.
        tok.pre_tokenizer = pre_tokenizer or pre_tokenizers.Sequence(
            [pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()])
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=special, unk_token=unk,
                                          show_progress=False)
    else:
        raise ValueError(f"tokenizer type {kind!r}: expected 'wordpiece' or 'unigram'")
    tok.normalizer = normalizer if normalizer is not None else _normalizer(False, False)
    return tok, trainer


def wrap(backend, langs: list[str], max_length: int = 512) -> PreTrainedTokenizerFast:
    """A ``PreTrainedTokenizerFast`` around a trained backend with BERT specials and tag tokens.

    ``[CLS] x [SEP]`` (and ``[CLS] a [SEP] b [SEP]``) is added by the backend's post-processor so
    that the saved ``tokenizer.json`` alone behaves like a BERT tokenizer."""
    from tokenizers import AddedToken, processors
    from transformers import PreTrainedTokenizerFast

    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    # Metaspace (Unigram) makes the space before "[MASK]" a bare "▁" piece, while training masks
    # whole "▁word" pieces: like XLM-R's <mask>, the mask takes the space on its left instead.
    # (Set after construction: the constructor keeps the trainer's own [MASK] as it is.)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=max_length,
        extra_special_tokens=[lang_tag(lang) for lang in langs])
    if type(backend.model).__name__ == "Unigram":
        tok.add_special_tokens({"mask_token": AddedToken("[MASK]", lstrip=True, special=True, normalized=False)})
    return tok


def train_tokenizer(texts_by_lang: dict[str, Iterable[str]], cfg: TokenizerConfig) -> PreTrainedTokenizerFast:
    """Train a ``cfg.type`` tokenizer on the text of every language (ids: specials 0-4, then one
    tag per language in the order given, then learned pieces). Save it with ``save_pretrained``;
    ``AutoTokenizer.from_pretrained`` loads it back."""
    langs = [check_lang(lang) for lang in texts_by_lang]
    special = SPECIAL_TOKENS + [lang_tag(lang) for lang in langs]
    backend, trainer = new_backend(cfg.type, cfg.vocab_size, cfg.min_frequency, special,
                                   normalizer=_normalizer(cfg.lowercase, cfg.strip_accents, cfg.nfkc))
    backend = train_backend(backend, trainer, texts_by_lang)
    return wrap(backend, langs)


def train_backend(tok, trainer, texts_by_lang: dict[str, Iterable[str]]):
    """Train ``tok`` with ``trainer`` on every language's lines, reproducibly; returns the trained
    backend (for WordPiece a rebuilt one).

    The WordPiece trainer numbers its ``##c`` pieces in hash-map order, and those numbers break
    ties between equally frequent merges (huggingface/tokenizers#1794): 5 trainings on the same
    2,000 ug + 2,000 wo lines gave 5 different vocabularies. Listing every ``##c`` first, sorted,
    as a special token fixes their ids; the backend is then rebuilt from the learned vocabulary
    with only the real special tokens, so ``##c`` is an ordinary piece (not matched in raw text,
    not dropped by ``skip_special_tokens``).

    Punctuation of the text's scripts that the text never writes (``lrl.model.alphabet``) joins
    the alphabet, in the same way for WordPiece and as Unigram's ``initial_alphabet``."""
    from tokenizers import Tokenizer, models

    texts_by_lang = {lang: list(lines) for lang, lines in texts_by_lang.items()}  # read twice
    wordpiece = type(tok.model).__name__ == "WordPiece"
    seen, inner = _chars(tok, texts_by_lang, inner_too=wordpiece)
    # Punctuation of the text's scripts that the text itself lacks (``lrl.model.alphabet``).
    normalize = tok.normalizer.normalize_str if tok.normalizer is not None else None
    extra = missing_punctuation(seen, normalize, trainer.vocab_size)
    # ZWNJ / ZWJ, first, where the text writes format characters and a script they shape (lrl.model.invisible)
    extra = missing_joiners(seen, _iter_all(texts_by_lang), normalize) + extra
    if not wordpiece:  # every character is a piece: a vocab_size below them is an error naming it
        from lrl.model.vocab_size import too_small, unigram_alphabet

        trainer.initial_alphabet, chars = unigram_alphabet(seen, extra, trainer.vocab_size, tok.pre_tokenizer)
        try:
            tok.train_from_iterator(_iter_all(texts_by_lang), trainer=trainer)
        except Exception as exc:
            if "not large enough to contain all chars" in str(exc):
                raise too_small(trainer.vocab_size, chars) from None
            raise
        from lrl.model.unigram_order import stable_unigram

        return stable_unigram(tok, [getattr(t, "content", t) for t in trainer.special_tokens])
    special = [getattr(t, "content", t) for t in trainer.special_tokens]
    prefix = tok.model.continuing_subword_prefix
    inner |= {c for c in extra if not split_alone(tok.pre_tokenizer, c)}
    trainer.special_tokens = special + [prefix + c for c in sorted(inner)] + extra
    tok.train_from_iterator(_iter_all(texts_by_lang), trainer=trainer)
    out = Tokenizer(models.WordPiece(tok.get_vocab(with_added_tokens=False), unk_token=tok.model.unk_token,
                                     continuing_subword_prefix=prefix,
                                     max_input_chars_per_word=tok.model.max_input_chars_per_word))
    out.normalizer, out.pre_tokenizer, out.decoder = tok.normalizer, tok.pre_tokenizer, tok.decoder
    out.add_special_tokens(special)
    return out


#: Whitespace as the tokenizers' pre-tokenizers split on it (Rust's ``char::is_whitespace``,
#: Unicode White_Space); Python's ``str.split`` also splits at the separators U+001C-U+001F.
_WORD_GAP = re.compile(r"[^\S\x1c-\x1f]+")
_SEPARATORS = frozenset("\x1c\x1d\x1e\x1f")


def _chars(tok, texts_by_lang: dict[str, list[str]], inner_too: bool = True) -> tuple[Counter[str], set[str]]:
    """Counts of the characters of the text as ``tok`` normalizes it, and (``inner_too``) the set
    of those its pre-tokenizer leaves inside a word (after its first character).

    The lines are normalized 1000 at a time, joined by newlines (3.9 s against 10 s line by line
    on 50,000 lines of mono/ug.txt). Only the distinct whitespace-separated words are
    pre-tokenized, 1000 to a call: pre-tokenizers split at whitespace first, so a word's pieces
    do not depend on its neighbours, and 50,000 ug lines hold 315k distinct words among ~1M:
    the pass takes 0.73x the time of pre-tokenizing every line (3 interleaved runs, same sets).
    Only for pre-tokenizers that split at whitespace first (``_whitespace_first``): any other
    gets every line."""
    seen: Counter[str] = Counter()
    words: set[str] = set()
    lines = list(_iter_all(texts_by_lang))
    for start in range(0, len(lines), 1000):
        text = "\n".join(lines[start:start + 1000])
        text = tok.normalizer.normalize_str(text) if tok.normalizer is not None else text
        seen.update(text)
        if inner_too:  # the regex only where needed: it takes twice as long
            words.update(_WORD_GAP.split(text) if _SEPARATORS.intersection(text) else text.split())
    inner: set[str] = set()
    # Other pre-tokenizers (Metaspace, ByteLevel, Digits alone...) see whitespace as part of a
    # piece or split across it: they get every line as it is.
    by_word = tok.pre_tokenizer is None or _whitespace_first(json.loads(tok.pre_tokenizer.__getstate__()))
    # Nothing to pre-tokenize when only the counts are wanted (Unigram: Metaspace is not by word).
    units = (sorted(words - {""}) if by_word else lines) if inner_too else []
    for start in range(0, len(units), 1000 if by_word else 1):
        text = " ".join(units[start:start + 1000]) if by_word else units[start]
        if not by_word and tok.normalizer is not None:
            text = tok.normalizer.normalize_str(text)
        pieces = [w for w, _ in tok.pre_tokenizer.pre_tokenize_str(text)] if tok.pre_tokenizer is not None \
            else text.split()
        for word in pieces:
            inner.update(word[1:])
    return seen, inner


def _whitespace_first(pre: dict) -> bool:
    """Whether a pre-tokenizer (its JSON) first splits at whitespace, which no piece keeps: then a
    word's pieces do not depend on the words around it."""
    if pre.get("type") == "Sequence":
        steps = pre.get("pretokenizers") or []
        # Metaspace's "first" marks only the piece at offset 0 of the text: it depends on position.
        return bool(steps) and _whitespace_first(steps[0]) and not any(
            s.get("type") == "Metaspace" and s.get("prepend_scheme") == "first" for s in steps[1:])
    return pre.get("type") in ("BertPreTokenizer", "Whitespace", "WhitespaceSplit")


def tokenizer_stats(tokenizer, texts: Iterable[str], batch_size: int = 1000) -> dict[str, float]:
    """Unknown-token rate (unknown pieces / pieces), share of words that contain an unknown piece,
    and pieces per word, where words are whitespace-separated (the same denominator for every
    tokenizer, whatever its pre-tokenizer). Special tokens are not counted, and a special token's
    string in the text (a literal "[MASK]") counts as the pieces of its characters, as
    pretraining reads it (``lrl.model.special_text``), not as one known piece."""
    backend = plain_backend(tokenizer)
    backend.encode_special_tokens = True  # a copy: the tokenizer itself is unchanged
    unk_id = backend.token_to_id(str(getattr(tokenizer, "unk_token", "[UNK]") or "[UNK]"))
    pieces = unks = words = unk_words = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal pieces, unks, words, unk_words
        for text, enc in zip(batch, backend.encode_batch(batch, add_special_tokens=False)):
            pieces += len(enc.ids)
            starts = [m.start() for m in _WORD.finditer(text)]
            words += len(starts)
            unk_at = [enc.offsets[i][0] for i, t in enumerate(enc.ids) if t == unk_id]
            unks += len(unk_at)
            unk_words += len({bisect.bisect_right(starts, o) for o in unk_at})
        batch.clear()

    for text in texts:
        batch.append(text)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return {"unk_rate": unks / max(pieces, 1), "unk_word_rate": unk_words / max(words, 1),
            "pieces_per_word": pieces / max(words, 1), "pieces": pieces, "words": words}


def normalizer_effect(tokenizer, texts: Iterable[str], top: int = 5) -> dict:
    """What the tokenizer's normalizer does to whitespace-separated words, up to NFKC (compatibility
    forms such as Arabic presentation forms count as the letters they stand for, and the invisible
    format characters that lrl's and BERT's normalizers remove, ``lrl.model.invisible``, as nothing): the share of words
    it changes, the share it changes beyond lowercasing, how many distinct word forms it merges with
    another that differs beyond case, the characters it removes most, and the share of words it
    leaves in a compatibility form (not NFKC: such words get pieces of their own).

    An extended base keeps its own normalizer (its pieces were learned on that text; only NFKC is
    put in front, ``tokenizer.nfkc``), and BERT uncased's (MiniLM) lowercases and strips accents
    without NFKC of its own: on held-out mono lines it changed 22% of Uyghur words (the hamza of
    U+0626 dropped, ئ -> ي; since kept by ``extend._keep_hamza``: 1.0% left, mostly Cyrillic й),
    90% of Yoruba words (tone marks and dots below) and 27% of Wolof words (ñ, ë), which
    ``stats.json`` did not say."""
    import unicodedata
    from collections import Counter

    def nfkc(x: str) -> str:  # invisible format characters count as nothing, as NFKC forms do
        return strip_invisible(unicodedata.normalize("NFKC", x))

    norm = plain_backend(tokenizer).normalizer
    words = changed = beyond = not_nfkc = 0
    forms: dict[str, set[str]] = {}
    removed: Counter = Counter()
    for text in texts:
        for word in text.split():
            raw = norm.normalize_str(word) if norm is not None else word
            base, out = nfkc(word), nfkc(raw)
            words += 1
            not_nfkc += raw != unicodedata.normalize("NFKC", raw)  # kept invisible characters are no compatibility form
            forms.setdefault(out, set()).add(base.lower())
            if out != base:
                changed += 1
                if out != base.lower():
                    beyond += 1
                    removed.update(set(base.lower()) - set(out))
    merged = sum(len(v) for v in forms.values() if len(v) > 1)
    return {"words_changed": changed / max(words, 1), "words_changed_beyond_case": beyond / max(words, 1),
            "forms_merged": merged, "chars_removed": dict(removed.most_common(top)),
            "words_not_nfkc": not_nfkc / max(words, 1)}


def plain_backend(tokenizer):
    """A copy of the ``tokenizers.Tokenizer`` behind ``tokenizer`` without padding and truncation
    (some saved tokenizers carry them, which would count pad pieces or cut long lines)."""
    from tokenizers import Tokenizer

    backend = tokenizer.backend_tokenizer if hasattr(tokenizer, "backend_tokenizer") else tokenizer
    backend = Tokenizer.from_str(backend.to_str())
    backend.no_padding()
    backend.no_truncation()
    return backend


def char_stats(texts: Iterable[str]) -> dict[str, float]:
    """The character-level baseline: every non-space character one piece, nothing unknown."""
    chars = words = 0
    for text in texts:
        w = text.split()
        words += len(w)
        chars += sum(len(x) for x in w)
    return {"unk_rate": 0.0, "unk_word_rate": 0.0, "pieces_per_word": chars / max(words, 1),
            "pieces": chars, "words": words}
