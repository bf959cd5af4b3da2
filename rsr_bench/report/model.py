"""What the report knows about a results store, gathered once and shared by every renderer.

The report reads only the store (results, failures, manifests, skipped cells, SR PNGs); it never
runs a model. Facts that the manifests may lack (a skipped cell has no manifest, a metric added
after the run is not in the metric table) are filled in defensively so that a partial store
still renders: missing knowledge becomes an explicit "unknown", never a crash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

NOT_COMPUTABLE = "not computable:"  # stage prefix used by store.load_failures
#: How a method card written by ``rsr-bench train`` begins its ``paper:`` field (the label that
#: the paper table and the report show, so a project-trained model never passes for a published one).
TRAINED_HERE = "trained here"


def trained_here(paper: str | None) -> str | None:
    """The "trained here ..." label of a method from its card's ``paper:`` field, else None."""
    text = str(paper or "").strip()
    return text if text.lower().startswith(TRAINED_HERE) else None


@dataclass(frozen=True)
class MethodInfo:
    """One method checkpoint as the report shows it (from its manifests or the method cards)."""

    name: str
    family: str
    tag: str
    trained_on: tuple[str, ...] = ()
    description: str = ""
    fingerprints: tuple[str, ...] = ()
    provenance: tuple[tuple[str, str], ...] = ()
    trained_here: str | None = None  # the "trained here ..." label of a model trained by this project


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    version: str = ""
    kind: str = ""
    has_gt: bool | None = None  # None: unknown (no manifest and no full-reference value seen)
    domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricInfo:
    name: str
    kind: str  # "FR", "NR" or "?" when unknown
    higher_is_better: bool
    conventions: str = ""  # the footnote line
    decimals: int = 3

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    def fmt(self, value: float | None) -> str:
        return "—" if value is None else f"{value:.{self.decimals}f}"


@dataclass
class ReportData:
    """Everything loaded from the store, filtered, with method/dataset/metric facts resolved."""

    store_root: Path
    results: pd.DataFrame  # method, dataset, image, metric, value
    failures: pd.DataFrame  # method, dataset, image, stage, message
    manifests: dict[tuple[str, str], dict]
    skipped: dict[tuple[str, str], str]
    stats: pd.DataFrame  # method, dataset, metric, mean, std, n
    methods: dict[str, MethodInfo] = field(default_factory=dict)
    datasets: dict[str, DatasetInfo] = field(default_factory=dict)
    metrics: dict[str, MetricInfo] = field(default_factory=dict)
    highlight_family: str | None = None

    def in_domain(self, method: str, dataset: str) -> bool | None:
        """True/False for a trained method; None for a method with no training set (bicubic)."""
        m, d = self.methods[method], self.datasets[dataset]
        if not m.trained_on:
            return None
        return bool(set(m.trained_on) & ({d.name} | set(d.domains)))

    def frame_kind(self, method: str, dataset: str) -> str:
        """Frame colour class of a grid panel: highlight > in-domain > cross-domain > neutral."""
        if self.highlight_family and self.methods[method].family == self.highlight_family:
            return "highlight"
        dom = self.in_domain(method, dataset)
        return "neutral" if dom is None else ("in" if dom else "cross")

    @cached_property
    def values(self) -> dict[tuple[str, str, str], dict[str, float]]:
        """(method, dataset, metric) -> {image: value}: the long table as dicts, built once.

        The plots and grids look values up per cell and per image; filtering the frame (string
        columns) for each lookup was a tenth of a second per figure on a 4x4x100 store.
        """
        out: dict[tuple[str, str, str], dict[str, float]] = {}
        cols = (self.results[c].tolist() for c in ("method", "dataset", "metric", "image", "value"))
        for m, d, x, i, v in zip(*cols):
            out.setdefault((m, d, x), {})[i] = float(v)
        return out

    def cell_stats(self) -> dict[tuple[str, str, str], tuple[float, float, int]]:
        """(method, dataset, metric) -> (mean, std, n) as a dict for fast lookups."""
        return {
            (r.method, r.dataset, r.metric): (float(r.mean), float(r.std) if pd.notna(r.std) else 0.0, int(r.n))
            for r in self.stats.itertuples(index=False)
        }

    def errors(self) -> pd.DataFrame:
        """Failed images only (the store also lists per-metric "not computable" entries)."""
        f = self.failures
        return f[~f["stage"].astype(str).str.startswith(NOT_COMPUTABLE)]

    def not_computable(self, method: str, dataset: str, metric: str) -> list[str]:
        """Reasons a metric could not be scored on some images of a cell."""
        f = self.failures
        sel = f[(f["method"] == method) & (f["dataset"] == dataset) & (f["stage"] == f"{NOT_COMPUTABLE} {metric}")]
        return list(dict.fromkeys(sel["message"].astype(str)))

    def failure_counts_by_metric(self) -> dict[tuple[str, str, str], int]:
        """(method, dataset, metric) -> images missing from that mean because of an error.

        An error before scoring (decode, predict, ...) removes the image from every metric; a
        ``metric:<name>`` error (the runner's stage name) only from that metric.
        """
        errors = self.errors()
        out: dict[tuple[str, str, str], int] = {}
        if errors.empty:
            return out
        stage = errors["stage"].astype(str)
        whole = errors[~stage.str.startswith("metric:")]
        per_image = whole.groupby(["method", "dataset"])["image"].agg(set).to_dict()
        metric_err = errors[stage.str.startswith("metric:")]
        per_metric: dict[tuple[str, str, str], set] = {}
        for r in metric_err.itertuples(index=False):
            per_metric.setdefault((r.method, r.dataset, str(r.stage)[len("metric:"):]), set()).add(r.image)
        for m, d in {(r.method, r.dataset) for r in errors.itertuples(index=False)}:
            for x in self.metrics:
                n = len(per_image.get((m, d), set()) | per_metric.get((m, d, x), set()))
                if n:
                    out[(m, d, x)] = n
        return out


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _registry(kind: str) -> dict[str, Any]:
    """The method cards or the dataset registry, or {} when they cannot be read (report still renders)."""
    try:
        if kind == "methods":
            from ..methods.cards import load_method_specs as load
        else:
            from ..datasets import load_datasets as load
        return dict(load())
    except Exception:  # noqa: BLE001 - a fallback source only
        return {}


