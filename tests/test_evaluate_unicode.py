"""The evaluate stage reads its splits in ``data.unicode``'s form (``lrl.data.nfc``): the tokens it
scores and writes next to their predictions differ between ``nfc`` and ``none`` for a decomposed
file, so the two settings are two outputs. With the setting out of the hash, the ``nfc`` folder
was reused under ``none`` (and the folders written before NFC reading under ``nfc``)."""

from __future__ import annotations

import unicodedata


def test_data_unicode_names_another_evaluate_output(tmp_path, monkeypatch):
    import lrl.evaluate.command as command
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "dev.conll").write_text(unicodedata.normalize("NFD", "Ọbáfẹ́mi\tB-PER\nọkọ̀\tO\n"), encoding="utf-8")
    scored: list[list[str]] = []

    def evaluate_model(model_dir, table, out_dir, name, *args, **kwargs):  # no model: what it is given
        scored.append(table.column("tokens").to_pylist()[0])
        return {"f1": 0.0}

    monkeypatch.setattr(command, "evaluate_model", evaluate_model)
    folders = []
    for form in ("nfc", "none"):
        cfg = load_job(None, [f"data.root={tmp_path}", f"output.root={tmp_path / 'runs'}", f"data.unicode={form}",
                              "data.ner=[{path: dev.conll, lang: yo, split: dev}]", f"evaluate.model={tmp_path / 'model'}"])
        folders.append(command.run_evaluate(StageContext(cfg), quiet=True))
    assert folders[0] != folders[1]
    assert [len(t) for t in scored[0]] == [8, 4] and [len(t) for t in scored[1]] == [11, 6]  # composed, then as given
