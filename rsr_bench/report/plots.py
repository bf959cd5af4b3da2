"""The report's figures, written as SVG by :mod:`.svgplot` (shown in the page and linked as the
vector file for papers; issue 15 replaced matplotlib's PNG + SVG, which took most of a report's
time, with this).

* perception–distortion: PSNR (up) vs LPIPS (left) per paired dataset, one point per method,
  filled where the method is in-domain, hollow where cross-domain;
* domain gap: per trained method, mean over in-domain vs cross-domain datasets;
* distributions: per dataset, per-image values of each metric as box plots per method.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .model import ReportData
from .svgplot import Chart, Panel, Series, render
from .tables import domain_split, family_label, metric_label

MAX_DIST_METRICS = 4


@dataclass
class Plot:
    title: str
    svg: str  # relative to the report folder; the page shows it and links it
    caption: str
    wide: bool = False  # takes a whole row in the page (many panels)


def _family_colours(data: ReportData) -> dict[str, str]:
    palette = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#d62728"]
    fams = list(dict.fromkeys(m.family for m in data.methods.values()))
    out = {}
    i = 0
    for f in fams:
        if f == data.highlight_family:
            out[f] = "#2ca02c"
        else:
            out[f] = palette[i % len(palette)]
            i += 1
    return out


def _method_markers(data: ReportData) -> dict[str, str]:
    """Marker per checkpoint: checkpoints of one family share its colour, so shape tells them apart."""
    shapes = ["o", "^", "D", "v", "P", "X", "h", "<", ">"]
    seen: dict[str, int] = {}
    out = {}
    for name, m in data.methods.items():
        k = seen.get(m.family, 0)
        seen[m.family] = k + 1
        out[name] = shapes[k % len(shapes)]
    return out


def _save(chart: Chart, out_dir: Path, assets: str, stem: str, alt: str) -> str:
    """Write ``chart`` as ``assets/plots/<stem>.svg``; its path relative to the report folder.
    (The report folder is built aside and swapped in whole, so a plain write is atomic enough.)"""
    pdir = out_dir / assets / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    (pdir / f"{stem}.svg").write_text(render(chart, alt), encoding="utf-8")
    return f"{assets}/plots/{stem}.svg"


def _method_label(data: ReportData, name: str) -> str:
    m = data.methods[name]
    return f"{family_label(m.family)} ({', '.join(m.trained_on) or m.tag})"


def perception_distortion(data: ReportData, out_dir: Path, assets: str,
                          y_metric: str = "psnr", x_metric: str = "lpips") -> Plot | None:
    stats = data.cell_stats()
    if x_metric not in data.metrics:  # fall back to another lower-is-better full-reference metric
        x_metric = next((n for n, mi in data.metrics.items() if mi.kind == "FR" and not mi.higher_is_better), "")
    if y_metric not in data.metrics or not x_metric:
        return None
    dsets = [d for d in data.datasets
             if any((m, d, y_metric) in stats and (m, d, x_metric) in stats for m in data.methods)]
    if not dsets:
        return None
    colours, markers = _family_colours(data), _method_markers(data)
    panels, legend = [], {}
    for d in dsets:
        panel = Panel(title=d, xlabel=f"{metric_label(x_metric)} {data.metrics[x_metric].arrow}",
                      ylabel=f"{metric_label(y_metric)} {data.metrics[y_metric].arrow}",
                      # better to the right, better up: the ideal is the top-right corner
                      invert_x=not data.metrics[x_metric].higher_is_better)
        for m in data.methods:
            if (m, d, y_metric) not in stats or (m, d, x_metric) not in stats:
                continue
            dom = data.in_domain(m, d)
            c, shape = colours[data.methods[m].family], "s" if dom is None else markers[m]
            panel.series.append(Series("scatter", [stats[(m, d, x_metric)][0]], [stats[(m, d, y_metric)][0]],
                                       colour=c, marker=shape, filled=dom in (True, None)))
            legend.setdefault(m, Series("scatter", colour=c, marker=shape, label=_method_label(data, m)))
        panels.append(panel)
    title = "Perception–distortion"
    svg = _save(Chart(panels, legend=list(legend.values()), panel_w=260, panel_h=220), out_dir, assets,
                "perception_distortion", title)
    return Plot(title, svg,
                f"Mean {metric_label(y_metric)} vs mean {metric_label(x_metric)} per dataset (better: top right). "
                "Colour: method family; shape: checkpoint; filled: in-domain, hollow: cross-domain, square: no training set.", wide=len(dsets) > 2)


def domain_gap(data: ReportData, out_dir: Path, assets: str) -> Plot | None:
    split = domain_split(data)
    if split.empty:
        return None
    split = split.dropna(subset=["in_domain", "cross_domain"])
    metrics = [x for x in data.metrics if x in set(split["metric"])][:MAX_DIST_METRICS]
    if not metrics:
        return None
    panels = []
    for x in metrics:
        sub = split[split["metric"] == x]
        ins, outs = [float(v) for v in sub["in_domain"]], [float(v) for v in sub["cross_domain"]]
        pos = [float(p) for p in range(1, len(sub) + 1)]
        lo, hi = min(ins + outs), max(ins + outs)
        pad = (hi - lo) * 0.3 or abs(hi) * 0.1 or 1.0
        panels.append(Panel(
            [Series("bar", [p - 0.2 for p in pos], ins, colour="#1f5fbf"),
             Series("bar", [p + 0.2 for p in pos], outs, colour="#c0392b")],
            title=f"{metric_label(x)} {data.metrics[x].arrow}", ylim=(lo - pad, hi + pad),
            categories=list(zip(pos, [_method_label(data, m) for m in sub["method"]]))))
    title = "In-domain vs cross-domain"
    legend = [Series("bar", colour="#1f5fbf", label="in-domain"), Series("bar", colour="#c0392b", label="cross-domain")]
    svg = _save(Chart(panels, legend=legend, panel_w=230, panel_h=210), out_dir, assets, "domain_gap", title)
    return Plot(title, svg,
                "Per trained method: mean over the datasets it was trained on vs over the others. "
                "A large gap means the method only works in its training domain.", wide=len(metrics) > 2)


def _dist_panel(data: ReportData, dataset: str, methods: list[str], colours: dict[str, str], metric: str) -> Panel | None:
    groups = {m: list(data.values.get((m, dataset, metric), {}).values()) for m in methods}
    keep = [m for m in methods if groups[m]]
    if not keep:
        return None
    pos = [float(i) for i in range(1, len(keep) + 1)]
    boxes = [Series("box", [p], groups=[groups[m]], colour=colours[data.methods[m].family], width=0.6, alpha=0.55)
             for p, m in zip(pos, keep)]
    return Panel(boxes, title=f"{metric_label(metric)} {data.metrics[metric].arrow}",
                 categories=list(zip(pos, [_method_label(data, m) for m in keep])))


def distributions(data: ReportData, out_dir: Path, assets: str) -> list[Plot]:
    from .grids import slug

    plots = []
    colours = _family_colours(data)
    cells = {(m, d, x) for m, d, x in data.values}
    for d in data.datasets:
        metrics = [x for x in data.metrics if any((m, d, x) in cells for m in data.methods)][:MAX_DIST_METRICS]
        methods = [m for m in data.methods if any((m, d, x) in cells for x in data.metrics)]
        panels = [p for x in metrics if (p := _dist_panel(data, d, methods, colours, x)) is not None]
        if not panels:
            continue
        title = f"Per-image distribution: {d}"
        chart = Chart(panels, title=d, panel_w=max(200.0, 34.0 * len(methods) + 60), panel_h=200)
        svg = _save(chart, out_dir, assets, f"dist_{slug(d)}", title)
        plots.append(Plot(title, svg, f"Per-image values on {d} (box: quartiles, whiskers: 1.5 IQR, dots: outliers).",
                          wide=len(metrics) > 2))
    return plots


def build_plots(data: ReportData, out_dir: Path, assets: str) -> list[Plot]:
    plots = [perception_distortion(data, out_dir, assets), domain_gap(data, out_dir, assets)]
    return [p for p in plots if p is not None] + distributions(data, out_dir, assets)
