"""The generalisation table in the layout of the RSR paper's Table 2.

Rows: one per method checkpoint, grouped by family, the training set as a sub-label. Columns:
for each metric, one per dataset plus the average across datasets. The table is computed once
as plain data (:class:`GenTable`) and rendered by the HTML template and every exporter, so the
HTML, CSV, Markdown and LaTeX can never disagree about a number, a highlight or a mark.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .model import MethodInfo, MetricInfo, ReportData

AVERAGE = "average"
FAMILY_LABELS = {
    "bicubic": "Bicubic",
    "impressionism": "Impressionism",
    "esrgan_fs": "ESRGAN-FS",
    "esrganfs": "ESRGAN-FS",
    "esrgan": "ESRGAN",
    "rsr": "RSR",
    "realesrgan": "Real-ESRGAN",
    "real_esrgan": "Real-ESRGAN",
}


def family_label(family: str) -> str:
    return FAMILY_LABELS.get(family.lower(), family)


def metric_label(name: str) -> str:
    return name.upper().replace("_", "-")


@dataclass
class Cell:
    """One table cell. ``rank`` 1 = best of its column, 2 = second best, 0 = neither."""

    value: float | None
    text: str
    std: float | None = None
    n: int | None = None
    n_failed: int = 0
    rank: int = 0
    in_domain: bool = False
    reason: str | None = None  # why there is no value ("—")

    @property
    def title(self) -> str:
        """Tooltip: the reason for a dash, else mean, standard deviation and image count."""
        if self.value is None:
            return self.reason or "no value"
        parts = [f"mean {self.value:.4f}"]
        if self.std is not None:
            parts.append(f"std {self.std:.4f} over images")
        if self.n is not None:
            parts.append(f"n = {self.n} images")
        if self.n_failed:
            parts.append(f"{self.n_failed} image(s) not in this mean because of errors (see Failures)")
        if self.in_domain:
            parts.append("in-domain: the model was trained on this dataset")
        return "; ".join(parts)


@dataclass
class Column:
    metric: MetricInfo
    dataset: str  # a dataset name or AVERAGE

    @property
    def key(self) -> str:
        return f"{self.metric.name}|{self.dataset}"


@dataclass
class Row:
    method: MethodInfo
    family_label: str
    trained_label: str
    show_tag: bool
    family_first: bool  # first row of its family group (carries the rowspan)
    family_size: int
    cells: list[Cell] = field(default_factory=list)


@dataclass
class GenTable:
    columns: list[Column]
    rows: list[Row]

    @property
    def metric_groups(self) -> list[tuple[MetricInfo, list[Column]]]:
        groups: dict[str, tuple[MetricInfo, list[Column]]] = {}
        for c in self.columns:
            groups.setdefault(c.metric.name, (c.metric, []))[1].append(c)
        return list(groups.values())


def _missing_reason(data: ReportData, method: str, dataset: str, metric: MetricInfo,
                    n_failed: int, have_cell_rows: set[tuple[str, str]]) -> str:
    ds = data.datasets[dataset]
    if metric.kind == "FR" and ds.has_gt is False:
        return f"{dataset} has no ground truth: {metric.name} is full-reference"
    if (method, dataset) in data.skipped:
        return f"not run: {data.skipped[(method, dataset)]}"
    if (method, dataset) not in data.manifests and (method, dataset) not in have_cell_rows:
        return "not run: no results for this method on this dataset in the store"
    if n_failed and (method, dataset) not in have_cell_rows:
        return f"all {n_failed} image(s) failed (see Failures)"
    nc = data.not_computable(method, dataset, metric.name)
    if nc:
        return f"{metric.name} not computable: {'; '.join(nc[:3])}"
    return f"no {metric.name} values for this cell (metric not computed or not computable)"


def applicable_datasets(data: ReportData, metric: MetricInfo, stats: dict) -> list[str]:
    """Datasets that the metric's average runs over: those where some method has a value."""
    return [d for d in data.datasets if any((m, d, metric.name) in stats for m in data.methods)]


def _rank(cells: list[Cell], metric: MetricInfo) -> None:
    """Mark best (1) and second best (2) by displayed value, so ties on screen tie in colour."""
    vals = [(round(c.value, metric.decimals), c) for c in cells if c.value is not None]
    if len(vals) < 2:
        return
    distinct = sorted({v for v, _ in vals}, reverse=metric.higher_is_better)
    for v, c in vals:
        if v == distinct[0]:
            c.rank = 1
        elif len(distinct) > 1 and v == distinct[1]:
            c.rank = 2


