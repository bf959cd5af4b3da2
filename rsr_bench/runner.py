"""The evaluation runner: method x dataset x image -> SR PNG + per-image metric records.

For every (method, dataset) cell and every image: decode once, predict, clamp, quantise once,
write the PNG atomically, score each requested metric, write the record atomically. A re-run
computes only what is missing (no record, a record with errors, or a requested metric absent);
``force`` recomputes everything. One bad image becomes an error record and the run goes on
(unless ``keep_going=False``). Decoding of the next images overlaps compute.
"""

from __future__ import annotations

import importlib
import platform
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from . import __version__, store
from .datasets import DatasetSpec, Sample, load_datasets, select_datasets
from .errors import ImageError, RsrBenchError
from .image import dequantise, match_hr_to_lr, quantise, read_image, write_png
from .methods.cards import Method, MethodSpec, load_method, load_method_specs, method_availability, select_methods
from .metrics import MetricSpec, score_batch, select_metrics
from .files import store_root

PREFETCH = 3


@dataclass
class CellResult:
    method: str
    dataset: str
    images: int = 0
    computed: int = 0
    reused: int = 0
    failed: int = 0
    seconds: float = 0.0


@dataclass
class RunSummary:
    store: Path
    methods: list[str]
    datasets: list[str]
    metrics: list[str]
    cells: list[CellResult] = field(default_factory=list)
    skipped: dict[tuple[str, str], str] = field(default_factory=dict)
    skipped_datasets: dict[str, str] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RsrBenchError("--device cuda requested but no CUDA device is available")
    return dev


