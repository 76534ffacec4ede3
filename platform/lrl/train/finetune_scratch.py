"""Small randomly initialised BERTs with a WordPiece tokenizer trained on the given sentences.

This is the ``preset:<name>`` model of fine-tuning (``build_preset_on_rows``: the finetune and
tune stages and ``train_tagger`` all build it there) and, through ``build_scratch_encoder``, the
tiny model of the tests and benchmarks: everything is built locally from configs, nothing is
downloaded. Language tag tokens (``[ug]``) are added as special tokens, so tagged inputs look like
the pretraining stage's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

#: Bumped when the same sentences give another encoder folder, so that cached ``preset:`` encoders
#: (``lrl.tune.splits``) are built again. 2: the tokenizer decodes pieces back into words. 3: the
#: stages build ``build_preset_encoder``'s model (``lrl.model.build``'s config, 4000 pieces, the
#: languages in the config, positions for ``finetune.max_length``), the one ``train_tagger`` builds
#: for a preset; a plain 2000-piece BertConfig with at least 256 positions made ``lrl tune`` search
#: on another model than the one a ``preset:`` name gave elsewhere. 4: NFKC in the normalizer
#: (text in NFD reads as in NFC).
ENCODER_VERSION = 4


def build_scratch_tokenizer(sentences: Iterable[Sequence[str]], langs: Sequence[str] = (), vocab_size: int = 2000):
    """A BERT-style fast WordPiece tokenizer (``[CLS] x [SEP]``) trained on token lists."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tags = [f"[{lang}]" for lang in langs]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *tags]
    texts = [" ".join(s) for s in sentences]

    def fresh(vocab: dict[str, int] | None = None) -> Tokenizer:
        tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
        # No lowercasing or accent stripping: both damage Uyghur letters and NER cues (case).
        # NFKC first, as the tokenizer stage's default (``tokenizer.nfkc``): without it Yoruba in
        # NFD (tone marks and dots below apart from their letters; 5% of FLORES yo words) were
        # other characters than the NFC training rows', mostly [UNK]: 115 of 489 WikiANN yo dev
        # words in NFD, 5 in NFC, and a preset:tiny tagger's dev span F1 fell from 25.5 to 2.1.
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(),
                                               normalizers.BertNormalizer(lowercase=False, strip_accents=False)])
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        # Pieces joined back into words: without it ``decode`` and the token-classification
        # pipeline's ``word`` field showed "ئەز ##ەر ##بەي ##جان" (the tokenizer stage sets it too).
        tok.decoder = decoders.WordPiece(prefix="##")
        return tok

    learner = fresh()
    # The trainer gives each ``##c`` piece its id in hash-map order, and ids break ties between
    # equally frequent merges, so the same sentences gave another vocabulary on every run
    # (huggingface/tokenizers#1794) and a seeded preset run was not reproducible. Listing every
    # ``##c`` up front fixes their ids; they are special only while training (rebuilt below).
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=1,
                                        special_tokens=specials + _continuation_pieces(learner, texts))
    learner.train_from_iterator(texts, trainer=trainer)
    tok = fresh(learner.get_vocab(with_added_tokens=False))
    tok.add_special_tokens(specials)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", additional_special_tokens=tags)


def _continuation_pieces(tok, texts: list[str]) -> list[str]:
    """``##c`` for every character found inside a word (after normalization and pre-tokenization),
    sorted: exactly the pieces the WordPiece trainer would add for them (the tokenizer stage's
    character pass, ``lrl.model.tokenizer._chars``)."""
    from lrl.model.tokenizer import _chars

    _, inner = _chars(tok, {"all": texts})
    return [f"##{c}" for c in sorted(inner)]


def build_scratch_encoder(out_dir: str | Path, sentences: Iterable[Sequence[str]], langs: Sequence[str] = (),
                          vocab_size: int = 2000, hidden: int = 64, layers: int = 2, heads: int = 2,
                          max_positions: int = 256, seed: int = 0, intermediate: int | None = None) -> str:
    """Train a tokenizer on ``sentences`` (token lists), build a BERT of the given size, save both.

    Tiny encoders of any size for tests and benchmarks; a ``preset:<name>`` is built by
    ``build_preset_on_rows`` instead (another vocabulary size and config).
    ``intermediate`` is the FFN width (default ``4 * hidden``, as in every preset)."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from lrl.train.finetune_model import quiet_transformers

    quiet_transformers()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast = build_scratch_tokenizer(sentences, langs, vocab_size)
    fast.save_pretrained(str(out))
    torch.manual_seed(seed)
    conf = BertConfig(vocab_size=len(fast), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                      intermediate_size=intermediate or hidden * 4, max_position_embeddings=max_positions)
    BertForMaskedLM(conf).save_pretrained(str(out))
    return str(out)


def build_preset_encoder(out_dir: str | Path, preset: str, sentences: Iterable[Sequence[str]],
                         langs: Sequence[str], vocab_size: int = 4000, seed: int = 0, max_length: int = 128) -> str:
    """``preset:<name>`` (a preset of ``lrl.model.build``) with a tokenizer trained on
    ``sentences``, randomly initialised and saved to ``out_dir``, with positions for
    ``max_length`` pieces per input."""
    import torch

    from lrl.model.build import build_mlm_model, preset_sizes
    from lrl.model.config import ModelConfig
    from lrl.train.finetune_model import quiet_transformers

    quiet_transformers()
    name = preset.removeprefix("preset:")
    preset_sizes(name)  # an unknown name fails here, before a tokenizer is trained for nothing
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast = build_scratch_tokenizer(sentences, sorted(set(langs)), vocab_size)
    fast.save_pretrained(str(out))
    torch.manual_seed(seed)
    build_mlm_model(ModelConfig(preset=name, max_length=max_length), fast, sorted(set(langs))).save_pretrained(str(out))
    return str(out)


def build_preset_on_rows(out_dir: str | Path, preset: str, tables: Iterable[pa.Table], seed: int,
                         max_length: int) -> str:
    """The ``preset:<name>`` encoder fine-tuning trains on the NER rows ``tables`` (their tokens
    and languages), with positions for ``max_length`` pieces (``finetune.max_length``).

    ``train_tagger`` (given a preset as its model) and the finetune and tune stages (their cached
    encoder, ``lrl.tune.splits``) both build it here, so that the vocabulary size, positions and
    language list cannot drift apart between them: the stages once built another model (a plain
    2000-piece BertConfig with 256 positions), and tune searched on it."""
    sents: list[list[str]] = []
    langs: list[str] = []
    for table in tables:
        sents += table.column("tokens").to_pylist()
        langs += table.column("lang").to_pylist()
    return build_preset_encoder(out_dir, preset, sents, langs, seed=seed, max_length=max_length)
