"""The report's Robustness section: summary table, severity curves, attack curves, image grids.

Derived datasets (``demo_clean~jpeg@3``, ``demo_clean~pgd@eps4``: :mod:`rsr_bench.robust.naming`)
would turn the generalisation table into fifty columns of one dataset, so :func:`split` takes
them (with their clean base sets) out of the main report data and this section shows them
instead. The numbers come from :mod:`rsr_bench.robust.summary` (computed from the store at
report time); the table is computed once (:class:`RobustTable`) and rendered by the HTML
partial ``templates/robust.html.j2`` and by the CSV/Markdown/LaTeX exporters of
:mod:`rsr_bench.report.exports`, so they cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import ConfigError
from .model import ReportData
from .plots import Plot
from .svgplot import Chart, Panel, Series
from .tables import metric_label

HEADLINE = ("lpips", "psnr")
NAV_MARKER = "<!--rsr-bench:robustness-nav-->"
SECTION_MARKER = "<!--rsr-bench:robustness-->"
NOT_DIFFERENTIABLE = "n/d"
STAT_LABELS = {"clean": "clean", "mean_degradation": "Δ", "mce": "mCE", "relative_mce": "rel. mCE"}


def derived_of(name: str) -> Any:
    """The parsed derived name, or None for an ordinary dataset (or a name that only looks derived)."""
    from ..robust.naming import MARK, parse_derived

    if MARK not in name:
        return None
    try:
        return parse_derived(name)
    except ConfigError:
        return None


def _subset(data: ReportData, datasets: list[str]) -> ReportData:
    keep = set(datasets)
    return replace(
        data, results=data.results[data.results["dataset"].isin(keep)].reset_index(drop=True),
        failures=data.failures[data.failures["dataset"].isin(keep)].reset_index(drop=True),
        manifests={k: v for k, v in data.manifests.items() if k[1] in keep},
        skipped={k: v for k, v in data.skipped.items() if k[1] in keep},
        stats=data.stats[data.stats["dataset"].isin(keep)].reset_index(drop=True),
        datasets={k: v for k, v in data.datasets.items() if k in keep})


def split(data: ReportData) -> tuple[ReportData, ReportData | None]:
    """``(main, robust)``: the report data without derived sets, and the derived sets with their bases."""
    derived = {d: p for d in data.datasets if (p := derived_of(d)) is not None}
    if not derived:
        return data, None
    bases = {p.base for p in derived.values()}
    main = _subset(data, [d for d in data.datasets if d not in derived])
    return main, _subset(data, [d for d in data.datasets if d in derived or d in bases])


# -- the table ------------------------------------------------------------------------------
@dataclass
class RCell:
    value: float | None
    text: str
    rank: int = 0  # 1 best, 2 second best in its column
    reason: str | None = None  # why there is no value


@dataclass
class RColumn:
    key: str  # metric|statistic|group|level, also the CSV column
    group: str
    label: str
    lower_better: bool
    decimals: int = 3
    percent: bool = False

    def fmt(self, v: float) -> str:
        return f"{100 * v:.1f} %" if self.percent else f"{v:.{self.decimals}f}"


@dataclass
class RobustTable:
    dataset: str
    columns: list[RColumn]
    rows: list[tuple[str, list[RCell]]]  # (method, cells)

    @property
    def groups(self) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for c in self.columns:
            if out and out[-1][0] == c.group:
                out[-1] = (c.group, out[-1][1] + 1)
            else:
                out.append((c.group, 1))
        return out


def _attack_group(base: str, tag: str) -> str:
    d = derived_of(f"{base}~{tag}@eps1")
    if d is None or d.attack is None:
        return tag
    a = d.attack
    head = "White-box PGD" if a.kind == "pgd" else f"Transfer PGD from {a.surrogate}"
    opts = [s for s in ("LPIPS" if a.loss == "lpips" else "", f"{a.iters} it" if tag.count("-i") else "") if s]
    return head + (f" ({', '.join(opts)})" if opts else "")


def _columns(summary: pd.DataFrame, data: ReportData, base: str) -> list[RColumn]:
    """Clean scores, corruption summaries and attack drops of the headline metrics (LPIPS, PSNR)."""
    from ..robust.naming import fmt_num

    s = summary[summary["dataset"] == base]
    have = list(dict.fromkeys(s["metric"]))
    heads = [x for x in HEADLINE if x in have] or [x for x in have if x in data.metrics][:2]
    info = {x: data.metrics.get(x) for x in heads}
    dec = {x: info[x].decimals if info[x] else 3 for x in heads}
    cols = [RColumn(f"{x}|clean||", "Clean input", f"{metric_label(x)} {info[x].arrow if info[x] else ''}",
                    bool(info[x]) and not info[x].higher_is_better, dec[x]) for x in heads]
    corr = "Corruptions (mean over all levels)"
    for stat, pct, which in (("mean_degradation", False, heads), ("mce", True, heads[:1]), ("relative_mce", True, heads[:1])):
        cols += [RColumn(f"{x}|{stat}||", corr, f"{STAT_LABELS[stat]} {metric_label(x)}", True, dec[x], pct)
                 for x in which if ((s["metric"] == x) & (s["statistic"] == stat)).any()]
    att = s[s["statistic"].str.endswith("_drop")][["statistic", "group", "level"]].drop_duplicates()
    for r in att.sort_values(["statistic", "group", "level"], ascending=[True, True, True]).itertuples(index=False):
        cols += [RColumn(f"{x}|{r.statistic}|{r.group}|{fmt_num(r.level)}", _attack_group(base, r.group),
                         f"Δ {metric_label(x)} ε{fmt_num(r.level)}", True, dec[x]) for x in heads]
    return cols


def _rank(cells: list[RCell], col: RColumn) -> None:
    """Best (1) and second best (2) by displayed value, so ties on screen tie in colour."""
    shown = [(round(c.value * (100 if col.percent else 1), col.decimals), c) for c in cells if c.value is not None]
    distinct = sorted({v for v, _ in shown}, reverse=not col.lower_better)
    for v, c in shown if len(shown) > 1 else ():
        c.rank = 1 if v == distinct[0] else 2 if len(distinct) > 1 and v == distinct[1] else 0


def _missing(data: ReportData, method: str, base: str, key: str) -> RCell:
    from ..robust.naming import MARK

    metric, stat, group, level = key.split("|")
    if stat.endswith("_drop"):
        skip = data.skipped.get((method, f"{base}{MARK}{group}@eps{level}"))
        if skip and skip.startswith("not differentiable"):
            return RCell(None, NOT_DIFFERENTIABLE, reason=skip)
        if skip:
            return RCell(None, "—", reason=f"not run: {skip}")
    if stat in ("mce", "relative_mce"):
        return RCell(None, "—", reason="needs bicubic.x4 (the reference) on every level of a corruption")
    return RCell(None, "—", reason=f"no {metric} results for this method in the store")


def build_robust_tables(data: ReportData, summary: pd.DataFrame) -> list[RobustTable]:
    """One table per clean base set: rows are methods, columns :func:`_columns`, best two marked."""
    from ..robust.naming import fmt_num

    tables = []
    for base in dict.fromkeys(summary["dataset"]):
        cols = _columns(summary, data, base)
        s = summary[summary["dataset"] == base]
        lookup = {(r.method, r.metric, r.statistic, r.group, fmt_num(r.level) if r.statistic.endswith("_drop") else ""):
                  float(r.value) for r in s.itertuples(index=False)}
        rows = []
        for m in (m for m in data.methods if m in set(s["method"])):
            cells = []
            for c in cols:
                metric, stat, group, level = c.key.split("|")
                v = lookup.get((m, metric, stat, group, level))
                cells.append(RCell(v, c.fmt(v)) if v is not None and not math.isnan(v) else _missing(data, m, base, c.key))
            rows.append((m, cells))
        for j, c in enumerate(cols):
            _rank([r[1][j] for r in rows], c)
        tables.append(RobustTable(base, cols, rows))
    return tables


# -- exports --------------------------------------------------------------------------------
def robust_markdown(tables: list[RobustTable]) -> str:
    """Markdown per base set: **best**, _second_, n/d not differentiable, — no value."""
    from .exports import md_escape, md_table

    out = []
    for t in tables:
        head = ["Method"] + [md_escape(f"{g}: {c.label}") for g, c in ((c.group, c) for c in t.columns)]
        rows = [[md_escape(m)] + [f"**{c.text}**" if c.rank == 1 else f"_{c.text}_" if c.rank == 2 else md_escape(c.text)
                                  for c in cells] for m, cells in t.rows]
        out += [f"### Robustness on {md_escape(t.dataset)}", "", *md_table(head, rows, left=1), ""]
    out.append(f"**Bold**: best, _italic_: second best per column; Δ: degradation against the clean input "
               f"(positive is worse); mCE: corruption error relative to bicubic; {NOT_DIFFERENTIABLE}: not differentiable.")
    return "\n".join(out) + "\n"


def robust_latex(tables: list[RobustTable]) -> str:
    """booktabs tables (``\\best``/``\\second`` as in the main table's export)."""
    from .exports import tex_escape, tex_tabular

    lines = ["% Requires \\usepackage{booktabs,xcolor}.", "\\providecommand{\\best}[1]{\\textcolor{red}{#1}}",
             "\\providecommand{\\second}[1]{\\textcolor{blue}{#1}}"]
    for t in tables:
        body = [[tex_escape(m)] + [f"\\best{{{tex_escape(c.text)}}}" if c.rank == 1 else
                                   f"\\second{{{tex_escape(c.text)}}}" if c.rank == 2 else tex_escape(c.text)
                                   for c in cells] for m, cells in t.rows]
        lines += [f"% Robustness on {t.dataset}",
                  *tex_tabular(1, [(tex_escape(g), n) for g, n in t.groups], ["Method"] + [tex_escape(c.label) for c in t.columns], body)]
    return "\n".join(lines) + "\n"


def write_robust_exports(tables: list[RobustTable], summary: pd.DataFrame, levels: pd.DataFrame, out_dir: Path,
                         formats: set[str]) -> dict[str, Path]:
    """robustness.csv (summary, long), robustness_levels.csv (every level), robustness.md, robustness.tex."""
    from ..files import atomic_write_text

    files: dict[str, tuple[str, str]] = {}
    if "csv" in formats:
        files["Robustness CSV (summary, long)"] = ("robustness.csv", summary.to_csv(index=False, float_format="%.6g"))
        files["Robustness CSV (every level)"] = ("robustness_levels.csv", levels.to_csv(index=False, float_format="%.6g"))
    if "md" in formats:
        files["Robustness Markdown"] = ("robustness.md", robust_markdown(tables))
    if "tex" in formats:
        files["Robustness LaTeX"] = ("robustness.tex", robust_latex(tables))
    for name, text in files.values():
        atomic_write_text(out_dir / name, text)
    return {label: out_dir / name for label, (name, _text) in files.items()}


# -- figures --------------------------------------------------------------------------------
def _style(data: ReportData) -> tuple[dict[str, str], dict[str, str]]:
    from .plots import _family_colours, _method_markers

    colours = _family_colours(data)
    return {m: colours[i.family] for m, i in data.methods.items()}, _method_markers(data)


def severity_plot(levels: pd.DataFrame, data: ReportData, metric: str, out_dir: Path, assets: str) -> Plot | None:
    """One panel per corruption family: ``metric`` vs severity (0 = clean), one line per method."""
    from .grids import slug
    from .plots import _method_label, _save

    sub = levels[(levels["metric"] == metric) & (levels["kind"] == "corruption")]
    if sub.empty:
        return None
    colour, marker = _style(data)
    base = str(sub["dataset"].iloc[0])
    sub = sub[sub["dataset"] == base]
    families = list(dict.fromkeys(sub["group"]))
    methods = [m for m in data.methods if m in set(sub["method"])]
    panels = []
    for fam in families:
        panel = Panel(title=str(fam), xticks=list(range(6)))
        for m in methods:
            g = sub[(sub["group"] == fam) & (sub["method"] == m)].sort_values("level")
            xs, ys = [0.0, *g["level"]], [float(g["clean"].iloc[0]) if len(g) else math.nan, *g["value"]]
            panel.series.append(Series("line", [float(x) for x in xs], [float(y) for y in ys],
                                       colour=colour[m], marker=marker[m], size=3.5))
        panels.append(panel)
    info = data.metrics.get(metric)
    legend = [Series("line", colour=colour[m], marker=marker[m], label=_method_label(data, m)) for m in methods]
    chart = Chart(panels, ncols=min(5, len(families)), xlabel="severity (0 = clean input)",
                  ylabel=f"{metric_label(metric)} {info.arrow if info else ''}", legend=legend,
                  panel_w=200, panel_h=160, sharey=True)
    title = f"{metric_label(metric)} vs severity, per corruption: {base}"
    svg = _save(chart, out_dir, assets, f"robust_{slug(base, metric)}", title)
    return Plot(title, svg,
                f"Mean {metric_label(metric)} over the images of {base} at each severity of each corruption family "
                "(0: the clean input); one line per method. A flat line is a robust method.", wide=True)


def attack_plot(levels: pd.DataFrame, data: ReportData, metrics: list[str], out_dir: Path, assets: str) -> Plot | None:
    """``metric`` vs eps (0 = clean) per method: solid white-box PGD, dashed transfer."""
    from .plots import _method_label, _save

    sub = levels[levels["kind"] != "corruption"]
    metrics = [x for x in metrics if x in set(sub["metric"])]
    if sub.empty or not metrics:
        return None
    colour, marker = _style(data)
    base = str(sub["dataset"].iloc[0])
    panels, legend = [], {}
    for x in metrics:
        info = data.metrics.get(x)
        panel = Panel(xlabel="ε (in 1/255; 0 = clean)", ylabel=f"{metric_label(x)} {info.arrow if info else ''}")
        for (m, group), g in sub[(sub["metric"] == x) & (sub["dataset"] == base)].groupby(["method", "group"], sort=False):
            g = g.sort_values("level")
            white = str(group).startswith("pgd")
            label = f"{_method_label(data, m)}, {'white-box' if white else 'transfer'}"
            panel.series.append(Series("line", [0.0, *map(float, g["level"])], [float(g["clean"].iloc[0]), *map(float, g["value"])],
                                       colour=colour[m], marker=marker[m], dashed=not white, size=3.5))
            legend.setdefault(label, Series("line", colour=colour[m], marker=marker[m], dashed=not white, label=label))
        panels.append(panel)
    title = f"Attack curves: {base}"
    svg = _save(Chart(panels, legend=list(legend.values()), panel_w=280, panel_h=210), out_dir, assets,
                f"robust_attack_{base}", title)
    return Plot(title, svg,
                "Mean metric under an L-inf PGD attack of budget ε (solid: white-box, each method attacked through "
                "its own network; dashed: transfer, crafted once on the surrogate). Flatter is more robust.",
                wide=len(metrics) > 1)


# -- image grids ----------------------------------------------------------------------------
@dataclass
class GridRow:
    label: str
    sub: str
    cells: list[tuple[str | None, str]]  # (crop path relative to the report, caption or why missing)


@dataclass
class LevelGrid:
    title: str
    dataset: str
    image: str
    columns: list[str]
    rows: list[GridRow] = field(default_factory=list)
    crop: tuple[int, int, int, int] = (0, 0, 0, 0)


def _load(path: Path | str | None) -> np.ndarray | None:
    """An image as uint8 HWC through the harness's decoding policy (16-bit attacked inputs too)."""
    from ..errors import ImageError
    from ..image import read_image, to_uint8_hwc

    if not path or not Path(path).is_file():
        return None
    try:
        return to_uint8_hwc(read_image(path))
    except ImageError:
        return None


def _pick_image(data: ReportData, datasets: list[str], methods: list[str]) -> str | None:
    """The first image (by id) that every method has a value for on every one of ``datasets``."""
    res = data.results
    sel = res[res["dataset"].isin(datasets) & res["method"].isin(methods)]
    counts = sel[["method", "dataset", "image"]].drop_duplicates().groupby("image").size()
    full = sorted(counts[counts == len(datasets) * len(methods)].index) or sorted(counts.index)
    return str(full[0]) if full else None


def _caption(data: ReportData, method: str, dataset: str, image: str) -> str:
    res = data.results
    sel = res[(res["method"] == method) & (res["dataset"] == dataset) & (res["image"] == image)]
    vals = dict(zip(sel["metric"], sel["value"]))
    return " · ".join(f"{metric_label(x)} {data.metrics[x].fmt(float(vals[x]))}" for x in HEADLINE
                      if x in vals and x in data.metrics)


def level_grid(data: ReportData, title: str, columns: list[tuple[str, str]], out_dir: Path, assets: str) -> LevelGrid | None:
    """One image across ``columns`` ((label, dataset): clean, then each level): the input and every method."""
    from .. import store
    from .grids import auto_crop, slug

    names = [d for _, d in columns]
    methods = [m for m in data.methods if all((m, d) in data.manifests for d in names[:1])]
    image = _pick_image(data, names, methods)
    if image is None:
        return None
    clean = [a for a in (_load(store.sr_path(data.store_root, m, names[0], image)) for m in methods) if a is not None]
    if not clean:
        return None
    h, w = clean[0].shape[:2]
    box = auto_crop(clean, (w, h))
    grid = LevelGrid(title, names[0], image, [c for c, _ in columns], crop=box)
    gdir = out_dir / assets / "robust"
    gdir.mkdir(parents=True, exist_ok=True)

    def save(arr: np.ndarray | None, key: str) -> str | None:
        x, y, bw, bh = box
        if arr is None or arr.shape[0] < y + bh or arr.shape[1] < x + bw:
            return None
        name = f"{slug(title, image, key)}.png"
        Image.fromarray(np.ascontiguousarray(arr[y:y + bh, x:x + bw])).save(gdir / name, compress_level=6)
        return f"{assets}/robust/{name}"

    grid.rows.append(GridRow("Input", "LR, nearest-neighbour enlarged", [
        _input_cell(save(_enlarged_input(data, methods, d, image, (w, h)), f"input-{d}")) for d in names]))
    for m in methods:
        cells = []
        for d in names:
            crop = save(_load(store.sr_path(data.store_root, m, d, image)), f"{m}-{d}")
            cells.append((crop, _caption(data, m, d, image) if crop else _why_missing(data, m, d)))
        info = data.methods[m]
        grid.rows.append(GridRow(m, ", ".join(info.trained_on) or "no training", cells))
    return grid


def _input_cell(crop: str | None) -> tuple[str | None, str]:
    return crop, "" if crop else "input not found"


def _enlarged_input(data: ReportData, methods: list[str], dataset: str, image: str, size: tuple[int, int]) -> np.ndarray | None:
    from .. import store

    for m in methods:
        rec = store.read_record(data.store_root, m, dataset, image) or {}
        lr = _load(rec.get("lr_path"))
        if lr is not None:
            return np.asarray(Image.fromarray(lr).resize(size, Image.NEAREST))
    return None


def _why_missing(data: ReportData, method: str, dataset: str) -> str:
    if (method, dataset) in data.skipped:
        return f"not run: {data.skipped[(method, dataset)]}"
    return "no output for this image"


def build_level_grids(data: ReportData, levels: pd.DataFrame, out_dir: Path, assets: str) -> list[LevelGrid]:
    """A grid per corruption family (severities) and per transfer attack (eps) of each base set."""
    from ..robust.naming import MARK, fmt_num

    grids = []
    for (base, kind, group), g in levels.groupby(["dataset", "kind", "group"], sort=False):
        if kind == "pgd":
            continue  # white-box inputs differ per method: no common input row
        lv = sorted(set(g["level"]))
        cols = [("clean", base)] + [(f"{'ε ' if kind != 'corruption' else 'severity '}{fmt_num(v)}",
                                     f"{base}{MARK}{group}@{'eps' + fmt_num(v) if kind != 'corruption' else int(v)}")
                                    for v in lv]
        grid = level_grid(data, f"{group} on {base}", cols, out_dir, assets)
        if grid is not None:
            grids.append(grid)
    return grids


# -- the section ----------------------------------------------------------------------------
@dataclass
class RobustSection:
    tables: list[RobustTable]
    plots: list[Plot]
    grids: list[LevelGrid]
    downloads: list[tuple[str, str]]
    failures: list[dict]
    n_failed_images: int
    n_cells: int


def build_robust_section(data: ReportData, out_dir: Path, assets: str, formats: set[str], *,
                         plots: bool = True) -> RobustSection:
    """Everything the Robustness section shows, with its figures, crops and exports written."""
    from ..robust.summary import level_table, summarise

    levels = level_table(data.results)
    summary = summarise(levels)
    tables = build_robust_tables(data, summary)
    written = write_robust_exports(tables, summary, levels, out_dir, formats)
    figures: list[Plot] = []
    grids: list[LevelGrid] = []
    if "html" in formats:
        if plots:
            heads = [x for x in HEADLINE if x in set(levels["metric"])]
            figures = [p for p in (*(severity_plot(levels, data, x, out_dir, assets) for x in heads),
                                   attack_plot(levels, data, heads, out_dir, assets)) if p is not None]
        grids = build_level_grids(data, levels, out_dir, assets)
    errors = data.errors()
    return RobustSection(tables, figures, grids, [(label, p.name) for label, p in written.items()],
                         errors.head(300).to_dict("records"),
                         int(errors[["method", "dataset", "image"]].drop_duplicates().shape[0]),
                         len({k for k in data.manifests if derived_of(k[1]) is not None}))


def insert_section(page: str, section: RobustSection | None) -> str:
    """Put the rendered section (and its navigation link) at the report template's markers."""
    if section is None:
        return page.replace(NAV_MARKER, "").replace(SECTION_MARKER, "")
    from .html import environment

    html = environment().get_template("robust.html.j2").render(s=section, not_differentiable=NOT_DIFFERENTIABLE)
    return page.replace(NAV_MARKER, '<a href="#robustness">Robustness</a>').replace(SECTION_MARKER, html)


# -- terminal -------------------------------------------------------------------------------
def format_summary(summary: Any) -> str:
    """What ``rsr-bench robust`` prints: skips, the robustness table(s), the time breakdown."""
    from ..report.terminal import _render, skipped_lines
    from ..robust.summary import level_table, summarise
    from .model import load_report_data

    lines = skipped_lines({**summary.run.skipped, **summary.skipped})
    data = load_report_data(summary.store)
    table = summarise(level_table(data.results[data.results["method"].isin(summary.plan.methods)]))
    for t in build_robust_tables(data, table[table["dataset"].isin([b.name for b in summary.plan.bases])]):
        rows = [["method"] + [c.label for c in t.columns]] + [[m] + [c.text for c in cells] for m, cells in t.rows]
        lines += ["", f"robustness on {t.dataset}  ({', '.join(f'{g} x{n}' for g, n in t.groups)})", *_render(rows)]
    sec = summary.seconds
    lines += ["", "time: " + ", ".join(f"{k} {sec[k]:.1f} s" for k in ("generation", "attack", "predict", "metrics", "total")
                                     if k in sec), f"results stored in {summary.store}"]
    n_fail = len(summary.failures) + len(summary.run.failures)
    if n_fail:
        lines.append(f"{n_fail} image error(s): see `rsr-bench report` (Failures)")
    return "\n".join(lines)