def package_versions() -> dict[str, str]:
    """Installed versions of what can change a number (from package metadata, not imports)."""
    from importlib import metadata

    versions = {"python": platform.python_version(), "rsr_bench": __version__}
    for dist in ("torch", "torchvision", "numpy", "pillow", "lpips", "pyiqa", "scikit-image", "opencv-python-headless"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _applicable(metrics: Sequence[MetricSpec], dataset: DatasetSpec) -> list[MetricSpec]:
    """FR metrics are skipped (not errors) on datasets without ground truth."""
    return [m for m in metrics if m.kind == "NR" or dataset.has_gt]


def _missing_metrics(rec: dict | None, metrics: Sequence[MetricSpec], force: bool) -> list[MetricSpec]:
    if force or rec is None or rec.get("errors"):
        return list(metrics)
    done = set(rec.get("metrics", {})) | set(rec.get("not_computable", {}))
    return [m for m in metrics if m.name not in done]


class _Decoder:
    """Decodes LR/HR of upcoming samples in a background thread while the model runs."""

    def __init__(self, samples: Sequence[Sample], dataset: DatasetSpec) -> None:
        self.samples = samples
        self.dataset = dataset
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")
        self.futures: dict[int, Future] = {}

    def _decode(self, sample: Sample) -> tuple[torch.Tensor | None, torch.Tensor | None, list[dict]]:
        errors: list[dict] = []
        lr = hr = None
        try:
            lr = read_image(sample.lr_path)
        except ImageError as exc:
            errors.append({"stage": "decode-lr", "message": str(exc)})
        if self.dataset.has_gt:
            try:
                if sample.hr_path is None or not sample.hr_path.is_file():
                    raise ImageError(f"{sample.hr_path}: no ground-truth file for image {sample.id!r}")
                hr = read_image(sample.hr_path)
                if lr is not None:
                    hr = match_hr_to_lr(hr, tuple(lr.shape[-2:]), self.dataset.scale, sample.hr_path)
            except ImageError as exc:
                errors.append({"stage": "decode-hr", "message": str(exc)})
                hr = None
        return lr, hr, errors

    def get(self, index: int, wanted: Iterable[int]) -> tuple[torch.Tensor | None, torch.Tensor | None, list[dict]]:
        for j in wanted:
            if j not in self.futures:
                self.futures[j] = self.pool.submit(self._decode, self.samples[j])
        fut = self.futures.pop(index, None) or self.pool.submit(self._decode, self.samples[index])
        return fut.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _dataset_version(dataset: DatasetSpec) -> str:
    """The declared version, or the one recorded when `rsr-bench fetch` built the set."""
    from .fetch.datasets import fetched_version

    return fetched_version(dataset) or dataset.version


def _manifest(method: Method, dataset: DatasetSpec, metrics: Sequence[MetricSpec], device: torch.device) -> dict:
    spec = method.spec
    return {
        "method": {
            "name": spec.name, "family": spec.family, "tag": spec.tag, "trained_on": list(spec.trained_on),
            "scale": spec.scale, "fingerprint": method.fingerprint, "provenance": dict(method.provenance),
            "card": str(spec.card_path) if spec.card_path else None, "paper": spec.paper, "licence": spec.licence,
        },
        "dataset": {
            "name": dataset.name, "version": _dataset_version(dataset), "kind": dataset.kind, "has_gt": dataset.has_gt,
            "domains": list(dataset.domains), "scale": dataset.scale, "listing": dataset.listing_fingerprint(),
            "description": dataset.description,
        },
        "metrics": {m.name: m.manifest_fields() for m in metrics},
        "versions": package_versions(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
    }


def _predict(method: Method, dataset: DatasetSpec, sample: Sample, lr: torch.Tensor, device: torch.device) -> torch.Tensor:
    batch = lr[None].to(device)
    with torch.inference_mode():
        if hasattr(method, "predict_for"):
            sr = method.predict_for(dataset.name, sample.id, batch)
        else:
            sr = method.predict(batch)
    want = (batch.shape[-2] * dataset.scale, batch.shape[-1] * dataset.scale)
    if sr.ndim != 4 or sr.shape[0] != 1 or sr.shape[1] != 3 or tuple(sr.shape[-2:]) != want:
        raise RsrBenchError(f"{method.spec.name} returned shape {tuple(sr.shape)}, expected (1, 3, {want[0]}, {want[1]})")
    if not torch.isfinite(sr).all():
        raise RsrBenchError(f"{method.spec.name} produced non-finite values")
    return sr.float().clamp(0, 1)


def _precision(provenance: Mapping[str, Any]) -> str:
    engine = provenance.get("engine") or {}
    return str(engine.get("precision", "fp32")) if isinstance(engine, Mapping) else "fp32"


def run_cell(
    method: Method, dataset: DatasetSpec, metrics: Sequence[MetricSpec], *, root: Path, device: torch.device,
    limit: int | None = None, force: bool = False, keep_going: bool = True, progress: bool = True,
) -> tuple[CellResult, list[dict[str, str]]]:
    """Evaluate one (method, dataset) cell into the store; returns its result and failures."""
    name, dname = method.spec.name, dataset.name
    dataset = dataset.resolved()
    samples = dataset.samples()[:limit] if limit else dataset.samples()
    metrics = _applicable(metrics, dataset)
    result = CellResult(name, dname, images=len(samples))
    failures: list[dict[str, str]] = []
    manifest = _manifest(method, dataset, metrics, device)
    old = store.read_manifest(root, name, dname)
    if old and not force:
        if old["method"].get("fingerprint") != method.fingerprint:
            raise RsrBenchError(
                f"stored results for {name} on {dname} come from other weights ({old['method'].get('fingerprint')}, "
                f"now {method.fingerprint}); use --force to recompute or another --out"
            )
        was, now = _precision(old["method"].get("provenance") or {}), _precision(method.provenance)
        if was != now:
            raise RsrBenchError(
                f"stored results for {name} on {dname} were computed in {was}, this run uses {now}; "
                "use --force to recompute or another --out"
            )
    manifest["started"] = _now()
    store.write_manifest(root, name, dname, {**(old or {}), **manifest, "finished": None})
    t_cell = time.perf_counter()
    timings = {"predict_s": 0.0, "metrics_s": 0.0}
    todo = [(i, s) for i, s in enumerate(samples)]
    records = {s.id: store.read_record(root, name, dname, s.id) for _, s in todo}
    todo = [(i, s) for i, s in todo if records[s.id] is None or _missing_metrics(records[s.id], metrics, force)]
    result.reused = len(samples) - len(todo)
    decoder = _Decoder(samples, dataset)
    bar = tqdm(total=len(samples), initial=result.reused, desc=f"{name} | {dname}", unit="img",
               disable=not progress, leave=True, dynamic_ncols=True)
    try:
        for k, (i, sample) in enumerate(todo):
            lr, hr, errors = decoder.get(i, [j for j, _ in todo[k + 1 : k + 1 + PREFETCH]])
            prev = records[sample.id]
            fresh = force or prev is None or bool(prev.get("errors"))
            rec = {
                "image": sample.id, "lr_path": str(sample.lr_path),
                "hr_path": str(sample.hr_path) if sample.hr_path else None,
                "metrics": {} if fresh else dict(prev.get("metrics", {})),
                "not_computable": {} if fresh else dict(prev.get("not_computable", {})),
                "errors": errors,
            }
            needed = _missing_metrics(None if fresh else prev, metrics, force)
            if not errors:
                try:
                    t0 = time.perf_counter()
                    sr_float = _predict(method, dataset, sample, lr, device)
                    sr_u8 = quantise(sr_float[0])
                    write_png(store.sr_path(root, name, dname, sample.id), sr_u8)
                    rec["time_predict_s"] = round(time.perf_counter() - t0, 4)
                    timings["predict_s"] += rec["time_predict_s"]
                    t1 = time.perf_counter()
                    ref = None if hr is None else hr[None]
                    score_batch(needed, sr_float, ref, quantised=dequantise(sr_u8)[None], device=device)[0].update_record(rec)
                    timings["metrics_s"] += time.perf_counter() - t1
                except Exception as exc:  # noqa: BLE001 - one bad image never loses the others
                    rec["errors"].append({"stage": "predict", "message": f"{type(exc).__name__}: {exc}"})
            store.write_record(root, name, dname, rec)
            if rec["errors"]:
                result.failed += 1
                failures += [{"method": name, "dataset": dname, "image": sample.id, **e} for e in rec["errors"]]
                if not keep_going:
                    raise RsrBenchError(f"{name} on {dname}, image {sample.id}: {rec['errors'][0]['message']} (--fail-fast)")
            else:
                result.computed += 1
            bar.update(1)
    finally:
        bar.close()
        decoder.close()
    result.seconds = time.perf_counter() - t_cell
    manifest.update(finished=_now(), timings={**{k: round(v, 3) for k, v in timings.items()},
                                             "images_computed": result.computed, "images_reused": result.reused})
    store.write_manifest(root, name, dname, manifest)
    return result, failures


def _prepare_method(spec: MethodSpec, device: torch.device, overrides: Mapping[str, Any]) -> Method:
    """Fetch (mirror weights on first use) and load; raises with the reason on failure."""
    adapter_module = importlib.import_module(spec.adapter.partition(":")[0])
    accepted = getattr(adapter_module, "RUN_OPTIONS", None)  # None: the adapter takes them all
    if accepted is not None:  # e.g. --precision means nothing to bicubic: not an error there
        overrides = {k: v for k, v in overrides.items() if k in accepted}
    if overrides.get("checkpoint"):  # a local file replaces the card's weight sources
        return load_method(spec, device=device, **overrides)
    reason = method_availability(spec)
    if reason and hasattr(adapter_module, "fetch"):
        adapter_module.fetch(spec)
        reason = method_availability(spec)
    if reason:
        raise RsrBenchError(reason)
    return load_method(spec, device=device, **overrides)


def run(
    *,
    methods: str | Sequence[str] = "all",
    datasets: str | Sequence[str] = "all",
    metrics: str | Sequence[str] = "default",
    out: str | Path | None = None,
    limit: int | None = None,
    device: str = "auto",
    extra_cards: Sequence[str | Path] = (),
    datasets_files: Sequence[str | Path] = (),
    data_root: str | Path | None = None,
    keep_going: bool = True,
    force: bool = False,
    progress: bool = True,
    method_options: Mapping[str, Any] | None = None,
    log=print,
) -> RunSummary:
    """Evaluate ``methods`` x ``datasets`` with ``metrics`` into the store at ``out``."""
    root = store_root(out)
    root.mkdir(parents=True, exist_ok=True)
    mspecs = select_methods(methods, load_method_specs(extra_cards))
    all_datasets = load_datasets(datasets_files, data_root)
    dspecs = select_datasets(datasets, all_datasets)
    mets = select_metrics(metrics)
    dev = resolve_device(device)
    summary = RunSummary(root, [m.name for m in mspecs], [], [m.name for m in mets])
    for d in dspecs:
        reason = d.missing_reason()
        if reason:
            summary.skipped_datasets[d.name] = reason
            log(f"skipping dataset {d.name}: {reason}")
        else:
            summary.datasets.append(d.name)
    ran: set[tuple[str, str]] = set()
    for mspec in mspecs:
        cells = [d for d in dspecs if d.name in summary.datasets]
        if not cells:
            break
        try:
            method = _prepare_method(mspec, dev, method_options or {})
        except RsrBenchError as exc:
            log(f"skipping method {mspec.name}: {exc}")
            summary.skipped.update({(mspec.name, d.name): str(exc) for d in cells})
            continue
        for d in cells:
            if d.scale != mspec.scale:
                summary.skipped[(mspec.name, d.name)] = f"scale mismatch: method x{mspec.scale}, dataset x{d.scale}"
                continue
            try:
                cell, failures = run_cell(method, d, mets, root=root, device=dev, limit=limit, force=force,
                                          keep_going=keep_going, progress=progress)
            except RsrBenchError as exc:
                if not keep_going:
                    store.update_skipped(root, summary.skipped, ran)
                    raise
                log(f"skipping {mspec.name} on {d.name}: {exc}")
                summary.skipped[(mspec.name, d.name)] = str(exc)
                continue
            ran.add((mspec.name, d.name))
            summary.cells.append(cell)
            summary.failures += failures
        del method
    for name, reason in summary.skipped_datasets.items():
        summary.skipped.update({(m.name, name): f"dataset missing: {reason}" for m in mspecs})
    store.update_skipped(root, summary.skipped, ran)
    return summary
