"""The evaluation runner: method x dataset x image -> SR PNG + per-image metric records.

For every (method, dataset) cell and every image: decode once, predict, clamp, quantise once,
write the PNG atomically, score each requested metric, write the record atomically. A re-run
computes only what is missing (no record, a damaged record, a record with errors, a requested
metric absent, or an SR PNG that no longer matches the sha256 in its record); ``force``
recomputes everything. One bad image becomes an error record and the run goes on (unless
``keep_going=False``); a store that cannot be written stops the run (``store.StoreError``).
Decoding of the next images overlaps compute.

Scale: ``shard`` (``--shard K/N``) or torchrun's environment give this process part K of N of
the work, partitioned deterministically by image size (:func:`partition`); each part writes its
own images and manifest fragment. Separate runs on one store claim each image with an fcntl
lock (``store.CellLock``) so that none computes an image another is computing.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import json
import os
import platform
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image
from tqdm.auto import tqdm

from . import __version__, store
from .datasets import DatasetSpec, Sample, load_datasets, select_datasets
from .errors import ConfigError, ImageError, RsrBenchError
from .image import dequantise, encode_png, match_hr_to_lr, quantise, read_image
from .fetch import make_available
from .methods.cards import (PRECISION_NAMES, Method, MethodSpec, adapter_for, identify_method, load_method,
                            load_method_specs, method_options, select_methods)
from .metrics import MetricSpec, create_metric, score_batch, select_metrics
from .files import store_root

if TYPE_CHECKING:  # torch and pandas are imported where used: a re-run of a finished grid needs neither
    import pandas as pd
    import torch

PREFETCH = 3
#: Seconds between tries to claim an image another run on the same store is computing.
LOCK_POLL_S = 0.2


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
    named: list[str] = field(default_factory=list)  # methods asked for by name (see _named_explicitly)
    refused: dict[str, str] = field(default_factory=dict)  # named methods that could not run, with the reason
    rank: int = 0  # this process's part of the work (torchrun rank or --shard K)
    world: int = 1  # how many parts

    @property
    def exit_code(self) -> int:
        """2: a method the user named explicitly could not run; 1: some images failed; else 0."""
        return 2 if self.refused else 1 if self.failures else 0

    @property
    def ran(self) -> set[tuple[str, str]]:
        return {(c.method, c.dataset) for c in self.cells}

    def table(self) -> pd.DataFrame:
        """``[method, dataset, metric, mean, std, n]``: the store's means for the cells this run covered."""
        df = store.load_results(self.store)
        df = df[df.method.isin(self.methods) & df.dataset.isin(self.datasets) & df.metric.isin(self.metrics)]
        return store.aggregate(df)


