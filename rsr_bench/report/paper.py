"""The RSR paper's Table 1 and Table 2, regenerated beside the published values.

Why: a reader (or the authors) should be able to see, cell by cell, how far a re-measurement
is from the published number, and *why* a cell is empty. The published values are data
(``reports/paper/published.yaml``, with their citation); each paper row names the rsr-bench
method that reproduces it, or says why none exists. Measured values come from a results
store; nothing is evaluated here.

Each paper row is rendered as three lines: the published values, the measured ones (with the
method used), and the difference (measured - published). Cells that could not be measured are
marked and explained in a "not measured" list under the table.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..errors import ConfigError
from ..files import project_root

AVG = "avg"
TABLES = ("table1", "table2")


# --------------------------------------------------------------------------- published data


@dataclass(frozen=True)
class PaperRow:
    id: str
    label: str
    columns: dict[str, str]  # the row's descriptive columns (trained_on, or eps/iters/noise/loss)
    method: str | None
    unmeasurable: str | None
    note: str
    values: dict[str, dict[str, float]]  # metric -> {dataset | "avg": value}


@dataclass(frozen=True)
class PaperTable:
    name: str
    caption: str
    columns: list[str]
    rows: list[PaperRow]


@dataclass(frozen=True)
class Published:
    source: dict[str, str]
    metrics: dict[str, dict[str, Any]]  # name -> {label, higher_is_better, decimals}
    datasets: list[str]
    dataset_labels: dict[str, str]
    tables: dict[str, PaperTable]
    path: Path | None = None

    def citation(self) -> str:
        return " ".join(str(self.source.get("citation", "")).split())


def default_published_path() -> Path:
    return project_root() / "reports" / "paper" / "published.yaml"


def load_published(path: str | Path | None = None) -> Published:
    path = Path(path) if path else default_published_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"published values {path} not found") from None
    if not isinstance(data, dict) or "source" not in data:
        raise ConfigError(f"{path}: expected a mapping with source, metrics, datasets, table1, table2")
    datasets = [str(d) for d in data["datasets"]]
    tables = {}
    for name in TABLES:
        t = data.get(name)
        if not t:
            continue
        cols = [str(c) for c in t.get("columns", [])]
        rows = []
        for r in t["rows"]:
            rid = str(r["id"])
            label_cols = {c: str(r.get(c, "")) for c in cols if c != "method"}
            rows.append(PaperRow(
                id=rid, label=str(r.get("label", rid)), columns=label_cols,
                method=r.get("method"), unmeasurable=(" ".join(str(r["unmeasurable"]).split()) if r.get("unmeasurable") else None),
                note=" ".join(str(r.get("note", "")).split()),
                values={m: {k: float(v) for k, v in vals.items()} for m, vals in r["values"].items()},
            ))
        tables[name] = PaperTable(name, " ".join(str(t.get("caption", "")).split()), cols, rows)
    return Published(dict(data["source"]), dict(data["metrics"]), datasets,
                     {**{d: d for d in datasets}, **(data.get("dataset_labels") or {})}, tables, path)


# --------------------------------------------------------------------------- measured side


@dataclass
class Cell:
    published: float | None
    measured: float | None = None
    n: int | None = None

    @property
    def diff(self) -> float | None:
        if self.published is None or self.measured is None:
            return None
        return self.measured - self.published


@dataclass
class RowResult:
    row: PaperRow
    method: str | None
    cells: dict[str, dict[str, Cell]]  # metric -> column (dataset | avg) -> Cell
    reasons: dict[str, str] = field(default_factory=dict)  # dataset (or "*") -> why not measured

    @property
    def measured_any(self) -> bool:
        return any(c.measured is not None for cols in self.cells.values() for c in cols.values())


@dataclass
class TableResult:
    published: Published
    table: PaperTable
    rows: list[RowResult]
    substitutes: dict[str, str]  # paper dataset -> dataset actually measured
    store: str

    @property
    def metrics(self) -> list[str]:
        return list(self.published.metrics)

    @property
    def columns(self) -> list[str]:
        return [*self.published.datasets, AVG]

    def not_measured(self) -> list[str]:
        """Why cells are empty: one line per row that cannot be measured at all (no checkpoint,
        no weights), then one line per dataset reason, naming the rows it affects."""
        lines = []
        by_dataset: dict[tuple[str, str], list[str]] = {}
        for r in self.rows:
            name = _row_name(self.table, r.row)
            if "*" in r.reasons:
                lines.append(f"{name}: {r.reasons['*']}")
            for d, why in r.reasons.items():
                if d != "*":
                    by_dataset.setdefault((d, why), []).append(name)
        for (d, why), names in by_dataset.items():
            label = self.published.dataset_labels.get(d, d)
            used = f" (measured on {self.substitutes[d]})" if d in self.substitutes else ""
            who = "every row with a method" if len(names) == sum(r.method is not None for r in self.rows) else ", ".join(names)
            lines.append(f"{d}{used} ({label} columns of {who}): {why}")
        return [" ".join(line.split()) for line in lines]


def _row_name(table: PaperTable, row: PaperRow) -> str:
    if table.name == "table2":
        return f"{row.label} ({row.columns.get('trained_on', '')})"
    return f"{row.label if row.label != row.id else ''}{', '.join(f'{k}={v}' for k, v in row.columns.items())}"


DATASET_MISSING = "dataset missing: "  # the runner's prefix for cells skipped because the data is absent


def _method_reason(method: str, skipped: Mapping[tuple[str, str], str], known_methods: Mapping[str, Any] | None) -> str | None:
    """Why ``method`` cannot be measured at all here (weights), or None."""
    for (m, _d), why in skipped.items():
        if m == method and not why.startswith(DATASET_MISSING):
            return f"weights not available: {why}"
    if known_methods is None:
        return None
    if method not in known_methods:
        return f"method {method} is not registered here (no method card: its weights are not obtainable in this installation)"
    try:
        from ..methods.cards import method_availability

        why = method_availability(known_methods[method])
    except Exception:  # noqa: BLE001 - availability is advisory here
        return None
    return f"weights not available: {why}" if why else None


def _dataset_reason(method: str, dataset: str, store: str, skipped: Mapping[tuple[str, str], str],
                    known_datasets: Mapping[str, Any] | None) -> str:
    """Why a (method, dataset) cell has no results when the method itself is runnable."""
    why = skipped.get((method, dataset))
    if why:
        return f"not on disk: {why[len(DATASET_MISSING):]}" if why.startswith(DATASET_MISSING) else f"skipped: {why}"
    if known_datasets is not None:
        spec = known_datasets.get(dataset)
        if spec is None:
            return "not registered (add it to datasets.yaml or pass --datasets-file)"
        missing = spec.missing_reason()
        if missing:
            return f"not on disk: {missing}"
    return f"not in store {store} (run: rsr-bench run --methods {method} --datasets {dataset} --out {store})"


def build_table(published: Published, name: str, summary: pd.DataFrame, *, store: str = "",
                skipped: Mapping[tuple[str, str], str] | None = None,
                row_methods: Mapping[str, str | None] | None = None,
                substitutes: Mapping[str, str] | None = None,
                known_methods: Mapping[str, Any] | None = None,
                known_datasets: Mapping[str, Any] | None = None) -> TableResult:
    """Match every paper row with the store's means ``[method, dataset, metric, mean, n]``.

    ``row_methods`` overrides/sets the method of a row by id (Table 1's training runs).
    ``substitutes`` measures a paper dataset on another one (e.g. ``NTIRE_syn -> demo_noise``);
    the rendering says so, since such numbers are not comparable with the paper's.
    """
    if name not in published.tables:
        raise ConfigError(f"{published.path} has no {name}; known: {', '.join(published.tables)}")
    table = published.tables[name]
    skipped = skipped or {}
    substitutes = dict(substitutes or {})
    row_methods = dict(row_methods or {})
    unknown_rows = set(row_methods) - {r.id for r in table.rows}
    if unknown_rows:
        raise ConfigError(f"unknown {name} row id(s) {sorted(unknown_rows)}; known: {', '.join(r.id for r in table.rows)}")
    lookup = {(r.method, r.dataset, r.metric): (float(r.mean), int(r.n)) for r in summary.itertuples()} if not summary.empty else {}
    results = []
    for row in table.rows:
        method = row_methods.get(row.id, row.method)
        cells = {m: {c: Cell(row.values.get(m, {}).get(c)) for c in [*published.datasets, AVG]} for m in published.metrics}
        reasons: dict[str, str] = {}
        if not method:
            reasons["*"] = row.unmeasurable or (
                "no training run given for this setting (train it, register the checkpoint as a method, then pass "
                f"--row {row.id}=METHOD)" if name == "table1" else "no method mapped to this row")
        else:
            missing: list[str] = []
            for d in published.datasets:
                used = substitutes.get(d, d)
                got_any = False
                for m in published.metrics:
                    hit = lookup.get((method, used, m))
                    if hit is not None and not math.isnan(hit[0]):
                        cells[m][d].measured, cells[m][d].n = hit
                        got_any = True
                if not got_any:
                    missing.append(d)
            for m in published.metrics:
                parts = [cells[m][d].measured for d in published.datasets]
                if all(p is not None for p in parts):
                    cells[m][AVG].measured = sum(parts) / len(parts)  # type: ignore[arg-type]
            # Weights first: a method that cannot run here explains the whole row, whatever the data.
            why_method = _method_reason(method, skipped, known_methods) if len(missing) == len(published.datasets) else None
            if why_method:
                reasons["*"] = why_method
            for d in missing:
                used = substitutes.get(d, d)
                reasons[d] = _dataset_reason(method, used, store, skipped, known_datasets)
        results.append(RowResult(row, method, cells, reasons))
    return TableResult(published, table, results, substitutes, store)


def build_from_store(published: Published, name: str, store: str | Path, **kwargs: Any) -> TableResult:
    """Read a results store (means over all its images) and build the table."""
    from .. import store as st
    from ..store import aggregate

    df = st.load_results(store)
    return build_table(published, name, aggregate(df), store=str(store), skipped=st.load_skipped(store), **kwargs)


# --------------------------------------------------------------------------- rendering


def _num(metric: str, published: Published, v: float | None, *, diff: bool = False, extra: int = 0) -> str:
    if v is None:
        return "—"
    dec = int(published.metrics.get(metric, {}).get("decimals", 2)) + extra
    return f"{v:+.{dec}f}" if diff else f"{v:.{dec}f}"


def _grid(res: TableResult) -> tuple[list[str], list[list[str]]]:
    """Header and body rows (plain strings) shared by the three renderings."""
    pub = res.published
    desc = [c for c in res.table.columns if c != "method"]
    head = (["Method"] if res.table.name == "table2" else []) + [c.replace("_", " ") for c in desc] + [""]
    for m in res.metrics:
        arrow = "↑" if pub.metrics[m].get("higher_is_better", True) else "↓"
        for c in res.columns:
            head.append(f"{pub.metrics[m].get('label', m)}{arrow} {_col_label(res, c)}")
    body = []
    for r in res.rows:
        lead = ([r.row.label] if res.table.name == "table2" else []) + [r.row.columns.get(c, "") for c in desc]
        blank = [""] * len(lead)
        line_p = [*lead, "paper"]
        line_m = [*blank, f"measured ({r.method})" if r.method else "measured"]
        line_d = [*blank, "Δ"]
        for m in res.metrics:
            for c in res.columns:
                cell = r.cells[m][c]
                line_p.append(_num(m, pub, cell.published))
                line_m.append(_num(m, pub, cell.measured, extra=1) if cell.measured is not None else ("n/a" if r.reasons else "—"))
                line_d.append(_num(m, pub, cell.diff, diff=True, extra=1) if cell.diff is not None else "")
        body += [line_p, line_m, line_d]
    return head, body


def _col_label(res: TableResult, c: str) -> str:
    if c == AVG:
        return "avg"
    label = res.published.dataset_labels.get(c, c)
    return f"{label}*" if c in res.substitutes else label


def _footer_lines(res: TableResult) -> list[str]:
    lines = []
    for d, used in res.substitutes.items():
        lines.append(f"* {d} measured on {used} instead: these numbers are NOT comparable with the paper's.")
    lines.append("measured: means over the images in the store; avg = mean of the two datasets' means; "
                 "Δ = measured - paper.")
    notes: dict[str, list[str]] = {}  # one line per distinct note, naming every row it applies to
    for r in res.rows:
        if r.row.note:
            notes.setdefault(r.row.note, []).append(_row_name(res.table, r.row))
    lines += [f"note ({'; '.join(rows)}): {n}" for n, rows in notes.items()]
    lines.append(f"Published values: {res.published.citation()}")
    return lines


def render_markdown(res: TableResult) -> str:
    head, body = _grid(res)
    esc = lambda s: s.replace("|", "\\|")
    out = [f"**{res.table.name.replace('table', 'Table ')}** — {res.table.caption}", ""]
    out.append("| " + " | ".join(map(esc, head)) + " |")
    out.append("|" + "|".join("---" if i < len(head) - 3 * len(res.metrics) else "---:" for i in range(len(head))) + "|")
    out += ["| " + " | ".join(map(esc, r)) + " |" for r in body]
    out.append("")
    missing = res.not_measured()
    if missing:
        out.append("**Not measured:**")
        out.append("")
        out += [f"- {esc(m)}" for m in missing]
        out.append("")
    out += [f"{line}  " for line in _footer_lines(res)]
    return "\n".join(out).rstrip() + "\n"


def _tex(s: str) -> str:
    rep = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
           "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "Δ": r"$\Delta$", "—": "--",
           "↑": r"$\uparrow$", "↓": r"$\downarrow$"}
    return "".join(rep.get(ch, ch) for ch in s)


def render_latex(res: TableResult) -> str:
    """A booktabs table with a metric header row spanning its dataset columns."""
    head, body = _grid(res)
    pub = res.published
    n_lead = len(head) - 3 * len(res.metrics)
    ncols = len(res.columns)
    spec = "l" * n_lead + ("r" * ncols) * len(res.metrics)
    lines = [
        r"% Generated by rsr-bench paper " + res.table.name + r"; needs \usepackage{booktabs}",
        r"\begin{table*}[t]", r"\centering", r"\small",
        r"\begin{tabular}{" + spec + "}", r"\toprule",
    ]
    top = [""] * n_lead
    rules = []
    for i, m in enumerate(res.metrics):
        arrow = r"$\uparrow$" if pub.metrics[m].get("higher_is_better", True) else r"$\downarrow$"
        top.append(rf"\multicolumn{{{ncols}}}{{c}}{{{_tex(str(pub.metrics[m].get('label', m)))} {arrow}}}")
        start = n_lead + 1 + i * ncols
        rules.append(rf"\cmidrule(lr){{{start}-{start + ncols - 1}}}")
    lines.append(" & ".join(top) + r" \\")
    lines.append(" ".join(rules))
    sub = [_tex(h) for h in head[:n_lead]] + [_tex(_col_label(res, c)) for _ in res.metrics for c in res.columns]
    lines.append(" & ".join(sub) + r" \\")
    lines.append(r"\midrule")
    for i, r in enumerate(body):
        lines.append(" & ".join(_tex(x) for x in r) + r" \\")
        if i % 3 == 2 and i != len(body) - 1:
            lines.append(r"\addlinespace")
    lines += [r"\bottomrule", r"\end{tabular}"]
    caption = _tex(res.table.caption) + " Published values beside measured ones; " + _tex(
        " ".join(_footer_lines(res)[:-1]))
    missing = res.not_measured()
    if missing:
        caption += r" Not measured: " + "; ".join(_tex(m) for m in missing) + "."
    lines += [r"\caption{" + caption + "}", r"\end{table*}"]
    return "\n".join(lines) + "\n"


def render_html(res: TableResult) -> str:
    """A self-contained HTML fragment (table + notes), styled minimally inline."""
    head, body = _grid(res)
    pub = res.published
    n_lead = len(head) - 3 * len(res.metrics)
    e = html.escape
    out = [f'<section class="rsr-paper-table" id="{e(res.table.name)}">',
           f"<h2>{e(res.table.name.replace('table', 'Table '))}</h2>", f"<p>{e(res.table.caption)}</p>",
           '<table style="border-collapse:collapse;font-variant-numeric:tabular-nums">', "<thead>", "<tr>"]
    out.append("".join(f'<th rowspan="2">{e(h)}</th>' for h in head[:n_lead]))
    for m in res.metrics:
        arrow = "↑" if pub.metrics[m].get("higher_is_better", True) else "↓"
        out.append(f'<th colspan="{len(res.columns)}">{e(str(pub.metrics[m].get("label", m)))} {arrow}</th>')
    out.append("</tr><tr>" + "".join(f"<th>{e(_col_label(res, c))}</th>" for _ in res.metrics for c in res.columns) + "</tr>")
    out += ["</thead>", "<tbody>"]
    kinds = ("paper", "measured", "diff")
    for i, r in enumerate(body):
        style = ' style="border-top:1px solid #999"' if i % 3 == 0 else ""
        cells = "".join(
            f'<td style="padding:0 .4em;{"text-align:right" if j >= n_lead else ""}{";color:#888" if x in ("n/a", "—") else ""}">{e(x)}</td>'
            for j, x in enumerate(r))
        out.append(f'<tr class="{kinds[i % 3]}"{style}>{cells}</tr>')
    out += ["</tbody>", "</table>"]
    missing = res.not_measured()
    if missing:
        out.append("<h3>Not measured</h3><ul>" + "".join(f"<li>{e(m)}</li>" for m in missing) + "</ul>")
    out.append("<p>" + "<br>".join(e(line) for line in _footer_lines(res)) + "</p>")
    out.append("</section>")
    return "\n".join(out) + "\n"


RENDERERS = {"markdown": (render_markdown, "md"), "latex": (render_latex, "tex"), "html": (render_html, "html")}


def render(res: TableResult, fmt: str) -> str:
    if fmt not in RENDERERS:
        raise ConfigError(f"unknown format {fmt!r}; choose from {', '.join(RENDERERS)}")
    return RENDERERS[fmt][0](res)


def write_all(res: TableResult, out_dir: str | Path, formats: Sequence[str] = tuple(RENDERERS)) -> list[Path]:
    from ..files import atomic_write_text

    paths = []
    for fmt in formats:
        fn, ext = RENDERERS[fmt]
        p = Path(out_dir) / f"{res.table.name}.{ext}"
        atomic_write_text(p, fn(res))
        paths.append(p)
    return paths
