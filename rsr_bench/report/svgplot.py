"""A small SVG chart writer for the report's figures: scatter, lines, grouped bars and box plots
in a grid of panels with titles, axis labels, ticks, a grid and a legend.

Why not matplotlib: drawing the report's six figures with it (constrained layout, PNG and SVG)
was ~5 s of the 6.3 s ``report`` on the 4x4x100 benchmark store at load 1, plus 1.3 s to import
it (issue 15). These charts are a few hundred SVG elements written as text in milliseconds; the
browser draws them sharp at any size and the same file is the vector figure for papers. Text
widths are estimated (no font metrics), generously, so labels never overlap the plot.

Everything user-named (methods, datasets, metrics) is XML-escaped; output is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from itertools import pairwise

import numpy as np

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
TICK_FS, LABEL_FS, TITLE_FS, SMALL_FS = 10.0, 11.0, 12.0, 8.5
ROTATION = 35.0  # degrees, for long categorical tick labels


def text_width(text: str, size: float) -> float:
    """Estimated width in px of ``text`` at font size ``size`` (DejaVu Sans averages ~0.55 em)."""
    return 0.6 * size * len(text)


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) inside [lo, hi], about ``target`` of them."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [round(k * step, 12) for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def tick_text(ticks: Sequence[float]) -> list[str]:
    """Labels with as many decimals as the step needs (``0.25`` -> 2, ``5`` -> 0)."""
    if len(ticks) < 2:
        return [f"{t:g}" for t in ticks]
    step = min(abs(b - a) for a, b in pairwise(ticks))
    dec = 0
    while dec < 8 and abs(round(step, dec) - step) > step * 1e-6:
        dec += 1
    return [f"{t:.{dec}f}".replace("-", "\u2212") for t in ticks]


@dataclass
class Series:
    """One drawn thing. ``kind``: ``scatter`` (points), ``line`` (points joined; NaN breaks it),
    ``bar`` (``xs`` centres, ``ys`` heights, ``width``), ``box`` (``groups``: values per ``xs``)."""

    kind: str
    xs: Sequence[float] = ()
    ys: Sequence[float] = ()
    groups: Sequence[Sequence[float]] = ()
    colour: str = "#1f77b4"
    marker: str = "o"
    filled: bool = True
    label: str = ""
    dashed: bool = False
    width: float = 0.4
    size: float = 5.0  # marker radius, px
    alpha: float = 1.0


@dataclass
class Panel:
    """One set of axes. ``categories``: tick labels at x = 1..n (box plots) or the given positions."""

    series: list[Series] = field(default_factory=list)
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    categories: Sequence[tuple[float, str]] = ()
    xticks: Sequence[float] | None = None
    ylim: tuple[float, float] | None = None
    invert_x: bool = False
    grid_x: bool = True


@dataclass
class Chart:
    """A grid of panels; ``legend`` entries (Series without data) are drawn to the right."""

    panels: list[Panel]
    ncols: int = 0  # 0: one row
    title: str = ""
    xlabel: str = ""  # shared labels (under/left of every panel)
    ylabel: str = ""
    legend: list[Series] = field(default_factory=list)
    panel_w: float = 300.0
    panel_h: float = 220.0
    sharey: bool = False


# -- data ranges ------------------------------------------------------------------------------
def box_stats(values: Sequence[float]) -> dict[str, float | list[float]]:
    """Quartiles, whiskers at the furthest points within 1.5 IQR, and the outliers (as matplotlib)."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    q1, med, q3 = (float(q) for q in np.percentile(v, [25, 50, 75]))
    iqr = q3 - q1
    inside = v[(v >= q1 - 1.5 * iqr) & (v <= q3 + 1.5 * iqr)]
    lo, hi = (float(inside.min()), float(inside.max())) if inside.size else (q1, q3)
    return {"q1": q1, "med": med, "q3": q3, "lo": min(lo, q1), "hi": max(hi, q3),
            "fliers": [float(x) for x in v[(v < lo) | (v > hi)]]}