@dataclass(frozen=True)
class RunOptions:
    """Everything one evaluation run is asked to do, validated once, here.

    The CLI, ``rsr-bench check``, training-time validation and notebooks all build one of these,
    so an option means the same thing wherever it is set. ``methods``/``datasets``/``metrics``
    take comma-separated names or globs, or lists. ``store`` is the results store (None:
    ``RSR_BENCH_HOME`` or ./rsr-bench-results). ``checkpoint``, ``tile`` and ``precision`` are
    engine options: an adapter receives only those it declares.
    """

    methods: str | Sequence[str] = "all"
    datasets: str | Sequence[str] = "all"
    metrics: str | Sequence[str] = "default"
    store: str | Path | None = None
    limit: int | None = None  # only the first N images of each dataset
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    method_cards: Sequence[str | Path] = ()
    datasets_files: Sequence[str | Path] = ()
    data_root: str | Path | None = None
    keep_going: bool = True  # record a failed image and go on; False stops at the first
    force: bool = False  # recompute results already in the store
    progress: bool = True
    checkpoint: str | Path | None = None
    tile: int | None = None
    precision: str | None = None
    compile: bool = False  # torch.compile the network (adapters that declare it); eager with a warning if it fails
    batch: int = 1  # predict up to this many equal-size images in one forward
    shard: str | tuple[int, int] | None = None  # "K/N": compute part K (from 0) of N; torchrun sets it per rank

    def __post_init__(self) -> None:
        if self.shard is not None:
            object.__setattr__(self, "shard", parse_shard(self.shard if isinstance(self.shard, str) else
                                                          "/".join(map(str, self.shard))))
        for name in ("method_cards", "datasets_files"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, (str, Path)) else tuple(value))
        if self.limit is not None and (isinstance(self.limit, bool) or int(self.limit) < 1):
            raise ConfigError(f"limit must be a positive number of images, got {self.limit!r}")
        if isinstance(self.batch, bool) or int(self.batch) < 1:
            raise ConfigError(f"batch must be a positive number of images, got {self.batch!r}")
        if self.tile is not None and int(self.tile) < 0:
            raise ConfigError(f"tile must be >= 0 LR pixels (0 = whole image), got {self.tile!r}")
        if self.precision is not None and self.precision not in PRECISION_NAMES:
            raise ConfigError(f"precision must be one of {', '.join(PRECISION_NAMES)}, got {self.precision!r}")
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", str(self.device)):
            import torch

            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}") from None

    @property
    def rank_world(self) -> tuple[int, int]:
        """(this process's part, number of parts): (0, 1) for a single process."""
        return self.shard or (0, 1)  # type: ignore[return-value]

    def engine_options(self) -> dict[str, Any]:
        """The engine options that were set (each adapter receives only those it declares)."""
        options = {k: getattr(self, k) for k in ("checkpoint", "tile", "precision") if getattr(self, k) is not None}
        return {**options, "compile": True} if self.compile else options


#: Per-image cost besides its pixels (decode, PNG encode, record), in LR pixels: it keeps a rank
#: from receiving a long tail of tiny images that cost more than their area says.
IMAGE_OVERHEAD_PX = 16_384


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)``: this process computes part K (0-based) of N (e.g. a Slurm array task)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m:
        raise ConfigError(f"--shard must be K/N (part K of N, counted from 0, e.g. 3/16), got {text!r}")
    k, n = int(m[1]), int(m[2])
    if n < 1 or k >= n:
        raise ConfigError(f"--shard {text}: K must be 0..N-1 and N >= 1 (e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
    return k, n


def partition(costs: Sequence[float], world: int, salt: str = "") -> list[int]:
    """The rank (0..world-1) of each item, balancing the summed costs: longest first, each to the
    least-loaded rank (LPT; the slowest rank is within a small fraction of the fastest once items
    outnumber ranks). Deterministic: every rank computes the same answer from the same costs.
    Ties go to ranks in an order rotated by ``salt`` (a cell's name), so the leftovers of many
    small cells do not all land on rank 0."""
    start = int(hashlib.sha256(salt.encode()).hexdigest()[:8], 16) % world if world > 1 else 0
    heap = sorted((0.0, (r - start) % world, r) for r in range(world))
    owner = [0] * len(costs)
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        load, order, rank = heapq.heappop(heap)
        owner[i] = rank
        heapq.heappush(heap, (load + costs[i], order, rank))
    return owner


def _lr_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header, nothing decoded; (0, 0) when unreadable (the
    image only becomes an error record when it is decoded)."""
    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - any unreadable file: its error is found when it is decoded
        return 0, 0


def _image_cost(path: Path) -> float:
    """An image's share of the work: its LR pixels plus a fixed part (see IMAGE_OVERHEAD_PX)."""
    w, h = _lr_size(path)
    return float(w * h + IMAGE_OVERHEAD_PX)


def shard_samples(samples: Sequence[Sample], rank: int, world: int, salt: str) -> list[Sample]:
    """This rank's samples of one cell (all of them for a single process)."""
    if world == 1:
        return list(samples)
    owner = partition([_image_cost(s.lr_path) for s in samples], world, salt)
    return [s for s, r in zip(samples, owner) if r == rank]


def _join_torchrun(options: RunOptions) -> tuple[RunOptions, bool]:
    """Under torchrun (``WORLD_SIZE`` > 1 in the environment) join its process group and take this
    rank's part of the work and the GPU of its ``LOCAL_RANK`` (CPU where there is none). The group
    is gloo on every device: it carries only the final barrier, never tensors. Returns the options
    for this rank and whether a group was joined."""
    world = int(os.environ.get("WORLD_SIZE") or 1)
    if world <= 1:
        return options, False
    if options.shard is not None:
        raise ConfigError("--shard cannot be combined with torchrun: its ranks already split the work")
    rank, local = int(os.environ.get("RANK") or 0), int(os.environ.get("LOCAL_RANK") or 0)
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=timedelta(hours=48))
    device = str(options.device)
    if device in ("auto", "cuda") and torch.cuda.is_available():
        device = f"cuda:{local % torch.cuda.device_count()}"
        torch.cuda.set_device(device)
    return replace(options, shard=(rank, world), device=device), True


