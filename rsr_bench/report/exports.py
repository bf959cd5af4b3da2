"""Exports of the generalisation table: CSV (long and wide), Markdown and LaTeX (booktabs).

All of them render the same :class:`~rsr_bench.report.tables.GenTable`, so highlights and
in-domain marks agree with the HTML. Markdown marks best in bold and second best in italics;
LaTeX uses the paper's red/blue via ``\\best``/``\\second`` macros defined in a header comment,
so a paper can restyle them in one place.

CSV cells that hold text (method, dataset and metric names come from users' cards, datasets
files and folders) go through :func:`csv_cell`: a spreadsheet evaluates a cell starting with
``=``, ``+``, ``-`` or ``@`` as a formula (CSV injection), so such text gets a leading apostrophe;
numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .model import ReportData
from .tables import AVERAGE, GenTable, metric_label

IN_DOMAIN_MARK = "†"
LONG_COLUMNS = ["method", "dataset", "metric", "mean", "std", "n"]
#: The files each export format writes into a report folder.
EXPORT_FILES = {"csv": ("results_long.csv", "table.csv"), "md": ("table.md",), "tex": ("table.tex",)}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """One CSV cell: numbers as they are, text prefixed with ``'`` when a spreadsheet would
    evaluate it as a formula (it starts with ``= + - @``, a tab or a carriage return)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def long_csv(data: ReportData) -> str:
    """One row per (method, dataset, metric): mean, per-image std and image count."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(LONG_COLUMNS + ["n_failed", "in_domain"])
    failed = data.failure_counts_by_metric()
    order_m = {m: i for i, m in enumerate(data.methods)}
    order_d = {d: i for i, d in enumerate(data.datasets)}
    order_x = {x: i for i, x in enumerate(data.metrics)}
    rows = sorted(data.stats.itertuples(index=False),
                  key=lambda r: (order_m.get(r.method, 0), order_d.get(r.dataset, 0), order_x.get(r.metric, 0)))
    for r in rows:
        dom = data.in_domain(r.method, r.dataset)
        w.writerow([csv_cell(v) for v in (
            r.method, r.dataset, r.metric, float(r.mean),
            float(r.std) if not (isinstance(r.std, float) and math.isnan(r.std)) else "",
            int(r.n), failed.get((r.method, r.dataset, r.metric), 0), "" if dom is None else str(dom).lower())])
    return buf.getvalue()


def wide_csv(table: GenTable) -> str:
    """The paper layout as CSV: one row per checkpoint, ``metric|dataset`` columns, full precision."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([csv_cell(v) for v in ["method", "family", "tag", "trained_on", *(c.key for c in table.columns)]])
    for r in table.rows:
        w.writerow([csv_cell(v) for v in [r.method.name, r.method.family, r.method.tag, ";".join(r.method.trained_on),
                                          *("" if c.value is None else float(c.value) for c in r.cells)]])
    return buf.getvalue()


def md_escape(s: str) -> str:
    """Backslash-escape what Markdown would interpret (table pipes, emphasis, inline HTML)."""
    for ch in "\\|*_<>`[]":
        s = s.replace(ch, "\\" + ch)
    return s


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]], *, left: int) -> list[str]:
    """GitHub-flavoured Markdown table lines from cells already escaped (and marked up); the first
    ``left`` columns are left-aligned, the value columns right-aligned."""
    align = "|" + "---|" * left + "---:|" * (len(header) - left)
    return ["| " + " | ".join(header) + " |", align, *("| " + " | ".join(r) + " |" for r in rows)]


def markdown(table: GenTable) -> str:
    """GitHub-flavoured Markdown: **best**, _second_, † in-domain, — missing."""
    head = ["Method", "Trained on"] + [f"{metric_label(c.metric.name)}{c.metric.arrow} "
                                       + ("avg" if c.dataset == AVERAGE else md_escape(c.dataset)) for c in table.columns]
    rows = []
    for r in table.rows:
        trained = md_escape(r.trained_label) + (f" ({md_escape(r.method.tag)})" if r.show_tag else "")
        cells = [md_escape(r.family_label) if r.family_first else "", trained]
        for c in r.cells:
            t = c.text + (IN_DOMAIN_MARK if c.in_domain and c.value is not None else "")
            cells.append(f"**{t}**" if c.rank == 1 else f"_{t}_" if c.rank == 2 else t)
        rows.append(cells)
    return "\n".join([*md_table(head, rows, left=2), "",
                      f"**Bold**: best, _italic_: second best per column; {IN_DOMAIN_MARK}: in-domain "
                      "(tested on its training set); —: no value (see the HTML report for the reason)."]) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "—": "---",
        "†": r"$^\dagger$", "<": r"\textless{}", ">": r"\textgreater{}", "Δ": r"$\Delta$",
        "↑": r"$\uparrow$", "↓": r"$\downarrow$"}


