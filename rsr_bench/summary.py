"""Aggregation of per-image values and the terminal cross-dataset table.

SR papers report the mean of per-image values (not a pooled MSE), so that is what
:func:`aggregate` computes; the standard deviation and image count travel with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .metrics import METRICS

SUMMARY_COLUMNS = ["method", "dataset", "metric", "mean", "std", "n"]


def aggregate(results: pd.DataFrame) -> pd.DataFrame:
    """``[method, dataset, image, metric, value]`` -> ``[method, dataset, metric, mean, std, n]``."""
    if results.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    g = results.groupby(["method", "dataset", "metric"], sort=False)["value"]
    out = g.agg(mean="mean", std=lambda v: float(v.std(ddof=0)), n="count").reset_index()
    return out[SUMMARY_COLUMNS]


def _fmt(metric: str, value: float) -> str:
    if metric.startswith("psnr"):
        return f"{value:.2f}"
    if metric in ("niqe", "brisque", "piqe"):
        return f"{value:.2f}"
    return f"{value:.4f}"


def format_table(
    summary: pd.DataFrame,
    *,
    methods: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    skipped: dict[tuple[str, str], str] | None = None,
) -> str:
    """Plain-text table: one row per method, columns ``dataset metric↑/↓``; "—" where absent."""
    if summary.empty:
        return "(no results)"
    methods = list(methods or dict.fromkeys(summary["method"]))
    datasets = list(datasets or dict.fromkeys(summary["dataset"]))
    metrics = list(metrics or [m for m in METRICS if m in set(summary["metric"])] or dict.fromkeys(summary["metric"]))
    lookup = {(r.method, r.dataset, r.metric): (r.mean, r.n) for r in summary.itertuples()}
    columns = [
        (d, m) for d in datasets for m in metrics
        if any((meth, d, m) in lookup for meth in methods)
    ]
    if not columns:
        return "(no results for the selection)"
    header1 = ["method"] + [d for d, _ in columns]
    header2 = [""] + [f"{m}{METRICS[m].arrow if m in METRICS else ''}" for _, m in columns]
    body = []
    for meth in methods:
        row = [meth]
        for d, m in columns:
            cell = lookup.get((meth, d, m))
            row.append(_fmt(m, cell[0]) if cell else ("skipped" if skipped and (meth, d) in skipped else "—"))
        body.append(row)
    widths = [max(len(r[i]) for r in [header1, header2, *body]) for i in range(len(header1))]
    # Only print a dataset name above its first column.
    prev = None
    for i, (d, _) in enumerate(columns, start=1):
        if d == prev:
            header1[i] = ""
        prev = d
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in [header1, header2, *body]
    ]
    lines.insert(2, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
