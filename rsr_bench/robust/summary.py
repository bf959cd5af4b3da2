"""Robustness scores from the results store: per-level means, mean degradation, mCE, attack drops.

Everything is computed from the per-image results at read time, never stored, so a re-run or a
partial store is always summarised consistently. Each level is compared with the clean input on
the same images (paired: an image that failed on one side is left out of both means).

- **degradation** of a metric at one level = how much worse than the clean input it is:
  ``clean - value`` for higher-is-better metrics (the PSNR drop), ``value - clean`` for
  lower-is-better ones (the LPIPS increase). Positive is worse.
- **mean degradation** = its mean over every (corruption, severity) of the sweep.
- **mCE** (Hendrycks & Dietterich, ICLR 2019, with bicubic as the reference model instead of
  AlexNet): per corruption ``CE_c = sum_s E(m, c, s) / sum_s E(bicubic, c, s)``, averaged over the
  corruptions; **relative mCE** uses ``E(m, c, s) - E(m, clean)`` in numerator and denominator
  (how much a method loses, relative to how much bicubic loses). ``E`` is an *error*, so that
  0 is perfect: ``1 - SSIM`` for SSIM metrics, ``10^(-PSNR/20)`` (the RMSE over the peak) for
  PSNR metrics, the value itself for lower-is-better metrics (LPIPS, NIQE, ...). Below 1 (100 %)
  is better than bicubic. Only corruptions on which bicubic has values for every severity count.
- **attack drop** at eps = the degradation on ``<base>~pgd@eps<k>`` (white-box) or
  ``<base>~transfer@eps<k>``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

import pandas as pd

from .naming import parse_derived

REFERENCE = "bicubic.x4"
LEVEL_COLUMNS = ["method", "dataset", "metric", "kind", "group", "level", "value", "clean", "degradation", "n"]
SUMMARY_COLUMNS = ["method", "dataset", "metric", "statistic", "group", "level", "value"]


def higher_is_better(metric: str) -> bool:
    from ..metrics import METRICS

    spec = METRICS.get(metric)
    return bool(spec.higher_is_better) if spec is not None else not metric.startswith(("lpips", "niqe", "brisque", "piqe"))


def error(metric: str, value: float) -> float | None:
    """The metric as an error (0 = perfect), for mCE; None when it has no natural error form."""
    if metric.startswith("ssim"):
        return 1.0 - value
    if metric.startswith("psnr"):
        return 10 ** (-value / 20)
    return value if not higher_is_better(metric) else None


def degradation(metric: str, clean: float, value: float) -> float:
    return clean - value if higher_is_better(metric) else value - clean


def level_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per-image results ``[method, dataset, image, metric, value]`` -> one row per derived cell.

    ``dataset`` becomes the base set; ``kind`` is corruption / pgd / transfer, ``group`` the
    corruption or attack tag, ``level`` the severity or eps (in 1/255). ``value`` and ``clean``
    are means over the same images (those with a value in both the derived and the clean cell,
    ``n`` of them): an image that failed on one side only, or whose clean value is not finite,
    would otherwise move one mean and not the other and fake a gain or a loss.
    """
    rows = []
    if results.empty:
        return pd.DataFrame(rows, columns=LEVEL_COLUMNS)
    key = ["method", "dataset", "metric"]
    by_cell = {k: g.set_index("image")["value"] for k, g in results.groupby(key, sort=False)}
    for (method, dataset, metric), values in by_cell.items():
        d = parse_derived(dataset) if "~" in dataset else None
        if d is None:
            continue
        clean = by_cell.get((method, d.base, metric))
        both = [] if clean is None else [i for i in values.index if i in clean.index
                                          and math.isfinite(values[i]) and math.isfinite(clean[i])]
        if not both:
            rows.append((method, d.base, metric, d.kind, d.group, d.level, float(values.mean()), math.nan, math.nan,
                         int(values.size)))
            continue
        v, c = float(values[both].mean()), float(clean[both].mean())
        rows.append((method, d.base, metric, d.kind, d.group, d.level, v, c, degradation(metric, c, v), len(both)))
    return pd.DataFrame(rows, columns=LEVEL_COLUMNS)


def _ce(levels: pd.DataFrame, method: str, relative: bool) -> float:
    """(relative) mCE of ``method`` on one (dataset, metric) slice of corruption levels."""
    ref = levels[levels["method"] == REFERENCE]
    mine = levels[levels["method"] == method]
    ces = []
    for group, g in mine.groupby("group"):
        r = ref[ref["group"] == group]
        if set(r["level"]) != set(g["level"]) or g.empty:
            continue
        num = sum(error(x, v) - (error(x, c) if relative else 0) for x, v, c in zip(g["metric"], g["value"], g["clean"]))
        den = sum(error(x, v) - (error(x, c) if relative else 0) for x, v, c in zip(r["metric"], r["value"], r["clean"]))
        if den > 0 and not math.isnan(num):
            ces.append(num / den)
    return sum(ces) / len(ces) if ces else math.nan


def summarise(levels: pd.DataFrame) -> pd.DataFrame:
    """Per (method, base, metric): clean value, mean degradation, mCE, relative mCE, attack drops."""
    rows = []
    for (m, d, x), g in levels.groupby(["method", "dataset", "metric"], sort=False):
        paired = g.dropna(subset=["clean"])  # the clean mean over the images of the most complete level
        rows.append((m, d, x, "clean", "", 0.0, float(paired.loc[paired["n"].idxmax(), "clean"]) if len(paired) else math.nan))
        corr = g[g["kind"] == "corruption"]
        if not corr.empty:
            rows.append((m, d, x, "mean_degradation", "", math.nan, float(corr["degradation"].mean())))
            if error(x, 0.5) is not None:
                sl = levels[(levels["dataset"] == d) & (levels["metric"] == x) & (levels["kind"] == "corruption")]
                rows.append((m, d, x, "mce", "", math.nan, _ce(sl, m, relative=False)))
                rows.append((m, d, x, "relative_mce", "", math.nan, _ce(sl, m, relative=True)))
        for r in g[g["kind"] != "corruption"].itertuples(index=False):
            rows.append((m, d, x, f"{r.kind}_drop", r.group, r.level, float(r.degradation)))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def robustness_summary(root: str | os.PathLike, methods: Iterable[str] | None = None) -> pd.DataFrame:
    """The summary scores of a store (long: ``[method, dataset, metric, statistic, group, level, value]``)."""
    from .. import store

    results = store.load_results(root)
    if methods is not None:
        results = results[results["method"].isin(list(methods))]
    return summarise(level_table(results))
