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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ConfigError
from ..files import atomic_write_text, project_root, read_yaml_mapping, store_root
from .exports import md_escape, md_table, tex_escape, tex_tabular
from .model import TRAINED_HERE, trained_here

AVG = "avg"


@dataclass(frozen=True)
class PaperRow:
    id: str
    label: str
    columns: dict[str, str]  # the row's descriptive columns (trained_on, or eps/iters/noise/loss)
    method: str | None
    unmeasurable: str | None
    note: str
    values: dict[str, dict[str, float]]  # metric -> {dataset | "avg": value}
    trained: str | None = None  # a model trained here: its card's "trained here ..." label (no published values)


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
        return _squash(self.source.get("citation"))


def _squash(text: Any) -> str:
    """YAML folded text as one line."""
    return " ".join(str(text or "").split())


def _paper_row(r: Mapping[str, Any], columns: Sequence[str]) -> PaperRow:
    rid = str(r["id"])
    return PaperRow(id=rid, label=str(r.get("label", rid)), columns={c: str(r.get(c, "")) for c in columns if c != "method"},
                    method=r.get("method"), unmeasurable=_squash(r.get("unmeasurable")) or None, note=_squash(r.get("note")),
                    values={m: {k: float(v) for k, v in vals.items()} for m, vals in r["values"].items()})


def load_published(path: str | Path | None = None) -> Published:
    """The paper's values (default ``reports/paper/published.yaml``)."""
    path = Path(path) if path else project_root() / "reports" / "paper" / "published.yaml"
    data = read_yaml_mapping(path, what="published values")
    if "source" not in data:
        raise ConfigError(f"{path}: expected a mapping with source, metrics, datasets, table1, table2")
    datasets = [str(d) for d in data["datasets"]]
    tables = {}
    for name in ("table1", "table2"):
        if data.get(name):
            t = data[name]
            cols = [str(c) for c in t.get("columns", [])]
            tables[name] = PaperTable(name, _squash(t.get("caption")), cols, [_paper_row(r, cols) for r in t["rows"]])
    return Published(dict(data["source"]), dict(data["metrics"]), datasets,
                     {**{d: d for d in datasets}, **(data.get("dataset_labels") or {})}, tables, path)


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
    notes: list[str] = field(default_factory=list)  # why parts of the table fall back (for stderr)

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


@dataclass(frozen=True)
class Availability:
    """What explains an empty cell: the store's skip reasons and, where they could be read, the
    method and dataset registries (None: unknown, and the reasons stay generic)."""

    store: str = ""
    skipped: Mapping[tuple[str, str], str] = field(default_factory=dict)
    methods: Mapping[str, Any] | None = None
    datasets: Mapping[str, Any] | None = None

    def method_reason(self, method: str) -> str | None:
        """Why ``method`` cannot be measured at all here (weights), or None."""
        for (m, _d), why in self.skipped.items():
            if m == method and not why.startswith(DATASET_MISSING):
                return f"weights not available: {why}"
        if self.methods is None:
            return None
        if method not in self.methods:
            return f"method {method} is not registered here (no method card: its weights are not obtainable in this installation)"
        try:
            from ..methods.cards import method_availability

            why = method_availability(self.methods[method])
        except Exception:  # noqa: BLE001 - availability is advisory here
            return None
        return f"weights not available: {why}" if why else None

    def dataset_reason(self, method: str, dataset: str) -> str:
        """Why a (method, dataset) cell has no results when the method itself is runnable."""
        why = self.skipped.get((method, dataset))
        if why:
            return f"not on disk: {why[len(DATASET_MISSING):]}" if why.startswith(DATASET_MISSING) else f"skipped: {why}"
        spec = None if self.datasets is None else self.datasets.get(dataset)
        if self.datasets is not None and spec is None:
            return "not registered (add it to datasets.yaml or pass --datasets-file)"
        missing = spec.missing_reason() if spec is not None else None
        if missing:
            return f"not on disk: {missing}"
        return f"not in store {self.store} (run: rsr-bench run --methods {method} --datasets {dataset} --store {self.store})"


def _published_cells(published: Published, row: PaperRow) -> dict[str, dict[str, Cell]]:
    return {m: {c: Cell(row.values.get(m, {}).get(c)) for c in [*published.datasets, AVG]} for m in published.metrics}


