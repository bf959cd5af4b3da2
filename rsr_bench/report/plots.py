"""Matplotlib figures for the report, each saved as PNG (embedded) and SVG (for papers).

Uses ``matplotlib.figure.Figure`` directly, never pyplot, so rendering a report does not touch
global backend state of the caller's process and needs no display.

* perception–distortion: PSNR (up) vs LPIPS (left) per paired dataset, one point per method,
  filled where the method is in-domain, hollow where cross-domain;
* domain gap: per trained method, mean over in-domain vs cross-domain datasets;
* distributions: per dataset, per-image values of each metric as box plots per method.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from .model import ReportData
from .tables import domain_split, family_label, metric_label

MAX_DIST_METRICS = 4


@dataclass
class Plot:
    title: str
    png: str  # relative to the report folder
    svg: str
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


def _save(fig: Figure, out_dir: Path, assets: str, stem: str) -> tuple[str, str]:
    pdir = out_dir / assets / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    # Constrained layout runs on the first save only; the SVG reuses the positions (each layout
    # pass measures every tick label, which dominates the report's render time).
    fig.savefig(pdir / f"{stem}.png", dpi=110)
    fig.set_layout_engine("none")
    fig.savefig(pdir / f"{stem}.svg")
    return f"{assets}/plots/{stem}.png", f"{assets}/plots/{stem}.svg"


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
    colours = _family_colours(data)
    markers = _method_markers(data)
    fig = Figure(figsize=(4.2 * len(dsets), 3.6), layout="constrained")
    axes = fig.subplots(1, len(dsets), squeeze=False)[0]
    for ax, d in zip(axes, dsets):
        for m in data.methods:
            if (m, d, y_metric) not in stats or (m, d, x_metric) not in stats:
                continue
            dom = data.in_domain(m, d)
            c = colours[data.methods[m].family]
            ax.scatter(stats[(m, d, x_metric)][0], stats[(m, d, y_metric)][0], s=60,
                       marker="s" if dom is None else markers[m], facecolors=c if dom in (True, None) else "white",
                       edgecolors=c, linewidths=1.8, label=_method_label(data, m), zorder=3)
        ax.set_title(d, fontsize=10)
        ax.set_xlabel(f"{metric_label(x_metric)} {data.metrics[x_metric].arrow}")
        ax.set_ylabel(f"{metric_label(y_metric)} {data.metrics[y_metric].arrow}")
        ax.grid(alpha=0.3)
        if not data.metrics[x_metric].higher_is_better and not ax.xaxis_inverted():
            ax.invert_xaxis()  # better to the right, better up: the ideal is the top-right corner
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)
    png, svg = _save(fig, out_dir, assets, "perception_distortion")
    return Plot("Perception–distortion", png, svg,
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
    fig = Figure(figsize=(3.4 * len(metrics), 3.4), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, x in zip(axes, metrics):
        sub = split[split["metric"] == x]
        pos = range(len(sub))
        ax.bar([p - 0.2 for p in pos], sub["in_domain"], width=0.4, color="#1f5fbf", label="in-domain")
        ax.bar([p + 0.2 for p in pos], sub["cross_domain"], width=0.4, color="#c0392b", label="cross-domain")
        ax.set_xticks(list(pos), [_method_label(data, m) for m in sub["method"]], rotation=35, ha="right", fontsize=7)
        ax.set_title(f"{metric_label(x)} {data.metrics[x].arrow}", fontsize=10)
        lo = min(sub["in_domain"].min(), sub["cross_domain"].min())
        hi = max(sub["in_domain"].max(), sub["cross_domain"].max())
        pad = (hi - lo) * 0.3 or abs(hi) * 0.1 or 1.0
        ax.set_ylim(lo - pad, hi + pad)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, frameon=False)
    png, svg = _save(fig, out_dir, assets, "domain_gap")
    return Plot("In-domain vs cross-domain", png, svg,
                "Per trained method: mean over the datasets it was trained on vs over the others. "
                "A large gap means the method only works in its training domain.", wide=len(metrics) > 2)


def distributions(data: ReportData, out_dir: Path, assets: str) -> list[Plot]:
    from .grids import slug

    plots = []
    res = data.results
    colours = _family_colours(data)
    for d in data.datasets:
        sub = res[res["dataset"] == d]
        metrics = [x for x in data.metrics if x in set(sub["metric"])][:MAX_DIST_METRICS]
        if not metrics:
            continue
        methods = [m for m in data.methods if m in set(sub["method"])]
        fig = Figure(figsize=(max(3.2, 0.55 * len(methods) + 1.2) * len(metrics), 3.4), layout="constrained")
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        for ax, x in zip(axes, metrics):
            sx = sub[sub["metric"] == x]
            groups = [sx.loc[sx["method"] == m, "value"].to_numpy() for m in methods]
            keep = [(m, g) for m, g in zip(methods, groups) if len(g)]
            if not keep:
                continue
            bp = ax.boxplot([g for _, g in keep], patch_artist=True, widths=0.6, showfliers=True,
                            flierprops={"markersize": 3})
            for patch, (m, _) in zip(bp["boxes"], keep):
                patch.set_facecolor(colours[data.methods[m].family])
                patch.set_alpha(0.55)
            ax.set_xticks(range(1, len(keep) + 1), [_method_label(data, m) for m, _ in keep],
                          rotation=35, ha="right", fontsize=7)
            ax.set_title(f"{metric_label(x)} {data.metrics[x].arrow}", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
        fig.suptitle(d, fontsize=11)
        png, svg = _save(fig, out_dir, assets, f"dist_{slug(d)}")
        plots.append(Plot(f"Per-image distribution: {d}", png, svg,
                          f"Per-image values on {d} (box: quartiles, whiskers: 1.5 IQR, dots: outliers).",
                          wide=len(metrics) > 2))
    return plots


def build_plots(data: ReportData, out_dir: Path, assets: str) -> list[Plot]:
    plots = [perception_distortion(data, out_dir, assets), domain_gap(data, out_dir, assets)]
    return [p for p in plots if p is not None] + distributions(data, out_dir, assets)
