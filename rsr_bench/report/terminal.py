"""Aggregation of per-image values and the terminal cross-dataset table.

SR papers report the mean of per-image values (not a pooled MSE), so that is what
:func:`aggregate` computes; the standard deviation and image count travel with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..metrics import METRICS

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


def _render(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def format_table(
    summary: pd.DataFrame,
    *,
    methods: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    skipped: dict[tuple[str, str], str] | None = None,
) -> str:
    """Plain-text tables, one block per dataset: rows = methods, columns = ``metric↑/↓``.

    Methods with no result on a dataset are left out of its block (the caller lists skipped
    cells with their reasons); "—" marks a metric missing for a method that did run.
    """
    if summary.empty:
        return "(no results)"
    methods = list(methods or dict.fromkeys(summary["method"]))
    datasets = list(datasets or dict.fromkeys(summary["dataset"]))
    metrics = list(metrics or [m for m in METRICS if m in set(summary["metric"])] or dict.fromkeys(summary["metric"]))
    lookup = {(r.method, r.dataset, r.metric): (r.mean, r.n) for r in summary.itertuples()}
    blocks = []
    for d in datasets:
        cols = [m for m in metrics if any((meth, d, m) in lookup for meth in methods)]
        rows_methods = [meth for meth in methods if any((meth, d, m) in lookup for m in cols)]
        if not cols:
            continue
        n = max(lookup[(meth, d, m)][1] for meth in rows_methods for m in cols if (meth, d, m) in lookup)
        header = ["method"] + [f"{m}{METRICS[m].arrow if m in METRICS else ''}" for m in cols]
        body = [[meth] + [_fmt(m, lookup[(meth, d, m)][0]) if (meth, d, m) in lookup else "—" for m in cols]
                for meth in rows_methods]
        blocks.append("\n".join([f"{d}  ({n} image{'s' if n != 1 else ''})", *_render([header, *body])]))
    return "\n\n".join(blocks) if blocks else "(no results for the selection)"
