"""Extend an existing tokenizer with pieces of a new language, and grow a model to match.

Why pieces go into the model's vocabulary, not into "added tokens": added tokens are matched
before pre-tokenization as whole strings, so an added ``##lar`` would never be used as a
continuation and an added word would only match when it stands alone. Putting the new pieces
into the WordPiece (or Unigram) model itself lets the base's own algorithm combine old and new
pieces inside any word. The new language's pieces are learned by a small tokenizer of the same
kind that uses the base's normalizer and pre-tokenizer, so they are in the form the base will
look for (e.g. lowercased and accent-stripped for an uncased BERT; only the hamza and madda of
Arabic-script letters such as ئ are kept when the new text has them, ``_keep_hamza``; with
``tokenizer.keep_accents``, the combining marks the new text writes often, such as Yoruba's tone
marks, ``lrl.model.accents``). With
``tokenizer.nfkc`` NFKC runs first, in front of the base's own normalizer (saved in the new
tokenizer, so fine-tuning and inference apply it too): Arabic presentation forms, part of
mono/ug.txt, otherwise became 466 of the 6705 pieces added to MiniLM from 50,000 lines (346
copies of pieces in ordinary letters).
New ids follow every existing id; no existing token changes id. Language tags are added as
special (atomic) tokens at the end.

New embedding rows start as the mean of the old model's rows for the old tokenizer's pieces of
the same string (a WordPiece ``##x`` piece is segmented as a continuation); when the old
tokenizer would turn the whole string into ``[UNK]``, the string is split into characters first so
that known characters still contribute. ``[UNK]`` itself counts only when nothing else is known:
MiniLM lacks seven Uyghur letters (ە ۇ ې ۈ ڭ ۆ ۋ), so 1,944 of the 3,515 pieces learned from
5,000 mono/ug lines had ``[UNK]`` among their old pieces, and each of those rows was pulled
towards the one row that means "anything unknown" (111 are nothing but unknown characters and
start as ``[UNK]``'s row). For a script the base never saw (Ge'ez: 3,946 of 3,947 new rows for
Amharic) nearly every row starts there. Noise to tell them apart measured no gain, and the mean
of all old rows (transformers' rule) a far worse start (docs/benchmarks.md, C1, session 26).
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING

from lrl.config import ConfigError
from lrl.model.accents import keep_accents, mark_pieces
from lrl.model.tokenizer import lang_tag, new_backend, plain_backend, train_backend

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

    from lrl.model.config import TokenizerConfig

_KIND = {"WordPiece": "wordpiece", "Unigram": "unigram"}


#: Bumped when ``resize_and_init_embeddings`` starts new rows differently, so that pretraining
#: outputs of an extended checkpoint are trained again (2: ``[UNK]`` left out of the mean).
INIT_VERSION = 2

#: Files of which a tokenizer folder has at least one (transformers' fast and slow formats).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")


def load_tokenizer(path: str) -> PreTrainedTokenizerFast:
    """A fast tokenizer from a local folder (or hub id), as ``AutoTokenizer`` loads it.

    ``OSError`` for a folder without a tokenizer: transformers 5 then builds an empty one from the
    model's ``config.json`` (five special tokens, nothing else) instead of failing, and extending
    or comparing against that placeholder treated every real token as new."""
    from transformers import AutoTokenizer

    if os.path.isdir(path) and not any(os.path.isfile(os.path.join(path, f)) for f in TOKENIZER_FILES):
        raise OSError(f"{path}: no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...) in the folder")
    tok = AutoTokenizer.from_pretrained(path)
    if not hasattr(tok, "backend_tokenizer"):
        raise ConfigError(f"{path}: not a fast (tokenizers-backed) tokenizer; extension needs one")
    if len(tok) <= len(tok.all_special_tokens):
        raise OSError(f"{path}: the tokenizer there has only special tokens ({len(tok)}); not a usable base")
    return tok


def _model_json(tok) -> dict:
    return json.loads(tok.backend_tokenizer.to_str())


def extend_tokenizer(base: str | PreTrainedTokenizerFast, texts_by_lang: dict[str, Iterable[str]],
                     cfg: TokenizerConfig) -> tuple[PreTrainedTokenizerFast, list[str]]:
    """Add pieces learned from ``texts_by_lang`` (and a tag per language) to ``base``.

    Returns the new tokenizer and the added token strings in id order. Every token of ``base``
    keeps its id. The base must be a WordPiece or Unigram tokenizer of the kind ``cfg.type``."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    base_tok = load_tokenizer(base) if isinstance(base, str) else base
    tree = _model_json(base_tok)
    kind = _KIND.get(tree["model"]["type"])
    if kind is None:
        raise ConfigError(f"tokenizer.base: extension supports WordPiece and Unigram bases, not {tree['model']['type']}")
    if kind != cfg.type:
        raise ConfigError(f"tokenizer.type={cfg.type} but the base tokenizer is {kind}; set tokenizer.type={kind}")
    if cfg.nfkc:
        tree["normalizer"] = _nfkc_first(tree.get("normalizer"))
    marks: list[str] = []
    hamza = _has_hamza_letters(texts_by_lang)
    if cfg.keep_accents:  # before _keep_hamza, which then finds no stripping left to change: so
        # the hamza letters are kept here as it keeps them (a rare إ was stripped to ا otherwise),
        # and so are the letters the user listed (tokenizer.keep_letters: Igbo ṅ is 0.13% of its marks)
        always = (_HAMZA_LETTERS if hamza else "") + "".join(cfg.keep_letters)
        tree["normalizer"], marks = keep_accents(tree.get("normalizer"), texts_by_lang, cfg.nfkc, always)
    kept_hamza = False
    if hamza:
        before = tree.get("normalizer")
        tree["normalizer"] = _keep_hamza(before)
        kept_hamza = tree["normalizer"] != before
    backend = Tokenizer.from_str(json.dumps(tree))
    # Pieces only for what the normalizer writes: an uncased base never writes "Ọ", only "ọ".
    marks = [c for c in marks if backend.normalizer.normalize_str(c) == c]
    unk = str(base_tok.unk_token or "[UNK]")
    # The learner sees text exactly as the new tokenizer will: same normalizer and pre-tokenizer.
    learner, trainer = new_backend(kind, cfg.vocab_size, cfg.min_frequency, [unk],
                                   normalizer=backend.normalizer, pre_tokenizer=backend.pre_tokenizer,
                                   prefix=tree["model"].get("continuing_subword_prefix") or "##", unk=unk)
    learner = train_backend(learner, trainer, texts_by_lang)  # reproducible WordPiece ids

    old = backend.get_vocab(with_added_tokens=True)
    next_id = max(old.values()) + 1
    learned = _json_vocab(json.loads(learner.to_str())["model"])
    fresh = [(p, s) for p, s in learned if p not in old and p != unk]
    if cfg.max_new_tokens is not None and len(fresh) > cfg.max_new_tokens:  # the most frequent
        from lrl.model.piece_rank import by_frequency

        prefix = tree["model"].get("continuing_subword_prefix") or "##" if kind == "wordpiece" else None
        fresh = by_frequency(fresh, learner, texts_by_lang, prefix)[: cfg.max_new_tokens]
    if kept_hamza:
        fresh += _hamza_pieces(kind, tree["model"], old, {p for p, _ in fresh}, [s for _, s in learned])
    if marks:
        fresh += mark_pieces(kind, tree["model"].get("continuing_subword_prefix") or "##", marks, old,
                             {p for p, _ in fresh}, [s for _, s in learned])
    model = tree["model"]
    if kind == "wordpiece":
        for i, (piece, _) in enumerate(fresh):
            model["vocab"][piece] = next_id + i
    else:
        if len(model["vocab"]) != next_id:
            raise ConfigError("tokenizer.base: its Unigram model has added tokens beyond its piece list; cannot append pieces safely")
        # Scores are the learner's log-probabilities: comparable in scale to the base's, and what
        # ranks the new pieces against each other when the base segments new-language words.
        model["vocab"].extend([p, s] for p, s in fresh)
    # A saved padding/truncation setting (sentence-transformers ships one) would leak into every
    # call that does not override it; transformers sets both per call anyway.
    tree["padding"], tree["truncation"] = None, None
    new_backend_tok = Tokenizer.from_str(json.dumps(tree))
    specials = {k: str(getattr(base_tok, k)) for k in ("unk_token", "pad_token", "cls_token", "sep_token",
                                                       "mask_token", "bos_token", "eos_token")
                if getattr(base_tok, k, None) is not None}
    tok = PreTrainedTokenizerFast(tokenizer_object=new_backend_tok, model_max_length=base_tok.model_max_length,
                                  extra_special_tokens=list(base_tok.extra_special_tokens or []), **specials)
    tags = [lang_tag(lang) for lang in texts_by_lang if lang_tag(lang) not in old]
    if tags:
        tok.add_special_tokens({"extra_special_tokens": tags}, replace_extra_special_tokens=False)
    added = [p for p, _ in fresh] + tags
    return tok, added


