"""``lrl quickstart``: the packaged job resolves offline, and (slow) the whole pipeline runs on the
packaged sample, ends with an HTML report, and a second run (of the same command, and of the same
job and sample copied under another folder) does no stage work."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from lrl.job import packaged_job
from lrl.pipeline import quickstart


def test_packaged_quickstart_resolves_with_the_sample(tmp_path, capsys):
    if not packaged_job("quickstart").is_file():
        pytest.fail("platform/lrl/resources/quickstart.yaml is missing")
    cfg = quickstart.load(["seed=1"], str(tmp_path / "out"))
    assert cfg.output.root == str(tmp_path / "out") and cfg.seed == 1
    assert "report" in cfg.pipeline.stages and cfg.pipeline.stages[0] == "generate"
    for src in [*cfg.data.ner, *cfg.data.text]:
        assert (Path(cfg.data.root) / src.path).exists(), f"packaged sample file missing: {src.path}"
    assert not cfg.model.trust_remote_code
    from lrl.cli import main

    assert main(["quickstart", "--dry-run", "--output", str(tmp_path / "o")]) == 0
    assert "pipeline:" in capsys.readouterr().out


def test_report_file_is_found(tmp_path):
    assert quickstart.report_file(str(tmp_path)) is None
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.html").write_text("<html/>")
    assert quickstart.report_file(str(tmp_path)).name == "x.html"
    (tmp_path / "report.html").write_text("<html/>")
    assert quickstart.report_file(str(tmp_path)).name == "report.html"


@pytest.mark.slow
def test_quickstart_pulse_end_to_end(tmp_path):
    """The README's main command, in a fresh process as a user runs it, on 2 CPUs (lighter
    settings: benchmarks/bench_quickstart.py times the exact command)."""
    out = tmp_path / "qs"
    light = ["ray.num_cpus=2", "augment.ops=[swap,mention]", "pretrain.steps=10", "pretrain.report_every=10",
             "pretrain.checkpoint_every=10", "finetune.epochs=1"]
    cmd = [sys.executable, "-m", "lrl.cli", "quickstart", *light, "--output", str(out)]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    first = time.perf_counter() - t0
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-5000:]
    report = [line for line in res.stdout.splitlines() if line.startswith("[lrl quickstart] report: ")]
    assert report, log[-3000:]
    html = Path(report[0].split(": ", 1)[1])
    assert html.is_file() and "<html" in html.read_text(encoding="utf-8")[:2000].lower()
    assert "scores mean nothing" in res.stdout
    state = json.loads(next(out.glob("pipeline-*.json")).read_text())
    stages = quickstart.load(output=str(out)).pipeline.stages
    assert list(state["stages"]) == list(stages)
    for rec in state["stages"].values():
        assert (Path(rec["path"]) / "manifest.json").is_file()
    # second run: every stage finished, so no stage folder changes and it is much faster
    before = sorted(p.name for p in out.iterdir())
    t1 = time.perf_counter()
    res2 = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    second = time.perf_counter() - t1
    assert res2.returncode == 0, (res2.stdout + res2.stderr)[-3000:]
    assert sorted(p.name for p in out.iterdir()) == before
    times = {m[0]: float(m[1]) for m in re.findall(r"\[lrl run\] (\w+): reused \(finished [\d: -]+\) in ([\d.]+) s",
                                                   res2.stdout)}
    assert set(times) == set(stages)
    assert all(t < 10 for t in times.values()), f"a finished stage did work on the re-run: {times}"
    assert second < first, f"re-run took {second:.0f} s, first run {first:.0f} s"
    print(f"quickstart: first run {first:.0f} s, re-run {second:.0f} s")
    _moved_sample_reuses_every_stage(tmp_path, out, light, before, stages)


def _moved_sample_reuses_every_stage(tmp_path: Path, out: Path, light: list[str], before: list[str],
                                     stages: list[str]) -> None:
    """Stage folders name what the data is, not where ``data.root`` lies (test_generate_location):
    the same job and sample copied elsewhere (a copied runs folder, a job unpacked on a Ray cluster
    under ``_ray_pkg_<hash>/``) reuse every stage the quickstart finished, in the same folders; and
    what generate wrote names no absolute path. (Here, not a pipeline run of its own: one full run
    of every stage is the cost of this test.)"""
    from test_generate_location import _sample

    moved = _sample(tmp_path / "moved" / "b")
    res = subprocess.run([sys.executable, "-m", "lrl.cli", "run", str(moved), *light, f"output.root={out}"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    assert sorted(p.name for p in out.iterdir()) == before
    reused = [line for line in res.stdout.splitlines() if ": reused (finished" in line]
    assert len(reused) == len(stages), res.stdout[-3000:]
    gen = next(out.glob("generate-*"))
    packaged = packaged_job("quickstart").parent
    assert json.loads((gen / "manifest.json").read_text())["data_root"] == str(packaged)
    for part in ("data", "rejects", "text"):
        if (gen / part).is_dir():
            names = pads.dataset(gen / part, format="parquet").to_table(columns=["source"]).column("source")
            assert not [s for s in names.to_pylist() if s and (str(packaged) in s or str(tmp_path) in s)], part
