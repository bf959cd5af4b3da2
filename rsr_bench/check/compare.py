"""Regression checks: compare measured means against a committed baseline file.

Why: a team that changes code or weights wants CI to fail when any released checkpoint's
numbers move. A baseline pins *what* is evaluated (methods, datasets, metrics, the exact
images) and *what was measured* (one mean per method x dataset x metric, with its image
count), together with the provenance needed to tell a real change from a different setup
(package versions, weight sha256s, dataset versions, device, precision).

Baseline file (YAML, ``format: rsr-bench-baseline/1``)::

    format: rsr-bench-baseline/1
    created: 2026-11-26T09:00:00Z
    provenance:
      rsr_bench: 0.1.0
      versions: {torch: 2.3.1, ...}           # from the cell manifests
      device: cpu
      precision: fp32
      methods: {bicubic.x4: {fingerprint: <sha256>, provenance: {...}}}
      datasets: {demo_clean: {version: "1"}}
    evaluation:                                # what `check` evaluates
      methods: [bicubic.x4]
      datasets: [demo_clean]
      metrics: [psnr, ssim]
      limit: 2
      images: {demo_clean: [astronaut, chelsea]}
    tolerances:                                # same device kind and precision
      default: {abs: 1.0e-4, rel: 0.0}
      psnr: {abs: 0.02, rel: 0.0}
    other_device: {...}                        # tolerances for another device kind; absent = refuse
    other_precision: null                      # tolerances for another precision; absent = refuse
    entries:
      - {method: bicubic.x4, dataset: demo_clean, metric: psnr, mean: 27.1234, n: 2}

A comparison holds when ``|measured - baseline| <= abs + rel * |baseline|`` (numpy.isclose's
rule) and the image count is unchanged. Moves beyond tolerance fail in *either* direction
(the outputs changed), unless ``allow_improvements`` is set; the diff says which direction.

Exit codes: 0 all comparisons hold, 1 a regression (a number moved, an image count or a
weight fingerprint changed, a cell crashed), 2 a usage or setup problem: missing data or
weights, an unreadable baseline, a device/precision the baseline refuses. Missing inputs are
never a silent pass.
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .. import __version__
from ..files import atomic_write_text
from ..errors import RsrBenchError
from ..runner import package_versions
from ..files import read_yaml_mapping

FORMAT = "rsr-bench-baseline/1"

EXIT_OK, EXIT_REGRESSION, EXIT_SETUP = 0, 1, 2

# Per-image error messages that mean "cannot run on this machine" rather than "the numbers moved".
SETUP_ERROR_PATTERN = r"^(?:ModuleNotFoundError|ImportError|UnavailableError)\b"


class CheckSetupError(RsrBenchError):
    """The check cannot be carried out as asked (exit 2): missing data, weights, bad baseline."""


# --------------------------------------------------------------------------- tolerances


@dataclass(frozen=True)
class Tolerance:
    """``abs + rel * |baseline|`` bound on the allowed move of a mean."""

    abs: float = 0.0
    rel: float = 0.0

    def bound(self, baseline: float) -> float:
        return self.abs + self.rel * abs(baseline)

    def to_dict(self) -> dict[str, float]:
        return {"abs": float(self.abs), "rel": float(self.rel)}

    def __str__(self) -> str:
        parts = [f"±{self.abs:g}"] if self.abs or not self.rel else []
        if self.rel:
            parts.append(f"±{self.rel:g}×|b|")
        return " + ".join(parts)


# Suited to CPU float nondeterminism across machines (different BLAS/oneDNN code paths flip a
# few uint8-rounded pixels: ~1e-3 dB PSNR, ~1e-5 SSIM, ~1e-5 LPIPS) while a changed resampling
# kernel or a perturbed weight moves these means by 1e-2..1e0. Measured, see docs/regression-checks.md.
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "default": Tolerance(abs=1e-3, rel=1e-3),
    "psnr": Tolerance(abs=0.01),
    "psnr_y": Tolerance(abs=0.01),
    "psnr_nocrop": Tolerance(abs=0.01),
    "ssim": Tolerance(abs=2e-4),
    "ssim_y": Tolerance(abs=2e-4),
    "ssim_gray": Tolerance(abs=2e-4),
    "lpips": Tolerance(abs=5e-4),
    "niqe": Tolerance(abs=0.01, rel=1e-3),
    "brisque": Tolerance(abs=0.05, rel=1e-3),
    "piqe": Tolerance(abs=0.05, rel=1e-3),
}

# GPU vs CPU convolution (TF32 off) differs by ~1e-5 before rounding; a little looser than
# the same-device set. Precision changes (fp16) are refused by default.
DEFAULT_OTHER_DEVICE: dict[str, Tolerance] = {
    "default": Tolerance(abs=5e-3, rel=5e-3),
    "psnr": Tolerance(abs=0.03),
    "psnr_y": Tolerance(abs=0.03),
    "psnr_nocrop": Tolerance(abs=0.03),
    "ssim": Tolerance(abs=1e-3),
    "ssim_y": Tolerance(abs=1e-3),
    "ssim_gray": Tolerance(abs=1e-3),
    "lpips": Tolerance(abs=2e-3),
    "niqe": Tolerance(abs=0.03, rel=3e-3),
    "brisque": Tolerance(abs=0.2, rel=3e-3),
    "piqe": Tolerance(abs=0.2, rel=3e-3),
}


def parse_tolerances(data: Any, where: str) -> dict[str, Tolerance]:
    """``{metric: {abs, rel}}`` (or ``metric: number`` = abs) -> Tolerance map."""
    if not isinstance(data, Mapping):
        raise CheckSetupError(f"{where}: expected a mapping of metric -> {{abs, rel}}, got {data!r}")
    out = {}
    for metric, spec in data.items():
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            spec = {"abs": spec}
        if not isinstance(spec, Mapping) or set(spec) - {"abs", "rel"}:
            raise CheckSetupError(f"{where}.{metric}: expected {{abs: <number>, rel: <number>}}, got {spec!r}")
        try:
            tol = Tolerance(abs=float(spec.get("abs", 0.0)), rel=float(spec.get("rel", 0.0)))
        except (TypeError, ValueError):
            raise CheckSetupError(f"{where}.{metric}: abs and rel must be numbers, got {spec!r}") from None
        if tol.abs < 0 or tol.rel < 0 or math.isnan(tol.abs) or math.isnan(tol.rel):
            raise CheckSetupError(f"{where}.{metric}: tolerances must be non-negative numbers")
        out[str(metric)] = tol
    return out


def parse_tolerance_option(values: Iterable[str]) -> dict[str, Tolerance]:
    """CLI ``--tolerance METRIC=ABS[,REL]`` (``default=`` for all others) -> overrides."""
    out = {}
    for item in values:
        metric, sep, rest = item.partition("=")
        parts = rest.split(",")
        if not sep or not metric or len(parts) > 2:
            raise CheckSetupError(f"--tolerance {item!r}: expected METRIC=ABS[,REL], e.g. psnr=0.05 or lpips=0,0.01")
        try:
            nums = [float(p) for p in parts]
        except ValueError:
            raise CheckSetupError(f"--tolerance {item!r}: ABS and REL must be numbers") from None
        out[metric.strip()] = Tolerance(abs=nums[0], rel=nums[1] if len(nums) > 1 else 0.0)
    return out


def tolerance_for(metric: str, tolerances: Mapping[str, Tolerance]) -> Tolerance:
    return tolerances.get(metric) or tolerances.get("default") or DEFAULT_TOLERANCES.get(metric) or DEFAULT_TOLERANCES["default"]


# --------------------------------------------------------------------------- baseline file


@dataclass(frozen=True)
class Entry:
    method: str
    dataset: str
    metric: str
    mean: float
    n: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.method, self.dataset, self.metric)


@dataclass
class Baseline:
    """A parsed baseline file (see the module docstring for the format)."""

    provenance: dict[str, Any]
    evaluation: dict[str, Any]
    tolerances: dict[str, Tolerance]
    entries: list[Entry]
    other_device: dict[str, Tolerance] | None = None
    other_precision: dict[str, Tolerance] | None = None
    created: str = ""
    path: Path | None = None

    @property
    def methods(self) -> list[str]:
        return list(self.evaluation.get("methods") or dict.fromkeys(e.method for e in self.entries))

    @property
    def datasets(self) -> list[str]:
        return list(self.evaluation.get("datasets") or dict.fromkeys(e.dataset for e in self.entries))

    @property
    def metrics(self) -> list[str]:
        return list(self.evaluation.get("metrics") or dict.fromkeys(e.metric for e in self.entries))

    @property
    def limit(self) -> int | None:
        limit = self.evaluation.get("limit")
        return int(limit) if limit is not None else None

    @property
    def images(self) -> dict[str, list[str]]:
        return {str(k): [str(i) for i in v] for k, v in (self.evaluation.get("images") or {}).items()}

    def to_dict(self) -> dict[str, Any]:
        def tols(t: Mapping[str, Tolerance] | None) -> dict | None:
            return None if t is None else {k: v.to_dict() for k, v in t.items()}

        return {
            "format": FORMAT,
            "created": self.created,
            "provenance": self.provenance,
            "evaluation": self.evaluation,
            "tolerances": tols(self.tolerances),
            "other_device": tols(self.other_device),
            "other_precision": tols(self.other_precision),
            "entries": [
                {"method": e.method, "dataset": e.dataset, "metric": e.metric, "mean": float(e.mean), "n": int(e.n)}
                for e in self.entries
            ],
        }


_TOP_KEYS = {"format", "created", "provenance", "evaluation", "tolerances", "other_device", "other_precision", "entries"}


def load_baseline(path: str | Path) -> Baseline:
    """Read and validate a baseline file; every problem names the file and the key at fault."""
    path = Path(path)
    if not path.is_file():
        raise CheckSetupError(f"baseline {path} does not exist (create one with: rsr-bench check --baseline {path} --update ...)")
    data = read_yaml_mapping(path, what="baseline", error=CheckSetupError)
    if data.get("format") != FORMAT:
        raise CheckSetupError(f"baseline {path}: format is {data.get('format')!r}, expected {FORMAT!r}")
    extra = set(data) - _TOP_KEYS
    if extra:
        raise CheckSetupError(f"baseline {path}: unknown key(s) {sorted(extra)}; allowed: {sorted(_TOP_KEYS)}")
    entries = []
    for i, raw in enumerate(data.get("entries") or []):
        try:
            entries.append(Entry(str(raw["method"]), str(raw["dataset"]), str(raw["metric"]), float(raw["mean"]), int(raw["n"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckSetupError(f"baseline {path}: entries[{i}] needs method, dataset, metric, mean, n ({exc!r})") from None
    if not entries:
        raise CheckSetupError(f"baseline {path}: no entries; nothing would be checked")
    keys = [e.key for e in entries]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise CheckSetupError(f"baseline {path}: duplicate entries for {dup}")
    return Baseline(
        provenance=dict(data.get("provenance") or {}),
        evaluation=dict(data.get("evaluation") or {}),
        tolerances=parse_tolerances(data.get("tolerances") or {}, f"baseline {path}: tolerances"),
        other_device=None if data.get("other_device") is None else parse_tolerances(data["other_device"], f"baseline {path}: other_device"),
        other_precision=None if data.get("other_precision") is None else parse_tolerances(data["other_precision"], f"baseline {path}: other_precision"),
        entries=entries,
        created=str(data.get("created") or ""),
        path=path,
    )


def dump_baseline(baseline: Baseline) -> str:
    header = (
        "# rsr-bench regression baseline. Written by `rsr-bench check --update`; edit tolerances by hand.\n"
        "# A comparison holds when |measured - mean| <= abs + rel * |mean| and n is unchanged.\n"
        "# other_device / other_precision: tolerances for a run on another device kind / precision;\n"
        "# null refuses such a run (exit 2).\n"
    )
    return header + yaml.safe_dump(baseline.to_dict(), sort_keys=False, default_flow_style=None, width=110, allow_unicode=True)


def save_baseline(baseline: Baseline, path: str | Path) -> None:
    atomic_write_text(path, dump_baseline(baseline))


# --------------------------------------------------------------------------- measurements


@dataclass
class Measured:
    """What a store holds for the baseline's cells, restricted to its pinned images."""

    summary: pd.DataFrame  # [method, dataset, metric, mean, std, n]
    manifests: dict[tuple[str, str], dict]
    skipped: dict[tuple[str, str], str]
    failures: pd.DataFrame  # [method, dataset, image, stage, message]
    root: Path
    images: dict[str, list[str]] = field(default_factory=dict)