def _nfkc_first(normalizer: dict | None) -> dict:
    """The JSON of NFKC followed by ``normalizer`` (a base's own, which still runs in full);
    unchanged when it already starts with NFKC (a base trained here)."""
    first = normalizer
    while first is not None and first.get("type") == "Sequence" and first.get("normalizers"):
        first = first["normalizers"][0]
    if first is not None and first.get("type") == "NFKC":
        return normalizer
    nfkc = {"type": "NFKC"}
    return nfkc if normalizer is None else {"type": "Sequence", "normalizers": [nfkc, normalizer]}


#: Arabic-script letters whose NFD is a base letter plus a combining madda or hamza (U+0653-U+0655):
#: an accent-stripping normalizer (BERT uncased's) turns ئ into ي, ؤ into و, أ into ا. These are
#: letters of their own (Uyghur writes every vowel-initial syllable with ئ), not accents.
_HAMZA_LETTERS = "آأؤإئۀۂۓ"
_HAMZA_RE = re.compile(f"[{_HAMZA_LETTERS}]")


def _has_hamza_letters(texts_by_lang: dict[str, Iterable[str]]) -> bool:
    return any(_HAMZA_RE.search(unicodedata.normalize("NFKC", line))
               for lines in texts_by_lang.values() for line in lines)


