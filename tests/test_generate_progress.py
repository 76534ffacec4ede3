"""Translation progress in the generate stage (rows done of the total, rows/s, ETA, every
``progress.EVERY_S`` seconds) and the text rows' split per op in the manifest and the summary."""

from __future__ import annotations

import contextlib
import io
import json
import re
import time
from pathlib import Path

import pytest

from lrl.generate.translate import progress
from lrl.job import load_job

EN, TEXT_LINES = 40, 25


@pytest.fixture(scope="module")
def translated(ray_session, tmp_path_factory):
    """A generate run with translate-train and back-translation (labelled and text rows) on the fake
    translator, progress lines every 0.05 s: (output folder, manifest, everything printed)."""
    from lrl.generate.stage import run_generate
    from lrl.pipeline.stage import StageContext

    tmp = tmp_path_factory.mktemp("progress")
    (tmp / "en.conll").write_text("".join(f"John{i}\tB-PER\nwent\tO\nto\tO\nParis\tB-LOC\n\n" for i in range(EN)),
                                  encoding="utf-8")
    (tmp / "en.txt").write_text("".join(f"the town number {i} is by the river\n" for i in range(TEXT_LINES)),
                                encoding="utf-8")
    cfg = load_job(None, [f"data.ner=[{{path: {tmp / 'en.conll'}, lang: en}}]",
                          f"data.text=[{{path: {tmp / 'en.txt'}, lang: en}}]", "translate.enabled=true",
                          "translate.train={sources: [en], target: ug, model: {backend: fake}}",
                          # reverse there, upper case back: a paraphrase unlike its source (not a duplicate)
                          "translate.backtranslate={lang: en, pivot: fr, to_pivot: {backend: fake}, "
                          "from_pivot: {backend: fake, fake: {mode: upper}}}",
                          "augment.ops=[]", f"output.root={tmp / 'runs'}"])
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setattr(progress, "EVERY_S", 0.05)
        path = run_generate(StageContext(cfg))
    return Path(path), json.loads((Path(path) / "manifest.json").read_text()), out.getvalue()


def test_translation_prints_rows_rate_and_a_final_count(translated):
    _, _, printed = translated
    lines = [ln for ln in printed.splitlines() if ln.startswith("generate: translat")]
    # Every row the steps translate is counted by the workers, against the total known on the driver.
    assert (f"generate: translated labelled rows: translate {EN}/{EN} rows, backtranslate {EN}/{EN} rows in "
            in printed), lines
    assert f"generate: translated text rows: backtranslate {TEXT_LINES}/{TEXT_LINES} rows in " in printed, lines
    final = [ln for ln in lines if ln.startswith("generate: translated ")]
    assert len(final) == 2 and all(re.search(r" in \d+s, \d+\.\d rows/s$", ln) for ln in final), final
    # While it runs: a line per interval (0.05 s here), not one per batch.
    assert any(ln.startswith("generate: translating ") for ln in lines), lines


def test_progress_lines_every_interval_with_rate_and_eta(ray_session, monkeypatch):
    """The driver's thread prints a line each ``EVERY_S`` with the rows so far, the rate and the ETA."""
    monkeypatch.setattr(progress, "EVERY_S", 0.05)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        p = progress.TranslationProgress("labelled rows", {"translate": 100})
        with p:
            p.tally("translate").add(40)
            time.sleep(0.4)
    lines = out.getvalue().splitlines()
    running = [ln for ln in lines if "translate 40/100 rows (40%)" in ln]
    assert len(running) >= 2, lines  # one per interval
    assert all(re.search(r", \d+\.\d rows/s, ETA \d+s$", ln) for ln in running), running
    assert lines[-1].startswith("generate: translated labelled rows: translate 40/100 rows in "), lines


def test_progress_line_rate_and_eta():
    line = progress.progress_line("text rows", {"backtranslate": 200_000}, {"backtranslate": 50_000}, 1000.0)
    assert line == ("generate: translating text rows: backtranslate 50,000/200,000 rows (25%), "
                    "50.0 rows/s, ETA 50m00s")
    waiting = progress.progress_line("text rows", {"backtranslate": 10}, {}, 12.0)
    assert "0/10 rows (0%), 12s in, no batch done yet" in waiting
    # A retried task counts again: never more than the total.
    assert "10/10 rows in 1h01m, 0.0 rows/s" in progress.progress_line("x", {"t": 10}, {"t": 12}, 3700, final=True)


def test_manifest_splits_text_rows_per_op(translated):
    from lrl.generate.write import read_rows

    path, m, printed = translated
    ops = read_rows(str(path), "text").column("op").to_pylist()
    assert m["text_rows_per_op"] == {"backtranslate": TEXT_LINES, "orig": TEXT_LINES} == \
        {op: ops.count(op) for op in set(ops)}
    assert m["text_rows_per_lang_op"] == {"en/backtranslate": TEXT_LINES, "en/orig": TEXT_LINES}
    assert m["text_rows"] == sum(m["text_rows_per_op"].values())  # the total stays as it was
    assert f"  text_rows_per_op: backtranslate={TEXT_LINES}, orig={TEXT_LINES}" in printed
