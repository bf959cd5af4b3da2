"""The report's SVG figures (rsr_bench/report/svgplot.py, plots.py): geometry read back from the
SVG, box statistics against matplotlib's, escaping, and the figures of a synthetic store.

A figure is hard to eyeball in a test, so these bugs were planted one at a time in svgplot.py /
plots.py and each made a test here fail:

1. whiskers at q1 - 1.5 IQR / q3 + 1.5 IQR instead of the furthest point inside (box_stats);
2. outliers not returned (box_stats ``fliers`` always empty);
3. a tick one step outside the axis range (``nice_ticks`` rounding ``first`` down);
4. tick labels with too few decimals (``0.25`` shown as ``0.2``);
5. ``invert_x`` ignored (LPIPS better to the left instead of the right);
6. y axis drawn upside down (``py`` without the flip);
7. user text not XML-escaped (a method named ``<b>&``);
8. a NaN in a line joined over instead of breaking it;
9. ``sharey`` not applied (panels with different y ranges);
10. filled/hollow swapped for in-domain vs cross-domain points;
11. distribution plot drawing one box per metric instead of per method and metric;
12. the clip path id taken from ``id()`` (output not deterministic between runs);
13. explicit ticks (severity 0..5) not widening the axis, so the last tick falls outside the frame;
14. ``import matplotlib`` back at the top of plots.py (1.3 s of imports; the build-in-a-subprocess test).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from itertools import pairwise

import numpy as np
import pytest
from synthetic_store import build_synthetic_store

from rsr_bench.report import build_report
from rsr_bench.report.model import load_report_data
from rsr_bench.report.plots import _method_label, build_plots
from rsr_bench.report.svgplot import (
    Chart,
    Panel,
    Series,
    box_stats,
    nice_ticks,
    render,
    tick_text,
)

NS = {"s": "http://www.w3.org/2000/svg"}


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on malformed XML


def _circles(root: ET.Element) -> list[tuple[float, float, str]]:
    return [(float(c.get("cx")), float(c.get("cy")), c.get("fill")) for c in root.iter("{http://www.w3.org/2000/svg}circle")]


@pytest.mark.parametrize("seed", range(4))
def test_box_stats_match_matplotlib(seed):
    from matplotlib import cbook

    rng = np.random.default_rng(seed)
    v = np.concatenate([rng.normal(20, 1, 97), [14.0, 27.5, 26.0]])  # with outliers both sides
    ours, ref = box_stats(list(v)), cbook.boxplot_stats(v)[0]
    for a, b in (("q1", "q1"), ("med", "med"), ("q3", "q3"), ("lo", "whislo"), ("hi", "whishi")):
        assert ours[a] == pytest.approx(float(ref[b]), abs=1e-12), a
    assert sorted(ours["fliers"]) == pytest.approx(sorted(float(x) for x in ref["fliers"]))
    assert ours["fliers"], "the planted outliers are outliers"


@pytest.mark.parametrize("lo,hi", [(0.0, 1.0), (19.37, 24.81), (-0.0123, 0.0456), (3.2, 3.2001), (-250.0, 1234.0)])
def test_nice_ticks_inside_round_and_enough(lo, hi):
    ticks = nice_ticks(lo, hi)
    assert 3 <= len(ticks) <= 11
    assert all(lo - 1e-12 <= t <= hi + 1e-12 for t in ticks)
    steps = {round(b - a, 12) for a, b in pairwise(ticks)}
    assert len(steps) == 1
    step = steps.pop()
    mant = step / 10 ** math.floor(math.log10(step))
    assert any(abs(mant - m) < 1e-9 for m in (1, 2, 2.5, 5))
    labels = tick_text(ticks)
    assert len(set(labels)) == len(labels), labels  # enough decimals to tell ticks apart
    assert [float(t.replace("\u2212", "-")) for t in labels] == pytest.approx(ticks, abs=step / 100)


def test_tick_text_decimals():
    assert tick_text([0.0, 0.25, 0.5]) == ["0.00", "0.25", "0.50"]
    assert tick_text([20.0, 22.0, 24.0]) == ["20", "22", "24"]
    assert tick_text([-1.0, 0.0]) == ["\u22121", "0"]


def _one_panel(**kw) -> tuple[ET.Element, Panel]:
    panel = Panel([Series("scatter", [0.2, 0.6], [10.0, 30.0], colour="#123456", marker="o")], **kw)
    return _parse(render(Chart([panel]))), panel


def test_scatter_geometry_and_inverted_x():
    root, _ = _one_panel()
    (x1, y1, _), (x2, y2, _) = _circles(root)
    assert x2 > x1 and y2 < y1  # larger x right, larger y up
    root, _ = _one_panel(invert_x=True)
    (x1, y1, _), (x2, y2, _) = _circles(root)
    assert x2 < x1 and y2 < y1  # inverted: larger x (worse LPIPS) to the left


def test_user_text_is_escaped_and_svg_well_formed():
    evil = '<b onload="x()">&amp;\'"'
    panel = Panel([Series("bar", [1.0], [2.0])], title=evil, categories=[(1.0, evil)], ylabel=evil)
    svg = render(Chart([panel], title=evil, legend=[Series("scatter", label=evil)]), alt=evil)
    assert "<b onload" not in svg
    root = _parse(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts.count(evil) == 5  # chart title, panel title, category, y label, legend: each intact
    assert root.find("s:title", NS).text == evil


def test_line_breaks_at_nan_and_sharey():
    a = Panel([Series("line", [0, 1, 2, 3, 4], [1.0, 2.0, math.nan, 3.0, 4.0], marker="")])
    b = Panel([Series("line", [0, 1], [100.0, 200.0], marker="")])
    root = _parse(render(Chart([a, b], sharey=True)))
    lines = [p.get("points") for p in root.iter("{http://www.w3.org/2000/svg}polyline")]
    assert len(lines) == 3 and len(lines[0].split()) == 2 and len(lines[1].split()) == 2
    # shared y: the value 4 in panel a sits far lower than 100 in panel b
    y_a_last = float(lines[1].split()[-1].split(",")[1])
    y_b_first = float(lines[2].split()[0].split(",")[1])
    assert y_a_last > y_b_first + 50


def test_render_is_deterministic():
    panel = Panel([Series("box", [1.0, 2.0], groups=[[1.0, 2.0, 3.0], [2.0, 3.0, 9.0]])], categories=[(1.0, "a"), (2.0, "b")])
    assert render(Chart([panel, panel])) == render(Chart([panel, panel]))
    assert len(set(re.findall(r'clipPath id="([^"]+)"', render(Chart([panel, panel]))))) == 2


@pytest.fixture(scope="module")
def store_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    synth = build_synthetic_store(root, n_images=6)
    return synth, load_report_data(root)


def test_report_figures_from_a_store(store_data, tmp_path):
    _, data = store_data
    plots = build_plots(data, tmp_path, "assets")
    titles = [p.title for p in plots]
    assert titles[:2] == ["Perception–distortion", "In-domain vs cross-domain"]
    assert len(titles) == 2 + len(data.datasets)
    for p in plots:
        assert p.svg.endswith(".svg") and (tmp_path / p.svg).is_file()
        _parse((tmp_path / p.svg).read_text(encoding="utf-8"))
    assert not list(tmp_path.rglob("*.png"))  # one file per figure: the SVG the page shows


def test_perception_distortion_points(store_data, tmp_path):
    _, data = store_data
    stats = data.cell_stats()
    root = _parse((tmp_path / build_plots(data, tmp_path, "assets")[0].svg).read_text(encoding="utf-8"))
    paired = [d for d in data.datasets if any((m, d, "psnr") in stats for m in data.methods)]
    expected = sum((m, d, "psnr") in stats and (m, d, "lpips") in stats for m in data.methods for d in paired)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for m in data.methods:  # one legend entry per method that has a point
        assert texts.count(_method_label(data, m)) == any((m, d, "psnr") in stats for d in paired)
    # every point is a marker (circle or path) with a fill; hollow = white = cross-domain
    marks = [e for e in root.iter() if e.tag.endswith(("circle", "path")) and e.get("stroke-width") == "1.8"]
    assert len(marks) == expected
    hollow = sum(e.get("fill") == "#fff" for e in marks)
    cross = sum(data.in_domain(m, d) is False for m in data.methods for d in paired
                if (m, d, "psnr") in stats and (m, d, "lpips") in stats)
    assert hollow == cross > 0


def test_distribution_boxes_per_method_and_metric(store_data, tmp_path):
    _, data = store_data
    plots = build_plots(data, tmp_path, "assets")
    for d, p in zip(data.datasets, plots[2:]):
        root = _parse((tmp_path / p.svg).read_text(encoding="utf-8"))
        boxes = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("fill-opacity") == "0.55"]
        cells = {(m, x) for (m, dd, x) in data.values if dd == d}
        metrics = {x for _, x in cells}
        assert len(boxes) == len(cells), (d, len(boxes), len(cells))
        assert len(metrics) <= 4


def test_page_shows_and_links_the_svg(tmp_path):
    root = tmp_path / "store"
    build_synthetic_store(root, n_images=3)
    index = build_report(root, tmp_path / "rep", grids_per_dataset=0)
    html = index.read_text(encoding="utf-8")
    shown = re.findall(r'<img src="(assets/plots/[^"]+)"', html)
    assert shown and all(s.endswith(".svg") and (index.parent / s).is_file() for s in shown)
    assert all(f'<a href="{s}">SVG</a>' in html for s in shown)


def test_explicit_ticks_widen_the_axis_and_stay_inside():
    panel = Panel([Series("line", [0.0, 1.0, 4.0], [1.0, 2.0, 3.0], marker="")], xticks=list(range(6)))
    root = _parse(render(Chart([panel])))
    frame = next(r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("stroke") == "#333")
    x0, x1 = float(frame.get("x")), float(frame.get("x")) + float(frame.get("width"))
    labels = {t.text: float(t.get("x")) for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert all(str(k) in labels for k in range(6))
    assert all(x0 <= labels[str(k)] <= x1 for k in range(6))


def test_report_build_imports_no_matplotlib(tmp_path):
    """Importing matplotlib was 1.3 s of a 3 s budget (issue 15); the figures need none of it."""
    import subprocess
    import sys

    root = tmp_path / "store"
    build_synthetic_store(root, n_images=2)
    code = ("import sys; from rsr_bench.report import build_report; build_report(sys.argv[1], sys.argv[2]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'torch')))")
    res = subprocess.run([sys.executable, "-c", code, str(root), str(tmp_path / "rep")], capture_output=True,
                         text=True, check=True)
    assert res.stdout.strip() == "[]", res.stdout[:300]
    assert list((tmp_path / "rep" / "assets" / "plots").glob("*.svg"))
