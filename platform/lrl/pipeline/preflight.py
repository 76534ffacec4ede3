"""What ``lrl run`` checks in the config before its first stage: mistakes that would otherwise
stop a late stage only after the earlier ones ran (hours of pretraining before tune says a
language has no dev data), or make it leave a language out without a word."""

from __future__ import annotations

from lrl.job import JobConfig


class PreflightError(ValueError):
    """A config the run would certainly fail on, found before any stage ran."""


def check_languages(cfg: JobConfig, todo: list[str]) -> list[str]:
    """Check the languages finetune or tune would train against the ``data.ner`` splits.

    Both select models on dev sentences, which come only from ``data.ner`` sources with
    ``split: dev`` (``lrl.tune.splits.language_splits``): a language asked for without one stops
    that stage, and a language with training sentences but no dev ones is left out of training,
    evaluation and the report. Raises ``PreflightError`` for the first, returns warning lines for
    the second."""
    stage = next((s for s in ("finetune", "tune") if s in todo), None)
    if stage is None or not cfg.data.ner:  # no data.ner at all: the stage's own error says what it needs
        return []
    dev = sorted({s.lang for s in cfg.data.ner if s.split == "dev"})
    if not dev:
        raise PreflightError(f"{stage} selects models on dev sentences, and data.ner has no source with "
                             "split: dev; add one per language (e.g. {path: ..., lang: ug, split: dev})")
    train = None if cfg.finetune.data else _train_languages(cfg)  # None: from that folder, unknown here
    asked, setting = cfg.finetune.languages, "finetune.languages"
    if stage == "tune" and cfg.tune.languages:
        asked, setting = cfg.tune.languages, "tune.languages"
    if asked:
        lacking = [f"{lang} (no {' and no '.join(what)})" for lang in asked
                   if (what := [w for w, have in (("train", train), ("dev", dev)) if have is not None
                                and lang not in have])]
        if lacking:
            raise PreflightError(f"{setting}: {', '.join(lacking)} in data.ner, so {stage} would stop once the "
                                 f"stages before it ran (train languages: {sorted(train or [])}, dev languages: "
                                 f"{dev}); add a split: train and a split: dev source for each, or leave them out")
        return []
    no_dev = sorted((train or set()) - set(dev))
    if not no_dev:
        return []
    return [f"warning: data.ner has training sentences but no split: dev source for {no_dev}: {stage} "
            f"trains, evaluates and reports only the languages with dev sentences ({dev}). Add a dev "
            "source for each (or check the lang codes of data.ner match)."]


def _train_languages(cfg: JobConfig) -> set[str]:
    """Languages with training sentences: ``data.ner`` train sources, and the target languages the
    generate stage translates into (their rows are training rows too)."""
    langs = {s.lang for s in cfg.data.ner if s.split == "train"}
    if cfg.translate.enabled:
        if cfg.translate.train is not None:
            langs.add(cfg.translate.train.target)
        if cfg.translate.backtranslate is not None:
            langs.add(cfg.translate.backtranslate.lang)
    return langs


__all__ = ["PreflightError", "check_languages"]
