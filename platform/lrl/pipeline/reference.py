"""The config reference (docs/config.md), generated from the typed config that the code reads.

    python -m lrl.pipeline.reference docs/config.md     # regenerate
    python -m lrl.pipeline.reference --check docs/config.md

``tests/test_jobs.py`` fails when the committed file differs from what this prints, so the reference
cannot drift from the schema. ``lrl config`` prints the same fields as plain text.
"""

from __future__ import annotations

import sys
from pathlib import Path

HEADER = """# Config reference

Generated from the typed config by `python -m lrl.pipeline.reference docs/config.md`; do not edit by
hand (`tests/test_jobs.py` fails when it is stale). Every field can be set in a job YAML file or on the
command line as a dotted override (`pretrain.steps=200`); `lrl config` prints the same reference and
`--dry-run` prints a job's resolved config.
"""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def markdown() -> str:
    """One table per top-level section: key, type, default, description."""
    from lrl.config import describe
    from lrl.job import JobConfig

    out = [HEADER]
    top: list[tuple[str, str, str, str]] = []
    current: str | None = None
    for key, tname, default, doc in describe(JobConfig):
        if "." not in key and tname == "section":
            current = key
            out.append(f"\n## `{key}`\n\n{_cell(doc)}\n\n| key | type | default | description |\n|---|---|---|---|")
            continue
        if "." not in key:
            top.append((key, tname, default, doc))
            continue
        if tname == "section":
            out.append(f"| **`{key}`** | section | | {_cell(doc)} |")
        else:
            out.append(f"| `{key}` | `{_cell(tname)}` | `{_cell(default)}` | {_cell(doc)} |")
    assert current is not None
    head = ["\n## top level\n\n| key | type | default | description |\n|---|---|---|---|"]
    head += [f"| `{k}` | `{_cell(t)}` | `{_cell(d)}` | {_cell(doc)} |" for k, t, d, doc in top]
    return "\n".join(out[:1] + head + out[1:]) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in argv
    paths = [a for a in argv if a != "--check"]
    target = Path(paths[0] if paths else "docs/config.md")
    text = markdown()
    if check:
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            print(f"{target} is stale: run python -m lrl.pipeline.reference {target}", file=sys.stderr)
            return 1
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