def _leave_torchrun() -> None:
    """Wait for every rank to finish (rank 0 then reads the complete store), then leave the group."""
    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    import torch

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
    for dist in ("torch", "numpy", "scipy", "pillow", "scikit-image", "opencv-python-headless"):
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

    def drop(self, index: int) -> None:
        """Forget a prefetched image that turned out not to be needed."""
        self.futures.pop(index, None)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _manifest(method: Method, dataset: DatasetSpec, metrics: Sequence[MetricSpec], device: torch.device) -> dict:
    import torch

    spec = method.spec
    return {
        "method": {
            "name": spec.name, "family": spec.family, "tag": spec.tag, "trained_on": list(spec.trained_on),
            "scale": spec.scale, "fingerprint": method.fingerprint, "provenance": dict(method.provenance),
            "card": str(spec.card_path) if spec.card_path else None, "paper": spec.paper, "licence": spec.licence,
        },
        "dataset": {
            "name": dataset.name, "version": dataset.version, "kind": dataset.kind, "has_gt": dataset.has_gt,
            "domains": list(dataset.domains), "scale": dataset.scale, "listing": dataset.listing_fingerprint(),
            "description": dataset.description,
        },
        "metrics": {m.name: m.manifest_fields() for m in metrics},
        "versions": package_versions(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
    }


def _predict(method: Method, dataset: DatasetSpec, samples: Sequence[Sample], lrs: Sequence[torch.Tensor],
             device: torch.device) -> torch.Tensor:
    """One forward over equal-size LR images -> their SR images, clamped to [0, 1]."""
    import torch

    batch = torch.stack(list(lrs)).to(device)
    with torch.inference_mode():
        sr = method.predict(batch, [(dataset.name, s.id) for s in samples])
    n, want = len(samples), (batch.shape[-2] * dataset.scale, batch.shape[-1] * dataset.scale)
    if sr.ndim != 4 or sr.shape[0] != n or sr.shape[1] != 3 or tuple(sr.shape[-2:]) != want:
        raise RsrBenchError(f"{method.spec.name} returned shape {tuple(sr.shape)}, expected ({n}, 3, {want[0]}, {want[1]})")
    if not torch.isfinite(sr).all():
        raise RsrBenchError(f"{method.spec.name} produced non-finite values")
    return sr.float().clamp(0, 1)


@dataclass
class _Job:
    """One image on its way through a cell: its record so far and what it still needs."""

    index: int
    sample: Sample
    rec: dict
    needed: list[MetricSpec]
    lr: Any = None
    hr: Any = None

    @property
    def key(self) -> tuple:
        """Images with the same key can share one forward and one scoring call."""
        return tuple(self.lr.shape), tuple(m.name for m in self.needed)


def _precision(provenance: Mapping[str, Any]) -> str:
    engine = provenance.get("engine") or {}
    return str(engine.get("precision", "fp32")) if isinstance(engine, Mapping) else "fp32"


def _holds_results(root: Path, method: str, dataset: str) -> bool:
    """Whether any stored image of the cell has a metric value (records holding only errors do not count)."""
    return any(rec.get("metrics") for _, _, rec in store.iter_records_of(root, method, dataset))


def _refuse_mixing(old: Mapping[str, Any] | None, method: Method, dataset: str, force: bool,
                   holds_results: Callable[[], bool]) -> None:
    """A cell holds the results of one set of weights at one precision: never mix (unless forced).
    A cell whose every image failed holds nothing to mix with, so it is simply recomputed."""
    if not old or force or not holds_results():
        return
    name, was_fp = method.spec.name, old["method"].get("fingerprint")
    if was_fp != method.fingerprint:
        raise RsrBenchError(f"stored results for {name} on {dataset} come from other weights ({was_fp}, "
                            f"now {method.fingerprint}); use --force to recompute or another --store")
    was, now = _precision(old["method"].get("provenance") or {}), _precision(method.provenance)
    if was != now:
        raise RsrBenchError(f"stored results for {name} on {dataset} were computed in {was}, this run uses {now}; "
                            "use --force to recompute or another --store")


class _CellRun:
    """One (method, dataset) cell being evaluated into the store: the state its steps share."""

    def __init__(self, name: str, dataset: DatasetSpec, metrics: Sequence[MetricSpec], root: Path,
                 options: RunOptions, method: Method | None = None, device: torch.device | None = None) -> None:
        self.method, self.root, self.device, self.options = method, root, device, options
        self.name, self.dname = name, dataset.name
        self.dataset = dataset.resolved()
        self.metrics = _applicable(metrics, self.dataset)
        samples = self.dataset.samples()
        self.rank, self.world = options.rank_world
        self.samples = shard_samples(samples[: options.limit] if options.limit else samples, self.rank, self.world,
                                     f"{self.name}|{self.dname}")
        self.result = CellResult(self.name, self.dname, images=len(self.samples))
        self.failures: list[dict[str, str]] = []
        self.timings = {"predict_s": 0.0, "metrics_s": 0.0, "png_s": 0.0}  # png_s: on the writer thread
        self.writer: ThreadPoolExecutor | None = None  # PNG encoding, while :meth:`work` runs

    def stored(self, image: str) -> dict | None:
        """The image's record as a resume may use it: None when missing, damaged, or when its SR
        PNG is missing or differs from the hash in the record (the image is recomputed)."""
        rec = store.read_record(self.root, self.name, self.dname, image)
        if rec is not None and not rec.get("errors") and not store.sr_intact(self.root, self.name, self.dname, rec):
            return None
        return rec

    def needs_work(self, rec: dict | None) -> bool:
        return rec is None or bool(_missing_metrics(rec, self.metrics, self.options.force))

    def pending(self) -> list[tuple[int, Sample]]:
        """The (index, sample) pairs that still need work."""
        return [(i, s) for i, s in enumerate(self.samples) if self.needs_work(self.stored(s.id))]

    def start(self, index: int, sample: Sample, decoded: tuple, prev: dict | None) -> _Job:
        """The image's new record (kept values of a resumed one) and the metrics it still needs;
        a decode or naming problem is already in ``rec["errors"]`` (nothing more is done)."""
        lr, hr, errors = decoded
        force = self.options.force
        fresh = force or prev is None or bool(prev.get("errors"))
        rec = {
            "image": sample.id, "lr_path": str(sample.lr_path),
            "hr_path": str(sample.hr_path) if sample.hr_path else None,
            "metrics": {} if fresh else dict(prev.get("metrics", {})),
            "not_computable": {} if fresh else dict(prev.get("not_computable", {})),
            "errors": errors,
        }
        problem = store.image_problem(sample.id)
        if problem:  # its PNG could not be named; the record goes under a hashed name
            errors.insert(0, {"stage": "image-id", "message": f"{sample.lr_path}: image id {sample.id!r} cannot name "
                                                              f"a file in the store: {problem}; rename the file"})
        return _Job(index, sample, rec, _missing_metrics(None if fresh else prev, self.metrics, force), lr, hr)

    def _write_png(self, job: _Job, u8: torch.Tensor) -> float:
        """Encode and store one SR PNG (on the writer thread); returns the seconds it took."""
        t0 = time.perf_counter()
        job.rec["sr_sha256"] = store.write_sr(self.root, self.name, self.dname, job.sample.id, encode_png(u8))
        return time.perf_counter() - t0

    def compute(self, jobs: Sequence[_Job]) -> None:
        """Predict equal-size images in one forward, score them together while their PNGs are
        encoded and written on the writer thread. A failure becomes an error in the records,
        never an exception (except a store that cannot be written); a failing batch is retried
        image by image, so one bad image never costs its batch-mates their results."""
        import torch

        writes: list[Future] = []
        try:
            t0 = time.perf_counter()
            sr_float = _predict(self.method, self.dataset, [j.sample for j in jobs], [j.lr for j in jobs], self.device)
            sr_u8 = [quantise(x) for x in sr_float]
            seconds = time.perf_counter() - t0
            self.timings["predict_s"] += seconds
            for job, u8 in zip(jobs, sr_u8):
                job.rec["time_predict_s"] = round(seconds / len(jobs), 4)
                writes.append(self.writer.submit(self._write_png, job, u8))
            t1 = time.perf_counter()
            ref = None if jobs[0].hr is None else torch.stack([j.hr for j in jobs])
            quantised = torch.stack([dequantise(u8) for u8 in sr_u8])
            for job, scored in zip(jobs, score_batch(jobs[0].needed, sr_float, ref, quantised=quantised, device=self.device)):
                scored.update_record(job.rec)
            self.timings["metrics_s"] += time.perf_counter() - t1
            self.timings["png_s"] += sum(f.result() for f in writes)  # a StoreError of the writer surfaces here
        except store.StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad image never loses the others
            wait(writes)
            if len(jobs) > 1:
                for job in jobs:
                    self.compute([job])
                return
            jobs[0].rec["errors"].append({"stage": "predict", "message": f"{type(exc).__name__}: {exc}"})

    def save(self, rec: dict) -> None:
        """Write one image's record and count it; with ``keep_going`` off a failure stops the run."""
        store.write_record(self.root, self.name, self.dname, rec)
        if not rec["errors"]:
            self.result.computed += 1
            return
        self.result.failed += 1
        self.failures += [{"method": self.name, "dataset": self.dname, "image": rec["image"], **e} for e in rec["errors"]]
        if not self.options.keep_going:
            raise RsrBenchError(f"{self.name} on {self.dname}, image {rec['image']}: {rec['errors'][0]['message']} "
                                "(--fail-fast)")

    def claimed(self, lock: store.CellLock, items: list[tuple[int, Sample]], decoder: _Decoder,
                upcoming: list[int]) -> None:
        """Evaluate images this process holds the claims of, equal sizes in one forward; another
        run may have finished one between the listing and the claim, so records are read again."""
        try:
            jobs = []
            for i, sample in items:
                rec = self.stored(sample.id)
                if not self.options.force and not self.needs_work(rec):
                    decoder.drop(i)
                    self.result.reused += 1
                    continue
                jobs.append(self.start(i, sample, decoder.get(i, upcoming), rec))
            groups: dict[tuple, list[_Job]] = {}
            for job in jobs:
                if not job.rec["errors"]:
                    groups.setdefault(job.key, []).append(job)
            for group in groups.values():
                self.compute(group)
            for job in jobs:
                self.save(job.rec)
        finally:
            lock.release([sample.id for _, sample in items])

    def work(self, todo: list[tuple[int, Sample]], bar: Any, log: Callable[[str], None]) -> None:
        """Evaluate ``todo`` ``batch`` images at a time (sorted by size when batching, so equal
        sizes meet); an image another run on this store is computing is left for the end, then
        waited for (a dead run's claim vanishes with it, so the wait always ends)."""
        lock, decoder = store.CellLock(self.root, self.name, self.dname), _Decoder(self.samples, self.dataset)
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="png")
        size = self.options.batch
        if size > 1:
            todo = sorted(todo, key=lambda item: _lr_size(item[1].lr_path))
        waiting: list[tuple[int, Sample]] = []
        try:
            for k in range(0, len(todo), size):
                mine = [(i, s) for i, s in todo[k : k + size] if lock.claim([s.id])]
                waiting += [(i, s) for i, s in todo[k : k + size] if (i, s) not in mine]
                if mine:
                    self.claimed(lock, mine, decoder, [j for j, _ in todo[k + size : k + size + max(PREFETCH, size)]])
                bar.update(len(mine))
            if waiting:
                log(f"{self.name} on {self.dname}: waiting for another run computing {len(waiting)} image(s)")
            for i, sample in waiting:
                while not lock.claim([sample.id]):
                    time.sleep(LOCK_POLL_S)
                self.claimed(lock, [(i, sample)], decoder, [])
                bar.update(1)
        finally:
            decoder.close()
            self.writer.shutdown(wait=True)
            lock.close()


