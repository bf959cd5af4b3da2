"""``build_report``: store -> report folder (index.html + assets/ + table exports).

Reads only the results store and its SR PNGs; never runs a model. The report folder is
self-contained (relative links only), so it can be zipped, mailed or opened from ``file://``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..files import atomic_write_text
from ..errors import ConfigError
from ..store import is_store
from .exports import write_exports
from .model import ReportData, load_report_data
from .tables import build_table

FORMATS = ("html", "csv", "md", "tex")
ASSETS = "assets"
MARKER = ".rsr-bench-report"  # marks a folder we may clean on rebuild


def parse_formats(formats: str | Iterable[str]) -> set[str]:
    if isinstance(formats, str):
        formats = [f.strip().lower() for f in formats.split(",") if f.strip()]
    chosen = set(formats)
    bad = chosen - set(FORMATS)
    if bad or not chosen:
        raise ConfigError(f"unknown report format(s) {sorted(bad)}; choose from {', '.join(FORMATS)}")
    return chosen


def _prepare_out(out_dir: Path) -> None:
    """Create ``out_dir``; clear stale assets of an earlier report there, never anything else."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"report output {out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise ConfigError(f"report output {out_dir} is a non-empty folder that is not an rsr-bench report; "
                          "choose another --out")
    if (out_dir / ASSETS).is_dir():
        shutil.rmtree(out_dir / ASSETS)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("written by rsr-bench report; this folder is rebuilt on each report\n")


@dataclass(frozen=True)
class ReportOptions:
    """What a report shows. ``methods``/``datasets``/``metrics``: names or globs (None: all in the
    store). ``grid_images``: ``DATASET/IMAGE`` or ``IMAGE`` entries; default: per dataset the
    ``grids_per_dataset`` images where the methods disagree most (0 disables grids). ``crop``:
    ``(x, y, w, h)`` in SR pixels for every grid; default: automatic per grid."""

    formats: str | Iterable[str] = FORMATS
    methods: str | Iterable[str] | None = None
    datasets: str | Iterable[str] | None = None
    metrics: str | Iterable[str] | None = None
    grid_images: Sequence[str] | None = None
    grids_per_dataset: int = 1
    crop: tuple[int, int, int, int] | None = None
    highlight: str | None = "rsr"
    title: str | None = None
    plots: bool = True


def build_report(store_root: str | os.PathLike, out_dir: str | os.PathLike, options: ReportOptions | None = None, /, *,
                 data: ReportData | None = None, **fields: Any) -> Path:
    """Render the report of ``store_root`` into ``out_dir``; returns index.html (or out_dir).

    Give a :class:`ReportOptions` or its fields as keywords (``formats="html"``, ``plots=False``).
    ``data``: already loaded :class:`ReportData` (the CLI prints the table from it first), so the
    store is read once; the method/dataset/metric filters are then ignored.
    """
    opts = replace(options, **fields) if options is not None else ReportOptions(**fields)
    store_root = Path(store_root)
    if not is_store(store_root):
        raise ConfigError(f"{store_root} is not a results store (no cells/ folder); run `rsr-bench run` "
                          "first or pass --store")
    fmts = parse_formats(opts.formats)
    out = Path(out_dir)
    _prepare_out(out)
    if data is None:
        data = load_report_data(store_root, methods=opts.methods, datasets=opts.datasets, metrics=opts.metrics,
                                highlight=opts.highlight)
    table = build_table(data)
    written = write_exports(data, table, out, fmts)
    if "html" not in fmts:
        return out

    from .grids import build_grids
    from .html import render_html
    from .plots import build_plots

    plot_list = build_plots(data, out, ASSETS) if opts.plots else []
    grids = build_grids(data, out, ASSETS, requested=opts.grid_images, per_dataset=opts.grids_per_dataset,
                        crop=opts.crop) if (opts.grid_images or opts.grids_per_dataset > 0) else []
    downloads = [(label, p.name) for label, p in written.items()]
    html = render_html(data, table, plots=plot_list, grids=grids, downloads=downloads,
                       title=opts.title or f"rsr-bench report: {store_root.resolve().name}")
    index = out / "index.html"
    atomic_write_text(index, html)
    return index
