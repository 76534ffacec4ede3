"""The scripts in benchmarks/ still run on today's code (slow: each starts its own process).

Nothing else runs them, so a renamed function, a new required config field or a changed return
type in platform/ would go unnoticed until someone re-measures a figure in docs/benchmarks.md.
Each test runs one script with the smallest settings that still go through its whole code path
and checks what it wrote or printed. The numbers themselves mean nothing at these sizes: only
their presence and sign are checked.

Left out (their tiny runs take longer than ~30 s here, or need what a test should not use):
- bench_augment_ops.py: its neighbour section always reads the full mono/ug.txt and mono/wo.txt
  (~30 s however few rows);
- bench_embedding_init.py: ~60 s with one variant pair and one step (MiniLM held-out passes);
- bench_train_worker.py: ~100 s (a TorchTrainer per side, 15 s settling on the train-active side);
- bench_quickstart.py: ~45 s, two full quickstarts with no smaller setting;
  tests/test_quickstart.py already runs the same pipeline end to end;
- gpu_carry.py: packing downloads wheels with pip and builds DeepSpeed's (~60 s); its packing and
  unpacking functions are tested in tests/test_gpu_carry.py.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture
def run(data_root, tmp_path):
    """``run(script, *args)``: the script's CompletedProcess (text), after asserting exit code 0.

    TMPDIR points into ``tmp_path`` so that whatever a script leaves in its ``mkdtemp`` folders
    (a killed one cannot remove them) is cleaned with the test's; Ray keeps its own temp root,
    because its socket paths must stay short."""
    env = {**os.environ, "LRL_DATA_ROOT": str(data_root), "TMPDIR": str(tmp_path),
           "RAY_TMPDIR": os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp",
           "RAY_USAGE_STATS_ENABLED": "0", "TOKENIZERS_PARALLELISM": "false"}

    def go(script: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(REPO / "benchmarks" / script), *args]
        res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        assert res.returncode == 0, f"{' '.join(cmd)} exited {res.returncode}:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
        return res

    return go


def _numbers(pattern: str, text: str) -> list[float]:
    """Every float that ``pattern``'s first group captures in ``text`` (at least one)."""
    found = [float(x) for x in re.findall(pattern, text, re.M)]
    assert found, f"no line matches {pattern!r} in:\n{text[-2000:]}"
    return found


def test_bench_tokenizer(run, data_root, tmp_path):
    out = tmp_path / "tok.json"
    run("bench_tokenizer.py", "--data-root", str(data_root), "--langs", "ug,wo", "--lines", "500",
        "--held", "100", "--extend-vocab", "500", "--train-vocab", "1000", "--json", str(out))
    res = json.loads(out.read_text())
    assert res["added_to_minilm"] > 0
    assert set(res["train_seconds"]) == {"minilm", "minilm+ext", "wordpiece", "unigram"}
    for lang in ("ug", "wo"):
        for kind in ("mono", "flores"):
            row = res["langs"][lang][kind]
            assert set(row) == {"char", "minilm", "minilm+ext", "wordpiece", "unigram"}
            assert all(r["pieces_per_word"] >= 1 for r in row.values())
    # pieces learned on Uyghur text lower MiniLM's unknown rate on Uyghur
    assert res["langs"]["ug"]["mono"]["minilm+ext"]["unk_rate"] < res["langs"]["ug"]["mono"]["minilm"]["unk_rate"]
    assert all(v > 0 for v in res["encode_speed_vs_minilm"].values())


def test_bench_keep_accents(run, data_root, tmp_path):
    out = tmp_path / "accents.json"
    run("bench_keep_accents.py", "--data-root", str(data_root), "--json", str(out))
    res = json.loads(out.read_text())
    assert len(res) == 9  # three text sets, three tokenizers
    for text_set in ("wikiann", "flores", "mono held-out"):
        plain, kept = res[f"{text_set}/extended"], res[f"{text_set}/extended+keep_accents"]
        assert kept["types_sharing"] < plain["types_sharing"] and kept["changed"] < plain["changed"]


def test_bench_finetune_step(run, data_root):
    res = run("bench_finetune_step.py", "--data", str(data_root), "--model", "preset:micro", "--precision", "bf16",
              "--steps", "4", "--rounds", "1", "--batch", "2")
    ms = _numbers(r"^\s+(?:torch defaults|lrl \(train_tagger\))\s+kernel \S+\s+[\d.]+\s+-> ([\d.]+) ms", res.stdout)
    assert len(ms) == 2 and all(m > 0 for m in ms)


def test_bench_mfu(run):
    res = run("bench_mfu.py", "--seconds", "0.5", "--batch", "2", "--seq-len", "16", "--precision", "fp32")
    report = json.loads(res.stdout.split("\n\npreset")[0])
    (row,) = report["results"]
    assert row["steps"] > 0 and row["tokens_per_s"] > 0 and row["flops_per_token"] > 0
    assert row["peak_flops"] == max(row["peak_before"], row["peak_after"]) > 0
    assert 0 < row["mfu"] < 1