def table_methods(data: ReportData) -> list[str]:
    """Methods that get a row: those with at least one value or run cell.

    A checkpoint that was skipped everywhere (weights not available) would be a row of dashes;
    it is listed under the table with its reasons instead (:func:`not_run`).
    """
    ran = {m for m, _d in data.manifests} | set(data.results["method"])
    return [m for m in data.methods if m in ran]


def not_run(data: ReportData) -> list[tuple[str, list[str]]]:
    """``(method, distinct skip reasons)`` for methods without any result in the store."""
    shown = set(table_methods(data))
    out = []
    for m in data.methods:
        if m not in shown:
            reasons = list(dict.fromkeys(r for (mm, _d), r in sorted(data.skipped.items()) if mm == m))
            out.append((m, reasons or ["no results in the store"]))
    return out


def build_table(data: ReportData) -> GenTable:
    """Compute every cell, the per-method averages, the highlights and the in-domain marks."""
    stats = data.cell_stats()
    failed = data.failure_counts_by_metric()
    have_cell_rows = {(m, d) for (m, d, _x) in stats}
    columns: list[Column] = []
    applicable: dict[str, list[str]] = {}
    for metric in data.metrics.values():
        columns += [Column(metric, d) for d in data.datasets]
        applicable[metric.name] = applicable_datasets(data, metric, stats)
        columns.append(Column(metric, AVERAGE))

    rows: list[Row] = []
    fam_sizes: dict[str, int] = {}
    keep = set(table_methods(data))
    shown = [m for m in data.methods.values() if m.name in keep]
    for m in shown:
        fam_sizes[m.family] = fam_sizes.get(m.family, 0) + 1
    seen_fam: set[str] = set()
    for m in shown:
        trained = ", ".join(m.trained_on) if m.trained_on else "—"
        row = Row(method=m, family_label=family_label(m.family), trained_label=trained,
                  show_tag=m.tag.lower() != trained.lower() and fam_sizes[m.family] > 1,
                  family_first=m.family not in seen_fam, family_size=fam_sizes[m.family])
        seen_fam.add(m.family)
        for col in columns:
            x = col.metric
            if col.dataset == AVERAGE:
                over = applicable[x.name]
                missing = [d for d in over if (m.name, d, x.name) not in stats]
                if not over:
                    row.cells.append(Cell(None, "—", reason=f"no {x.name} values on any dataset"))
                elif missing:
                    row.cells.append(Cell(None, "—", reason=f"average not comparable: missing on {', '.join(missing)}"))
                else:
                    mean = sum(stats[(m.name, d, x.name)][0] for d in over) / len(over)
                    n = sum(stats[(m.name, d, x.name)][2] for d in over)
                    c = Cell(mean, x.fmt(mean), n=n)
                    row.cells.append(c)
                continue
            nf = failed.get((m.name, col.dataset, x.name), 0)
            dom = data.in_domain(m.name, col.dataset) is True
            if (m.name, col.dataset, x.name) in stats:
                mean, std, n = stats[(m.name, col.dataset, x.name)]
                row.cells.append(Cell(mean, x.fmt(mean), std=std, n=n, n_failed=nf, in_domain=dom))
            else:
                reason = _missing_reason(data, m.name, col.dataset, x, nf, have_cell_rows)
                row.cells.append(Cell(None, "—", n_failed=nf, in_domain=dom, reason=reason))
        rows.append(row)

    for j, col in enumerate(columns):
        _rank([r.cells[j] for r in rows], col.metric)
    return GenTable(columns=columns, rows=rows)


def average_note(data: ReportData) -> dict[str, list[str]]:
    """Metric -> the datasets its average column runs over (printed under the table)."""
    stats = data.cell_stats()
    return {x.name: applicable_datasets(data, x, stats) for x in data.metrics.values()}


def domain_split(data: ReportData) -> pd.DataFrame:
    """Per trained method and metric: mean over in-domain datasets vs over cross-domain ones.

    This is the paper's point in one frame: a method that only works in its training domain has
    a large gap; a robust one does not. Methods without a training set are left out.
    """
    stats = data.cell_stats()
    rows = []
    for m in data.methods.values():
        if not m.trained_on:
            continue
        for x in data.metrics.values():
            ins = [stats[(m.name, d, x.name)][0] for d in data.datasets
                   if (m.name, d, x.name) in stats and data.in_domain(m.name, d)]
            outs = [stats[(m.name, d, x.name)][0] for d in data.datasets
                    if (m.name, d, x.name) in stats and not data.in_domain(m.name, d)]
            rows.append({
                "method": m.name, "metric": x.name,
                "in_domain": sum(ins) / len(ins) if ins else None, "n_in": len(ins),
                "cross_domain": sum(outs) / len(outs) if outs else None, "n_cross": len(outs),
            })
    return pd.DataFrame(rows, columns=["method", "metric", "in_domain", "n_in", "cross_domain", "n_cross"])