def _keep_hamza(normalizer: dict | None) -> dict | None:
    """``normalizer`` (JSON) with every accent-stripping ``BertNormalizer`` replaced by the same
    steps that keep madda and hamza (U+0653-U+0655) and recompose the letters above.

    Only used when the new language's text has such letters: MiniLM's uncased normalizer erased the
    hamza from 21.9% of held-out Uyghur words (ئ -> ي; 2,710 removals in 12,963 words), so the
    added pieces, and the text the model and NER tagger see, spelled those words wrongly. Text
    without these letters normalizes exactly as before (same clean-up, NFD, other marks stripped,
    lowercase), so the base's own pieces still match; the base keeps its other marks stripped."""
    if normalizer is None:
        return None
    if normalizer.get("type") == "Sequence":  # spliced in place: one flat list of steps
        steps = [_keep_hamza(n) for n in normalizer.get("normalizers") or []]
        return {**normalizer, "normalizers": [x for n in steps
                                              for x in (n["normalizers"] if n["type"] == "Sequence" else [n])]}
    if normalizer.get("type") != "BertNormalizer":
        return normalizer
    lower = bool(normalizer.get("lowercase", True))
    strip = normalizer.get("strip_accents")
    if not (strip if strip is not None else lower):
        return normalizer
    steps: list[dict] = [{**normalizer, "strip_accents": False, "lowercase": False}, {"type": "NFD"},
                         {"type": "Replace", "pattern": {"Regex": "(?![\\u0653-\\u0655])\\p{Mn}"}, "content": ""}]
    steps += [{"type": "Replace", "pattern": {"String": unicodedata.normalize("NFD", ch)}, "content": ch}
              for ch in _HAMZA_LETTERS]
    if lower:
        steps.append({"type": "Lowercase"})
    return {"type": "Sequence", "normalizers": steps}


