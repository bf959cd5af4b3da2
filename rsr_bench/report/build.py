"""``build_report``: store -> report folder (index.html + assets/ + table exports).

Reads only the results store and its SR PNGs; never runs a model. The report folder is
self-contained (relative links only), so it can be zipped, mailed or opened from ``file://``.

A rebuild never leaves a half-written report: the new one is built in a temporary sibling
(``.<name>.building-*``) and swapped in whole (atomically where the OS can exchange two folders,
Linux's ``renameat2``), so a killed rebuild leaves the previous ``index.html`` with every image
it points at. Files a user put into the report folder are carried into the new one.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..fetch.download import fresh_dir
from ..files import atomic_write_text
from ..store import is_store
from .exports import EXPORT_FILES, write_exports
from .model import ReportData, load_report_data
from .tables import build_table

FORMATS = ("html", "csv", "md", "tex")
ASSETS = "assets"
MARKER = ".rsr-bench-report"  # marks a folder rsr-bench writes and may rebuild
INDEX = "index.html"
#: What a report build writes at the top of its folder; anything else there is the user's.
REPORT_FILES = frozenset({INDEX, ASSETS, MARKER, *(f for names in EXPORT_FILES.values() for f in names)})


def parse_formats(formats: str | Iterable[str]) -> set[str]:
    if isinstance(formats, str):
        formats = [f.strip().lower() for f in formats.split(",") if f.strip()]
    chosen = set(formats)
    bad = chosen - set(FORMATS)
    if bad or not chosen:
        raise ConfigError(f"unknown report format(s) {sorted(bad)}; choose from {', '.join(FORMATS)}")
    return chosen


def _check_out(out_dir: Path) -> Path:
    """The report folder to (re)build: absent, empty or an earlier report (a link is followed)."""
    out_dir = out_dir.resolve() if out_dir.is_symlink() else out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"report output {out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise ConfigError(f"report output {out_dir} is a non-empty folder that is not an rsr-bench report; "
                          "choose another --out")
    return out_dir


def _ours_only(folder: Path) -> bool:
    """A folder a report build made (marker) that holds nothing but what builds write."""
    return (folder / MARKER).is_file() and all(p.name in REPORT_FILES for p in folder.iterdir())


@contextmanager
def _building(out_dir: Path) -> Iterator[Path]:
    """A fresh sibling to build the report in; swapped in for ``out_dir`` when the block ends
    normally, removed when it does not. Leftovers of killed builds are removed first, unless
    they hold something a build does not write."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for old in out_dir.parent.glob(f".{out_dir.name}.building-*"):
        if old.is_dir() and not old.is_symlink() and _ours_only(old):
            shutil.rmtree(old)
    tmp = fresh_dir(out_dir.parent, f".{out_dir.name}.building-")
    try:
        (tmp / MARKER).write_text("written by rsr-bench report; this folder is rebuilt on each report\n")
        yield tmp
        if out_dir.is_dir():
            for entry in out_dir.iterdir():  # the user's own files travel into the new report
                if entry.name not in REPORT_FILES and not (tmp / entry.name).exists():
                    _copy(entry, tmp / entry.name)
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _copy(src: Path, dst: Path) -> None:
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True)
    else:
        shutil.copy2(src, dst, follow_symlinks=False)


def _swap_in(new: Path, out_dir: Path) -> None:
    """Put the finished report ``new`` at ``out_dir``; the previous report is removed afterwards
    (it is a report folder or empty: checked before building). ``new`` no longer exists after."""
    if not out_dir.exists():
        os.rename(new, out_dir)
        return
    if _exchange(new, out_dir):
        shutil.rmtree(new)  # now the previous report
        return
    old = fresh_dir(out_dir.parent, f".{out_dir.name}.building-")
    old.rmdir()
    os.rename(out_dir, old)  # a kill here leaves both as hidden siblings; the next build tidies up
    os.rename(new, out_dir)
    shutil.rmtree(old)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where
    the OS or file system cannot, so the caller falls back to two renames."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


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
    final = _check_out(Path(out_dir))
    if data is None:
        data = load_report_data(store_root, methods=opts.methods, datasets=opts.datasets, metrics=opts.metrics,
                                highlight=opts.highlight)
    with _building(final) as out:
        html = _write_report(data, opts, fmts, out, store_root)
    return final / INDEX if html else final


def _write_report(data: ReportData, opts: ReportOptions, fmts: set[str], out: Path, store_root: Path) -> bool:
    """Write every requested part into the (temporary) folder ``out``; whether HTML was written."""
    from .robust import build_robust_section, insert_section, split

    data, robust_data = split(data)  # derived (corrupted/attacked) sets get their own section
    table = build_table(data)
    written = write_exports(data, table, out, fmts)
    robust = build_robust_section(robust_data, out, ASSETS, fmts, plots=opts.plots) if robust_data is not None else None
    if "html" not in fmts:
        return False

    from .grids import build_grids
    from .html import render_html
    from .plots import build_plots

    plot_list = build_plots(data, out, ASSETS) if opts.plots else []
    grids = build_grids(data, out, ASSETS, requested=opts.grid_images, per_dataset=opts.grids_per_dataset,
                        crop=opts.crop) if (opts.grid_images or opts.grids_per_dataset > 0) else []
    downloads = [(label, p.name) for label, p in written.items()]
    html = render_html(data, table, plots=plot_list, grids=grids, downloads=downloads,
                       title=opts.title or f"rsr-bench report: {store_root.resolve().name}")
    html = insert_section(html, robust)
    atomic_write_text(out / INDEX, html)
    return True