def tex_escape(s: str) -> str:
    """Text as LaTeX source: special characters escaped, the report's symbols (— † Δ ↑ ↓) as commands."""
    return "".join(_TEX.get(ch, ch) for ch in s)


def tex_tabular(lead: int, groups: Sequence[tuple[str, int]], sub: Sequence[str],
                body: Iterable[Sequence[str] | str]) -> list[str]:
    """A booktabs tabular: ``lead`` left columns, then one header cell per (label, width) group
    spanning its right-aligned columns (with a ``\\cmidrule`` under it), the ``sub`` header row,
    and the body (a string item, e.g. ``\\midrule``, goes in as it is). Cells are LaTeX already."""
    head, rules, col = [""] * lead, [], lead + 1
    for label, width in groups:
        head.append(f"\\multicolumn{{{width}}}{{c}}{{{label}}}")
        rules.append(f"\\cmidrule(lr){{{col}-{col + width - 1}}}")
        col += width
    lines = ["\\begin{tabular}{" + "l" * lead + "r" * (col - lead - 1) + "}", "\\toprule",
             " & ".join(head) + " \\\\", " ".join(rules), " & ".join(sub) + " \\\\", "\\midrule"]
    lines += [row if isinstance(row, str) else " & ".join(row) + " \\\\" for row in body]
    return lines + ["\\bottomrule", "\\end{tabular}"]


def latex(table: GenTable) -> str:
    """A booktabs table, metric groups with ``\\cmidrule``; needs booktabs and xcolor."""
    groups = [(tex_escape(metric_label(metric.name) + metric.arrow), len(cols)) for metric, cols in table.metric_groups]
    sub = ["Method", "Trained on"] + [("avg" if c.dataset == AVERAGE else tex_escape(c.dataset)) for c in table.columns]
    body: list[list[str] | str] = []
    for i, r in enumerate(table.rows):
        if r.family_first and i:
            body.append("\\midrule")
        trained = tex_escape(r.trained_label) + (f" ({tex_escape(r.method.tag)})" if r.show_tag else "")
        cells = [tex_escape(r.family_label) if r.family_first else "", trained]
        for c in r.cells:
            t = tex_escape(c.text) + ("$^\\dagger$" if c.in_domain and c.value is not None else "")
            cells.append(f"\\best{{{t}}}" if c.rank == 1 else f"\\second{{{t}}}" if c.rank == 2 else t)
        body.append(cells)
    return "\n".join([
        "% Requires \\usepackage{booktabs,xcolor}. Best / second best as in the RSR paper:",
        "\\providecommand{\\best}[1]{\\textcolor{red}{#1}}",
        "\\providecommand{\\second}[1]{\\textcolor{blue}{#1}}",
        *tex_tabular(2, groups, sub, body),
        "% $^\\dagger$ in-domain (tested on its training set); --- no value.",
    ]) + "\n"


def write_exports(data: ReportData, table: GenTable, out_dir: Path, formats: set[str]) -> dict[str, Path]:
    """Write the requested table exports into ``out_dir``; returns {label: path}."""
    from ..files import atomic_write_text

    exports = {"csv": [("CSV (long: method, dataset, metric, mean, std, n)", lambda: long_csv(data)),
                       ("CSV (table layout)", lambda: wide_csv(table))],
               "md": [("Markdown", lambda: markdown(table))],
               "tex": [("LaTeX (booktabs)", lambda: latex(table))]}
    written: dict[str, Path] = {}
    for fmt in (f for f in EXPORT_FILES if f in formats):
        for name, (label, render) in zip(EXPORT_FILES[fmt], exports[fmt]):
            written[label] = out_dir / name
            atomic_write_text(out_dir / name, render())
    return written


def write_long_csv(data: ReportData, path: str | os.PathLike) -> Path:
    from ..files import atomic_write_text

    atomic_write_text(path, long_csv(data))
    return Path(path)