def _extent(panel: Panel) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for s in panel.series:
        if s.kind == "box":
            for x, g in zip(s.xs, s.groups):
                if any(math.isfinite(v) for v in g):
                    st = box_stats(g)
                    xs += [x - 0.5, x + 0.5]
                    ys += [st["lo"], st["hi"], *st["fliers"]]  # type: ignore[list-item]
        elif s.kind == "bar":
            xs += [x + d for x in s.xs for d in (-s.width, s.width)]
            ys += [*s.ys, 0.0]
        else:
            xs += list(s.xs)
            ys += list(s.ys)
    return [x for x in xs if math.isfinite(x)], [y for y in ys if math.isfinite(y)]


def _limits(values: list[float], fixed: tuple[float, float] | None, margin: float = 0.05) -> tuple[float, float]:
    if fixed is not None:
        return fixed
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    pad = (hi - lo) * margin if hi > lo else (abs(hi) * 0.1 or 0.5)
    return lo - pad, hi + pad


@dataclass
class _Axes:
    panel: Panel
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    x0: float = 0.0
    y0: float = 0.0
    w: float = 0.0
    h: float = 0.0

    def px(self, x: float) -> float:
        a, b = self.xlim
        f = (x - a) / (b - a)
        return self.x0 + (1 - f if self.panel.invert_x else f) * self.w

    def py(self, y: float) -> float:
        a, b = self.ylim
        return self.y0 + self.h - (y - a) / (b - a) * self.h

    def xtick_items(self) -> list[tuple[float, str]]:
        if self.panel.categories:
            return list(self.panel.categories)
        lo, hi = sorted(self.xlim)
        ticks = [t for t in self.panel.xticks if lo <= t <= hi] if self.panel.xticks is not None else nice_ticks(lo, hi)
        return list(zip(ticks, tick_text(ticks)))

    def ytick_items(self) -> list[tuple[float, str]]:
        ticks = nice_ticks(*self.ylim)
        return list(zip(ticks, tick_text(ticks)))


def _make_axes(chart: Chart) -> list[_Axes]:
    axes = []
    for p in chart.panels:
        xs, ys = _extent(p)
        xs += list(p.xticks or ())  # explicit ticks widen the axis to show them (as matplotlib)
        cat_x = (0.5, max(x for x, _ in p.categories) + 0.5) if p.categories else None
        axes.append(_Axes(p, cat_x or _limits(xs, None), _limits(ys, p.ylim), w=chart.panel_w, h=chart.panel_h))
    if chart.sharey and axes:
        lo, hi = min(a.ylim[0] for a in axes), max(a.ylim[1] for a in axes)
        for a in axes:
            a.ylim = (lo, hi)
    return axes


# -- layout and drawing ----------------------------------------------------------------------
def _margins(axes: list[_Axes]) -> tuple[float, float, float]:
    """(left, bottom, top) margin around each panel, the same for all so they line up."""
    left = bottom = top = 0.0
    for a in axes:
        ylab = max((text_width(t, TICK_FS) for _, t in a.ytick_items()), default=0.0)
        left = max(left, ylab + 10 + (LABEL_FS + 6 if a.panel.ylabel else 0))
        labels = [t for _, t in a.xtick_items()]
        if a.panel.categories:
            longest = max((text_width(t, SMALL_FS) for t in labels), default=0.0)
            tick_h = longest * math.sin(math.radians(ROTATION)) + SMALL_FS * 1.3 + 6
            # the first rotated label reaches left of its tick by its width x cos(rotation)
            first, (lo, hi) = min(x for x, _ in a.panel.categories), a.xlim
            reach = text_width(a.panel.categories[0][1], SMALL_FS) * math.cos(math.radians(ROTATION))
            left = max(left, reach - (first - lo) / (hi - lo) * a.w + 4)
        else:
            tick_h = TICK_FS + 8
        bottom = max(bottom, tick_h + (LABEL_FS + 8 if a.panel.xlabel else 2))
        top = max(top, TITLE_FS + 10 if a.panel.title else 6)
    return left, bottom, top


