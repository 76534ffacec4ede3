"""A tiny finetune job shared by tests: slices of WikiANN ug and wo as CoNLL files and a saved
scratch encoder, and the job config that fine-tunes it for 2 steps with one seed."""

from __future__ import annotations

from pathlib import Path


def write_job(tmp: Path, data_root: Path, train: int, dev: int) -> Path:
    """``train``/``dev`` sentences of WikiANN ug and wo under ``tmp``, and ``tmp/enc``: a saved
    encoder (a ``preset:`` one is built from every language's sentences, so adding a language would
    be another encoder, and rightly train every language again)."""
    from lrl.data.readers import read_conll
    from lrl.train.finetune_scratch import build_scratch_encoder

    words = []
    for lang in ("ug", "wo"):
        for split, n in (("train", train), ("dev", dev)):
            rows = read_conll(str(data_root / f"wikiann/{lang}/{split}"), lang, split).table.slice(0, n).to_pylist()
            text = "\n\n".join("\n".join(f"{t}\t{g}" for t, g in zip(r["tokens"], r["tags"])) for r in rows)
            (tmp / f"{lang}_{split}.conll").write_text(text + "\n", encoding="utf-8")
            words += [t for r in rows for t in r["tokens"]] if split == "train" else []
    build_scratch_encoder(tmp / "enc", [words], ["ug", "wo"], vocab_size=300, hidden=32, layers=2)
    return tmp


def job_cfg(job: Path, root: Path, langs: tuple[str, ...], *extra: str):
    """The job fine-tuning ``job``'s encoder on ``langs`` (2 steps, seed 0), outputs under ``root``."""
    from lrl.job import load_job

    ner = ", ".join(f"{{path: {job}/{lang}_{split}.conll, lang: {lang}, split: {split}}}"
                    for lang in langs for split in ("train", "dev"))
    return load_job(None, [f"data.ner=[{ner}]", f"output.root={root}", f"finetune.model={job / 'enc'}",
                           "finetune.max_steps=2", "finetune.eval_every=1", "finetune.batch_size=8",
                           "finetune.max_length=64", "evaluate.seeds=[0]", *extra])