def _build_metrics(metrics: Sequence[MetricSpec], device: torch.device) -> None:
    """Build the metrics before a cell's first image, as a hand-written script does before its
    loop: per-image metric times are then steady state and the build counts as fixed cost. A
    metric that cannot be built is left to fail per image, where the failure is recorded."""
    for spec in metrics:
        try:
            create_metric(spec.name, device)
        except Exception:  # noqa: BLE001 - recorded per image by score_batch
            continue


def run_cell(method: Method, dataset: DatasetSpec, metrics: Sequence[MetricSpec], *, root: Path,
             device: torch.device, options: RunOptions,
             log: Callable[[str], None] = print) -> tuple[CellResult, list[dict[str, str]]]:
    """Evaluate one (method, dataset) cell into the store; returns its result and failures."""
    cell = _CellRun(method.spec.name, dataset, metrics, root, options, method, device)
    manifest = _manifest(method, cell.dataset, cell.metrics, device)
    manifest["request"] = _request(method.spec, options)
    old = store.read_manifest(root, cell.name, cell.dname)
    _refuse_mixing(old, method, cell.dname, options.force, lambda: _holds_results(root, cell.name, cell.dname))
    manifest.update(started=_now(), host=platform.node())
    where = {"rank": cell.rank, "world": cell.world}
    store.write_manifest(root, cell.name, cell.dname, {**manifest, "finished": None}, **where)
    t_cell = time.perf_counter()
    todo = cell.pending()
    cell.result.reused = len(cell.samples) - len(todo)
    if todo:
        _build_metrics(cell.metrics, device)
    bar = tqdm(total=len(cell.samples), initial=cell.result.reused, desc=f"{cell.name} | {cell.dname}", unit="img",
               disable=not options.progress, leave=True, dynamic_ncols=True)
    try:
        cell.work(todo, bar, log)
    finally:
        bar.close()
    cell.result.seconds = time.perf_counter() - t_cell
    manifest.update(finished=_now(), timings={**{k: round(v, 3) for k, v in cell.timings.items()},
                                             "wall_s": round(cell.result.seconds, 3),
                                             "images_computed": cell.result.computed,
                                             "images_reused": cell.result.reused})
    store.write_manifest(root, cell.name, cell.dname, manifest, **where)
    return cell.result, cell.failures


