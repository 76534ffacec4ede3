"""Fake stages for the ``lrl run`` tests: each writes a real ``StageOutput`` addressed by its config
section and upstream paths, so skipping, resuming and --from/--only behave as with real stages."""

from __future__ import annotations

import json
from pathlib import Path

from lrl.data.output import StageOutput
from lrl.job import load_job

STAGES = ["generate", "tokenizer", "pretrain", "finetune", "evaluate", "report"]


class FakeStages:
    """Stages that write a StageOutput addressed by their config section and upstream paths, and
    count the times they actually did work (not the times they were called)."""

    def __init__(self, fail_once: str | None = None):
        self.work: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self.fail_once = fail_once

    def make(self, name: str):
        def run(ctx) -> str:
            self.calls[name] = self.calls.get(name, 0) + 1
            section = ctx.cfg.model_dump(mode="json").get(name, {})
            out = StageOutput(ctx.cfg.output.root, name, section, inputs=sorted(ctx.upstream.items()))
            if out.done:
                return out.path
            self.work[name] = self.work.get(name, 0) + 1
            if self.fail_once == name:
                self.fail_once = None
                out.tmp  # noqa: B018 - a half-written folder, as a real crash would leave
                raise RuntimeError(f"{name} crashed")
            (Path(out.tmp) / "upstream.json").write_text(json.dumps(ctx.upstream))
            return out.commit({"rows": 1})

        return run

    def registry(self) -> dict:
        return {name: self.make(name) for name in ["generate", "tokenizer", "pretrain", "finetune",
                                                   "tune", "evaluate", "report"]}


def _ner(tmp_path) -> str:
    """Labelled train and dev sources (the fake stages read nothing; a dry run fingerprints them):
    finetune and tune need a dev split in the config before any stage runs (lrl.pipeline.preflight)."""
    folder = Path(tmp_path) / "ner"
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev"):
        (folder / f"ug-{split}.conll").write_text("Qeshqer\tB-LOC\nshehiri\tO\n", encoding="utf-8")
    return (f"data.ner=[{{path: {folder}/ug-train.conll, lang: ug, split: train}}, "
            f"{{path: {folder}/ug-dev.conll, lang: ug, split: dev}}]")


def _cfg(tmp_path, *extra):
    return load_job(None, [f"output.root={tmp_path / 'runs'}", f"pipeline.stages={STAGES}".replace("'", ""),
                           _ner(tmp_path), *extra])
