"""The augment step the generate runner chains (``lrl.generate.base.Step``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from lrl.config import ConfigError
from lrl.generate.augment.batch import AugmentBatch, augment_batch, job_seed
from lrl.generate.augment.resources import AugmentResources, build_resources
from lrl.generate.base import map_slices
from lrl.generate.config import AugmentConfig

if TYPE_CHECKING:
    import ray.data

    from lrl.job import JobConfig


@dataclass
class AugmentStep:
    """Adds the rows of every configured op; input rows pass through unchanged."""

    cfg: AugmentConfig
    resources: AugmentResources
    seed: int
    name: str = "augment"
    count: bool = False
    """Also hand the attempt counts per op, language and no-row reason to the generate stage's
    writer, in the ``lrl.generate.write.ATTEMPTS`` column (a reader of the rows leaves it off)."""

    def apply(self, ds: ray.data.Dataset) -> ray.data.Dataset:
        import ray

        # One copy in the object store; workers fetch it once per process (op.resolve_resources).
        ref = ray.put(self.resources)
        if self.cfg.compute == "actors":
            return map_slices(ds, AugmentBatch, self.cfg.batch_size,
                              compute=ray.data.ActorPoolStrategy(size=self.cfg.num_actors),
                              constructor_kwargs={"cfg": self.cfg, "resources": ref, "seed": self.seed,
                                                  "count": self.count})
        return map_slices(ds, augment_batch, self.cfg.batch_size, cfg=self.cfg, resources=ref, seed=self.seed,
                          count=self.count)


def augment_steps(cfg: JobConfig, train: pa.Table, texts: pa.Table | None = None,
                  count: bool = False, names_from: pa.Table | None = None) -> list[AugmentStep]:
    """Steps for ``cfg.augment`` (none when no ops are configured); ``count``: see ``AugmentStep``.

    ``train`` (NER_SCHEMA rows) gives the entity and token inventories; ``texts`` (TEXT_SCHEMA
    rows, e.g. from ``data.text``) gives corpus-neighbour synonyms for the synonym/insert ops.
    Resources are built here, on the driver, once."""
    aug = cfg.augment
    if not aug.ops:
        return []
    translated = translated_langs(cfg)
    resources = build_resources(aug, train, texts, cfg.data.root, names_from, translated)  # see build_resources
    if "synonym" in aug.ops and not resources.synonyms:
        # A ConfigError (config against data): the CLI prints it as one line, not a traceback.
        raise ConfigError("augment.ops has 'synonym' but no language has synonyms: give augment.lexicons "
                          "or data.text (with augment.neighbours.enabled)")
    if "synonym" in aug.ops:
        langs = set(train.column("lang").to_pylist()) | set(translated)
        _warn_without_synonyms(sorted(langs - set(resources.synonyms)))
    return [AugmentStep(aug, resources, job_seed(aug, cfg.seed), count=count)]


def translated_langs(cfg: JobConfig) -> list[str]:
    """The language translate-train writes labelled rows in, which augment sees after it
    (``stage.build_steps``): its synonyms are built even when no input row has that language (the
    zero-shot case: sw and yo rows translated into ug). Back-translation is left out: it only
    paraphrases rows of a language the inputs have. ``replay.stage_resources`` builds the same."""
    t = cfg.translate
    return [t.train.target] if t.enabled and t.train is not None else []


def _warn_without_synonyms(langs: list[str]) -> None:
    """Some languages have no synonyms (no lexicon, no text, or too little text for neighbours):
    synonym made no row for them, and the console's attempt line, summed over the languages, only
    showed more ``not_applicable`` (WikiANN ig and rw beside am, sw, yo with text: 400 of 1,435)."""
    if langs:
        from lrl.config import config_warning

        config_warning(f"warning: augment.ops has 'synonym' but {', '.join(langs)} have no synonyms (no "
                       "augment.lexicons entry, no data.text to learn neighbours from): synonym makes no rows for "
                       "them")
