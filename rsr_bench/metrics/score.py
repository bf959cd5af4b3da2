"""Score images or folders directly, without a method or a dataset (``rsr-bench score``).

Why: users compare against numbers from pyiqa's CLI or a paper's script; this gives them the same
metrics with the conventions declared in the metric table (input quantisation, colour, crop),
and records "not computable: reason" per image instead of crashing or printing NaN. Scoring is
:func:`rsr_bench.metrics.score_batch`, the runner's, with its NaN/inf policy; this module only
pairs files (the table and CSV are in :mod:`rsr_bench.report.terminal`).

Pairing: a file with a file, or a folder with a folder matched by file stem (``I03.bmp`` pairs
with ``I03.png``). Distorted images without a reference still get the no-reference metrics.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import ConfigError, ImageError
from ..image import list_images, read_image
from . import MetricSpec, ScoredImage, create_metric, score_batch, select_metrics


@dataclass
class ScoreRow:
    image: str
    metric: str
    value: float | None  # None when not computable or failed
    reason: str = ""
    error: bool = False  # the metric failed (a bug or a broken setup), not the image


@dataclass
class ScoreResult:
    metrics: list[MetricSpec]
    images: list[str]
    rows: list[ScoreRow] = field(default_factory=list)

    def value(self, image: str, metric: str) -> float | None:
        for r in self.rows:
            if r.image == image and r.metric == metric:
                return r.value
        return None

    def means(self) -> dict[str, float | None]:
        """Mean over the images where the metric was computable (None if none was)."""
        out: dict[str, float | None] = {}
        for m in self.metrics:
            vals = [r.value for r in self.rows if r.metric == m.name and r.value is not None]
            out[m.name] = sum(vals) / len(vals) if vals else None
        return out

    def not_computable(self) -> list[ScoreRow]:
        return [r for r in self.rows if r.value is None]

    def errors(self) -> list[ScoreRow]:
        return [r for r in self.rows if r.error]


def pair_inputs(dist: str | os.PathLike, ref: str | os.PathLike | None = None) -> list[tuple[Path, Path | None]]:
    """``[(dist_path, ref_path | None)]``: file with file, or folder with folder by file stem."""
    dist = Path(dist)
    ref = Path(ref) if ref is not None else None
    if not dist.exists():
        raise ConfigError(f"{dist}: no such file or folder")
    if ref is not None and not ref.exists():
        raise ConfigError(f"{ref}: no such file or folder")
    if dist.is_file():
        if ref is not None and ref.is_dir():
            hits = [p for p in list_images(ref) if p.stem == dist.stem]
            return [(dist, hits[0] if hits else None)]
        return [(dist, ref)]
    if ref is not None and ref.is_file():
        raise ConfigError(f"{dist} is a folder but --ref {ref} is a file; give a folder or pair one file with one file")
    images = list_images(dist)
    if not images:
        raise ConfigError(f"{dist}: no images (looked for .png, .jpg, .bmp, .tif, .webp)")
    refs: dict[str, Path] = {}
    if ref is not None:
        for p in list_images(ref):
            if p.stem in refs:
                raise ConfigError(f"{ref}: two reference images share the stem {p.stem!r} ({refs[p.stem].name}, {p.name})")
            refs[p.stem] = p
    return [(p, refs.get(p.stem)) for p in images]


def _score_pair(specs: list[MetricSpec], dist: Path, ref: Path | None, device: torch.device) -> list[ScoreRow]:
    """One row per metric for one (distorted, reference) pair; decode problems become reasons."""
    try:
        x = read_image(dist).clamp(0, 1)[None]
    except ImageError as exc:
        return [ScoreRow(dist.name, m.name, None, f"cannot decode: {exc}") for m in specs]
    missing = "" if ref is not None else f"no reference image with stem {dist.stem!r}"
    y = None
    if ref is not None:
        try:
            y = read_image(ref).clamp(0, 1)[None]
        except ImageError as exc:
            missing = f"cannot decode reference: {exc}"
    scorable = [m for m in specs if m.kind == "NR" or not missing]
    (scored,) = score_batch(scorable, x, y, device=device) if scorable else [ScoredImage()]
    nc = {**{m.name: missing for m in specs if m not in scorable}, **scored.not_computable}
    rows = []
    for m in specs:
        value, reason = scored.values.get(m.name), nc.get(m.name) or scored.errors.get(m.name, "")
        rows.append(ScoreRow(dist.name, m.name, value, reason, error=m.name in scored.errors))
    return rows


def score_images(
    dist: str | os.PathLike,
    ref: str | os.PathLike | None = None,
    metrics: str | Iterable[str] = "default",
    *,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> ScoreResult:
    """Score DIST (file or folder) with ``metrics``; FR metrics need ``ref``.

    ``input="uint8"`` metrics see the image rounded to uint8 levels, ``input="float"`` ones (LPIPS)
    the decoded values clamped to [0, 1] (the same thing for ordinary 8-bit files).
    """
    specs = select_metrics(metrics)
    pairs = pair_inputs(dist, ref)
    fr = [m.name for m in specs if m.kind == "FR"]
    if fr and ref is None:
        raise ConfigError(f"{', '.join(fr)} {'is a' if len(fr) == 1 else 'are'} full-reference metric(s): pass --ref")
    device = torch.device(device)
    for m in specs:  # build every network up front: a missing model file stops here, not per image
        create_metric(m.name, device)
    result = ScoreResult(metrics=list(specs), images=[p.name for p, _ in pairs])
    if progress:
        from tqdm import tqdm

        pairs = tqdm(pairs, desc="scoring", unit="img", disable=None)
    for dist_path, ref_path in pairs:
        result.rows += _score_pair(result.metrics, dist_path, ref_path, device)
    return result


__all__ = ["ScoreResult", "ScoreRow", "pair_inputs", "score_images"]
