"""The shape of the finetune stage's ``results.json["labels"]`` (``lrl.train.finetune`` module
docstring): one list when every group trained with the same labels, ``{group: labels}`` when a
per-language job of NER and POS languages gave each scheme its own; either way the labels each saved
model states (``config.json`` ``id2label``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _ud_slice(data_root: Path, folder: Path, split: str, n: int) -> Path:
    blocks = (data_root / f"ud/ug/{split}.conllu").read_text(encoding="utf-8").split("\n\n")[:n]
    out = folder / f"{split}.conllu"
    out.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return out


def _id2label(model: Path) -> list[str]:
    saved = json.loads((model / "config.json").read_text())["id2label"]
    return [saved[str(i)] for i in range(len(saved))]


def test_mixed_scheme_job_writes_labels_per_group_as_its_models_have_them(data_root, tmp_path, ray_session):
    """ug as UD Uyghur UPOS tags (``scheme: tokens``), wo as WikiANN NER: a dict keyed by group, each
    entry the group's model's labels (B-X per tag for the tagger, BIO for the NER model); then a
    NER-only job of the same wo data: one list."""
    pytest.importorskip("transformers")
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune

    train, dev = _ud_slice(data_root, tmp_path, "train", 40), _ud_slice(data_root, tmp_path, "dev", 10)
    wo = [f"{{path: {data_root / 'wikiann/ug/train'}, lang: wo, format: conll}}",
          f"{{path: {data_root / 'wikiann/ug/dev'}, lang: wo, split: dev, format: conll}}"]
    ug = [f"{{path: {train}, lang: ug, scheme: tokens}}", f"{{path: {dev}, lang: ug, split: dev, scheme: tokens}}"]
    common = [f"output.root={tmp_path / 'runs'}", "evaluate.seeds=[0]",
              "finetune={model: 'preset:tiny', max_steps: 2, eval_every: 2, batch_size: 8, lr: 0.003,"
              " max_length: 32, num_cpus: 1}"]
    mixed = Path(run_finetune(StageContext(load_job(None, [f"data.ner=[{', '.join(ug + wo)}]", *common]))))
    labels = json.loads((mixed / "results.json").read_text())["labels"]
    assert isinstance(labels, dict) and set(labels) == {"ug", "wo"}
    assert all(lab.startswith("B-") for lab in labels["ug"]) and "O" in labels["wo"]
    assert all(labels[g] == _id2label(mixed / "models" / g) for g in ("ug", "wo"))
    ner = Path(run_finetune(StageContext(load_job(None, [f"data.ner=[{', '.join(wo)}]", *common]))))
    labels = json.loads((ner / "results.json").read_text())["labels"]
    assert isinstance(labels, list) and labels == _id2label(ner / "models" / "wo")
