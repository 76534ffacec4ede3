"""Generate steps for translation: translate-train and back-translation (labelled and text).

Each step maps a Ray Dataset of schema rows to one with the new rows added (``op`` =
``translate`` / ``backtranslate``, ``parent_id`` and ``seed`` set) and the output columns of
``columns.py``; rows the projection could not recover carry a ``reject`` reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lrl.generate.mt_config import BackTranslateConfig, ProjectionConfig, TranslateTrainConfig
from lrl.generate.translate.ops import hop, mark_batch, project_batch, selected_rows

if TYPE_CHECKING:
    import ray.data


class TranslateTrain:
    """Translate labelled rows of the source languages into the target, labels by markers."""

    name = "translate"
    #: Counts the translated rows for the progress lines (``progress.translation_progress`` sets it).
    tally: Any = None

    def __init__(self, cfg: TranslateTrainConfig, proj: ProjectionConfig, seed: int = 0) -> None:
        self.cfg, self.proj, self.seed = cfg, proj, seed

    def progress_total(self, table: pa.Table) -> int:
        """The rows of the stage's input ``table`` this step translates."""
        return selected_rows(table, list(self.cfg.sources))

    def apply(self, ds: ray.data.Dataset) -> ray.data.Dataset:
        c = self.cfg
        pre = (mark_batch, {"langs": list(c.sources), "markers": self.proj.markers})
        post = (project_batch, {"proj": self.proj, "lang": c.target, "op": "translate", "seed": self.seed,
                                "keep_source": c.keep_source})
        return hop(ds, c.model, c.sources[0], c.target, self.seed, post, "translate.train.model",
                   by_lang=len(c.sources) > 1, pre=pre, tally=self.tally)


class BackTranslate:
    """Paraphrase rows of one language through a pivot and back; labelled rows keep their labels
    through the same markers, text rows (``text`` column) are translated as they are."""

    name = "backtranslate"
    #: Counts the rows back from the pivot for the progress lines (``progress.translation_progress``).
    tally: Any = None

    def __init__(self, cfg: BackTranslateConfig, proj: ProjectionConfig, seed: int = 0) -> None:
        self.cfg, self.proj, self.seed = cfg, proj, seed

    def progress_total(self, table: pa.Table) -> int:
        """The rows of the stage's input ``table`` this step paraphrases (read rows of its language)."""
        return selected_rows(table, [self.cfg.lang], only_read=True)

    def apply(self, ds: ray.data.Dataset) -> ray.data.Dataset:
        c = self.cfg
        # Only the rows read from the inputs: translate-train's rows in this language are machine
        # output already, and paraphrasing them stacked three translation hops on one sentence.
        pre = (mark_batch, {"langs": [c.lang], "markers": self.proj.markers, "only_read": True})
        ds = hop(ds, c.to_pivot, c.lang, c.pivot, self.seed, setting="translate.backtranslate.to_pivot", pre=pre)
        post = (project_batch, {"proj": self.proj, "lang": c.lang, "op": "backtranslate", "seed": self.seed,
                                "keep_source": True})
        return hop(ds, c.from_pivot, c.pivot, c.lang, self.seed, post, "translate.backtranslate.from_pivot",
                   tally=self.tally)
