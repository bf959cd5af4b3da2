"""The one-page HTML report: a Jinja2 template with autoescape on for everything.

Names, reasons and messages come from user data (method cards, dataset files, exception text),
so nothing is marked safe; CSS and JS are inline and images are relative paths into the
report's asset folder, so the page works from ``file://`` with no network.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from .grids import Grid
from .model import ReportData
from .plots import Plot
from .tables import (
    AVERAGE,
    GenTable,
    average_note,
    domain_split,
    family_label,
    metric_label,
    not_run,
    table_methods,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_FAILURE_ROWS = 300
# Provenance keys shown up front (where the weights came from); the rest folds into "details".
PROVENANCE_MAIN = ("source", "note", "url", "official_url", "pypi", "asset", "file", "sha256")


def environment() -> Environment:
    # autoescape=True (not select_autoescape): the template ends in .j2, which the extension
    # heuristic would not escape.
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=False, lstrip_blocks=False)


def _footnotes(data: ReportData) -> dict:
    versions: dict[str, list[str]] = {}
    devices: list[str] = []
    started: list[str] = []
    finished: list[str] = []
    for man in data.manifests.values():
        for pkg, v in (man.get("versions") or {}).items():
            lst = versions.setdefault(str(pkg), [])
            if str(v) not in lst:
                lst.append(str(v))
        if man.get("device"):
            dev = str(man["device"]) + (f" ({man['device_name']})" if man.get("device_name") else "")
            if dev not in devices:
                devices.append(dev)
        if man.get("started"):
            started.append(str(man["started"]))
        if man.get("finished"):
            finished.append(str(man["finished"]))
    methods = []
    shown = set(table_methods(data))
    for m in (m for m in data.methods.values() if m.name in shown):
        fp = ", ".join(f[:16] + "…" if len(f) > 16 else f for f in m.fingerprints) or "—"
        prov = dict(m.provenance)
        main = [(k, prov[k]) for k in PROVENANCE_MAIN if k in prov]
        rest = [(k, v) for k, v in m.provenance if k not in PROVENANCE_MAIN]
        methods.append({"name": m.name, "trained": ", ".join(m.trained_on) or "—", "fingerprint": fp,
                        "provenance": main, "provenance_more": rest, "description": m.description})
    dsets = [{"name": d.name, "version": d.version, "kind": d.kind,
              "gt": {True: "yes", False: "no", None: "unknown"}[d.has_gt],
              "domains": ", ".join((d.name, *d.domains))} for d in data.datasets.values()]
    dates = ""
    if started or finished:
        dates = f"{min(started or finished)} – {max(finished or started)}"
    return {
        "metric_notes": [x.conventions or f"{x.name}: conventions not recorded" for x in data.metrics.values()],
        "method_notes": methods,
        "dataset_notes": dsets,
        "versions": sorted((k, " / ".join(v)) for k, v in versions.items()),
        "devices": "; ".join(devices),
        "run_dates": dates,
        "skipped": sorted((k, v) for k, v in data.skipped.items() if k[0] in shown),
        "not_run": not_run(data),
    }


def _domain_rows(data: ReportData) -> tuple[list, list]:
    split = domain_split(data)
    if split.empty:
        return [], []
    metrics = [x for x in data.metrics.values() if x.name in set(split["metric"])]
    rows = []
    lookup = {(r.method, r.metric): r for r in split.itertuples(index=False)}
    shown = set(table_methods(data))
    for name, m in data.methods.items():
        if not m.trained_on or name not in shown:
            continue
        vals = []
        for x in metrics:
            r = lookup.get((name, x.name))
            for v in ((r.in_domain, r.cross_domain) if r is not None else (None, None)):
                vals.append(x.fmt(None if v is None or math.isnan(v) else float(v)))
        rows.append({"label": f"{family_label(m.family)} ({m.tag})", "trained": ", ".join(m.trained_on), "cells": vals})
    return metrics, rows


def render_html(data: ReportData, table: GenTable, *, plots: Sequence[Plot], grids: Sequence[Grid],
                downloads: Sequence[tuple[str, str]], title: str) -> str:
    from .. import __version__

    errors = data.errors()
    failures = errors.head(MAX_FAILURE_ROWS).to_dict("records")
    starts = {i for i, c in enumerate(table.columns) if i == 0 or table.columns[i - 1].dataset == AVERAGE}
    domain_metrics, domain_rows = _domain_rows(data)
    dataset_titles = {
        d.name: f"{d.name}: {'paired (has ground truth)' if d.has_gt else 'no ground truth' if d.has_gt is False else 'ground truth unknown'}"
        + (f", version {d.version}" if d.version else "") + (f", {d.kind}" if d.kind else "")
        for d in data.datasets.values()
    }
    ctx = {
        "title": title,
        "store": str(data.store_root),
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "n_methods": len(table.rows),
        "n_not_run": len(data.methods) - len(table.rows),
        "n_datasets": len(data.datasets),
        "n_images": int(data.results[["method", "dataset", "image"]].drop_duplicates().shape[0]),
        "table": table,
        "starts": starts,
        "avg_over": average_note(data),
        "dataset_titles": dataset_titles,
        "metric_label": metric_label,
        "downloads": list(downloads),
        "domain_metrics": domain_metrics,
        "domain_rows": domain_rows,
        "plots": list(plots),
        "grids": list(grids),
        "highlight": family_label(data.highlight_family) if data.highlight_family else None,
        "failures": failures,
        "failures_truncated": len(errors) > MAX_FAILURE_ROWS,
        "n_failed_images": int(errors[["method", "dataset", "image"]].drop_duplicates().shape[0]),
        **_footnotes(data),
    }
    return environment().get_template("report.html.j2").render(**ctx)