def read_store(root: str | Path, *, methods: Sequence[str], datasets: Sequence[str],
               images: Mapping[str, Sequence[str]] | None = None, limit: int | None = None) -> Measured:
    """Load the cells of ``methods x datasets`` from a store.

    ``images`` pins the evaluation set per dataset (a store may hold more images than the
    baseline used); otherwise with ``limit`` the first ``limit`` image ids (sorted) are used.
    """
    from .. import store
    from ..store import aggregate

    root = Path(root)
    df = store.load_results(root)
    df = df[df["method"].isin(methods) & df["dataset"].isin(datasets)]
    chosen: dict[str, list[str]] = {}
    for d in datasets:
        ids = sorted(set(df.loc[df["dataset"] == d, "image"]))
        if images and d in images:
            chosen[d] = list(images[d])
        else:
            chosen[d] = ids[:limit] if limit is not None else ids
    keep = pd.Series(False, index=df.index)
    for d, ids in chosen.items():
        keep |= (df["dataset"] == d) & df["image"].isin(ids)
    df = df[keep]
    failures = store.load_failures(root)
    failures = failures[failures["method"].isin(methods) & failures["dataset"].isin(datasets)]
    return Measured(
        summary=aggregate(df),
        manifests={k: v for k, v in store.load_manifests(root).items() if k[0] in methods and k[1] in datasets},
        skipped={k: v for k, v in store.load_skipped(root).items() if k[0] in methods and k[1] in datasets},
        failures=failures,
        root=root,
        images=chosen,
    )


