"""``lrl run``'s check, before its first stage, that the ``data.ner`` sources the stages to run
will read name files: without a generate stage nothing looked at them until finetune read them,
after the tokenizer and pretraining stages (hours), and ``lrl run --dry-run`` passed a missing
``nope.conll`` or ``./nope_hf`` (``format: hf``) without a word. A generate stage to run checks
every source itself before any work (``lrl.generate.stage.input_fingerprints``, ``check_held_out``).

A finished output is no way around a missing source: finetune, tune and evaluate read their
sources before they name their output folder (by the rows' or files' fingerprints), so a rerun
would stop on it too."""

from __future__ import annotations

from lrl.data.config import HELDOUT
from lrl.data.files import InputError, resolve
from lrl.data.remote import is_remote
from lrl.job import JobConfig
from lrl.pipeline.preflight import PreflightError


def source_readers(cfg: JobConfig, todo: list[str], alone: bool = False) -> dict[int, list[str]]:
    """``{index in data.ner: the stages of todo that read the source}``, as the stages choose them:
    finetune and tune read the dev sources, and the training ones (every split but ``HELDOUT``)
    unless their rows come from a generate output (``finetune.data``, or a generate stage in
    ``pipeline.stages``: ``lrl.tune.splits.language_splits``); evaluate reads the sources of the
    splits in ``evaluate.splits``. ``alone``: a stage command (``lrl finetune``), which gets no
    generate stage's output whatever ``pipeline.stages`` says, so only ``finetune.data`` counts."""
    from_sources = not cfg.finetune.data and (alone or "generate" not in cfg.pipeline.stages)
    out: dict[int, list[str]] = {}
    for i, src in enumerate(cfg.data.ner):
        trains = src.split == "dev" or (src.split not in HELDOUT and from_sources)
        readers = [s for s in todo if (s in ("finetune", "tune") and trains)
                   or (s == "evaluate" and src.split in cfg.evaluate.splits)]
        if readers:
            out[i] = readers
    return out


def check_sources(cfg: JobConfig, todo: list[str], alone: bool = False) -> list[str]:
    """A ``PreflightError`` naming every ``data.ner`` source that a stage of ``todo`` will read
    (``source_readers``) and that names nothing: its index, its path as resolved against
    ``data.root``, the reason (``lrl.data.readers.check_source``: existence and matching only,
    nothing is read). Plan lines for sources on a store that cannot be reached from here (the stage
    says it when it reads them). Nothing when a generate stage is to run: it checks them first.
    Before that, with or without one: ``check_evaluate_splits``. ``alone``: for a stage command's
    ``--dry-run`` (``lrl.pipeline.plan``), which said nothing of a missing source that the command
    then stopped on; the sources as that command reads them (``source_readers``)."""
    check_evaluate_splits(cfg, todo, alone)
    if "generate" in todo:
        return []
    from lrl.data.readers import check_source

    problems, lines = [], []
    for i, readers in source_readers(cfg, todo, alone).items():
        src = cfg.data.ner[i]
        name = f"data.ner[{i}] (lang {src.lang}, split {src.split}), read by {' and '.join(readers)}"
        path = resolve(src.path, cfg.data.root)
        try:
            check_source(src, cfg.data.root, f"{src.split} file not found")
        except InputError as exc:
            if is_remote(path) and isinstance(exc.__cause__, (OSError, ValueError)):  # a pattern's listing failed
                lines.append(f"{name}: not checked, {exc}")
            else:
                problems.append(f"{name}: {exc}")
        except (OSError, ValueError) as exc:  # a store out of reach, a URI pyarrow cannot open
            lines.append(f"{name}: not checked, {path}: {exc}")
    if problems:
        when = "" if alone else " (after the stages before them)"
        raise PreflightError(f"data.ner names inputs that do not exist, which the stages to run would stop on{when}: "
                             + "; ".join(problems))
    return lines


def check_evaluate_splits(cfg: JobConfig, todo: list[str], alone: bool = False) -> None:
    """A ``PreflightError`` when an evaluate stage to run would score no split: no ``data.ner``
    source has a split of ``evaluate.splits`` (a typo, ``[tst]``; the splits of WikiANN ug and wo
    hold no ``test``). The stage said so only when it ran, after every stage before it (hours of
    pretraining and fine-tuning), and ``--dry-run`` passed it. A split of several that no source
    has is skipped, as the setting says (its default ``[dev, test]`` fits jobs with and without a
    test split). ``alone``: for ``lrl evaluate`` (``run_evaluate`` and the command's ``--dry-run``),
    where no stage runs before it: its dry run passed such a split, and the command said it only
    after listing the models, or said first that ``evaluate.model`` was unset."""
    if "evaluate" not in todo:
        return
    have = sorted({src.split for src in cfg.data.ner})
    if not set(cfg.evaluate.splits) & set(have):
        after = "" if alone else " and stop after the stages before it"
        raise PreflightError(f"evaluate.splits={cfg.evaluate.splits}: no data.ner source has such a split (theirs: "
                             f"{have}), so the evaluate stage would score nothing{after}; name a split the data has")


__all__ = ["check_evaluate_splits", "check_sources", "source_readers"]
