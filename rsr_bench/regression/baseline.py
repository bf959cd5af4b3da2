"""The baseline file: what a regression check evaluates and the means it must reproduce.

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
rule) and the image count is unchanged. New baselines get each metric's tolerances from its row
of the metric table (``tolerance``, ``tolerance_other_device``).
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .. import __version__
from ..errors import RsrBenchError
from ..files import atomic_write_text, read_yaml_mapping

if TYPE_CHECKING:
    from .measure import Measured

FORMAT = "rsr-bench-baseline/1"


class CheckSetupError(RsrBenchError):
    """The check cannot be carried out as asked (exit 2): missing data, weights, bad baseline."""


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


def default_tolerances(other_device: bool = False) -> dict[str, Tolerance]:
    """The metric table's tolerances (``"default"``: a metric whose row sets none)."""
    from ..metrics import tolerances

    return {name: Tolerance(*bound) for name, bound in tolerances(other_device).items()}


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
    """The metric's own tolerance, else the map's default, else the metric table's."""
    found = tolerances.get(metric) or tolerances.get("default")
    if found:
        return found
    defaults = default_tolerances()
    return defaults.get(metric) or defaults["default"]


@dataclass(frozen=True)
class Selection:
    """What a check evaluates: methods x datasets x metrics, the first ``limit`` images or the
    pinned ``images`` per dataset."""

    methods: Sequence[str]
    datasets: Sequence[str]
    metrics: Sequence[str]
    limit: int | None = None
    images: Mapping[str, Sequence[str]] | None = None


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
    def selection(self) -> Selection:
        """What the file says to evaluate (what its entries cover, where ``evaluation`` is silent)."""
        ev = self.evaluation
        covered = lambda attr: list(dict.fromkeys(getattr(e, attr) for e in self.entries))  # noqa: E731
        return Selection(list(ev.get("methods") or covered("method")), list(ev.get("datasets") or covered("dataset")),
                         list(ev.get("metrics") or covered("metric")), None if ev.get("limit") is None else int(ev["limit"]),
                         {str(k): [str(i) for i in v] for k, v in (ev.get("images") or {}).items()})

    @property
    def cells(self) -> list[tuple[str, str]]:
        return list(dict.fromkeys((e.method, e.dataset) for e in self.entries))

    @property
    def dataset_versions(self) -> dict[str, str]:
        return {k: str((v or {}).get("version")) for k, v in (self.provenance.get("datasets") or {}).items()}

    def to_dict(self) -> dict[str, Any]:
        def tols(t: Mapping[str, Tolerance] | None) -> dict | None:
            return None if t is None else {k: v.to_dict() for k, v in t.items()}

        return {
            "format": FORMAT, "created": self.created, "provenance": self.provenance, "evaluation": self.evaluation,
            "tolerances": tols(self.tolerances), "other_device": tols(self.other_device),
            "other_precision": tols(self.other_precision),
            "entries": [
                {"method": e.method, "dataset": e.dataset, "metric": e.metric, "mean": float(e.mean), "n": int(e.n)}
                for e in self.entries
            ],
        }


_TOP_KEYS = {"format", "created", "provenance", "evaluation", "tolerances", "other_device", "other_precision", "entries"}


def _entries(data: Mapping[str, Any], path: Path) -> list[Entry]:
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
    return entries


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

    def optional(key: str) -> dict[str, Tolerance] | None:
        return None if data.get(key) is None else parse_tolerances(data[key], f"baseline {path}: {key}")

    return Baseline(
        provenance=dict(data.get("provenance") or {}), evaluation=dict(data.get("evaluation") or {}),
        tolerances=parse_tolerances(data.get("tolerances") or {}, f"baseline {path}: tolerances"),
        entries=_entries(data, path), other_device=optional("other_device"),
        other_precision=optional("other_precision"), created=str(data.get("created") or ""), path=path,
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


def _provenance(manifests: Mapping[tuple[str, str], dict]) -> dict[str, Any]:
    """Provenance of a new baseline; refuses cells measured on several device kinds or precisions."""
    from ..runner import package_versions

    devices = sorted({str(m.get("device")) for m in manifests.values() if m.get("device") is not None})
    precisions = sorted({manifest_precision(m) for m in manifests.values()}) or ["fp32"]
    if len({device_kind(d) for d in devices}) > 1 or len(precisions) > 1:
        raise CheckSetupError(f"the cells were evaluated on several devices/precisions ({devices}, {precisions}); "
                              "a baseline must come from one (re-run with --force)")
    versions: dict[str, Any] = {}
    for m in manifests.values():
        versions.update(m.get("versions") or {})
    prov = {
        "rsr_bench": __version__, "versions": versions or package_versions(),
        "device": device_kind(devices[0]) if devices else "cpu", "device_detail": devices[0] if devices else "cpu",
        "precision": precisions[0], "platform": f"{platform.system()} {platform.machine()}",
        "methods": {}, "datasets": {},
    }
    for (m, d), man in sorted(manifests.items()):
        meth = man.get("method") or {}
        prov["methods"].setdefault(m, {"fingerprint": meth.get("fingerprint"), "provenance": meth.get("provenance")})
        prov["datasets"].setdefault(d, {"version": (man.get("dataset") or {}).get("version")})
    return prov


def build_baseline(measured: Measured, pin: Selection, *, tolerances: Mapping[str, Tolerance] | None = None,
                   other_device: Mapping[str, Tolerance] | None = None,
                   other_precision: Mapping[str, Tolerance] | None = None) -> Baseline:
    """A new baseline pinning ``pin`` from a measurement; refuses to record a skipped or empty cell."""
    methods, datasets, metrics = list(pin.methods), list(pin.datasets), list(pin.metrics)
    problems = measured.setup_problems([(m, d) for m in methods for d in datasets])
    if problems:
        raise CheckSetupError("cannot write a baseline from incomplete results:\n  " + "\n  ".join(problems))
    entries = sorted(
        (Entry(str(r.method), str(r.dataset), str(r.metric), float(r.mean), int(r.n)) for r in measured.summary.itertuples()
         if r.method in methods and r.dataset in datasets and r.metric in metrics and not math.isnan(float(r.mean))),
        key=lambda e: (methods.index(e.method), datasets.index(e.dataset), metrics.index(e.metric)))
    if not entries:
        raise CheckSetupError(f"no results for {methods} x {datasets} x {metrics} in {measured.root}")
    keep = lambda tols: {k: v for k, v in tols.items() if k == "default" or k in metrics}  # noqa: E731
    return Baseline(
        provenance=_provenance(measured.manifests),
        evaluation={"methods": methods, "datasets": datasets, "metrics": metrics, "limit": pin.limit,
                    "images": {d: list(ids) for d, ids in measured.images.items() if d in datasets}},
        tolerances=keep(default_tolerances() if tolerances is None else tolerances),
        other_device=keep(default_tolerances(other_device=True) if other_device is None else other_device),
        other_precision=None if other_precision is None else dict(other_precision),
        entries=entries,
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    )