def evaluate(*, methods: Sequence[str], datasets: Sequence[str], metrics: Sequence[str], out: Path,
             limit: int | None, device: str = "auto", extra_cards: Sequence[str] = (),
             datasets_files: Sequence[str] = (), force: bool = False) -> None:
    """Run the evaluation into the store ``out`` (resumable; ``force`` recomputes everything)."""
    from ..runner import run

    run(methods=list(methods), datasets=list(datasets), metrics=list(metrics), out=Path(out), limit=limit,
        device=device, extra_cards=list(extra_cards), datasets_files=list(datasets_files), keep_going=True, force=force)


# --------------------------------------------------------------------------- comparison


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


def compare(baseline: Baseline, measured: Measured, tolerances: Mapping[str, Tolerance], *,
            allow_improvements: bool = False, check_fingerprints: bool = True) -> list[Comparison]:
    """Compare every baseline entry (and each cell's weight fingerprint) with the measurement.

    Cells that were skipped or have no results at all must have been rejected by
    :func:`setup_problems` first; here a missing value is a regression (the cell ran but the
    metric is gone, e.g. it now crashes).
    """
    lookup = {(r.method, r.dataset, r.metric): (float(r.mean), int(r.n)) for r in measured.summary.itertuples()}
    out: list[Comparison] = []
    if check_fingerprints:
        want = {m: (v or {}).get("fingerprint") for m, v in (baseline.provenance.get("methods") or {}).items()}
        for (m, d), manifest in sorted(measured.manifests.items()):
            expected = want.get(m)
            got = (manifest.get("method") or {}).get("fingerprint")
            if not expected or not got:
                continue
            ok = expected == got
            out.append(Comparison(m, d, "fingerprint", None, None, None, None, None, "ok" if ok else "fingerprint",
                                  message="" if ok else f"weights changed: sha256 {got[:16]}… (baseline {expected[:16]}…)"))
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