def _request(spec: MethodSpec, options: RunOptions) -> dict[str, Any]:
    """What besides the weights decides how this run would compute a cell: the adapter's options
    (card and run overrides), the requested device and the host (``auto`` precision and device
    resolve the same way on the same machine). Kept in the manifest for :func:`_finished_cells`."""
    request = {"options": method_options(spec, options.engine_options()), "device": str(options.device),
               "host": platform.node()}
    return json.loads(json.dumps(request, sort_keys=True, default=str))


def _finished_cells(spec: MethodSpec, datasets: Sequence[DatasetSpec], metrics: Sequence[MetricSpec], root: Path,
                    options: RunOptions) -> list[CellResult] | None:
    """The method's cells, every image reused, when all of them are complete in the store for the
    same weights (the adapter's ``identify``, no model built) and the same request: a re-run of a
    finished grid then loads no model and imports no torch (issue 15). ``None`` when anything is
    missing or differs: the method is loaded and the usual path decides (and refuses to mix)."""
    cells = [d for d in datasets if d.scale == spec.scale]
    if options.force or not cells:
        return None
    try:
        fingerprint, request = identify_method(spec, options.engine_options()), _request(spec, options)
    except RsrBenchError:  # e.g. a card naming an adapter that is not installed: loading says why
        return None
    if fingerprint is None:
        return None
    out = []
    for d in cells:
        old = store.read_manifest(root, spec.name, d.name)
        if not old or not old.get("finished") or old.get("request") != request \
                or old["method"].get("fingerprint") != fingerprint:
            return None
        cell = _CellRun(spec.name, d, metrics, root, options)
        if cell.pending():
            return None
        cell.result.reused = len(cell.samples)
        out.append(cell.result)
    return out