def render(chart: Chart, alt: str = "") -> str:
    """The whole chart as an SVG document (str)."""
    axes = _make_axes(chart)
    ncols = chart.ncols or len(axes) or 1
    nrows = math.ceil(len(axes) / ncols) or 1
    left, bottom, top = _margins(axes)
    sup_l = LABEL_FS + 8 if chart.ylabel else 0.0
    sup_t = TITLE_FS + 12 if chart.title else 0.0
    sup_b = LABEL_FS + 10 if chart.xlabel else 0.0
    leg_w = (max(text_width(s.label, SMALL_FS) for s in chart.legend) + 40) if chart.legend else 0.0
    cell_w, cell_h = left + chart.panel_w + 14, top + chart.panel_h + bottom
    width = sup_l + ncols * cell_w + leg_w + 6
    height = max(sup_t + nrows * cell_h + sup_b, 20 + 16 * len(chart.legend))
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT}">'),
           f"<title>{escape(alt or chart.title)}</title>",
           f'<rect width="{width:.0f}" height="{height:.0f}" fill="#fff"/>']
    for i, a in enumerate(axes):
        a.x0 = sup_l + (i % ncols) * cell_w + left
        a.y0 = sup_t + (i // ncols) * cell_h + top
        out += _draw_axes(a, i)
    out += _draw_sup(chart, width, height, sup_l, sup_t, ncols * cell_w, nrows * cell_h)
    if chart.legend:
        out += _draw_legend(chart.legend, sup_l + ncols * cell_w + 8, sup_t + top)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _text(x: float, y: float, text: str, size: float, anchor: str = "middle", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
            f"{escape(text)}</text>")


def _draw_sup(chart: Chart, width: float, height: float, sup_l: float, sup_t: float,
              grid_w: float, grid_h: float) -> list[str]:
    out = []
    if chart.title:
        out.append(_text(sup_l + grid_w / 2, TITLE_FS + 4, chart.title, TITLE_FS, extra=' font-weight="bold"'))
    if chart.xlabel:
        out.append(_text(sup_l + grid_w / 2, sup_t + grid_h + LABEL_FS + 2, chart.xlabel, LABEL_FS))
    if chart.ylabel:
        cy = sup_t + grid_h / 2
        out.append(_text(LABEL_FS + 2, cy, chart.ylabel, LABEL_FS, extra=f' transform="rotate(-90 {LABEL_FS + 2} {cy:.1f})"'))
    return out


def _draw_axes(a: _Axes, index: int) -> list[str]:
    p = a.panel
    out = [f'<g><clipPath id="c{index}"><rect x="{a.x0:.1f}" y="{a.y0:.1f}" width="{a.w:.1f}" height="{a.h:.1f}"/></clipPath>']
    out += _draw_ticks(a)
    out.append(f'<g clip-path="url(#c{index})">')
    for s in p.series:
        out += _DRAW[s.kind](a, s)
    out.append("</g>")
    out.append(f'<rect x="{a.x0:.1f}" y="{a.y0:.1f}" width="{a.w:.1f}" height="{a.h:.1f}" fill="none" stroke="#333" stroke-width="0.8"/>')
    if p.title:
        out.append(_text(a.x0 + a.w / 2, a.y0 - 6, p.title, TITLE_FS))
    if p.ylabel:
        ylab = max((text_width(t, TICK_FS) for _, t in a.ytick_items()), default=0.0)
        x, cy = a.x0 - ylab - 12, a.y0 + a.h / 2
        out.append(_text(x, cy, p.ylabel, LABEL_FS, extra=f' transform="rotate(-90 {x:.1f} {cy:.1f})"'))
    out.append("</g>")
    return out


def _draw_ticks(a: _Axes) -> list[str]:
    p, out = a.panel, []
    bottom = a.y0 + a.h
    for y, t in a.ytick_items():
        yy = a.py(y)
        out.append(f'<line x1="{a.x0:.1f}" x2="{a.x0 + a.w:.1f}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#b0b0b0" stroke-opacity="0.5" stroke-width="0.6"/>')
        out.append(f'<line x1="{a.x0 - 4:.1f}" x2="{a.x0:.1f}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#333" stroke-width="0.8"/>')
        out.append(_text(a.x0 - 6, yy + TICK_FS * 0.35, t, TICK_FS, "end"))
    for x, t in a.xtick_items():
        xx = a.px(x)
        if p.grid_x and not p.categories:
            out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{a.y0:.1f}" y2="{bottom:.1f}" stroke="#b0b0b0" stroke-opacity="0.5" stroke-width="0.6"/>')
        out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{bottom:.1f}" y2="{bottom + 4:.1f}" stroke="#333" stroke-width="0.8"/>')
        if p.categories:
            ty = bottom + 8 + SMALL_FS * 0.8
            out.append(_text(xx + 3, ty, t, SMALL_FS, "end", f' transform="rotate(-{ROTATION:g} {xx + 3:.1f} {ty:.1f})"'))
        else:
            out.append(_text(xx, bottom + 6 + TICK_FS, t, TICK_FS))
    if p.xlabel:
        if p.categories:
            longest = max((text_width(t, SMALL_FS) for _, t in a.xtick_items()), default=0.0)
            tick_h = longest * math.sin(math.radians(ROTATION)) + SMALL_FS * 1.3 + 6
        else:
            tick_h = TICK_FS + 8
        out.append(_text(a.x0 + a.w / 2, bottom + tick_h + LABEL_FS, p.xlabel, LABEL_FS))
    return out


# -- series ------------------------------------------------------------------------------------
def marker(shape: str, x: float, y: float, r: float, fill: str, stroke: str, sw: float = 1.5) -> str:
    """One marker (matplotlib's names: o ^ v < > s D P X h) centred at (x, y) with radius ``r``."""
    style = f'fill="{fill}" stroke="{stroke}" stroke-width="{sw}"'
    if shape == "o":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" {style}/>'
    return f'<path d="{_marker_path(shape, x, y, r)}" {style}/>'


def _marker_path(shape: str, x: float, y: float, r: float) -> str:
    k = r * 0.35
    pts = {
        "^": [(0, -r), (r, r * 0.8), (-r, r * 0.8)],
        "v": [(0, r), (r, -r * 0.8), (-r, -r * 0.8)],
        "<": [(-r, 0), (r * 0.8, -r), (r * 0.8, r)],
        ">": [(r, 0), (-r * 0.8, -r), (-r * 0.8, r)],
        "s": [(-r * 0.85, -r * 0.85), (r * 0.85, -r * 0.85), (r * 0.85, r * 0.85), (-r * 0.85, r * 0.85)],
        "D": [(0, -r), (r * 0.75, 0), (0, r), (-r * 0.75, 0)],
        "h": [(r * math.cos(t), r * math.sin(t)) for t in (math.pi / 6 + i * math.pi / 3 for i in range(6))],
        "P": [(-k, -r), (k, -r), (k, -k), (r, -k), (r, k), (k, k), (k, r), (-k, r), (-k, k), (-r, k), (-r, -k), (-k, -k)],
    }
    if shape == "X":
        c = r * 0.3
        pts["X"] = [(-r + c, -r), (0, -c * 1.4), (r - c, -r), (r, -r + c), (c * 1.4, 0), (r, r - c), (r - c, r),
                    (0, c * 1.4), (-r + c, r), (-r, r - c), (-c * 1.4, 0), (-r, -r + c)]
    poly = pts.get(shape, pts["s"])
    return "M" + " L".join(f"{x + dx:.1f},{y + dy:.1f}" for dx, dy in poly) + " Z"


def _scatter(a: _Axes, s: Series) -> list[str]:
    fill = s.colour if s.filled else "#fff"
    return [marker(s.marker, a.px(x), a.py(y), s.size, fill, s.colour, 1.8)
            for x, y in zip(s.xs, s.ys) if math.isfinite(x) and math.isfinite(y)]


def _line(a: _Axes, s: Series) -> list[str]:
    out, run = [], []
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    for x, y in [*zip(s.xs, s.ys), (math.nan, math.nan)]:
        if math.isfinite(x) and math.isfinite(y):
            run.append(f"{a.px(x):.1f},{a.py(y):.1f}")
        elif run:
            out.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{s.colour}" stroke-width="1.4"{dash}/>')
            run = []
    if s.marker:
        out += _scatter(a, Series("scatter", s.xs, s.ys, colour=s.colour, marker=s.marker, size=s.size))
    return out


def _bar(a: _Axes, s: Series) -> list[str]:
    out = []
    base = a.py(max(min(0.0, a.ylim[1]), a.ylim[0]))
    for x, y in zip(s.xs, s.ys):
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        x1, x2 = sorted((a.px(x - s.width / 2), a.px(x + s.width / 2)))
        y1, y2 = sorted((a.py(y), base))
        out.append(f'<rect x="{x1:.1f}" y="{y1:.1f}" width="{x2 - x1:.1f}" height="{y2 - y1:.1f}" fill="{s.colour}"/>')
    return out


def _box(a: _Axes, s: Series) -> list[str]:
    out = []
    for x, g in zip(s.xs, s.groups):
        if not any(math.isfinite(v) for v in g):
            continue
        st = box_stats(g)
        x1, x2, xc = a.px(x - s.width / 2), a.px(x + s.width / 2), a.px(x)
        q1, q3, med = a.py(st["q1"]), a.py(st["q3"]), a.py(st["med"])  # type: ignore[arg-type]
        lo, hi = a.py(st["lo"]), a.py(st["hi"])  # type: ignore[arg-type]
        cap = (x2 - x1) / 4
        out.append(f'<path d="M{xc:.1f},{q3:.1f} V{hi:.1f} M{xc - cap:.1f},{hi:.1f} H{xc + cap:.1f} '
                   f'M{xc:.1f},{q1:.1f} V{lo:.1f} M{xc - cap:.1f},{lo:.1f} H{xc + cap:.1f}" stroke="#000" fill="none"/>')
        out.append(f'<rect x="{min(x1, x2):.1f}" y="{q3:.1f}" width="{abs(x2 - x1):.1f}" height="{max(q1 - q3, 0.5):.1f}" '
                   f'fill="{s.colour}" fill-opacity="{s.alpha}" stroke="#000"/>')
        out.append(f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{med:.1f}" y2="{med:.1f}" stroke="#ff7f0e" stroke-width="1.5"/>')
        out += [f'<circle cx="{xc:.1f}" cy="{a.py(v):.1f}" r="2" fill="none" stroke="#000" stroke-width="0.8"/>'
                for v in st["fliers"]]  # type: ignore[union-attr]
    return out


_DRAW = {"scatter": _scatter, "line": _line, "bar": _bar, "box": _box}


def _draw_legend(entries: Sequence[Series], x: float, y: float) -> list[str]:
    out = []
    for i, s in enumerate(entries):
        cy = y + 8 + 16 * i
        if s.kind == "line":
            dash = ' stroke-dasharray="6 4"' if s.dashed else ""
            out.append(f'<line x1="{x:.1f}" x2="{x + 22:.1f}" y1="{cy:.1f}" y2="{cy:.1f}" stroke="{s.colour}" stroke-width="1.4"{dash}/>')
            if s.marker:
                out.append(marker(s.marker, x + 11, cy, 3.5, s.colour, s.colour, 1))
        elif s.kind in ("bar", "box"):
            out.append(f'<rect x="{x + 4:.1f}" y="{cy - 5:.1f}" width="14" height="10" fill="{s.colour}" fill-opacity="{s.alpha}"/>')
        else:
            out.append(marker(s.marker, x + 11, cy, s.size * 0.9, s.colour if s.filled else "#fff", s.colour, 1.6))
        out.append(_text(x + 28, cy + SMALL_FS * 0.35, s.label, SMALL_FS, "start"))
    return out
