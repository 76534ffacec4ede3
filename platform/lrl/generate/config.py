"""Config sections of the generate stage: augmentation and oversampling.

(Translation and quality filters have their own sections in ``translate``/``filter``.)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lrl.config import StrictModel, config_warning
from lrl.data.config import check_lang


def warn_if_disabled(section: str, cfg: StrictModel) -> None:
    """Warn (one line on stderr) about settings of a section that is off (``enabled: false``):
    they have no effect, and a user who set them most likely expected one.

    A warning, not an error: ``oversample.enabled=false`` is how a job's oversampling is turned
    off for one run, and that must keep working with the rest of the section left in the file.
    Only values that differ from the defaults count, so a config rebuilt from its own dump
    (every field set) does not warn about defaults."""
    if getattr(cfg, "enabled", True):
        return
    fields = type(cfg).model_fields
    unused = sorted(f"{section}.{name}" for name in cfg.model_fields_set
                    if name != "enabled" and getattr(cfg, name) != fields[name].get_default(call_default_factory=True))
    if unused:
        verb, them = ("has", "it") if len(unused) == 1 else ("have", "them")
        config_warning(f"warning: {section}.enabled is false: {', '.join(unused)} {verb} no effect "
                       f"(set {section}.enabled=true to use {them})")


#: Names of the augmentation operations (``augment.ops=[swap,mention]``).
OpName = Literal["insert", "swap", "delete", "synonym", "mention", "labelwise", "shuffle"]


class _OpParams(StrictModel):
    copies: int | None = Field(default=None, ge=0)
    """Generated rows per sentence for this operation; None uses ``augment.copies``."""


class InsertParams(_OpParams):
    """EDA random insertion: put a synonym of a random O word (or, with no synonyms, an O word
    seen in training) at a random position outside entity spans."""

    alpha: float = Field(default=0.1, gt=0, le=1)
    """Insertions as a fraction of the sentence length (at least one)."""


class SwapParams(_OpParams):
    """EDA random swap of two O tokens; entity tokens never move."""

    alpha: float = Field(default=0.1, gt=0, le=1)
    """Swaps as a fraction of the sentence length (at least one)."""


class DeleteParams(_OpParams):
    """EDA random deletion of O tokens; entity tokens are never deleted."""

    p: float = Field(default=0.1, gt=0, lt=1)
    """Probability of deleting each O token (at least one token always remains)."""


class SynonymParams(_OpParams):
    """EDA synonym replacement of O words, from a lexicon or from corpus neighbours."""

    alpha: float = Field(default=0.1, gt=0, le=1)
    """Replacements as a fraction of the sentence length (at least one)."""


class MentionParams(_OpParams):
    """Mention replacement: an entity is replaced by another mention of the same type and
    language from the training inventory; its B-/I- tags are regenerated for the new length."""

    p: float = Field(default=0.5, gt=0, le=1)
    """Probability of replacing each mention (at least one mention is replaced)."""


class LabelwiseParams(_OpParams):
    """Label-wise token replacement: a token is replaced by a token seen with the same tag."""

    p: float = Field(default=0.3, gt=0, le=1)
    """Probability of replacing each token (at least one token is replaced)."""


class ShuffleParams(_OpParams):
    """Shuffle tokens within each same-label segment (a mention, or a run of O tokens)."""

    p: float = Field(default=0.5, gt=0, le=1)
    """Probability of shuffling each segment of two or more tokens."""


class NeighbourConfig(StrictModel):
    """Synonyms learned from unlabelled text (``data.text``): PPMI co-occurrence vectors reduced by
    truncated SVD, top-k cosine neighbours of frequent words. Most LRLs have no WordNet."""

    enabled: bool = True
    """Learn neighbours for languages that have text in ``data.text`` (lexicon entries win)."""
    min_count: int = Field(default=5, ge=1)
    """Words seen fewer times are ignored."""
    max_vocab: int = Field(default=20000, ge=10)
    """Most frequent words that get vectors."""
    contexts: int = Field(default=3000, ge=10)
    """Most frequent words used as context dimensions of the co-occurrence matrix."""
    window: int = Field(default=2, ge=1)
    """Context window on each side of a word."""
    dims: int = Field(default=100, ge=2)
    """Dimensions kept by the truncated SVD."""
    k: int = Field(default=5, ge=1)
    """Neighbours kept per word."""
    max_words: int = Field(default=5000, ge=1)
    """Most frequent words that get neighbours (synonym candidates)."""
    min_similarity: float = Field(default=0.3, ge=-1, le=1)
    """Neighbours below this cosine similarity are dropped."""
    max_lines: int | None = Field(default=200000, gt=0)
    """Read at most this many text lines per language; None reads all."""
    cache_dir: str | None = None
    """Folder for neighbour tables keyed by a hash of the corpus and these settings; None: no cache."""


class AugmentConfig(StrictModel):
    """Augmentation operations applied to labelled rows (originals pass through unchanged)."""

    ops: list[OpName] = []
    """Operations to apply, by name: insert, swap, delete, synonym (EDA; O tokens only), mention,
    labelwise, shuffle (NER-aware). Empty: no augmentation."""
    copies: int = Field(default=1, ge=0)
    """Generated rows per operation per sentence (at most: an op produces fewer when it cannot
    apply, or when a copy repeats an earlier copy of the same sentence or an input row)."""
    seed: int | None = None
    """Seed of the augmentation; None uses the job seed. Each row's seed derives from it."""
    insert: InsertParams = Field(default_factory=InsertParams)
    """Random insertion."""
    swap: SwapParams = Field(default_factory=SwapParams)
    """Random swap."""
    delete: DeleteParams = Field(default_factory=DeleteParams)
    """Random deletion."""
    synonym: SynonymParams = Field(default_factory=SynonymParams)
    """Synonym replacement."""
    mention: MentionParams = Field(default_factory=MentionParams)
    """Mention replacement."""
    labelwise: LabelwiseParams = Field(default_factory=LabelwiseParams)
    """Label-wise token replacement."""
    shuffle: ShuffleParams = Field(default_factory=ShuffleParams)
    """Shuffle within segments."""
    lexicons: dict[str, str] = {}
    """Synonym lexicon per language (``ug: lexicon/ug.tsv``; TSV ``word<TAB>syn1,syn2``), resolved
    against data.root when relative. Keyed by the ``lang`` of the data.ner rows, or by
    ``translate.train.target`` (its translated rows get synonyms even where no input row has that
    language): with ``insert`` or ``synonym`` in ``ops``, a key naming neither (``wol`` beside
    ``lang: wo``) is an error. A synonym found under the lower-cased form of a word takes the
    word's case (Title for Title, all caps for all caps; ``insert`` leaves the synonym of a
    sentence's first word as found); an entry for the word as written is used as written."""
    neighbours: NeighbourConfig = Field(default_factory=NeighbourConfig)
    """Synonyms from corpus neighbours."""
    max_inventory: int = Field(default=50000, ge=1)
    """Most frequent mentions per (language, type) and tokens per (language, tag) kept for the
    NER-aware ops (keeps the resources shipped to workers small)."""
    batch_size: int = Field(default=512, ge=1)
    """Rows per call of the ops: each task works through its block in slices of this many rows
    (bounds memory; the block plan, not this, decides how many tasks there are). Not part of the
    output's hash: the rows are the same."""
    compute: Literal["tasks", "actors"] = "tasks"
    """Run the ops as Ray tasks (best for cheap ops) or in an actor pool of ``num_actors``. Not
    part of the output's hash: the rows are the same."""
    num_actors: int = Field(default=2, ge=1)
    """Actor pool size when ``compute=actors``. Not part of the output's hash."""

    @field_validator("ops")
    @classmethod
    def _unique_ops(cls, v: list[OpName]) -> list[OpName]:
        # A row's id and seed derive from (parent, op, copy): an op listed twice emitted every one
        # of its rows twice, same id and same content.
        for op in v:
            if v.count(op) > 1:
                raise ValueError(f"{op!r} is listed twice; set augment.{op}.copies for more rows per sentence")
        return v

    @field_validator("lexicons")
    @classmethod
    def _langs(cls, v: dict[str, str]) -> dict[str, str]:
        for lang in v:
            check_lang(lang)
        return v

    @model_validator(mode="after")
    def _listed_ops_make_rows(self) -> AugmentConfig:
        # A listed op at 0 copies ran over every row and made none: the manifest said the op ran,
        # with 0 attempts, and nothing said why the data came out unaugmented.
        for op in self.ops:
            if self.copies_of(op) == 0:
                key = f"augment.{op}.copies" if getattr(self, op).copies == 0 else "augment.copies"
                raise ValueError(f"{op!r} is in augment.ops but {key}=0 makes no rows; "
                                 f"remove it from augment.ops or set {key} >= 1")
        return self

    def copies_of(self, op: str) -> int:
        """Copies per sentence for ``op`` (its own setting, else the section's)."""
        own = getattr(self, op).copies
        return self.copies if own is None else own


