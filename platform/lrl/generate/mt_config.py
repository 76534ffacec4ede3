"""Config sections for machine translation (translate-train, back-translation) and quality filters.

A translation model is named once (``MTModelConfig``) and used by each direction that needs it:
translate-train (source languages -> target), back-translation (target -> pivot -> target).
Variants are typed names: ``backend: hf | fake``, ``family: auto | marian | nllb | m2m100``,
``markers: square | numbered``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lrl.config import StrictModel, config_warning
from lrl.data.config import check_lang
from lrl.generate.config import warn_if_disabled


class FakeMTConfig(StrictModel):
    """A deterministic stand-in translator for exact label-projection checks (no model)."""

    mode: Literal["identity", "reverse", "upper"] = "reverse"
    """Word transform: keep, reverse the letters of each word (its own inverse, so a
    back-translation returns the input), or upper-case each word."""
    reorder: bool = False
    """Reverse the word order of each sentence (markers travel with their words)."""
    drop_marker_rate: float = Field(default=0.0, ge=0, le=1)
    """Chance per marker of being dropped (tests the fuzzy repair)."""
    move_marker_rate: float = Field(default=0.0, ge=0, le=1)
    """Chance per marker of moving one word to the right."""
    glue_marker_rate: float = Field(default=0.0, ge=0, le=1)
    """Chance per marker of being glued to its neighbouring word (``[Paris`` instead of ``[ Paris``)."""
    garble_marker_rate: float = Field(default=0.0, ge=0, le=1)
    """Chance per marker of being replaced by a look-alike that no pattern recognises."""


class MTModelConfig(StrictModel):
    """One translation direction: a model, its language codes and how it runs on Ray."""

    backend: Literal["hf", "fake"] = "hf"
    """``hf``: a Hugging Face seq2seq model (Marian, NLLB, M2M100) on a Ray actor pool; ``fake``:
    the deterministic test translator."""
    model: str | None = None
    """Hub id or local folder of the model (required for ``hf``); weights load from safetensors.
    A relative folder is looked up against data.root, then the folder ``lrl`` runs in, and made
    absolute on the driver (Ray actors run elsewhere); a path found in neither is a hub id, checked
    on the driver before Ray starts (in the local cache with ``HF_HUB_OFFLINE``): one that is not
    there stops the run with where the folder was looked for."""
    family: Literal["auto", "marian", "nllb", "m2m100", "plain"] = "auto"
    """How language codes are passed: Marian (none or a ``>>xx<<`` prefix), NLLB (``src_lang`` +
    forced BOS ``uig_Arab``), M2M100 (``src_lang`` + ``get_lang_id``); ``auto`` reads the model type."""
    src_code: str | None = None
    """Source language code as the model expects it; None derives it (ISO for M2M100, ``xxx_Scrp``
    for NLLB, nothing for Marian)."""
    tgt_code: str | None = None
    """Target language code as the model expects it; None derives it like ``src_code``."""
    prefix: str | None = None
    """Text put before every input (multi-target Marian models want e.g. ``>>uig<<``)."""
    batch_size: int = Field(default=32, gt=0)
    """Sentences per generate call. Each actor gets Ray Data batches of 4x this many rows and
    sorts their sentences and entity names by length into generate calls (less padding)."""
    num_beams: int = Field(default=1, gt=0)
    """Beam size of generation (1 = greedy)."""
    max_length: int = Field(default=256, gt=0)
    """Maximum tokens of an input and of an output. Longer inputs are not translated (a truncated
    input gives a fragment): their rows are rejected, reason ``translation_too_long: input longer
    than max_length tokens``. Outputs that generation stopped at this limit (a fragment, or a
    model repeating itself) are rejected too, reason ``translation_cut: output stopped at
    max_length tokens``, with the cut output kept in the rejects dataset. The manifest's
    ``rejects_per_reason`` counts the two apart (and ``translation_empty``, an empty output).
    At most the model's positions (``max_position_embeddings`` of its config, 512 for Marian):
    more is an error naming this setting."""
    num_actors: int = Field(default=1, gt=0)
    """Actors in the pool; each loads the model once."""
    num_gpus: float = Field(default=0.0, ge=0)
    """GPUs per actor; 0 runs on CPU (set it to 1 on GPU nodes). At most 1: an actor runs its model
    on one GPU (0.5: two actors share one, each with its own copy of the model)."""
    cpus_per_actor: float = Field(default=1.0, gt=0)
    """CPUs Ray reserves per actor; its torch threads on CPU are this rounded (at least 1). Keep
    ``num_actors * cpus_per_actor`` below the cluster's CPUs: the tasks around the pool (reading,
    writing) need a CPU too (2 actors x 1 CPU on 2 CPUs stalled; 2 x 0.5 ran at full speed)."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weights dtype on the device (float16 only on GPU)."""
    trust_remote_code: bool = False
    """Allow model code from the model folder; off by default (security)."""
    fake: FakeMTConfig = Field(default_factory=FakeMTConfig)
    """Options of the fake backend."""

    @model_validator(mode="after")
    def _needs_model(self) -> MTModelConfig:
        if self.backend == "hf" and not self.model:
            raise ValueError("backend 'hf' needs `model` (a hub id or a local folder)")
        return self


class ProjectionConfig(StrictModel):
    """How entity labels are carried through translation by markers (the EasyProject approach)."""

    markers: Literal["square", "numbered"] = "square"
    """``square`` wraps each entity in ``[ ... ]`` (types follow order and fuzzy matching);
    ``numbered`` uses ``<e0> ... </e0>`` so each span names its entity even when reordered.
    Square spans are told apart only by their text and order, so a row with two mentions of one
    text (or one translation) but different types (``Tanzania`` LOC ... ``Tanzania`` ORG) is
    rejected with ``square``, reason ``projection_ambiguous`` naming both: a translation that
    reordered them swapped their types unseen. ``numbered`` projects such rows."""
    token_pattern: str = r"\w+(?:[-'’]\w+)*|[^\w\s]"
    """Regex that splits the translated text into tokens (default: words and punctuation)."""
    split_at_markers: bool = True
    """Also split a word where a marker cuts it (``[Paris]te`` -> ``Paris te``)."""
    fuzzy: bool = True
    """When a marker pair is lost, look for the separately translated entity in the sentence."""
    fuzzy_threshold: float = Field(default=0.8, gt=0, le=1)
    """Minimum similarity (0-1, character based) for a fuzzy match to count."""

    @field_validator("token_pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        import re

        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"token_pattern is not a valid regex: {exc}") from exc
        return v


class TranslateTrainConfig(StrictModel):
    """Translate labelled sentences of high-resource languages into the target language."""

    sources: list[str] = ["en"]
    """Languages of the rows to translate (ISO 639)."""
    target: str = "ug"
    """Language to translate into."""
    model: MTModelConfig
    """The source -> target model."""
    keep_source: bool = True
    """Keep the source-language rows in the output beside their translations."""

    _v_target = field_validator("target")(classmethod(lambda cls, v: check_lang(v)))
    _v_sources = field_validator("sources")(classmethod(lambda cls, v: [check_lang(x) for x in v]))

    @model_validator(mode="after")
    def _target_not_a_source(self) -> TranslateTrainConfig:
        # An empty list translated nothing: the step failed with an IndexError inside Ray.
        if not self.sources:
            raise ValueError("sources is empty: list the languages whose rows to translate (e.g. [en])")
        if len(set(self.sources)) < len(self.sources):
            raise ValueError(f"sources {self.sources} lists a language twice")
        # Rows already in the target language would be "translated" into themselves and added
        # as new training rows: copies that look like translations.
        if self.target in self.sources:
            raise ValueError(f"target {self.target!r} is also listed in sources {self.sources}")
        # One src_code would be given to the rows of every source: NLLB would read Swahili rows
        # as whatever language it names.
        if len(self.sources) > 1 and self.model.src_code:
            raise ValueError(f"model.src_code {self.model.src_code!r} names one language but sources are "
                             f"{self.sources}; leave it unset (each row's code is derived from its lang)")
        return self


class BackTranslateConfig(StrictModel):
    """Paraphrase target-language rows by translating them to a pivot language and back."""

    lang: str = "ug"
    """Language of the rows to paraphrase. Only rows read from the inputs are paraphrased, not
    translate-train's rows in this language (machine output already: a paraphrase of one
    stacks three translation hops)."""
    pivot: str = "en"
    """Pivot language."""
    to_pivot: MTModelConfig
    """The lang -> pivot model."""
    from_pivot: MTModelConfig
    """The pivot -> lang model."""
    labelled: bool = True
    """Back-translate labelled rows (through markers)."""
    text: bool = True
    """Back-translate unlabelled text rows (``text_steps``)."""

    _v_lang = field_validator("lang", "pivot")(classmethod(lambda cls, v: check_lang(v)))

    @model_validator(mode="after")
    def _pivot_not_lang(self) -> BackTranslateConfig:
        # Translating into the language itself and back makes copies, not paraphrases: each one
        # then ends in the rejects as a duplicate of its source, after two model passes.
        if self.pivot == self.lang:
            raise ValueError(f"pivot {self.pivot!r} is the language being paraphrased; pick another (e.g. en)")
        return self


class TranslateConfig(StrictModel):
    """Machine translation for data generation."""

    enabled: bool = False
    """Run translate-train / back-translation in the generate stage. Its summary warns, with the
    top reject reasons, when a translation step kept under half the rows it translated
    (``MIN_KEPT`` of ``lrl.generate.translate.checks``); enabled with nothing to run warns too."""
    train: TranslateTrainConfig | None = None
    """Translate-train with label projection; None skips it."""
    backtranslate: BackTranslateConfig | None = None
    """Back-translation; None skips it."""
    projection: ProjectionConfig = Field(default_factory=ProjectionConfig)
    """Markers, re-tokenisation and repair."""

    @model_validator(mode="after")
    def _unused(self) -> TranslateConfig:
        warn_if_disabled("translate", self)
        # Enabled with nothing to run translated nothing, without a word (as enabled=false with
        # train set does warn).
        bt = self.backtranslate
        idle_bt = bt is not None and not bt.labelled and not bt.text
        if self.enabled and self.train is None and (bt is None or idle_bt):
            config_warning("warning: translate.enabled is true but " + (
                "translate.backtranslate has labelled=false and text=false" if idle_bt else
                "neither translate.train nor translate.backtranslate is set") + ": nothing is translated")
        elif self.enabled and idle_bt:
            config_warning("warning: translate.backtranslate has labelled=false and text=false: it back-translates "
                           "nothing (set one of them true, or remove the section)")
        return self


FilterName = Literal["lid", "length_ratio", "dedup", "near_dedup", "projection"]


class FilterConfig(StrictModel):
    """Quality filters applied after generation; rejected rows keep a reason and are counted."""

    ops: list[FilterName] = []
    """Filters to apply in this order: ``lid`` (language ID), ``length_ratio`` (translation vs
    source), ``dedup`` (exact), ``near_dedup`` (MinHash), ``projection`` (entity count and types). Translation
    rejects a row whose projection lost an entity by itself (``projection: entity lost ...``), so its
    rows keep their source's entity types by construction: ``projection`` only re-checks the labels
    as written against ``src_ents`` (a guard against a later step changing them; it rejected no
    translated row in our runs)."""
    scope: Literal["generated", "all"] = "generated"
    """Rows that ``lid`` and ``length_ratio`` check: only generated rows (op other than orig and
    oversample, whose rows are verbatim copies of orig rows) or all."""
    lid_langs: list[str] = []
    """Languages the language-ID filter checks (rows of other languages pass); empty checks all.
    List only languages langid judges well: it knows no wo, ha, ig, yo (an error) and names
    Kinyarwanda right for only 29-53% of news sentences even at 30-80 characters (rw rows would
    be rejected wholesale; see ``lrl.generate.filters.lid``)."""
    lid_candidates: list[str] = []
    """Restrict langid to these languages (ISO 639-1 as langid names them); empty uses all 97."""
    lid_min_prob: float = Field(default=0.0, ge=0, le=1)
    """Reject when the probability of the expected language is below this (0 only checks the top)."""
    lid_min_chars: int = Field(default=50, ge=0)
    """Rows shorter than this (characters, whitespace collapsed) are too short to judge and pass
    the language-ID filter. Language ID is unreliable on short text: langid named Swahili right
    for 40% of 20-character news prefixes, 93% at 50; judging every WikiANN row (mostly entity
    names) rejected 59% of genuine sw train rows and 88% of rw, with 50 it rejects 2.8% and 8%.
    0 judges every row."""
    min_ratio: float = Field(default=0.33, gt=0)
    """Smallest allowed length(translation) / length(source), in characters (NFC). Scripts differ
    a lot: on the 1,012 FLORES devtest pairs, am (Ethiopic syllables) / en is 0.39-1.08 (median
    0.66), while ug, ha, ky, sw, tk, wo, yo / en lie within 0.43-2.26. The old default 0.5
    rejected 21 genuine en->am pairs (2%); 0.33 and ``max_ratio`` 3 reject none of these 8
    pairs in either direction, and 0.1-0.5% of Tatoeba's short sentences (eng-uig 4 of 3,021,
    some misaligned; amh 1 of 202), against 1-17% with 0.5 and 2. The price: of translations cut
    to a quarter, 93-97% are still rejected (ug, sw, yo; 0.5 caught all); outputs cut at
    ``max_length`` are rejected by translation itself."""
    max_ratio: float = Field(default=3.0, gt=0)
    """Largest allowed length(translation) / length(source), in characters (NFC); 3 is
    ``1 / min_ratio``, so the check treats both directions alike (see ``min_ratio``)."""
    dedup_case: bool = False
    """Exact dedup is case-sensitive (default: case-folded). Both dedup filters compare text in
    Unicode NFC with whitespace collapsed; accents and tone marks always count (Yoruba ``ọkọ``,
    ``ọkọ̀``, ``ọ̀kọ̀`` are three words)."""
    dedup_scope: Literal["all", "generated"] = "all"
    """Rows that ``dedup`` and ``near_dedup`` may reject: ``all``, or only ``generated`` ones.
    With ``generated`` the originals still count (a generated row that repeats one is rejected)
    but are never rejected themselves: 16% of WikiANN train sentences (ug, wo, am, ig, rw, sw, yo
    together) repeat another, and ``all`` drops those labelled rows too. Augmenting oversampled
    copies makes many repeats (each copy is augmented with its own seed; a short sentence has few
    variants): on the multilingual recipe 15% of augmented rows, 80-85% of am and yo swaps."""
    near_threshold: float = Field(default=0.8, gt=0, le=1)
    """Jaccard similarity (of word shingles) above which two rows are near-duplicates."""
    shingle: int = Field(default=3, gt=0)
    """Words per shingle for near-duplicate detection."""
    num_perm: int = Field(default=64, gt=0)
    """MinHash permutations (a multiple of ``bands``)."""
    bands: int = Field(default=16, gt=0)
    """LSH bands: rows that agree on all hashes of one band become candidates."""

    @model_validator(mode="after")
    def _check(self) -> FilterConfig:
        if self.min_ratio >= self.max_ratio:
            raise ValueError(f"min_ratio {self.min_ratio} must be below max_ratio {self.max_ratio}")
        if self.num_perm % self.bands:
            raise ValueError(f"num_perm {self.num_perm} is not a multiple of bands {self.bands}")
        for code in self.lid_langs:
            check_lang(code)
        return self
