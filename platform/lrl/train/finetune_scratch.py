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
#: (text in NFD reads as in NFC). 5: the punctuation of the text's scripts that the rows never
#: write is in the vocabulary (trained by the tokenizer stage's ``train_backend``).
ENCODER_VERSION = 5


def build_scratch_tokenizer(sentences: Iterable[Sequence[str]], langs: Sequence[str] = (), vocab_size: int = 2000):
    """A BERT-style fast WordPiece tokenizer (``[CLS] x [SEP]``) trained on token lists.

    Trained as the tokenizer stage trains (``lrl.model.tokenizer.train_backend``): the same ids on
    every run, and the punctuation of the text's scripts that the sentences never write is in the
    vocabulary (``lrl.model.alphabet``: a WikiANN sentence without ``”`` made any later ``”`` an
    unknown word)."""
    from tokenizers import normalizers, processors
    from transformers import PreTrainedTokenizerFast

    from lrl.model.tokenizer import new_backend, train_backend

    tags = [f"[{lang}]" for lang in langs]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *tags]
    # No lowercasing or accent stripping: both damage Uyghur letters and NER cues (case).
    # NFKC first, as the tokenizer stage's default (``tokenizer.nfkc``): without it Yoruba in
    # NFD (tone marks and dots below apart from their letters; 5% of FLORES yo words) were
    # other characters than the NFC training rows', mostly [UNK]: 115 of 489 WikiANN yo dev
    # words in NFD, 5 in NFC, and a preset:tiny tagger's dev span F1 fell from 25.5 to 2.1.
    normalizer = normalizers.Sequence([normalizers.NFKC(),
                                       normalizers.BertNormalizer(lowercase=False, strip_accents=False)])
    # The WordPiece decoder joins pieces back into words: without it ``decode`` and the
    # token-classification pipeline's ``word`` field showed "ئەز ##ەر ##بەي ##جان".
    learner, trainer = new_backend("wordpiece", vocab_size, 1, specials, normalizer=normalizer)
    tok = train_backend(learner, trainer, {"all": [" ".join(s) for s in sentences]})
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", additional_special_tokens=tags)


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
