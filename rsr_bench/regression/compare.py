"""Comparison of a measurement with a baseline: what moved, by how much, in which direction.

Exit codes: 0 all hold; 1 a regression (a number moved either way, unless ``allow_improvements``;
an image count or weight fingerprint changed; a cell crashed); 2 a setup problem (missing data or
weights, an unreadable baseline, a device/precision the baseline refuses): never a silent pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .baseline import Baseline, CheckSetupError, Tolerance, device_kind, manifest_precision, tolerance_for
from .measure import Measured

EXIT_OK, EXIT_REGRESSION, EXIT_SETUP = 0, 1, 2


@dataclass(frozen=True)
class Comparison:
    """One checked quantity: a (method, dataset, metric) mean, or a cell's weight fingerprint."""

    method: str
    dataset: str
    metric: str  # metric name, or "fingerprint"
    baseline: float | None
    measured: float | None
    n_baseline: int | None
    n_measured: int | None
    tolerance: Tolerance | None
    status: str  # "ok" | "moved" | "n-changed" | "missing" | "fingerprint"
    direction: str = ""  # "better" | "worse" | "" (unchanged or unknown)
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "ok"

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.measured is None or self.metric == "fingerprint":
            return None
        return self.measured - self.baseline


def _direction(metric: str, delta: float) -> str:
    from ..metrics import METRICS

    if delta == 0 or metric not in METRICS:
        return "" if delta == 0 else ("higher" if delta > 0 else "lower")
    better = (delta > 0) == METRICS[metric].higher_is_better
    return "better" if better else "worse"


def _fingerprints(baseline: Baseline, measured: Measured) -> list[Comparison]:
    """One comparison per measured cell whose method's weight sha256 the baseline records."""
    want = {m: (v or {}).get("fingerprint") for m, v in (baseline.provenance.get("methods") or {}).items()}
    out = []
    for (m, d), manifest in sorted(measured.manifests.items()):
        expected, got = want.get(m), (manifest.get("method") or {}).get("fingerprint")
        if expected and got:
            ok = expected == got
            out.append(Comparison(m, d, "fingerprint", None, None, None, None, None, "ok" if ok else "fingerprint",
                                  message="" if ok else f"weights changed: sha256 {got[:16]}… (baseline {expected[:16]}…)"))
    return out


def compare(baseline: Baseline, measured: Measured, tolerances: Mapping[str, Tolerance], *,
            allow_improvements: bool = False, check_fingerprints: bool = True) -> list[Comparison]:
    """Compare every baseline entry (and each cell's weight fingerprint) with the measurement.

    Cells that were skipped or have no results at all must have been rejected by
    :meth:`Measured.setup_problems` first; here a missing value is a regression (the cell ran but
    the metric is gone, e.g. it now crashes).
    """
    lookup = {(r.method, r.dataset, r.metric): (float(r.mean), int(r.n)) for r in measured.summary.itertuples()}
    out = _fingerprints(baseline, measured) if check_fingerprints else []
    for e in baseline.entries:
        tol = tolerance_for(e.metric, tolerances)
        got = lookup.get(e.key)
        if got is None:
            fails = measured.failures[(measured.failures["method"] == e.method) & (measured.failures["dataset"] == e.dataset)]
            why = "; ".join(f"{r.image}: {r.stage}: {r.message}" for r in fails.head(3).itertuples()) or "no value recorded"
            out.append(Comparison(e.method, e.dataset, e.metric, e.mean, None, e.n, 0, tol, "missing", message=f"metric missing: {why}"))
            continue
        value, n = got
        delta = value - e.mean
        direction = _direction(e.metric, delta)
        if math.isnan(value) or abs(delta) > tol.bound(e.mean):
            status = "ok" if allow_improvements and direction == "better" else "moved"
            msg = f"{e.metric} moved {delta:+.6g} ({direction}), beyond tolerance {tol} (bound {tol.bound(e.mean):.3g})"
        else:
            status, msg = "ok", ""
        if n != e.n:
            status = "n-changed"
            msg = (msg + "; " if msg else "") + f"scored {n} image(s), baseline {e.n}"
        out.append(Comparison(e.method, e.dataset, e.metric, e.mean, value, e.n, n, tol, status, direction, msg))
    return out


def _switch(tolerances: dict[str, Tolerance] | None, what: str, base: str, used: set[str], baseline: Baseline, advice: str
            ) -> tuple[dict[str, Tolerance], str]:
    """The baseline's tolerances for another device kind or precision, or its refusal."""
    if tolerances is None:
        raise CheckSetupError(
            f"baseline {baseline.path} was made {'on' if what == 'device' else 'in'} {base}, this run used "
            f"{', '.join(sorted(used))}; it declares no other_{what} tolerances, so it refuses the comparison. {advice}")
    return dict(tolerances), (f"{what} differs from the baseline ({', '.join(sorted(used))} vs {base}): "
                              f"using its other_{what} tolerances")