def _prepare_method(spec: MethodSpec, device: Callable[[], torch.device], overrides: Mapping[str, Any]) -> Method:
    """Fetch the weights on first use, then load with the run options the adapter declares.

    A ``--checkpoint`` the adapter takes replaces the card's weight sources, so nothing is fetched.
    The device (and torch) is resolved only once there is a method to load.
    """
    if not (overrides.get("checkpoint") and "checkpoint" in adapter_for(spec).run_options):
        make_available(spec)
    return load_method(spec, device=device(), run_options=overrides)


def _ready_datasets(datasets: Sequence[DatasetSpec], summary: RunSummary, log: Callable[[str], None]) -> list[DatasetSpec]:
    """The datasets on disk; the others are recorded (and logged) with the reason."""
    ready = []
    for d in datasets:
        reason = d.missing_reason()
        if reason:
            summary.skipped_datasets[d.name] = reason
            log(f"skipping dataset {d.name}: {reason}")
        else:
            summary.datasets.append(d.name)
            ready.append(d)
    return ready


def _named_explicitly(patterns: str | Sequence[str], selected: Sequence[MethodSpec], checkpoint: bool) -> list[str]:
    """The selected methods the user asked for by name (not through ``all`` or a glob), and with
    a ``--checkpoint`` every one that takes it: such a method that cannot run makes the run exit
    2, while ``--methods all`` skipping what is unavailable here is normal."""
    names = [p.strip() for p in patterns.split(",")] if isinstance(patterns, str) else list(patterns)
    plain = [n for n in names if n and n != "all" and not any(c in n for c in "*?[")]
    return [m.name for m in selected if any(m.name == n or m.name.startswith(n + ".") for n in plain)
            or (checkpoint and "checkpoint" in adapter_for(m).run_options)]


