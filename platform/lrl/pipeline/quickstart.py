"""``lrl quickstart``: the whole pipeline on the sample that ships inside the package.

It runs ``lrl/resources/quickstart.yaml`` (a few hundred sentences, a micro model, a few steps) on an
embedded local Ray and prints where the HTML report is. It shows that everything is wired and
what the outputs look like; its scores mean nothing. The real recipes live in ``jobs/``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lrl.config import dump
from lrl.data.files import is_uri

DEFAULT_OUTPUT = "runs/quickstart"
NOTE = ("quickstart scores mean nothing (a tiny sample, a micro model, a few steps); "
        "for real numbers run a recipe from the repository root: lrl run jobs/wikiann_ug.yaml data.root=../shared/data")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. pretrain.steps=20")
    parser.add_argument("--output", default=DEFAULT_OUTPUT,
                        help=f"folder for every stage output (default {DEFAULT_OUTPUT}, relative to here)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved config and the plan (stages run or reused, output folders) and exit")


def load(overrides: list[str] | tuple[str, ...] = (), output: str = DEFAULT_OUTPUT):
    """The packaged quickstart job; ``output.root`` goes to ``output`` unless overridden."""
    from lrl.job import load_job, packaged_job

    path = packaged_job("quickstart")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the packaged quickstart config is missing (broken install?)")
    # A URI as given: Path("s3://b/x").absolute() was a local folder "s3:/b/x" in the working directory.
    root = output if is_uri(output) else Path(output).absolute()
    return load_job(path, [f"output.root={root}", *overrides])


def report_file(report_dir: str) -> Path | str | None:
    """The HTML file inside the report stage's folder (``report.html`` or the first ``*.html``); on
    an object store its URI (the report stage writes ``report.html``)."""
    from lrl.data.remote import is_file, is_remote

    if is_remote(report_dir):
        html = f"{report_dir.rstrip('/')}/report.html"
        return html if is_file(html) else None
    folder = Path(report_dir)
    if (folder / "report.html").is_file():
        return folder / "report.html"
    found = sorted(folder.rglob("*.html"))
    return found[0] if found else None


def run(args: argparse.Namespace) -> int:
    from lrl.pipeline.runner import run_pipeline

    t0 = time.perf_counter()
    cfg = load(args.overrides, args.output)
    if args.dry_run:
        from lrl.pipeline.runner import plan

        print(dump(cfg), end="")
        print(plan(cfg), end="")  # where the outputs and the state file go
        return 0
    print(f"[lrl quickstart] {NOTE}", flush=True)
    result = run_pipeline(cfg, started=t0)
    report = report_file(result.outputs["report"]) if "report" in result.outputs else None
    print(f"\n[lrl quickstart] finished in {time.perf_counter() - t0:.0f} s; outputs under {cfg.output.root}")
    if report is None:
        print("[lrl quickstart] no HTML report was produced (is 'report' in pipeline.stages?)")
        return 1
    where = f"open it in a browser: {report.resolve().as_uri()}" if isinstance(report, Path) else \
        "on the object store: copy it here to open it in a browser"
    print(f"[lrl quickstart] report: {report}\n  {where}")
    print(f"[lrl quickstart] {NOTE}")
    return 0