def _card_facts(name: str, entries: list[dict]) -> dict[str, str]:
    """``paper`` and ``description`` of ``name`` from the card its manifests name, when that file
    can still be read (the card is the one home of a trained model's label; the manifests keep a
    copy of ``paper`` from run time, which is the fallback)."""
    from ..methods.cards import parse_card

    for card in dict.fromkeys(str(e["card"]) for e in entries if e.get("card")):
        try:
            spec = next((s for s in parse_card(Path(card)) if s.name == name), None)
        except Exception:  # noqa: BLE001 - a moved or edited card: fall back to the manifest's copy
            continue
        if spec is not None:
            return {"paper": spec.paper, "description": spec.description}
    return {}


def resolve_methods(names: Iterable[str], manifests: Mapping[tuple[str, str], dict]) -> dict[str, MethodInfo]:
    """Method facts from the manifests (what was actually run), else from the method cards."""
    by_method: dict[str, list[dict]] = {}
    for (m, _d), man in manifests.items():
        by_method.setdefault(m, []).append(man.get("method") or {})
    cards: dict[str, Any] | None = None
    out: dict[str, MethodInfo] = {}
    for name in names:
        entries = by_method.get(name, [])
        first = entries[0] if entries else {}
        if not entries:
            cards = _registry("methods") if cards is None else cards
            spec = cards.get(name)
            if spec is not None:
                first = {"family": spec.family, "tag": spec.tag, "trained_on": list(spec.trained_on),
                         "description": spec.description, "paper": spec.paper}
        card = _card_facts(name, entries)
        paper = card.get("paper") or next((e.get("paper") for e in entries if trained_here(e.get("paper"))), first.get("paper"))
        family, _, tag = name.partition(".")
        prov: dict[str, str] = {}
        for e in entries:
            for k, v in (e.get("provenance") or {}).items():
                prov.setdefault(str(k), str(v))
        out[name] = MethodInfo(
            name=name,
            family=str(first.get("family") or family),
            tag=str(first.get("tag") or tag or name),
            trained_on=_as_tuple(first.get("trained_on")),
            description=str(first.get("description") or card.get("description") or ""),
            fingerprints=tuple(sorted({str(e["fingerprint"]) for e in entries if e.get("fingerprint")})),
            provenance=tuple(sorted(prov.items())),
            trained_here=trained_here(paper),
        )
    return out


def resolve_datasets(
    names: Iterable[str], manifests: Mapping[tuple[str, str], dict], fr_seen: set[str]
) -> dict[str, DatasetInfo]:
    """Dataset facts from the manifests, else the dataset registry, else what the values imply."""
    by_ds: dict[str, dict] = {}
    for (_m, d), man in manifests.items():
        by_ds.setdefault(d, man.get("dataset") or {})
    registry: dict[str, Any] | None = None
    out: dict[str, DatasetInfo] = {}
    for name in names:
        info = by_ds.get(name)
        if info is None:
            registry = _registry("datasets") if registry is None else registry
            spec = registry.get(name)
            info = {}
            if spec is not None:
                info = {"version": spec.version, "kind": spec.kind, "domains": list(spec.domains),
                        "has_gt": spec.hr_dir is not None}
        has_gt = info.get("has_gt")
        if has_gt is None and name in fr_seen:
            has_gt = True
        out[name] = DatasetInfo(
            name=name,
            version=str(info.get("version") or ""),
            kind=str(info.get("kind") or ""),
            has_gt=None if has_gt is None else bool(has_gt),
            domains=_as_tuple(info.get("domains")),
        )
    return out