def _run_method(spec: MethodSpec, datasets: Sequence[DatasetSpec], metrics: Sequence[MetricSpec],
                device: Callable[[], torch.device], options: RunOptions, summary: RunSummary,
                log: Callable[[str], None]) -> None:
    """Load one method and evaluate it on every ready dataset of its scale; a cell that cannot
    run is skipped with its reason (with ``keep_going`` off, the reasons so far are saved and the
    error raised). A store that cannot be written stops everything (:class:`store.StoreError`).
    A method whose every cell is already complete is not loaded (:func:`_finished_cells`)."""
    summary.skipped.update({(spec.name, d.name): f"scale mismatch: method x{spec.scale}, dataset x{d.scale}"
                            for d in datasets if d.scale != spec.scale})
    datasets = [d for d in datasets if d.scale == spec.scale]
    finished = _finished_cells(spec, datasets, metrics, summary.store, options)
    if finished is not None:
        summary.cells += finished
        return
    try:
        method = _prepare_method(spec, device, options.engine_options())
    except RsrBenchError as exc:
        log(f"skipping method {spec.name}: {exc}")
        if spec.name in summary.named:
            summary.refused[spec.name] = str(exc)
        summary.skipped.update({(spec.name, d.name): str(exc) for d in datasets})
        return
    for d in datasets:
        try:
            cell, failures = run_cell(method, d, metrics, root=summary.store, device=device(), options=options, log=log)
        except store.StoreError:
            raise
        except RsrBenchError as exc:
            if not options.keep_going:
                store.update_skipped(summary.store, summary.skipped, summary.ran)
                raise
            log(f"skipping {spec.name} on {d.name}: {exc}")
            summary.skipped[(spec.name, d.name)] = str(exc)
            continue
        summary.cells.append(cell)
        summary.failures += failures