def test_bench_augment(run, data_root, tmp_path):
    out = tmp_path / "augment.json"
    run("bench_augment.py", "--data", str(data_root), "--rows", "400", "--files", "2", "--repeats", "1",
        "--nlpaug-rows", "0", "--out", str(tmp_path / "work"), "--json", str(out))
    res = json.loads(out.read_text())
    assert set(res) == {"plain", "pool", "ray", "pool-freeze"}
    written = {r["rows_out"] for r in res.values()}
    assert len(written) == 1 and written.pop() > 400  # the originals and the ops' rows, the same by every method
    assert all(r["rows_in"] == 400 and r["rows_per_s"] > 0 for r in res.values())


def test_bench_stream_memory(run, data_root, tmp_path):
    out = tmp_path / "stream.json"
    run("bench_stream_memory.py", "--data", str(data_root), "--rows", "10000", "--out", str(tmp_path / "work"),
        "--json", str(out))
    res = json.loads(out.read_text())
    assert set(res) == {"baseline (rows/100)", "full"}
    for r in res.values():
        assert r["rows_oversampled"] == 10000 and r["rows_written"] > 10000
        assert r["peak_pss_gib"] > 0 and r["peak_rss_sum_gib"] >= r["peak_pss_gib"] and r["processes"] > 1
        assert set(r["rows_per_op"]) == {"orig", "oversample", "swap"}


def test_bench_ner_f1(run, data_root, tmp_path):
    out = tmp_path / "ner.jsonl"
    res = run("bench_ner_f1.py", "--data", str(data_root), "--langs", "wo", "--sizes", "100", "--seeds", "0",
              "--steps-100", "2", "--out", str(out), "--work", str(tmp_path / "work"))
    rows = {r["condition"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {"lexicon", "scratch", "augmented"}
    assert all(0 <= r["dev_f1"] <= 1 and r["train_rows"] >= 100 for r in rows.values())
    assert rows["lexicon"]["dev_f1"] > 0.1  # most-frequent-tag floor on WikiANN wo (~0.45)
    assert rows["augmented"]["train_rows"] > rows["scratch"]["train_rows"]
    assert "DEV span F1" in res.stdout and "pretrained: skipped" in res.stdout


def test_bench_tune(run, data_root, tmp_path):
    out = tmp_path / "tune.jsonl"
    run("bench_tune.py", "--data", str(data_root), "--lang", "wo", "--train-rows", "10", "--epochs", "1",
        "--lrs", "1", "--batch-sizes", "16", "--out", str(out), "--work", str(tmp_path / "work"))
    (line,) = out.read_text().splitlines()
    runs = json.loads(line)["runs"]
    assert set(runs) == {"fifo", "asha"}
    for r in runs.values():
        assert r["trials"] == 1 and r["evaluations"] >= 1 and r["wall_s"] > 0 and 0 <= r["best_dev_f1"] <= 1


def test_bench_translate(run, data_root):
    res = run("bench_translate.py", "--rows", "16", "--batch-size", "4", "--actors", "2", "--cpus", "2",
              "--d-model", "32", "--layers", "1", "--data-root", str(data_root))
    assert len(_numbers(r"single process, \d torch thread\(s\):\s+([\d.]+) rows/s", res.stdout)) == 2
    (ratio,) = _numbers(r"^pool / fastest single: median ([\d.]+)x", res.stdout)
    assert ratio > 0


def test_bench_pretrain(run):
    # Beside another test process (pytest -n) the Ray side's first batch once came after its 5 s
    # budget and its ratio was 0.0 (no step trained): a time-limited run now trains step 1 always.
    res = run("bench_pretrain.py", "--seconds", "5", "--lines", "200", "--batch", "4", "--seq-len", "32",
              "--engine", "torch")
    for key in ("in_loop", "end_to_end"):
        (ratio,) = _numbers(rf"^median {key} ratio over 1 round\(s\): ([\d.]+)", res.stdout)
        assert ratio > 0


def test_pretrain_real(run, tmp_path):
    res = run("pretrain_real.py", "--steps", "3", "--max-lines", "200", "--batch", "4", "--seq-len", "32",
              "--aux-conllu", "ud/ug/train.conllu", "--aux-every", "2", "--out", str(tmp_path / "out"))
    assert _numbers(r"^wall [\d.]+ min, steps (\d+),", res.stdout) == [3]
    table = re.findall(r"^(ug|wo)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s", res.stdout, re.M)
    assert [t[0] for t in table] == ["ug", "wo"], res.stdout[-2000:]
    for _, before, after, rows in table:
        assert math.isfinite(float(before)) and float(before) > 1 and float(after) > 1 and int(rows) > 0
