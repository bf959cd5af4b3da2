"""A synthetic results store for the report's tests and its timing benchmark.

It writes exactly the on-disk layout the runner writes (cells/<m>/<d>/manifest.json,
sr/*.png, records/*.json, skipped.json) with small generated images and known metric values,
so the report can be rendered and checked without running any model. The values are returned
so tests can compute the expected table independently of the report code.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

# name -> (family, tag, trained_on, quality offset)
DEFAULT_METHODS: dict[str, tuple[str, str, tuple[str, ...], float]] = {
    "bicubic.default": ("bicubic", "default", (), 0.0),
    "impressionism.ntire": ("impressionism", "ntire", ("NTIRE_syn",), 0.8),
    "impressionism.aim": ("impressionism", "aim", ("AIM_syn",), 0.6),
    "esrgan_fs.dped": ("esrgan_fs", "dped", ("DPED",), 0.5),
    "esrgan.div2k": ("esrgan", "div2k", ("DIV2K",), 0.3),
    "rsr.div2k": ("rsr", "div2k", ("DIV2K",), 1.0),
}
# name -> (has_gt, domains, kind)
DEFAULT_DATASETS: dict[str, tuple[bool, tuple[str, ...], str]] = {
    "NTIRE_syn": (True, (), "synthetic"),
    "AIM_syn": (True, (), "synthetic"),
    "DPED_rw": (False, ("DPED",), "real"),
}
METRIC_LINES = {
    "psnr": "psnr (FR, higher is better): RGB (all 3 channels), crop 4 px, uint8 input; synthetic.",
    "ssim": "ssim (FR, higher is better): RGB (mean over channels), crop 4 px, uint8 input; synthetic.",
    "lpips": "lpips (FR, lower is better): RGB in [-1, 1], crop 0 px, float input; synthetic (AlexNet 0.1).",
    "niqe": "niqe (NR, lower is better): Y, crop 0 px, uint8 input; synthetic.",
}
FR = ("psnr", "ssim", "lpips")


@dataclass
class SyntheticStore:
    root: Path
    values: dict[tuple[str, str, str, str], float] = field(default_factory=dict)  # (m, d, image, metric)
    images: dict[str, list[str]] = field(default_factory=dict)  # dataset -> image ids
    failed: set[tuple[str, str, str]] = field(default_factory=set)
    skipped: dict[tuple[str, str], str] = field(default_factory=dict)


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, compress_level=1)


def _base_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth colourful pattern with some edges, so crops and disagreement maps mean something."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    fx, fy, ph = rng.uniform(0.02, 0.15, 3)
    img = np.stack([
        127 + 100 * np.sin(fx * x + ph),
        127 + 100 * np.cos(fy * y + 2 * ph),
        127 + 100 * np.sin(0.05 * (x + y) + ph) * ((x // 16 + y // 16) % 2 * 2 - 1),
    ], axis=-1)
    return img


def build_synthetic_store(
    root: str | Path,
    *,
    methods: dict[str, tuple[str, str, tuple[str, ...], float]] | None = None,
    datasets: dict[str, tuple[bool, tuple[str, ...], str]] | None = None,
    n_images: int = 4,
    size: tuple[int, int] = (64, 48),
    scale: int = 4,
    seed: int = 0,
    skipped: dict[tuple[str, str], str] | None = None,
    failed: set[tuple[str, str, str]] | None = None,
    provenance_extra: dict[str, str] | None = None,
) -> SyntheticStore:
    """Write a store under ``root``; ``size`` is the SR/HR (width, height).

    ``skipped`` cells get no directory, only a skipped.json entry; ``failed`` (method, dataset,
    image) records carry an error and no metrics (and no SR PNG, as when predict fails).
    Images of method ``m`` deviate from GT by an amount that shrinks with the method's quality
    and in-domain-ness, so the automatic crop has a real disagreement to find.
    """
    root = Path(root)
    methods = DEFAULT_METHODS if methods is None else methods
    datasets = DEFAULT_DATASETS if datasets is None else datasets
    skipped = {("esrgan.div2k", "DPED_rw"): "weights not available: run `rsr-bench fetch esrgan`"} \
        if skipped is None else skipped
    failed = {("impressionism.ntire", "AIM_syn", "img001")} if failed is None else failed
    rng = np.random.default_rng(seed)
    out = SyntheticStore(root=root, failed=set(failed), skipped=dict(skipped))
    w, h = size
    inputs = root / "_inputs"
    for d, (has_gt, domains, kind) in datasets.items():
        ids = [f"img{i:03d}" for i in range(n_images)]
        out.images[d] = ids
        bases = {}
        for i in ids:
            base = _base_image(rng, h, w)
            bases[i] = base
            hr = np.clip(base, 0, 255).astype(np.uint8)
            lr = np.asarray(Image.fromarray(hr).resize((w // scale, h // scale), Image.BICUBIC))
            _png(inputs / d / "LR" / f"{i}.png", lr)
            if has_gt:
                _png(inputs / d / "HR" / f"{i}.png", hr)
        for m, (family, tag, trained_on, quality) in methods.items():
            if (m, d) in skipped:
                continue
            in_dom = bool(set(trained_on) & ({d} | set(domains)))
            q = quality + (1.5 if in_dom else 0.0)
            cell = root / "cells" / m / d
            manifest = {
                "method": {"name": m, "family": family, "tag": tag, "trained_on": list(trained_on),
                           "fingerprint": hashlib.sha256(m.encode()).hexdigest(),
                           "provenance": {"source": "synthetic test store", **(provenance_extra or {})}},
                "dataset": {"name": d, "version": "1", "kind": kind, "has_gt": has_gt, "domains": list(domains)},
                "metrics": {k: v for k, v in METRIC_LINES.items() if has_gt or k not in FR},
                "versions": {"rsr_bench": "0.1.0", "torch": "2.x (synthetic)"},
                "device": "cpu (synthetic)",
                "started": "2026-11-26T08:00:00Z",
                "finished": "2026-11-26T08:01:00Z",
            }
            cell.mkdir(parents=True, exist_ok=True)
            (cell / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            for k, i in enumerate(ids):
                rec = {"image": i, "lr_path": str(inputs / d / "LR" / f"{i}.png"),
                       "hr_path": str(inputs / d / "HR" / f"{i}.png") if has_gt else None,
                       "metrics": {}, "not_computable": {}, "errors": [], "time_predict_s": 0.01}
                if (m, d, i) in failed:
                    rec["errors"] = [{"stage": "predict", "message": "RuntimeError: <synthetic> failure & co"}]
                else:
                    noise = 30.0 / (1.0 + q) * (1 + 0.3 * k)
                    sr = bases[i] + rng.normal(0, noise, bases[i].shape)
                    _png(cell / "sr" / f"{i}.png", np.clip(sr, 0, 255).astype(np.uint8))
                    vals = {"niqe": round(float(6.0 - q + rng.normal(0, 0.3)), 6)}
                    if has_gt:
                        vals.update({
                            "psnr": round(float(20.0 + 2 * q + rng.normal(0, 0.5)), 6),
                            "ssim": round(float(min(0.99, 0.5 + 0.1 * q + rng.normal(0, 0.02))), 6),
                            "lpips": round(float(max(0.01, 0.6 - 0.15 * q + rng.normal(0, 0.02))), 6),
                        })
                    rec["metrics"] = vals
                    for metric, v in vals.items():
                        out.values[(m, d, i, metric)] = v
                rp = cell / "records" / f"{i}.json"
                rp.parent.mkdir(parents=True, exist_ok=True)
                rp.write_text(json.dumps(rec), encoding="utf-8")
    (root / "skipped.json").write_text(
        json.dumps({f"{m}|{d}": r for (m, d), r in skipped.items()}), encoding="utf-8")
    return out