def _measured_cells(published: Published, row: PaperRow, method: str, lookup: Mapping[tuple[str, str, str], tuple],
                    substitutes: Mapping[str, str]) -> tuple[dict[str, dict[str, Cell]], list[str]]:
    """The row's cells with the store's means filled in (avg only where every dataset has one),
    and the paper datasets with no measurement at all."""
    cells = _published_cells(published, row)
    missing = []
    for d in published.datasets:
        hits = {m: lookup.get((method, substitutes.get(d, d), m)) for m in published.metrics}
        hits = {m: hit for m, hit in hits.items() if hit is not None and not math.isnan(hit[0])}
        for m, hit in hits.items():
            cells[m][d].measured, cells[m][d].n = hit
        if not hits:
            missing.append(d)
    for m in published.metrics:
        parts = [cells[m][d].measured for d in published.datasets]
        if all(p is not None for p in parts):
            cells[m][AVG].measured = sum(parts) / len(parts)  # type: ignore[arg-type]
    return cells, missing


def build_table(published: Published, name: str, summary: pd.DataFrame, *,
                row_methods: Mapping[str, str | None] | None = None, substitutes: Mapping[str, str] | None = None,
                why: Availability = Availability()) -> TableResult:
    """Match every paper row with the store's means ``[method, dataset, metric, mean, n]``.

    ``row_methods`` overrides/sets the method of a row by id (Table 1's training runs).
    ``substitutes`` measures a paper dataset on another one (e.g. ``NTIRE_syn -> demo_noise``);
    the rendering says so, since such numbers are not comparable with the paper's. ``why``
    explains the cells that stay empty.
    """
    if name not in published.tables:
        raise ConfigError(f"{published.path} has no {name}; known: {', '.join(published.tables)}")
    table = published.tables[name]
    substitutes, row_methods = dict(substitutes or {}), dict(row_methods or {})
    unknown_rows = set(row_methods) - {r.id for r in table.rows}
    if unknown_rows:
        raise ConfigError(f"unknown {name} row id(s) {sorted(unknown_rows)}; known: {', '.join(r.id for r in table.rows)}")
    lookup = {(r.method, r.dataset, r.metric): (float(r.mean), int(r.n)) for r in summary.itertuples()} if not summary.empty else {}
    results = []
    for row in table.rows:
        method = row_methods.get(row.id, row.method)
        if not method:
            results.append(RowResult(row, method, _published_cells(published, row), {"*": row.unmeasurable or (
                "no training run given for this setting (train it, register the checkpoint as a method, then pass "
                f"--row {row.id}=METHOD)" if name == "table1" else "no method mapped to this row")}))
            continue
        cells, missing = _measured_cells(published, row, method, lookup, substitutes)
        # Weights first: a method that cannot run here explains the whole row, whatever the data.
        why_method = why.method_reason(method) if len(missing) == len(published.datasets) else None
        reasons = {"*": why_method} if why_method else {}
        reasons.update({d: why.dataset_reason(method, substitutes.get(d, d)) for d in missing})
        results.append(RowResult(row, method, cells, reasons))
    return TableResult(published, table, results, substitutes, why.store)


def trained_rows(labels: Mapping[str, str], trained_on: Mapping[str, Sequence[str]] | None = None) -> list[PaperRow]:
    """Rows for models trained by this project (method -> its card's "trained here" label).

    They are added after the paper's rows, with no published values and the label as their note,
    so the table shows them beside the published numbers without presenting them as the paper's.
    """
    trained_on = trained_on or {}
    return [PaperRow(id=name, label=name, columns={"trained_on": ", ".join(trained_on.get(name, ())) or "?"},
                     method=name, unmeasurable=None, note=_squash(label), values={}, trained=_squash(label))
            for name, label in sorted(labels.items())]


def trained_labels(manifests: Mapping[tuple[str, str], Mapping[str, Any]],
                   methods: Mapping[str, Any] | None) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """Which methods were trained here, with their labels and training sets: from the method
    cards (``paper:`` field, the one home of the label) where a card is known, else from the
    copy of that field in the store's manifests."""
    labels: dict[str, str] = {}
    sets: dict[str, tuple[str, ...]] = {}
    for (method, _d), man in sorted(manifests.items()):
        info = man.get("method") or {}
        label = trained_here(info.get("paper"))
        if label and method not in labels:
            labels[method], sets[method] = label, tuple(info.get("trained_on") or ())
    for name, spec in (methods or {}).items():
        label = trained_here(getattr(spec, "paper", ""))
        if label:
            labels[name], sets[name] = label, tuple(spec.trained_on)
    return labels, sets


def _registry(load: Callable[[], Mapping[str, Any]], what: str, notes: list[str]) -> Mapping[str, Any] | None:
    try:
        return load()
    except Exception as exc:  # noqa: BLE001 - the table is still useful without the registry
        notes.append(f"note: {what} registry unavailable ({exc}); reasons will be generic")
        return None


