"""Matplotlib figures for the HTML report, returned as inline ``data:image/png;base64`` URIs.

The Agg backend draws without a display, and inlining keeps the report one self-contained file
that can be mailed or archived without its assets going missing.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def to_data_uri(fig) -> str:
    """Render ``fig`` as PNG and return it as a data URI (the figure is closed)."""
    plt = _plt()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


#: Axis labels with units for the keys the report plots. F1 keys are drawn in percent, as the
#: report's tables print them: the bars and curves showed 0.67 next to a table's 66.8, under a
#: bare "span F1" / "dev_f1" that named no scale.
AXIS = {"step": "optimizer step", "dev_f1": "dev span F1 (%)", "dev_f1_lang_mean": "mean of per-language dev span F1 (%)", "train_loss": "training loss (cross-entropy)",
        "loss": "MLM loss (cross-entropy)", "aux_loss": "auxiliary loss", "lr": "learning rate",
        "tokens_per_s": "tokens / s", "perplexity": "perplexity (held-out)", "time_s": "time (s)"}


#: The fine-tuning loss of a CRF head: the sequence's negative log-likelihood, per sentence
#: (``lrl.model.crf.CRF.nll``), not a per-word cross-entropy: under the linear head's label its
#: values (WikiANN ug: 8.8 falling to 4.7) read as an absurd per-word loss.
CRF_LOSS = "training loss (CRF NLL per sentence)"
MIXED_LOSS = "training loss (CE per word; CRF: NLL)"


def axis_label(key: str) -> str:
    return AXIS.get(key, key)


def _scale(key: str) -> float:
    return 100.0 if key.endswith("f1") else 1.0


def bar_with_sd(labels: Sequence[str], means: Sequence[float], sds: Sequence[float | None],
                title: str, ylabel: str = "span F1 (%)") -> str:
    """Bars of mean scores (fractions, drawn in percent) with ± sample-sd error bars; a None sd
    (one seed) draws no bar."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(labels) + 2), 3.2))
    x = list(range(len(labels)))
    ax.bar(x, [100 * m for m in means], color="#4c72b0")
    # Error bars only where there is an sd: a zero-length bar still draws its caps, which read as
    # a measured spread of 0 on a one-seed run.
    spread = [i for i, s in enumerate(sds) if s is not None]
    if spread:
        ax.errorbar([x[i] for i in spread], [100 * means[i] for i in spread], yerr=[100 * sds[i] for i in spread],
                    fmt="none", ecolor="black", capsize=4)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=30 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center")
    ax.set_ylim(0, max(100.0, 110 * max(means, default=0)))
    ax.set_ylabel(ylabel)
    ax.set_xlabel("mean over seeds; error bars ± sample sd" if spread else "one seed (no spread to show)")
    ax.set_title(title)
    return to_data_uri(fig)


def curves(series: dict[str, list[dict[str, Any]]], x: str, ys: Sequence[str], title: str,
           labels: dict[str, str] | None = None) -> str:
    """Line plots of ``ys`` against ``x``, one line per named series and metric (one axis per metric);
    ``labels`` overrides ``AXIS`` for some keys."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(ys), figsize=(4.2 * len(ys), 3.2), squeeze=False)
    for ax, y in zip(axes[0], ys):
        for name, rows in series.items():
            pts = [(r[x], r[y] * _scale(y)) for r in rows if r.get(x) is not None and r.get(y) is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=name)
        ax.set_xlabel(axis_label(x))
        ax.set_ylabel((labels or {}).get(y) or axis_label(y))
        ax.set_title(f"{title}: {y}")
        if len(series) > 1:
            ax.legend(fontsize=7)
    return to_data_uri(fig)


def scatter_by_group(rows: list[dict[str, Any]], x: str, y: str, group: str, title: str,
                     logx: bool = False) -> str:
    """Scatter of ``y`` against ``x``, one colour per value of ``group`` (e.g. language)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for g in sorted({str(r.get(group)) for r in rows}):
        pts = [(r[x], r[y] * _scale(y)) for r in rows
               if str(r.get(group)) == g and r.get(x) is not None and r.get(y) is not None]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=g, alpha=0.8)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(axis_label(x) + (" (log scale)" if logx else ""))
    ax.set_ylabel(axis_label(y))
    ax.set_title(title)
    ax.legend(fontsize=7)
    return to_data_uri(fig)


def confusion(labels: Sequence[str], matrix: Sequence[Sequence[int]], title: str) -> str:
    """Heat map of a confusion matrix (rows gold, columns predicted), counts written in cells."""
    plt = _plt()
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.55 * n))
    # Row-normalised colours so that rare types are visible next to the dominant O.
    norm = [[c / max(1, sum(row)) for c in row] for row in matrix]
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(labels)
    ax.set_yticklabels(labels)
    ax.set_xlabel("predicted type (token counts)")
    ax.set_ylabel("gold type")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(matrix[i][j]), ha="center", va="center", fontsize=7,
                    color="white" if norm[i][j] > 0.5 else "black")
    ax.set_title(title)
    return to_data_uri(fig)
