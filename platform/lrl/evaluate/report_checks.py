"""What the report checks before it draws: that it has something to report, that a stage folder
the user named holds that stage's output, and which seeds a score is missing.

The report's loaders (``report_data``) turn any missing or unreadable file into "not run", which is
right for a pipeline stage that did not run and wrong for a folder the user named: ``lrl report``
over an empty runs folder wrote a page of "not run" and exited 0, and ``--evaluate DIR`` with a
truncated ``metrics.json`` showed "evaluate: not run", never naming the file.
"""

from __future__ import annotations

from typing import Any

from lrl.data.files import read_json
from lrl.data.remote import is_dir, is_file

#: The file each stage's report section reads first, and what it must hold.
MAIN_FILE = {"finetune": "results.json", "evaluate": "metrics.json", "tune": "trials.json",
             "pretrain": "metrics.json", "generate": "manifest.json"}


def _load(path: str) -> tuple[Any, str | None]:
    """(parsed JSON, None), or (None, why it cannot be read); local or on an object store."""
    name = path.rsplit("/", 1)[-1]
    if not is_file(path):
        return None, f"no {name}"
    try:
        return read_json(path), None
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
        return None, f"{name} cannot be read ({type(exc).__name__}: {exc})"


def _shape_problem(stage: str, data: Any) -> str | None:
    """Why a parsed main file is not that stage's output (a partial or foreign file), or None."""
    name = MAIN_FILE[stage]
    if stage == "tune":
        return None if isinstance(data, list) and data else f"{name} holds no trial"
    if not isinstance(data, dict):
        return f"{name} is not a JSON object"
    need = {"finetune": "groups", "evaluate": "models", "generate": "rows_per_op"}.get(stage)
    if need and not isinstance(data.get(need), dict):
        return f"{name} has no '{need}' (a partial file, or another stage's)"
    return None


def folder_problem(stage: str, folder: str) -> str | None:
    """Why ``folder`` holds no usable ``stage`` output (missing, unreadable or partial main
    file), or None; on object stores too (an s3 folder was never checked: a typo gave "not run")."""
    base = folder.rstrip("/")
    data, why = _load(f"{base}/{MAIN_FILE[stage]}")
    if why and stage == "pretrain":  # the HF model folder inside may hold it instead
        data, why = _load(f"{base}/model/{MAIN_FILE[stage]}") if is_dir(f"{base}/model") else (data, why)
    return why or _shape_problem(stage, data)


def check_inputs(named: dict[str, str | None], folders: dict[str, str | None], root: str) -> None:
    """A ``ConfigError`` when there is nothing to report, or when a folder the user named
    (``report.<stage>``, ``--<stage>``) holds no usable output of its stage; ``root`` is
    ``output.root``, named in the first message."""
    from lrl.config import ConfigError

    bad = [f"report.{s}={f}: {why} ({'an' if s[0] in 'aeiou' else 'a'} {s}-<hash> output folder holds it)"
           for s, f in named.items() if f and (why := folder_problem(s, f))]
    if bad:
        raise ConfigError("stage output folder(s) without that stage's output: " + "; ".join(bad))
    if not any(folders.values()):
        raise ConfigError(f"nothing to report: no stage output folder given, and a report does not search "
                          f"output.root ({root}). Name them (--finetune DIR, --evaluate DIR, ... or "
                          "report.<stage>=DIR), or report a pipeline's outputs with `lrl run JOB --only report` once `lrl run JOB` has run its stages")


def seed_gaps(ft: dict | None) -> list[str]:
    """Per group, the seeds of ``evaluate.seeds`` (results.json ``seeds``) that have no run, and a
    summary whose n is not the number of runs recorded: a mean over 2 seeds of 3 printed "2" in a
    column of 3s with nothing to say which seed was lost, or that one was."""
    if ft is None:
        return []
    want = [s for s in ft.get("seeds") or [] if s is not None]
    out = []
    for group, seeds in sorted((ft.get("run_seeds") or {}).items()):
        lost = [s for s in want if s not in seeds]
        if lost:
            out.append(f"{group}: {len(seeds)} of {len(want)} seeds ran; no run for seed(s) "
                       + ", ".join(str(s) for s in lost))
        n = (ft.get("summary_n") or {}).get(group)
        if n is not None and seeds and n != len(seeds):
            out.append(f"{group}: its mean says n={n} but {len(seeds)} run(s) are recorded")
    return out


def unnamed_note(folders: dict[str, str | None], job_file: bool = False) -> str:
    """The line a report run alone (``lrl report``, which does not search ``output.root``) puts
    under its inputs: which stages it leaves out (none was named) and how to add them, naming the
    folder the evaluated models came from when the evaluate manifest records it."""
    from html import escape

    left = [s for s in ("finetune", "tune", "evaluate", "pretrain", "generate") if not folders.get(s)]
    if not left:
        return ""
    flags = ", ".join(f"--{s} DIR" for s in left)
    made = "Made of the named folders only" if job_file else "Made without a job file"
    text = (f"{made}: the sections of {', '.join(left)} are left out, as no folder was named "
            f"for them; add one with {flags}.")
    ev = folders.get("evaluate")
    source = _load(f"{ev.rstrip('/')}/manifest.json")[0] if ev and not (folders.get("finetune") or folders.get("tune")) else None
    if isinstance(source, dict) and isinstance(source.get("source"), str):
        # The evaluate stage records where its models came from: the seeds' scores and curves are there.
        text += f" The evaluated models came from {source['source']} (--finetune or --tune with it adds their seeds and curves)."
    return f"<p>{escape(text)}</p>"