def _hamza_pieces(kind: str, model: dict, old: dict[str, int], have: set[str],
                  scores: list[float]) -> list[tuple[str, float]]:
    """Pieces for the hamza letters (and bare marks) that ``_keep_hamza`` lets through, where
    neither the base nor the learned pieces have them.

    The base read إ as ا (its normalizer stripped the hamza); kept, a letter the new text lacks, or
    has too rarely to become a piece, was an unknown character: in a Wolof line the Arabic
    "إفريقيا", which MiniLM split into 7 pieces, became one [UNK] (held-out Wolof of the first 600
    lines of mono/wo.txt: unknown-token rate 0.00% -> 0.03%). Each such piece starts from the
    base's rows of what it read before (``OldPieces._normal``). Unigram pieces get the lowest learned score: used where nothing else
    covers the letter."""
    prefix = model.get("continuing_subword_prefix") or "##"
    chars = list(_HAMZA_LETTERS) + ["\u0653", "\u0654", "\u0655"]
    wanted = [p for ch in chars for p in ((ch, prefix + ch) if kind == "wordpiece" else (ch,))]
    low = min(scores, default=0.0) if kind == "unigram" else 0.0
    return [(p, low) for p in wanted if p not in old and p not in have]


def _json_vocab(model: dict) -> list[tuple[str, float]]:
    """Pieces of a trained model in id order (WordPiece: learned order = alphabet, then merges)."""
    if model["type"] == "WordPiece":
        return [(p, 0.0) for p, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
    return [(p, float(s)) for p, s in model["vocab"]]


def _wordpiece(word: str, vocab: dict[str, int], unk_id: int, prefix: str, continuation: bool,
               max_chars: int) -> list[int]:
    """Greedy longest-match-first, exactly as ``tokenizers``' WordPiece, optionally starting as a
    continuation (for ``##x`` pieces). An unmatched remainder makes the whole word unknown."""
    if len(word) > max_chars:
        return [unk_id]
    out, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            sub = word[start:end]
            if start > 0 or continuation:
                sub = prefix + sub
            if sub in vocab:
                found = vocab[sub]
                break
            end -= 1
        if found is None:
            return [unk_id]
        out.append(found)
        start = end
    return out


class OldPieces:
    """The old tokenizer's piece ids for a token string of the new tokenizer."""

    def __init__(self, old_tok: PreTrainedTokenizerFast):
        self.backend = plain_backend(old_tok)
        tree = _model_json(old_tok)["model"]
        self.kind = tree["type"]
        self.vocab = self.backend.get_vocab(with_added_tokens=False)
        self.unk_id = self.backend.token_to_id(str(old_tok.unk_token or "[UNK]"))
        self.prefix = tree.get("continuing_subword_prefix") or "##"
        self.max_chars = tree.get("max_input_chars_per_word", 100)

    def __call__(self, token: str, special: bool = False) -> list[int]:
        if special:  # a tag such as "[ug]": whatever the old pipeline makes of the raw text
            ids = self.backend.encode(token, add_special_tokens=False).ids
            return ids or [self.unk_id]
        ids = self._segment(token)
        if ids == [self.unk_id] and len(token.removeprefix(self.prefix)) > 1:
            ids = self._by_char(token)
        return ids

    def _segment(self, token: str) -> list[int]:
        if self.kind == "WordPiece":
            cont = token.startswith(self.prefix)
            word = self._normal(token[len(self.prefix):] if cont else token)
            return _wordpiece(word, self.vocab, self.unk_id, self.prefix, cont, self.max_chars)
        return [t.id for t in self.backend.model.tokenize(token)] or [self.unk_id]

    def _normal(self, word: str) -> str:
        """``word`` as the old normalizer writes it: a new piece may hold a letter the old one
        never sees (ئ, kept by ``_keep_hamza``), whose closest old rows are those of what it became
        there (ي), not [UNK]. Unchanged when normalizing splits it (spaces around CJK characters)."""
        norm = self.backend.normalizer
        out = norm.normalize_str(word).strip() if norm is not None else word
        return out if out and not any(c.isspace() for c in out) else word

    def _by_char(self, token: str) -> list[int]:
        cont = self.kind == "WordPiece" and token.startswith(self.prefix)
        chars = token[len(self.prefix):] if cont else token
        out = []
        for i, ch in enumerate(chars):
            piece = self.prefix + ch if self.kind == "WordPiece" and (cont or i > 0) else ch
            out.extend(self._segment(piece))
        return out


def resize_and_init_embeddings(model: PreTrainedModel, old_tokenizer: PreTrainedTokenizerFast,
                               new_tokenizer: PreTrainedTokenizerFast, skip_unknown: bool = True) -> list[int]:
    """Grow the input (and tied or untied output) embeddings and the LM-head bias to the new
    tokenizer; each new row is the mean of the old rows of the old tokenizer's pieces of that token,
    leaving out ``[UNK]`` when any other piece is known (``skip_unknown=False`` keeps it, as
    before; ``benchmarks/bench_embedding_init.py`` compares the two).

    Raises ``ValueError`` when the new tokenizer changed any old token's id. Returns the new ids."""
    import torch

    old_vocab = old_tokenizer.get_vocab()
    new_vocab = new_tokenizer.get_vocab()
    moved = [t for t, i in old_vocab.items() if new_vocab.get(t) != i]
    if moved:
        raise ValueError(f"the new tokenizer changes the ids of {len(moved)} old tokens (e.g. {moved[:5]}); "
                         "it is not an extension of the old one")
    new_ids = sorted(i for t, i in new_vocab.items() if t not in old_vocab)
    emb = model.get_input_embeddings()
    rows = max(emb.weight.shape[0], max(new_vocab.values()) + 1)
    old_in = emb.weight.detach().clone()
    out = model.get_output_embeddings()
    tied = out is not None and out.weight is emb.weight
    old_out = out.weight.detach().clone() if out is not None and not tied else None
    bias = _lm_bias(model)
    old_bias = bias.detach().clone() if bias is not None else None
    model.resize_token_embeddings(rows, mean_resizing=False)
    pieces = OldPieces(old_tokenizer)
    specials = set(new_tokenizer.all_special_tokens)
    id_to_tok = {i: t for t, i in new_vocab.items()}
    with torch.no_grad():
        w_in = model.get_input_embeddings().weight
        w_out = model.get_output_embeddings().weight if old_out is not None else None
        b = _lm_bias(model)
        for i in new_ids:
            tok = id_to_tok[i]
            ids = pieces(tok, special=tok in specials)
            known = [x for x in ids if x != pieces.unk_id]
            idx = torch.tensor(known if skip_unknown and known else ids, dtype=torch.long)
            w_in[i] = old_in[idx].mean(0)
            if w_out is not None:
                w_out[i] = old_out[idx].mean(0)
            if b is not None and old_bias is not None:
                b[i] = old_bias[idx].mean(0)
    return new_ids


def _lm_bias(model):
    out = model.get_output_embeddings()
    return getattr(out, "bias", None) if out is not None else None