class OversampleConfig(StrictModel):
    """Oversampling to target counts by language and by rare entity type.

    Multiplicities are planned on the driver from counts; copies are emitted streaming. Rows are
    only ever repeated, never dropped: a language above its target keeps all its rows."""

    enabled: bool = False
    """Oversample (before augmentation, so copies get augmented differently)."""
    target_per_lang: int | dict[str, int] | None = None
    """Sentences each language is brought up to: one number for all, per language
    (``{wo: 5000}``), or None for no language target. Counts and copies the sentences read from
    ``data.ner``; rows that translate-train makes in a language come on top of its target.
    Oversampling is for entity tags: rows read under ``data.ner[].scheme: tokens`` (POS) pass as
    they are and count toward no target (a job with only such rows is an error)."""
    min_sentences_per_type: int | None = Field(default=None, ge=1)
    """Entity types (per language) found in fewer sentences are repeated up to this many. A type
    the filters leave below it on disk (one read in more sentences too) is warned of and listed
    under ``oversample.missed_rare_types`` with the reject kinds that took its sentences."""
    rare_types: list[str] | None = None
    """Entity types considered by ``min_sentences_per_type``; None considers all. A listed type that
    no sentence of a language has cannot be copied: the generate stage warns and lists it under
    ``oversample.missed_rare_types`` (reached 0)."""
    max_factor: float | None = Field(default=None, ge=1)
    """Cap on the copies of one sentence (e.g. 50; the original counts as one); None: no cap. A
    cap can leave a language below its target, or a rare type below ``min_sentences_per_type``:
    the generate stage then warns and lists it under ``oversample.missed_targets`` (or
    ``missed_rare_types``) in its manifest."""
    seed: int | None = None
    """Seed for choosing which rows get the fractional extra copy; None uses the job seed."""
    batch_size: int = Field(default=256, ge=1)
    """Input rows per call: each task works through its block in slices of this many rows. Not
    part of the output's hash: the rows are the same."""
    chunk_rows: int = Field(default=65536, ge=1)
    """Output rows per yielded chunk, bounding memory when a sentence gets many copies. Not part
    of the output's hash: the rows are the same."""

    @field_validator("target_per_lang")
    @classmethod
    def _targets(cls, v: int | dict[str, int] | None) -> int | dict[str, int] | None:
        values = v.values() if isinstance(v, dict) else [v] if v is not None else []
        if any(x < 1 for x in values):
            raise ValueError("targets must be positive")
        if isinstance(v, dict):
            for lang in v:
                check_lang(lang)
        return v

    @model_validator(mode="after")
    def _unused(self) -> OversampleConfig:
        warn_if_disabled("oversample", self)
        return self
