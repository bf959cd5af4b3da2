"""Plain-text output: the cross-dataset table and run summary of ``rsr-bench run`` and the
per-image table and CSV of ``rsr-bench score``. Decimals, arrows and column order come from the metric table."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from ..files import atomic_write_text
from ..metrics import METRICS
from .exports import csv_cell

if TYPE_CHECKING:  # metrics.score imports torch; `report` and `run`'s summary need none of it
    from ..metrics.score import ScoreResult


def _render(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _fmt(metric: str, value: float) -> str:
    return f"{value:.{METRICS[metric].decimals if metric in METRICS else 3}f}"


def format_table(
    summary: pd.DataFrame,
    *,
    methods: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    skipped: dict[tuple[str, str], str] | None = None,
) -> str:
    """Plain-text tables, one block per dataset: rows = methods, columns = ``metric↑/↓``.

    ``summary`` is :func:`rsr_bench.store.aggregate`'s. Methods with no result on a dataset are
    left out of its block (the caller lists skipped cells with their reasons); "—" marks a metric
    missing for a method that did run.
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


def format_scores(result: ScoreResult, digits: int = 4) -> str:
    """``rsr-bench score``: per-image table, a mean row, then footnotes (reasons, conventions)."""
    names = [m.name for m in result.metrics]
    width = max([len("image"), len("mean"), *(len(i) for i in result.images)])
    cols = [max(len(f"{n} {m.arrow}"), digits + 6) for n, m in zip(names, result.metrics)]

    def cell(v: float | None, w: int) -> str:
        return f"{'n/c':>{w}}" if v is None else f"{v:>{w}.{digits}f}"

    lines = ["  ".join([f"{'image':<{width}}", *(f"{n + ' ' + m.arrow:>{w}}" for n, m, w in zip(names, result.metrics, cols))])]
    for img in result.images:
        lines.append("  ".join([f"{img:<{width}}", *(cell(result.value(img, n), w) for n, w in zip(names, cols))]))
    means = result.means()
    lines.append("  ".join([f"{'mean':<{width}}", *(cell(means[n], w) for n, w in zip(names, cols))]))
    nc = [f"  {r.image} {r.metric}: {'error: ' if r.error else ''}{r.reason}" for r in result.not_computable()]
    if nc:
        lines += ["", "n/c = not computable (excluded from the mean):", *nc]
    lines += ["", "conventions:", *(f"  {m.conventions()}" for m in result.metrics)]
    return "\n".join(lines)


def write_csv(result: ScoreResult, path: str | os.PathLike) -> None:
    """Rows ``image,metric,value`` (pyiqa CLI style); not-computable images are left out. File
    names are the user's: :func:`csv_cell` keeps ``=1+2.png`` from becoming a spreadsheet formula."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image", "metric", "value"])
    for r in result.rows:
        if r.value is not None:
            w.writerow([csv_cell(r.image), csv_cell(r.metric), csv_cell(float(r.value))])
    atomic_write_text(path, buf.getvalue())


def skipped_lines(skipped: dict[tuple[str, str], str]) -> list[str]:
    """One line per method when its reason is the same on every dataset, else one per cell."""
    by_method: dict[str, dict[str, str]] = {}
    for (m, d), reason in sorted(skipped.items()):
        by_method.setdefault(m, {})[d] = reason
    lines = []
    for m, cells in by_method.items():
        reasons = set(cells.values())
        if len(reasons) == 1 and len(cells) > 1:
            lines.append(f"{m} (all {len(cells)} datasets): {reasons.pop()}")
        else:
            lines += [f"{m} on {d}: {r}" for d, r in cells.items()]
    return lines


def format_run_summary(summary) -> str:  # noqa: ANN001 - runner.RunSummary (the runner imports torch)
    """The run's table, then what was skipped and why, and every per-image failure."""
    out = ["", format_table(summary.table(), methods=summary.methods, datasets=summary.datasets,
                            metrics=summary.metrics, skipped=summary.skipped)]
    if summary.skipped_datasets:
        out += ["", "datasets not on disk (skipped):", *(f"  {n}: {r}" for n, r in summary.skipped_datasets.items())]
    method_skips = {k: v for k, v in summary.skipped.items() if k[1] not in summary.skipped_datasets}
    if method_skips:
        out += ["", "methods skipped:", *(f"  {line}" for line in skipped_lines(method_skips))]
    if summary.failures:
        out += ["", f"{len(summary.failures)} per-image failure(s):"]
        out += [f"  {f['method']} | {f['dataset']} | {f['image']} [{f['stage']}]: {f['message']}" for f in summary.failures]
    return "\n".join([*out, "", f"results stored in {summary.store}"])