def table_from_store(name: str, store: str | Path | None = None, *, published: str | Path | None = None,
                     row_methods: Mapping[str, str | None] | None = None, substitutes: Mapping[str, str] | None = None,
                     method_cards: Sequence[str | Path] = (), datasets_files: Sequence[str | Path] = (),
                     trained: bool = True) -> TableResult:
    """The paper's table ``name`` with the means of the results store (all its images).

    A store that does not exist gives the published values only; the method cards and datasets
    files explain why a row or column could not be measured (the result's ``notes`` say when they
    cannot be read).
    With ``trained``, Table 2 also gets one row per model trained here (:func:`trained_labels`:
    a ``--method-card`` written by ``rsr-bench train``, or such a method's results in the store).
    """
    from .. import store as st
    from ..datasets import load_datasets
    from ..methods.cards import load_method_specs

    root = store_root(store)
    pub = load_published(published)
    notes: list[str] = []
    known_methods = _registry(lambda: load_method_specs([str(p) for p in method_cards]), "method", notes)
    known_datasets = _registry(lambda: load_datasets([str(p) for p in datasets_files]), "dataset", notes)
    if not root.is_dir():
        notes.append(f"note: store {root} does not exist; showing published values only")
    why = Availability(str(root), st.load_skipped(root), known_methods, known_datasets)
    if trained and name == "table2":
        labels, sets = trained_labels(st.load_manifests(root) if root.is_dir() else {}, known_methods)
        table = pub.tables[name]
        pub = replace(pub, tables={**pub.tables, name: replace(table, rows=[*table.rows, *trained_rows(labels, sets)])})
    result = build_table(pub, name, st.aggregate(st.load_results(root)), row_methods=row_methods,
                         substitutes=substitutes, why=why)
    result.notes = notes
    return result


def _num(metric: str, published: Published, v: float | None, *, diff: bool = False, extra: int = 0) -> str:
    if v is None:
        return "—"
    dec = int(published.metrics.get(metric, {}).get("decimals", 2)) + extra
    return f"{v:+.{dec}f}" if diff else f"{v:.{dec}f}"


def _metric_head(res: TableResult, m: str) -> tuple[str, str]:
    """A metric's label and direction arrow."""
    meta = res.published.metrics[m]
    return str(meta.get("label", m)), "↑" if meta.get("higher_is_better", True) else "↓"


def _grid(res: TableResult) -> tuple[list[str], list[list[str]]]:
    """Header and body rows (plain strings) shared by the three renderings; every paper row gives
    three lines: published, measured, difference."""
    pub = res.published
    desc = [c for c in res.table.columns if c != "method"]
    head = (["Method"] if res.table.name == "table2" else []) + [c.replace("_", " ") for c in desc] + [""]
    head += ["{}{} {}".format(*_metric_head(res, m), _col_label(res, c)) for m in res.metrics for c in res.columns]
    body = []
    for r in res.rows:
        lead = ([r.row.label] if res.table.name == "table2" else []) + [r.row.columns.get(c, "") for c in desc]
        line_p = [*lead, f"{TRAINED_HERE} (no published value)" if r.row.trained else "paper"]
        line_m = [*[""] * len(lead), f"measured ({r.method})" if r.method else "measured"]
        line_d = [*[""] * len(lead), "Δ"]
        for m in res.metrics:
            for c in res.columns:
                cell = r.cells[m][c]
                line_p.append(_num(m, pub, cell.published))
                line_m.append(_num(m, pub, cell.measured, extra=1) if cell.measured is not None else ("n/a" if r.reasons else "—"))
                line_d.append(_num(m, pub, cell.diff, diff=True, extra=1) if cell.diff is not None else "")
        body += [line_p, line_m, line_d]
    return head, body


def _n_lead(res: TableResult, head: list[str]) -> int:
    """Columns before the values: the row's descriptive columns and the paper/measured/Δ label."""
    return len(head) - len(res.metrics) * len(res.columns)


def _col_label(res: TableResult, c: str) -> str:
    if c == AVG:
        return "avg"
    label = res.published.dataset_labels.get(c, c)
    return f"{label}*" if c in res.substitutes else label


def _title(res: TableResult) -> str:
    return res.table.name.replace("table", "Table ")


def _footer_lines(res: TableResult) -> list[str]:
    lines = [f"* {d} measured on {used} instead: these numbers are NOT comparable with the paper's."
             for d, used in res.substitutes.items()]
    lines.append("measured: means over the images in the store; avg = mean of the two datasets' means; "
                 "Δ = measured - paper.")
    lines += [f"{r.row.label}: {r.row.trained}."
              for r in res.rows if r.row.trained]
    notes: dict[str, list[str]] = {}  # one line per distinct note, naming every row it applies to
    for r in res.rows:
        if r.row.note and not r.row.trained:
            notes.setdefault(r.row.note, []).append(_row_name(res.table, r.row))
    lines += [f"note ({'; '.join(rows)}): {n}" for n, rows in notes.items()]
    lines.append(f"Published values: {res.published.citation()}")
    return lines