def setup_problems(baseline: Baseline, measured: Measured) -> list[str]:
    """Reasons the comparison cannot be trusted at all (exit 2): skipped cells, missing data."""
    problems = []
    cells = list(dict.fromkeys((e.method, e.dataset) for e in baseline.entries))
    have = set(zip(measured.summary["method"], measured.summary["dataset"])) if not measured.summary.empty else set()
    for m, d in cells:
        if (m, d) in measured.skipped:
            problems.append(f"{m} on {d} was not evaluated: {measured.skipped[(m, d)]}")
        elif (m, d) not in have and (m, d) not in measured.manifests:
            problems.append(f"{m} on {d}: no results in store {measured.root} (run it, or drop --from-store to evaluate)")
    # A metric or model that could not even be set up here (a package or model file missing) is
    # a setup problem, not a regression of the numbers.
    if not measured.failures.empty:
        setup = measured.failures[measured.failures["message"].astype(str).str.contains(SETUP_ERROR_PATTERN, regex=True)]
        for (m, d, stage), grp in setup.groupby(["method", "dataset", "stage"], sort=True):
            problems.append(f"{m} on {d}: {stage} could not run here ({len(grp)} image(s)): {grp['message'].iloc[0]}")
    want_versions = {k: str((v or {}).get("version")) for k, v in (baseline.provenance.get("datasets") or {}).items()}
    for (m, d), manifest in sorted(measured.manifests.items()):
        got = (manifest.get("dataset") or {}).get("version")
        if d in want_versions and got is not None and str(got) != want_versions[d]:
            problems.append(f"{m} on {d}: dataset version {got!r} differs from the baseline's {want_versions[d]!r}; "
                            "the numbers are not comparable (regenerate the baseline with --update)")
    return problems