def choose_tolerances(baseline: Baseline, measured: Measured, overrides: Mapping[str, Tolerance]) -> tuple[dict[str, Tolerance], list[str]]:
    """Same-device tolerances, or the baseline's declared cross-device/precision ones, or refuse."""
    notes: list[str] = []
    base_dev = device_kind(baseline.provenance.get("device", "cpu"))
    base_prec = str(baseline.provenance.get("precision") or "fp32")
    devices = {device_kind(m.get("device")) for m in measured.manifests.values()} or {base_dev}
    precisions = {manifest_precision(m) for m in measured.manifests.values()} or {base_prec}
    tolerances = dict(baseline.tolerances)
    if devices != {base_dev}:
        tolerances, note = _switch(baseline.other_device, "device", base_dev, devices, baseline,
                                   f"Run on {base_dev} (--device {base_dev}), write a baseline for this device with "
                                   "--update, or add other_device: tolerances to the file.")
        notes.append(note)
    if precisions != {base_prec}:
        tolerances, note = _switch(baseline.other_precision, "precision", base_prec, precisions, baseline,
                                   "Write a baseline for this precision with --update, or add other_precision: "
                                   "tolerances to the file.")
        notes.append(note)
    tolerances.update(overrides)
    return tolerances, notes


def provenance_notes(baseline: Baseline, measured: Measured) -> list[str]:
    """Informational differences (package versions) that may explain small moves."""
    notes = []
    want = baseline.provenance.get("versions") or {}
    got: dict[str, Any] = {}
    for manifest in measured.manifests.values():
        got.update(manifest.get("versions") or {})
    for k in sorted(set(want) & set(got)):
        if str(want[k]) != str(got[k]):
            notes.append(f"{k} {got[k]} (baseline {want[k]})")
    return [f"package versions differ: {', '.join(notes)}"] if notes else []


def fmt_value(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.6g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}"


def _diff_row(c: Comparison) -> list[str]:
    d = c.delta
    if c.metric == "fingerprint":
        return [c.method, c.dataset, "weights", "", "", "", "", "", "ok" if c.passed else "FAIL", c.message]
    rel = f"{d / abs(c.baseline):+.1e}" if d is not None and c.baseline else ""
    return [
        c.method, c.dataset, c.metric, fmt_value(c.baseline), fmt_value(c.measured), "—" if d is None else f"{d:+.4g}",
        rel, c.direction or ("=" if d == 0 else ""), "ok" if c.passed else "FAIL",
        c.message if not c.passed else (f"within {c.tolerance}" if d else ""),
    ]


def diff_table(comparisons: Sequence[Comparison], *, show_all: bool = False) -> str:
    """What moved, by how much, in which direction: one line per comparison that is not
    bit-identical or failed (every comparison with ``show_all``)."""
    header = ["method", "dataset", "metric", "baseline", "measured", "delta", "rel", "direction", "status", "reason"]
    rows = [_diff_row(c) for c in comparisons if show_all or not c.passed or (c.delta is not None and c.delta != 0)]
    if not rows:
        return "(nothing moved: every mean is bit-identical to the baseline)"
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def fmt(r: list[str]) -> str:
        return "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows)])


@dataclass
class CheckResult:
    exit_code: int
    comparisons: list[Comparison]
    notes: list[str]
    problems: list[str]
    baseline: Baseline

    @property
    def failed(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.passed]

    def summary_line(self) -> str:
        n, f = len(self.comparisons), len(self.failed)
        if self.exit_code == EXIT_SETUP:
            return f"check could not run: {len(self.problems)} setup problem(s)"
        return f"{n} comparison(s): {n - f} held, {f} failed" + (" -> REGRESSION" if f else " -> OK")


def check_measurement(baseline: Baseline, measured: Measured, *, overrides: Mapping[str, Tolerance] | None = None,
                      allow_improvements: bool = False, check_fingerprints: bool = True) -> CheckResult:
    """Compare a measurement with a baseline. Setup problems give exit 2 with no comparisons."""
    problems = measured.setup_problems(baseline.cells, baseline.dataset_versions)
    if problems:
        return CheckResult(EXIT_SETUP, [], [], problems, baseline)
    try:
        tolerances, notes = choose_tolerances(baseline, measured, overrides or {})
    except CheckSetupError as exc:
        return CheckResult(EXIT_SETUP, [], [], [str(exc)], baseline)
    comps = compare(baseline, measured, tolerances, allow_improvements=allow_improvements, check_fingerprints=check_fingerprints)
    notes += provenance_notes(baseline, measured)
    code = EXIT_REGRESSION if any(not c.passed for c in comps) else EXIT_OK
    return CheckResult(code, comps, notes, [], baseline)
