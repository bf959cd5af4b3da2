"""Metric registry: the declared table of metrics and cached construction.

Usage::

    from rsr_bench.metrics import METRICS, create_metric
    psnr = create_metric("psnr")
    values = psnr(sr_batch, hr_batch)
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ..registry import import_object, select, unknown
from .table import Metric, MetricSpec
from .table import METRIC_TABLE

METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in METRIC_TABLE}
DEFAULT_METRICS = [n for n in ("psnr", "ssim", "lpips", "niqe", "brisque", "piqe") if n in METRICS]

_cache: dict[tuple[str, str], Metric] = {}


def get_metric_spec(name: str) -> MetricSpec:
    if name not in METRICS:
        raise unknown("metric", name, METRICS)
    return METRICS[name]


def select_metrics(patterns: str | Iterable[str]) -> list[MetricSpec]:
    if isinstance(patterns, str) and patterns.strip() == "default":
        return [METRICS[n] for n in DEFAULT_METRICS]
    return [METRICS[n] for n in select(patterns, METRICS, "metric")]


def create_metric(name: str, device: torch.device | str = "cpu") -> Metric:
    """Build (once per process and device) the metric implementation for ``name``."""
    spec = get_metric_spec(name)
    key = (name, str(torch.device(device)))
    if key not in _cache:
        _cache[key] = import_object(spec.factory)(spec, torch.device(device))
    return _cache[key]


__all__ = ["METRICS", "DEFAULT_METRICS", "Metric", "MetricSpec", "create_metric", "get_metric_spec", "select_metrics"]