def device_kind(device: Any) -> str:
    """'cuda:0 (NVIDIA H100)' -> 'cuda'; 'cpu' -> 'cpu'. Only the kind changes the arithmetic."""
    if isinstance(device, Mapping):
        device = device.get("type") or device.get("name") or ""
    text = str(device or "").strip().lower()
    for sep in (":", " ", "("):
        text = text.split(sep)[0]
    return text or "unknown"


def manifest_precision(manifest: Mapping[str, Any]) -> str:
    """The cell's inference precision: the manifest's own field, else the engine's (RRDB adapters
    record it in the method provenance), else fp32."""
    engine = ((manifest.get("method") or {}).get("provenance") or {}).get("engine") or {}
    return str(manifest.get("precision") or engine.get("precision") or "fp32")


def choose_tolerances(baseline: Baseline, measured: Measured, overrides: Mapping[str, Tolerance]) -> tuple[dict[str, Tolerance], list[str]]:
    """Same-device tolerances, or the baseline's declared cross-device/precision ones, or refuse."""
    notes: list[str] = []
    base_dev = device_kind(baseline.provenance.get("device", "cpu"))
    base_prec = str(baseline.provenance.get("precision") or "fp32")
    devices = {device_kind(m.get("device")) for m in measured.manifests.values()} or {base_dev}
    precisions = {manifest_precision(m) for m in measured.manifests.values()} or {base_prec}
    tolerances = dict(baseline.tolerances)
    if devices != {base_dev}:
        if baseline.other_device is None:
            raise CheckSetupError(
                f"baseline {baseline.path} was made on {base_dev}, this run used {', '.join(sorted(devices))}; "
                "it declares no other_device tolerances, so it refuses the comparison. Run on "
                f"{base_dev} (--device {base_dev}), write a baseline for this device with --update, or add "
                "other_device: tolerances to the file.")
        tolerances = dict(baseline.other_device)
        notes.append(f"device differs from the baseline ({', '.join(sorted(devices))} vs {base_dev}): using its other_device tolerances")
    if precisions != {base_prec}:
        if baseline.other_precision is None:
            raise CheckSetupError(
                f"baseline {baseline.path} was made in {base_prec}, this run used {', '.join(sorted(precisions))}; "
                "it declares no other_precision tolerances, so it refuses the comparison. Write a baseline "
                "for this precision with --update, or add other_precision: tolerances to the file.")
        tolerances = dict(baseline.other_precision)
        notes.append(f"precision differs from the baseline ({', '.join(sorted(precisions))} vs {base_prec}): using its other_precision tolerances")
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


