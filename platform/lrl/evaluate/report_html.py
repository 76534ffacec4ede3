"""The report's HTML pieces: escaping, tables, inlined images and the "not run" line, shared by
the report's section modules (``report``, ``report_generate``)."""

from __future__ import annotations

import html
from typing import Any


def esc(x: Any) -> str:
    return html.escape(str(x))


def pct(x: Any) -> str:
    return "—" if x is None else f"{100 * float(x):.1f}"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{esc(alt)}">'


def not_run(what: str) -> str:
    return f'<p class="na">{esc(what)}: not run (no output found).</p>'


__all__ = ["esc", "img", "not_run", "pct", "table"]
