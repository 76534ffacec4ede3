"""The config reference (docs/config.md), generated from the typed config that the code reads.

    python -m lrl.pipeline.reference docs/config.md     # regenerate
    python -m lrl.pipeline.reference --check docs/config.md

``tests/test_jobs.py`` fails when the committed file differs from what this prints, so the reference
cannot drift from the schema. ``lrl config`` prints the same fields as plain text.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

HEADER = """# Config reference

Generated from the typed config by `python -m lrl.pipeline.reference docs/config.md`; do not edit by
hand (`tests/test_jobs.py` fails when it is stale). Every field can be set in a job YAML file or on the
command line as a dotted override (`pretrain.steps=200`); a field of a list element, written `[]`
below, takes the element's index (`data.ner[0].lang=yo`, the same as `data.ner.0.lang=yo`). `lrl config`
prints the same reference and `--dry-run` prints a job's resolved config.
"""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def type_name(annotation: Any) -> str:
    """A readable type: ``list['swap' | 'mention']`` rather than ``list`` or a typing repr."""
    if isinstance(annotation, type):
        return annotation.__name__
    text = repr(annotation).replace("typing.", "")
    text = re.sub(r"<class '([\w.]+)'>", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = re.sub(r"\b(?:[a-z_]\w*\.)+([A-Z]\w*)", r"\1", text)  # lrl.data.config.NerSource -> NerSource
    return re.sub(r"Literal\[([^\]]*)\]", lambda m: " | ".join(x.strip() for x in m.group(1).split(",")), text)


def inner_model(annotation: Any) -> tuple[Any, str] | None:
    """The config class inside ``list[X]`` (rows ``key[].field``) or ``X | None`` (``key.field``)."""
    import typing

    from pydantic import BaseModel

    args = typing.get_args(annotation)
    models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
    if not models:
        return None
    return models[0], "[]." if typing.get_origin(annotation) is list else "."


def annotations(model: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> annotation of every field, recursing into nested sections like ``describe``."""
    from pydantic import BaseModel

    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        ann = field.annotation
        out[prefix + name] = ann
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.update(annotations(ann, f"{prefix}{name}."))
        elif (inner := inner_model(ann)) is not None:
            out.update(annotations(inner[0], f"{prefix}{name}{inner[1]}"))
    return out


def rows(model: Any, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """``describe`` rows, plus the fields of configs inside lists and optional sections."""
    from lrl.config import describe

    out: list[tuple[str, str, str, str]] = []
    for key, tname, default, doc in describe(model, prefix):
        out.append((key, tname, default, doc))
        if tname == "section":
            continue
        field = _field(model, key[len(prefix):])
        inner = inner_model(field.annotation) if field is not None else None
        if inner is not None:
            out.extend(rows(inner[0], f"{key}{inner[1]}"))
    return out


def _field(model: Any, dotted: str) -> Any:
    """The pydantic field at a dotted path under ``model`` (None when it is not a plain path)."""
    parts = dotted.split(".")
    for part in parts[:-1]:
        field = model.model_fields.get(part)
        if field is None or not isinstance(field.annotation, type):
            return None
        model = field.annotation
    return model.model_fields.get(parts[-1])


def markdown() -> str:
    """One table per top-level section: key, type, default, description."""
    from lrl.job import JobConfig

    types = {k: type_name(a) for k, a in annotations(JobConfig).items()}
    out = [HEADER]
    top: list[tuple[str, str, str, str]] = []
    current: str | None = None
    for key, tname, default, doc in rows(JobConfig):
        tname = tname if tname == "section" else types.get(key, tname)
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