# --------------------------------------------------------------------------- rendering


def _fmt(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.6g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}"


def diff_table(comparisons: Sequence[Comparison], *, show_all: bool = False) -> str:
    """What moved, by how much, in which direction: one line per comparison that is not
    bit-identical or failed (every comparison with ``show_all``)."""
    header = ["method", "dataset", "metric", "baseline", "measured", "delta", "rel", "direction", "status", "reason"]
    rows = []
    for c in comparisons:
        d = c.delta
        moved = d is not None and d != 0
        if not (show_all or not c.passed or moved):
            continue
        if c.metric == "fingerprint":
            rows.append([c.method, c.dataset, "weights", "", "", "", "", "", "ok" if c.passed else "FAIL", c.message])
            continue
        rel = f"{d / abs(c.baseline):+.1e}" if d is not None and c.baseline else ""
        rows.append([
            c.method, c.dataset, c.metric, _fmt(c.baseline), _fmt(c.measured), "—" if d is None else f"{d:+.4g}", rel,
            c.direction or ("=" if d == 0 else ""), "ok" if c.passed else "FAIL",
            c.message if not c.passed else (f"within {c.tolerance}" if moved else ""),
        ])
    if not rows:
        return "(nothing moved: every mean is bit-identical to the baseline)"
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def fmt(r: list[str]) -> str:
        return "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows)])


# --------------------------------------------------------------------------- top level


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


def check(baseline: Baseline, measured: Measured, *, overrides: Mapping[str, Tolerance] | None = None,
          allow_improvements: bool = False, check_fingerprints: bool = True) -> CheckResult:
    """Compare a measurement with a baseline. Setup problems give exit 2 with no comparisons."""
    problems = setup_problems(baseline, measured)
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