def render_markdown(res: TableResult) -> str:
    head, body = _grid(res)
    out = [f"**{_title(res)}** — {md_escape(res.table.caption)}", ""]
    out += md_table([md_escape(h) for h in head], [[md_escape(x) for x in r] for r in body], left=_n_lead(res, head))
    missing = res.not_measured()
    if missing:
        out += ["", "**Not measured:**", "", *(f"- {md_escape(m)}" for m in missing)]
    out += ["", *(f"{md_escape(line)}  " for line in _footer_lines(res))]
    return "\n".join(out).rstrip() + "\n"


def render_latex(res: TableResult) -> str:
    """A booktabs table with a metric header row spanning its dataset columns."""
    head, body = _grid(res)
    n_lead = _n_lead(res, head)
    groups = [(tex_escape(" ".join(_metric_head(res, m))), len(res.columns)) for m in res.metrics]
    sub = [tex_escape(h) for h in head[:n_lead]] + [tex_escape(_col_label(res, c)) for _ in res.metrics for c in res.columns]
    rows: list[list[str] | str] = []
    for i, r in enumerate(body):
        rows.append([tex_escape(x) for x in r])
        if i % 3 == 2 and i != len(body) - 1:
            rows.append(r"\addlinespace")
    caption = tex_escape(f"{res.table.caption} Published values beside measured ones; {' '.join(_footer_lines(res)[:-1])}")
    missing = res.not_measured()
    if missing:
        caption += " Not measured: " + "; ".join(tex_escape(m) for m in missing) + "."
    lines = [rf"% Generated by rsr-bench paper {res.table.name}; needs \usepackage{{booktabs}}",
             r"\begin{table*}[t]", r"\centering", r"\small", *tex_tabular(n_lead, groups, sub, rows),
             r"\caption{" + caption + "}", r"\end{table*}"]
    return "\n".join(lines) + "\n"


def render_html(res: TableResult) -> str:
    """A self-contained HTML fragment (table + notes), styled minimally inline."""
    head, body = _grid(res)
    n_lead, e = _n_lead(res, head), html.escape
    out = [f'<section class="rsr-paper-table" id="{e(res.table.name)}">', f"<h2>{e(_title(res))}</h2>",
           f"<p>{e(res.table.caption)}</p>",
           '<table style="border-collapse:collapse;font-variant-numeric:tabular-nums">', "<thead>", "<tr>",
           "".join(f'<th rowspan="2">{e(h)}</th>' for h in head[:n_lead])]
    out += ['<th colspan="{}">{} {}</th>'.format(len(res.columns), *map(e, _metric_head(res, m))) for m in res.metrics]
    out.append("</tr><tr>" + "".join(f"<th>{e(_col_label(res, c))}</th>" for _ in res.metrics for c in res.columns) + "</tr>")
    out += ["</thead>", "<tbody>"]
    for i, r in enumerate(body):
        style = ' style="border-top:1px solid #999"' if i % 3 == 0 else ""
        cells = "".join(
            f'<td style="padding:0 .4em;{"text-align:right" if j >= n_lead else ""}{";color:#888" if x in ("n/a", "—") else ""}">{e(x)}</td>'
            for j, x in enumerate(r))
        out.append(f'<tr class="{("paper", "measured", "diff")[i % 3]}"{style}>{cells}</tr>')
    out += ["</tbody>", "</table>"]
    missing = res.not_measured()
    if missing:
        out.append("<h3>Not measured</h3><ul>" + "".join(f"<li>{e(m)}</li>" for m in missing) + "</ul>")
    out += ["<p>" + "<br>".join(e(line) for line in _footer_lines(res)) + "</p>", "</section>"]
    return "\n".join(out) + "\n"


RENDERERS = {"markdown": (render_markdown, "md"), "latex": (render_latex, "tex"), "html": (render_html, "html")}


def render(res: TableResult, fmt: str) -> str:
    if fmt not in RENDERERS:
        raise ConfigError(f"unknown format {fmt!r}; choose from {', '.join(RENDERERS)}")
    return RENDERERS[fmt][0](res)


def write_tables(res: TableResult, fmt: str, out: str | Path | None = None) -> list[Path]:
    """Write one format to the file ``out``, or every format (``fmt="all"``) into the folder ``out``
    (default: the current folder) as ``<table>.md/.tex/.html``; returns the paths written."""
    if fmt != "all":
        if out is None:
            raise ConfigError("writing one format needs a file to write to")
        atomic_write_text(out, render(res, fmt))
        return [Path(out)]
    paths = []
    for fn, ext in RENDERERS.values():
        paths.append(Path(out or ".") / f"{res.table.name}.{ext}")
        atomic_write_text(paths[-1], fn(res))
    return paths
