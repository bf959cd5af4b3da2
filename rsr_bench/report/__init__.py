"""The report: cross-dataset generalisation table, image grids, plots, footnotes and exports.

Entry point: :func:`build_report` (``rsr-bench report``). It reads only the results store
(``rsr_bench.store``) and the saved SR PNGs; it never runs a model.
"""

from __future__ import annotations

from .build import FORMATS, ReportOptions, build_report

__all__ = ["FORMATS", "ReportOptions", "build_report"]
