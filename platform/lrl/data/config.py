"""Config sections for inputs and outputs: where data comes from and where stages write."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_serializer, model_validator

from lrl.config import StrictModel, home
from lrl.data.nfc import UnicodeForm
from lrl.data.tag_ids import check_names

LANG_RE = re.compile(r"^[a-z]{2,3}(_[A-Z][a-z]{3})?$")


def check_lang(code: str) -> str:
    """One language-identifier scheme everywhere: ISO 639 (``ug``), optionally ``_Script``."""
    if not LANG_RE.match(code):
        raise ValueError(f"language {code!r} is not an ISO 639 code like 'ug' or 'uig_Arab'")
    return code


class NerSource(StrictModel):
    """One labelled input: a file, several files (a pattern or a folder), a folder of Parquet files
    or a Hugging Face dataset."""

    path: str
    """File or URI (s3://, gs://), resolved against data.root when relative; or a pattern
    (``corpus/ug-*.conll``: ``*``, ``?``, ``[...]`` within a path component) or a folder of CoNLL
    or JSONL files (names starting with . or _ skipped), read file by file in sorted order, each
    file's made ids ``lang:split:<file>:n`` (``<file>`` relative to the folder or the pattern's
    leading folder); for format=hf a hub id (``wikiann``) or a folder written by
    ``datasets.save_to_disk``: a path no hub id can be (as for ``tokenizer.base``, ``a`` of ``a/b``
    looked for under data.root too) that is no such folder is an error."""
    lang: str
    """Language of the sentences (ISO 639, e.g. ``ug``)."""
    format: Literal["auto", "conll", "jsonl", "parquet", "hf", "conllu"] = "auto"
    """Reader to use; ``auto`` picks by extension (.jsonl, .parquet, .conllu under
    ``scheme: tokens``, otherwise CoNLL; .conllu under ``scheme: iob2`` is an error), file by file
    for a pattern or folder; a folder is read as ``hf`` when ``save_to_disk`` wrote it, as one
    Parquet table when it holds .parquet files, else file by file. CoNLL, CoNLL-U and JSONL files
    ending in .gz, .bz2, .zst or .lz4 are decompressed on reading. ``conllu`` (a UD treebank)
    reads the syntactic words with the tag ``column``; it needs ``scheme: tokens``."""
    scheme: Literal["iob2", "tokens"] = "iob2"
    """How the tags are written. ``iob2``: NER spans (``O``, ``B-X``, ``I-X``). ``tokens``: one
    label per token (POS tags such as ``NOUN``), each tag X read as the one-token span ``B-X``
    (``O`` and UD's ``_`` as ``O``; a ``B-``/``I-`` tag is a reject), so every later stage works
    unchanged and ``data.labels`` names the X. A model fine-tuned on such a language alone has the
    labels ``B-X`` of its tags only (``O`` too when some token has no tag, never ``I-X``); a joint
    model with NER languages keeps their full BIO list. Span F1 then
    scores tokens: when every token has a tag and the model predicts a ``B-`` tag on each, micro
    F1 = token accuracy (an ``O`` or ``I-`` prediction, of a model trained otherwise, is no span of
    its own, so F1 = 2 x right / (tokens + predicted spans) then differs from accuracy)."""
    split: str = "train"
    """Split name recorded in the ``source`` column; for format=hf also the split to load. ``dev``
    selects models (finetune, tune); ``dev``, ``test`` and ``validation`` are never trained on
    (``HELDOUT``); every other split is training data."""
    hf_config: str | None = None
    """Hugging Face dataset config name (e.g. ``ug`` for ``wikiann``)."""
    column: Literal["upos", "xpos"] = "upos"
    """For CoNLL-U input: the tag column to read, ``upos`` (universal POS, 17 tags) or ``xpos``
    (the treebank's own tags); other formats read their last column or ``tags`` list."""

    tag_names: list[str] | None = None
    """Names of integer tag ids, in id order (id 0 first), as a Hugging Face ClassLabel's
    ``names``: for JSONL ``"tags": [3, 0]``, Parquet or Hugging Face data whose file records no
    ClassLabel. Each id becomes its name and is then read by ``scheme`` (``NOUN``, or ``B-PER``).
    None: an integer tag is a reject naming its line (``tag id``), never a tag named ``3``."""

    _v_lang = field_validator("lang")(classmethod(lambda cls, v: check_lang(v)))
    _v_names = field_validator("tag_names")(classmethod(lambda cls, v: check_names(v)))
    _unicode: UnicodeForm = PrivateAttr("nfc")  # data.unicode, set by DataConfig (``unicode_form``)

    @property
    def unicode_form(self) -> UnicodeForm:
        """``data.unicode`` of the job this source is part of: the readers take a source, not the
        data section."""
        return self._unicode

    @model_validator(mode="after")
    def _check_tokens(self) -> NerSource:
        conllu = self.format == "conllu" or (self.format == "auto" and _conllu_path(self.path))
        if conllu and self.scheme != "tokens":
            # Also for a .conllu path under format auto: found only when a stage read the file
            # (for a dev split: finetune, after generate, the tokenizer and pretraining had run).
            what = "format conllu" if self.format == "conllu" else f"{self.path!r} (a .conllu path) is CoNLL-U, which"
            raise ValueError(f"{what} reads one POS tag per word: it needs scheme: tokens")
        if self.column != "upos" and not conllu:
            raise ValueError(f"column {self.column!r} applies to CoNLL-U input only (format: conllu or a "
                             f".conllu path), not to format {self.format!r} with path {self.path!r}")
        if self.tag_names is not None and self.format in ("conll", "conllu"):
            raise ValueError(f"tag_names applies to JSONL, Parquet and Hugging Face input (integer tag ids), "
                             f"not to format {self.format!r}, whose tags are text")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # scheme, column and tag_names left out at their defaults: the generate stage's output folder is a
        # hash of the dumped data section, and an existing IOB2 job must keep finding its output.
        out = handler(self)
        for name in ("scheme", "column", "tag_names"):
            if isinstance(out, dict) and out.get(name) == type(self).model_fields[name].default:
                out.pop(name)
        return out


def _conllu_path(path: str) -> bool:
    """Whether ``path`` (a file or pattern, maybe compressed) names CoNLL-U files."""
    from lrl.data.files import uncompressed_name

    return uncompressed_name(path).endswith(".conllu")


#: Splits that score models: never augmented nor trained on, never written to a generate output's
#: ``data/`` (later stages read them from ``data.ner`` themselves), so generated data cannot leak
#: into evaluation. Every other split trains.
HELDOUT = frozenset({"dev", "test", "validation"})


class TextSource(StrictModel):
    """One unlabelled text input: one sentence or paragraph per line, ``# doc`` lines start documents."""

    path: str
    """File or URI, resolved against data.root when relative (.gz, .bz2, .zst, .lz4: decompressed);
    or a pattern (``mono/ug-*.txt.gz``) or a folder of such files, read in sorted order (names
    starting with . or _ skipped in folders), row ids ``lang:<file>:line`` with ``<file>`` relative
    to the folder or the pattern's leading folder."""
    lang: str
    """Language of the text (ISO 639)."""
    max_lines: int | None = Field(default=None, gt=0)
    """Read at most this many lines (for quick runs); None reads all."""

    _v_lang = field_validator("lang")(classmethod(lambda cls, v: check_lang(v)))
    _unicode: UnicodeForm = PrivateAttr("nfc")  # data.unicode, as for NerSource

    @property
    def unicode_form(self) -> UnicodeForm:
        """``data.unicode`` of the job this source is part of."""
        return self._unicode


class DataConfig(StrictModel):
    """Inputs of a job and how strictly they are checked."""

    root: str | None = None
    """Folder that relative input paths resolve against (e.g. ``../shared/data``; a leading ``~``
    is the home folder); None means the folder of the config file."""
    ner: list[NerSource] = []
    """Labelled token-level inputs (NER or other tagging)."""
    text: list[TextSource] = []
    """Unlabelled text inputs (for synonyms, tokenizers and pretraining)."""
    labels: list[str] | None = None
    """Allowed entity types (``PER``, ``ORG``, ``LOC``); None infers them from the inputs."""
    bio_policy: Literal["error", "repair", "quarantine"] = "quarantine"
    """What to do with a sentence whose tags are not valid IOB2: stop with an error naming file and
    line, repair I- without B- (others quarantined), or quarantine it with its reason."""
    unicode: UnicodeForm = "nfc"
    """The Unicode form the tokens of ``data.ner`` and the lines of ``data.text`` are read in.
    ``nfc``: composed (canonical composition). The same word written decomposed (Yoruba ``e`` +
    combining dot below + combining acute: 5% of FLORES Yoruba words) and composed (``ẹ́``, as in
    WikiANN) renders alike but is another string to synonyms, mention replacement and lexicons.
    NFC does not change how text renders (unlike NFKC, which the tokenizers apply); the generate
    manifest counts the tokens and lines it changed (``unicode``).
    ``none``: as the file's bytes give them. ``augment.lexicons`` are read in NFC either way, and
    a token is looked up in them in NFC too."""

    _v_root = field_validator("root")(classmethod(lambda cls, v: home(v)))

    @model_validator(mode="after")
    def _source_forms(self) -> DataConfig:
        # Each source carries the form, as the readers take a source (read_ner, read_text_lines).
        # A source that has another is replaced by a copy: the one given may be another job's.
        for sources in (self.ner, self.text):
            for i, src in enumerate(sources):
                if src.unicode_form != self.unicode:
                    sources[i] = src.model_copy()
                    sources[i]._unicode = self.unicode
        return self


class OutputConfig(StrictModel):
    """Where stage outputs go: ``<root>/<stage>-<hash of config and inputs>/``."""

    root: str = "runs"
    """Folder or URI under which every stage writes its output folder (a leading ``~`` is the
    home folder)."""

    _v_root = field_validator("root")(classmethod(lambda cls, v: home(v)))