def build_baseline(measured: Measured, *, methods: Sequence[str], datasets: Sequence[str], metrics: Sequence[str],
                   limit: int | None, tolerances: Mapping[str, Tolerance] | None = None,
                   other_device: Mapping[str, Tolerance] | None = None,
                   other_precision: Mapping[str, Tolerance] | None = None) -> Baseline:
    """A new baseline from a measurement; refuses to record a skipped or empty cell."""
    stub = Baseline(provenance={}, evaluation={}, tolerances={}, entries=[
        Entry(m, d, "", 0.0, 0) for m in methods for d in datasets])
    problems = setup_problems(stub, measured)
    if problems:
        raise CheckSetupError("cannot write a baseline from incomplete results:\n  " + "\n  ".join(problems))
    entries = []
    summary = measured.summary
    for r in summary.itertuples():
        if r.method in methods and r.dataset in datasets and r.metric in metrics and not math.isnan(float(r.mean)):
            entries.append(Entry(str(r.method), str(r.dataset), str(r.metric), float(r.mean), int(r.n)))
    order = {k: i for i, k in enumerate(methods)}, {k: i for i, k in enumerate(datasets)}, {k: i for i, k in enumerate(metrics)}
    entries.sort(key=lambda e: (order[0][e.method], order[1][e.dataset], order[2][e.metric]))
    if not entries:
        raise CheckSetupError(f"no results for {list(methods)} x {list(datasets)} x {list(metrics)} in {measured.root}")
    manifests = measured.manifests
    devices = sorted({str(m.get("device")) for m in manifests.values() if m.get("device") is not None})
    precisions = sorted({manifest_precision(m) for m in manifests.values()}) or ["fp32"]
    if len({device_kind(d) for d in devices}) > 1 or len(precisions) > 1:
        raise CheckSetupError(f"the cells were evaluated on several devices/precisions ({devices}, {precisions}); "
                              "a baseline must come from one (re-run with --force)")
    versions: dict[str, Any] = {}
    for m in manifests.values():
        versions.update(m.get("versions") or {})
    prov = {
        "rsr_bench": __version__,
        "versions": versions or package_versions(),
        "device": device_kind(devices[0]) if devices else "cpu",
        "device_detail": devices[0] if devices else "cpu",
        "precision": precisions[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "methods": {},
        "datasets": {},
    }
    for (m, d), man in sorted(manifests.items()):
        meth = man.get("method") or {}
        prov["methods"].setdefault(m, {"fingerprint": meth.get("fingerprint"), "provenance": meth.get("provenance")})
        ds = man.get("dataset") or {}
        prov["datasets"].setdefault(d, {"version": ds.get("version")})
    base_tols = dict(DEFAULT_TOLERANCES if tolerances is None else tolerances)
    return Baseline(
        provenance=prov,
        evaluation={"methods": list(methods), "datasets": list(datasets), "metrics": list(metrics), "limit": limit,
                    "images": {d: list(ids) for d, ids in measured.images.items() if d in datasets}},
        tolerances={k: v for k, v in base_tols.items() if k == "default" or k in metrics},
        other_device={k: v for k, v in dict(DEFAULT_OTHER_DEVICE if other_device is None else other_device).items()
                      if k == "default" or k in metrics},
        other_precision=None if other_precision is None else dict(other_precision),
        entries=entries,
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    )


def junit_cases(result: CheckResult) -> list:
    """One JUnit testcase per comparison (and one error case per setup problem)."""
    from .junit import TestCase

    cases = [TestCase("setup", f"problem {i + 1}", error=p) for i, p in enumerate(result.problems)]
    for c in result.comparisons:
        detail = (f"baseline {_fmt(c.baseline)} (n={c.n_baseline}), measured {_fmt(c.measured)} (n={c.n_measured}), "
                  f"delta {'—' if c.delta is None else f'{c.delta:+.6g}'}, tolerance {c.tolerance}")
        cases.append(TestCase(
            classname=f"{c.method}/{c.dataset}", name=c.metric,
            failure=None if c.passed else c.message or c.status,
            output=c.message if c.metric == "fingerprint" else detail,
        ))
    return cases


def write_junit(path: str | Path, result: CheckResult) -> None:
    from . import junit

    props = {"baseline": str(result.baseline.path or ""), "exit_code": str(result.exit_code)}
    props.update({k: str(v) for k, v in result.baseline.provenance.items() if k in ("device", "precision", "rsr_bench")})
    junit.write(path, "rsr-bench check", junit_cases(result), props)


def temp_store() -> tempfile.TemporaryDirectory:
    """A throw-away store for a fresh evaluation (results of a check are not worth keeping)."""
    return tempfile.TemporaryDirectory(prefix="rsr-bench-check-")


__all__ = [
    "DEFAULT_TOLERANCES",
    "FORMAT",
    "device_kind",
    "temp_store",
    "write_junit",
    "EXIT_OK",
    "EXIT_REGRESSION",
    "EXIT_SETUP",
    "Baseline",
    "CheckResult",
    "CheckSetupError",
    "Comparison",
    "Entry",
    "Measured",
    "Tolerance",
    "build_baseline",
    "check",
    "compare",
    "diff_table",
    "dump_baseline",
    "evaluate",
    "load_baseline",
    "parse_tolerance_option",
    "read_store",
    "save_baseline",
]
