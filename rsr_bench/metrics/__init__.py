"""Metric registry and the one scoring function used by the runner and ``rsr-bench score``.

Usage: ``create_metric("psnr")(sr, hr)`` gives raw values; ``score_batch(select_metrics("default"),
sr, hr)`` gives per-image results filed by the policy below.

Policy of :func:`score_batch` (the same for a run and for ``rsr-bench score``): a finite value is
kept; :class:`~rsr_bench.errors.NotComputable` (too small, no reference, constant image, ...)
is recorded as "not computable" with its reason; +inf is "not computable" only when the row's
``infinite`` field says why it is legitimate (PSNR of identical images), with that reason; NaN,
-inf, an undeclared +inf or any exception is an error (a bug or a broken setup, never a number).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import NotComputable, RsrBenchError
from ..image import dequantise, quantise
from ..registry import import_object, select, unknown
from .table import DEFAULT_TOLERANCE, DEFAULT_TOLERANCE_OTHER_DEVICE, METRIC_TABLE, Metric, MetricSpec, Tolerance

if TYPE_CHECKING:  # torch is imported where used: `rsr-bench list` and --help stay under 1 s
    import torch

METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in METRIC_TABLE}
DEFAULT_METRICS = [spec.name for spec in METRIC_TABLE if spec.default]

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
    import torch

    spec = get_metric_spec(name)
    key = (name, str(torch.device(device)))
    if key not in _cache:
        _cache[key] = import_object(spec.factory)(spec, torch.device(device))
    return _cache[key]


def fetch_metric_assets(specs: Iterable[MetricSpec]) -> dict[str, str]:
    """Download (or find in the cache) the model files of ``specs`` (their rows' ``assets``), so
    that a run pays for downloads before its progress bars rather than inside the first image's
    (issue 15). Cheap when cached: no network, no model build (a finished run stays fast).
    Returns ``{metric: "ExceptionType: message"}`` for those that cannot be fetched; scoring then
    records the failure per image, so one unavailable metric never stops the others."""
    from ..fetch.assets import ensure_asset

    failed: dict[str, str] = {}
    for spec in specs:
        for asset in spec.assets:
            try:
                ensure_asset(asset)
            except Exception as exc:  # noqa: BLE001 - reported here, recorded per image by score_batch
                failed[spec.name] = f"{type(exc).__name__}: {exc}"
    return failed


def tolerances(other_device: bool = False) -> dict[str, Tolerance]:
    """``{metric: (abs, rel)}`` for ``rsr-bench check``, with the ``"default"`` entry."""
    default = DEFAULT_TOLERANCE_OTHER_DEVICE if other_device else DEFAULT_TOLERANCE
    return {"default": default,
            **{s.name: s.tolerance_other_device if other_device else s.tolerance for s in METRIC_TABLE}}


@dataclass
class ScoredImage:
    """What scoring one image gave, per metric name: a value, a not-computable reason or an error."""

    values: dict[str, float] = field(default_factory=dict)
    not_computable: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # "ExceptionType: message"

    def add(self, spec: MetricSpec, outcome: float | Exception) -> None:
        """File one metric's outcome by the module's NaN/inf policy."""
        if isinstance(outcome, NotComputable):
            self.not_computable[spec.name] = str(outcome)
        elif isinstance(outcome, Exception):
            self.errors[spec.name] = f"{type(outcome).__name__}: {outcome}"
        elif math.isfinite(outcome):
            self.values[spec.name] = float(outcome)
        elif outcome == math.inf and spec.infinite:
            self.not_computable[spec.name] = f"{spec.name}: {spec.infinite}"
        else:
            self.add(spec, RsrBenchError(f"{spec.name} returned {outcome}"))

    def update_record(self, record: dict) -> None:
        """Merge into a store record: ``metrics``, ``not_computable``, ``errors`` (stage ``metric:<name>``)."""
        record["metrics"].update(self.values)
        record["not_computable"].update(self.not_computable)
        record["errors"] += [{"stage": f"metric:{k}", "message": v} for k, v in self.errors.items()]


def _outcomes(spec: MetricSpec, sr: torch.Tensor, ref: torch.Tensor | None,
              device: torch.device) -> list[float | Exception]:
    """One value or exception per image: the batch in one call, one image at a time if it fails
    (so that one unscoreable image, or an out-of-memory batch, does not take its batch-mates)."""
    try:
        values = create_metric(spec.name, device)(sr, ref)
        if len(values) != sr.shape[0]:
            raise RsrBenchError(f"{spec.name} returned {len(values)} values for {sr.shape[0]} images")
        return list(values)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded per image
        if sr.shape[0] == 1:
            return [exc]
    return [_outcomes(spec, sr[i:i + 1], None if ref is None else ref[i:i + 1], device)[0] for i in range(sr.shape[0])]


def score_batch(
    specs: Sequence[MetricSpec],
    sr: torch.Tensor,
    ref: torch.Tensor | None = None,
    *,
    quantised: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
) -> list[ScoredImage]:
    """Score ``(N,3,H,W)`` SR images in [0, 1] with ``specs``; one :class:`ScoredImage` per image.

    ``input="float"`` metrics see ``sr`` as given (the unrounded output), ``input="uint8"`` ones
    ``quantised`` (uint8 levels as float in [0, 1]; computed from ``sr`` when not given). FR
    metrics compare with ``ref`` (same shape; None: FR metrics are not computable).
    """
    import torch

    device = torch.device(device)
    if quantised is None:
        quantised = dequantise(quantise(sr))
    out = [ScoredImage() for _ in range(sr.shape[0])]
    for spec in specs:
        x = (sr if spec.input == "float" else quantised).to(device)
        y = ref.to(device) if ref is not None and spec.kind == "FR" else None
        for image, outcome in zip(out, _outcomes(spec, x, y, device)):
            image.add(spec, outcome)
    return out


__all__ = ["DEFAULT_METRICS", "METRICS", "Metric", "MetricSpec", "ScoredImage", "create_metric", "get_metric_spec",
           "fetch_metric_assets", "score_batch", "select_metrics", "tolerances"]