def _prefetch_assets(methods: Sequence[MethodSpec], metrics: Sequence[MetricSpec], options: RunOptions) -> None:
    """Fetch every file the run needs (method weights, metric model files) before the first
    progress bar, with a progress line of its own, so that no image's time includes a download
    (issue 15). Cheap when all is cached: nothing is loaded or built here. Failures are left to
    the steps that report them: a method's own step skips it with the reason; scoring records
    a metric's failure per image."""
    from .metrics import fetch_metric_assets

    if not methods:
        return
    overrides = options.engine_options()
    steps = tqdm([*methods, None], desc="fetching weights and metric models", unit="step", leave=False,
                 disable=not options.progress, dynamic_ncols=True)
    for spec in steps:
        if spec is None:
            fetch_metric_assets(metrics)
        elif not (overrides.get("checkpoint") and "checkpoint" in adapter_for(spec).run_options):
            try:
                make_available(spec)
            except RsrBenchError:
                continue
    steps.close()


def run(options: RunOptions, *, log: Callable[[str], None] = print) -> RunSummary:
    """Evaluate ``options.methods`` x ``options.datasets`` with ``options.metrics`` into ``options.store``.

    Resumable: only what the store lacks is computed. Cells that cannot run (dataset not on disk,
    weights unavailable, scale mismatch) are skipped with their reason, in the summary and in the
    store's skipped.json. ``log`` receives one line per skip. Under torchrun this process computes
    its rank's part and returns after every rank has finished (:func:`_join_torchrun`).
    """
    root = store_root(options.store)
    store.check_store(root)
    options, joined = _join_torchrun(options)
    try:
        return _run_all(options, root, log)
    finally:
        if joined:
            _leave_torchrun()


def _run_all(options: RunOptions, root: Path, log: Callable[[str], None]) -> RunSummary:
    """The body of :func:`run` for this process's part of the work."""
    methods = select_methods(options.methods, load_method_specs(options.method_cards))
    datasets = select_datasets(options.datasets, load_datasets(options.datasets_files, options.data_root))
    metrics = select_metrics(options.metrics)
    device = functools.cache(lambda: resolve_device(options.device))  # torch only once a model is loaded
    if str(options.device).startswith("cuda"):
        device()  # a missing GPU is an error before anything runs
    summary = RunSummary(root, [m.name for m in methods], [], [m.name for m in metrics])
    summary.rank, summary.world = options.rank_world
    summary.named = _named_explicitly(options.methods, methods, bool(options.checkpoint))
    ready = _ready_datasets(datasets, summary, log)
    _prefetch_assets(methods if ready else [], metrics, options)
    for spec in methods if ready else ():
        _run_method(spec, ready, metrics, device, options, summary, log)
    for name, reason in summary.skipped_datasets.items():
        summary.skipped.update({(m.name, name): f"dataset missing: {reason}" for m in methods})
    store.update_skipped(root, summary.skipped, summary.ran)
    return summary