def resolve_metrics(names: Iterable[str], manifests: Mapping[tuple[str, str], dict]) -> dict[str, MetricInfo]:
    """Metric facts, in the metric table's order (unknown metrics last, by name).

    The convention is the one the manifests recorded (what was run); a manifest written before
    conventions were structured holds a prose line instead, and then the metric table's row
    stands in (for a metric no longer in the table: neutral defaults and the prose as footnote).
    Display decimals come from the table when it knows the metric.
    """
    from ..metrics import METRICS
    from ..metrics.table import convention_text

    recorded: dict[str, Any] = {}
    for man in manifests.values():
        for k, v in (man.get("metrics") or {}).items():
            recorded.setdefault(str(k), v)
    order = {n: i for i, n in enumerate(METRICS)}
    out: dict[str, MetricInfo] = {}
    for name in sorted(set(names), key=lambda n: (order.get(n, len(order)), n)):
        spec, fields = METRICS.get(name), recorded.get(name)
        if isinstance(fields, Mapping):
            text = convention_text(name, fields)
        elif spec is not None:
            fields, text = spec.manifest_fields(), spec.conventions()
        else:
            fields, text = {}, str(fields or "")
        decimals = spec.decimals if spec is not None else int(fields.get("decimals", 3))
        out[name] = MetricInfo(name, str(fields.get("kind", "?")), bool(fields.get("higher_is_better", True)), text, decimals)
    return out


def _method_sort_key(info: MethodInfo, highlight: str | None) -> tuple[int, str, str]:
    """Bicubic first and the highlighted family last, as in the paper's tables."""
    rank = 0 if info.family == "bicubic" else (2 if info.family == highlight else 1)
    return (rank, info.family, info.tag)


def load_report_data(
    store_root: str | Path,
    *,
    methods: str | Iterable[str] | None = None,
    datasets: str | Iterable[str] | None = None,
    metrics: str | Iterable[str] | None = None,
    highlight: str | None = "rsr",
) -> ReportData:
    """Read the store through :mod:`rsr_bench.store` and resolve everything the renderers need.

    ``methods``/``datasets``/``metrics`` are comma lists or globs (``impressionism.*``), matched
    against what the store holds. ``highlight`` is the family framed green in grids (ignored
    when the store has no such family).
    """
    from .. import store
    from ..registry import select

    root = Path(store_root)
    results = store.load_results(root)
    failures = store.load_failures(root)
    manifests = dict(store.load_manifests(root))
    skipped = dict(store.load_skipped(root))

    all_methods = sorted(set(results["method"]) | {k[0] for k in manifests} | {k[0] for k in skipped})
    all_datasets = sorted(set(results["dataset"]) | {k[1] for k in manifests} | {k[1] for k in skipped})
    all_metrics = set(results["metric"])
    for man in manifests.values():
        all_metrics |= set((man.get("metrics") or {}).keys())
    keep_m = select(methods, all_methods, "method") if methods else all_methods
    # By default only datasets something ran on: a set that is not on disk would be a column of
    # dashes (its skip reasons still reach the notes); name it in --datasets to show it anyway.
    ran_on = set(results["dataset"]) | {k[1] for k in manifests}
    keep_d = select(datasets, all_datasets, "dataset") if datasets else [d for d in all_datasets if d in ran_on]
    keep_x = select(metrics, sorted(all_metrics), "metric") if metrics else sorted(all_metrics)

    results = results[results["method"].isin(keep_m) & results["dataset"].isin(keep_d) & results["metric"].isin(keep_x)]
    failures = failures[failures["method"].isin(keep_m) & failures["dataset"].isin(keep_d)]
    manifests = {k: v for k, v in manifests.items() if k[0] in keep_m and k[1] in keep_d}
    skipped = {k: v for k, v in skipped.items() if k[0] in keep_m and k[1] in keep_d}

    metric_info = resolve_metrics(keep_x, manifests)
    fr = [n for n, mi in metric_info.items() if mi.kind == "FR"]
    fr_seen = set(results.loc[results["metric"].isin(fr), "dataset"])
    method_info = resolve_methods(keep_m, manifests)
    families = {mi.family for mi in method_info.values()}
    hl = highlight if highlight in families else None
    method_info = dict(sorted(method_info.items(), key=lambda kv: _method_sort_key(kv[1], hl)))
    ds_info = resolve_datasets(keep_d, manifests, fr_seen)
    # Paired sets first (they carry the full-reference columns), then in datasets.yaml order
    # (curated: NTIRE_syn before AIM_syn, as the paper), then by name.
    reg = {name: i for i, name in enumerate(_registry("datasets"))}
    ds_info = dict(sorted(ds_info.items(), key=lambda kv: (kv[1].has_gt is not True, reg.get(kv[0], len(reg)), kv[0])))

    stats = store.aggregate(results)
    return ReportData(
        store_root=root, results=results.reset_index(drop=True), failures=failures.reset_index(drop=True),
        manifests=manifests, skipped=skipped, stats=stats, methods=method_info, datasets=ds_info,
        metrics=metric_info, highlight_family=hl,
    )
