"""The results store on disk: per-image records, SR PNGs, per-cell manifests.

Layout (see docs/architecture.md)::

    <root>/cells/<method>/<dataset>/manifest.json
    <root>/cells/<method>/<dataset>/sr/<image>.png
    <root>/cells/<method>/<dataset>/records/<image>.json
    <root>/skipped.json

Each file is written atomically, a record only after its PNG, so a killed run leaves only
complete files and re-running recomputes exactly what is missing. Aggregation happens only at
report time, from per-image values.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from .files import atomic_write_json

RESULT_COLUMNS = ["method", "dataset", "image", "metric", "value"]
FAILURE_COLUMNS = ["method", "dataset", "image", "stage", "message"]


def _safe(component: str) -> str:
    if not component or component in (".", "..") or "/" in component or "\\" in component or "\0" in component:
        raise ValueError(f"unsafe path component {component!r}")
    return component


def is_store(root: str | os.PathLike) -> bool:
    """Whether ``root`` holds a results store (guards against writing a report into one, or reading a report as one)."""
    return (Path(root) / "cells").is_dir() or (Path(root) / "skipped.json").is_file()


def cell_dir(root: str | os.PathLike, method: str, dataset: str) -> Path:
    return Path(root) / "cells" / _safe(method) / _safe(dataset)


def sr_path(root: str | os.PathLike, method: str, dataset: str, image: str) -> Path:
    return cell_dir(root, method, dataset) / "sr" / f"{_safe(image)}.png"


def record_path(root: str | os.PathLike, method: str, dataset: str, image: str) -> Path:
    return cell_dir(root, method, dataset) / "records" / f"{_safe(image)}.json"


def manifest_path(root: str | os.PathLike, method: str, dataset: str) -> Path:
    return cell_dir(root, method, dataset) / "manifest.json"


def _read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def read_record(root: str | os.PathLike, method: str, dataset: str, image: str) -> dict | None:
    return _read_json(record_path(root, method, dataset, image))


def write_record(root: str | os.PathLike, method: str, dataset: str, record: dict) -> None:
    atomic_write_json(record_path(root, method, dataset, record["image"]), record)


def read_manifest(root: str | os.PathLike, method: str, dataset: str) -> dict | None:
    return _read_json(manifest_path(root, method, dataset))


def write_manifest(root: str | os.PathLike, method: str, dataset: str, manifest: dict) -> None:
    atomic_write_json(manifest_path(root, method, dataset), manifest)


def load_skipped(root: str | os.PathLike) -> dict[tuple[str, str], str]:
    data = _read_json(Path(root) / "skipped.json") or {}
    return {tuple(k.split("|", 1)): v for k, v in data.items()}  # type: ignore[misc]


def update_skipped(root: str | os.PathLike, skipped: dict[tuple[str, str], str], ran: set[tuple[str, str]]) -> None:
    """Merge newly skipped cells; forget skip reasons of cells that have now run."""
    current = load_skipped(root)
    current.update(skipped)
    for cell in ran:
        current.pop(cell, None)
    atomic_write_json(Path(root) / "skipped.json", {f"{m}|{d}": r for (m, d), r in sorted(current.items())})


def iter_records(root: str | os.PathLike):
    """Yield ``(method, dataset, record)`` for every record in the store."""
    cells = Path(root) / "cells"
    if not cells.is_dir():
        return
    for mdir in sorted(p for p in cells.iterdir() if p.is_dir()):
        for ddir in sorted(p for p in mdir.iterdir() if p.is_dir()):
            rdir = ddir / "records"
            if not rdir.is_dir():
                continue
            for f in sorted(rdir.glob("*.json")):
                rec = _read_json(f)
                if rec is not None:
                    yield mdir.name, ddir.name, rec


def load_results(root: str | os.PathLike) -> pd.DataFrame:
    """Long table of per-image values: ``[method, dataset, image, metric, value]``."""
    rows = [
        (m, d, rec["image"], metric, float(value))
        for m, d, rec in iter_records(root)
        for metric, value in sorted(rec.get("metrics", {}).items())
    ]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def load_failures(root: str | os.PathLike) -> pd.DataFrame:
    """Per-image errors and not-computable metrics: ``[method, dataset, image, stage, message]``."""
    rows = []
    for m, d, rec in iter_records(root):
        rows += [(m, d, rec["image"], e["stage"], e["message"]) for e in rec.get("errors", [])]
        rows += [(m, d, rec["image"], f"not computable: {k}", v) for k, v in rec.get("not_computable", {}).items()]
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)


def load_manifests(root: str | os.PathLike) -> dict[tuple[str, str], dict]:
    out = {}
    cells = Path(root) / "cells"
    if cells.is_dir():
        for f in sorted(cells.glob("*/*/manifest.json")):
            data = _read_json(f)
            if data is not None:
                out[(f.parent.parent.name, f.parent.name)] = data
    return out


SUMMARY_COLUMNS = ["method", "dataset", "metric", "mean", "std", "n"]


def aggregate(results: pd.DataFrame) -> pd.DataFrame:
    """``[method, dataset, image, metric, value]`` -> ``[method, dataset, metric, mean, std, n]``.

    SR papers report the mean of per-image values (not a pooled MSE), so that is the mean; the
    population standard deviation and the image count travel with it.
    """
    if results.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    g = results.groupby(["method", "dataset", "metric"], sort=False)["value"]
    out = g.agg(mean="mean", std=lambda v: float(v.std(ddof=0)), n="count").reset_index()
    return out[SUMMARY_COLUMNS]
