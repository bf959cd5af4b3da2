"""Score images or folders directly, without a method or a dataset (``rsr-bench score``).

Why: users compare against numbers from pyiqa's CLI or a paper's script; this gives them the same
metrics with the conventions declared in the metric table (input quantisation, colour, crop),
and records "not computable: reason" per image instead of crashing or printing NaN.

Pairing: a file with a file, or a folder with a folder matched by file stem (``I03.bmp`` pairs
with ``I03.png``). Distorted images without a reference still get the no-reference metrics.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import ConfigError, ImageError, NotComputable
from ..image import dequantise, list_images, quantise, read_image
from . import MetricSpec, create_metric, select_metrics


@dataclass
class ScoreRow:
    image: str
    metric: str
    value: float | None  # None when not computable
    reason: str = ""


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
    specs: Sequence[MetricSpec] = select_metrics(metrics)
    pairs = pair_inputs(dist, ref)
    fr = [m.name for m in specs if m.kind == "FR"]
    if fr and ref is None:
        raise ConfigError(f"{', '.join(fr)} {'is a' if len(fr) == 1 else 'are'} full-reference metric(s): pass --ref")
    device = torch.device(device)
    result = ScoreResult(metrics=list(specs), images=[p.name for p, _ in pairs])
    built = {m.name: create_metric(m.name, device) for m in specs}  # build every network once, up front
    iterator = pairs
    if progress:
        from tqdm import tqdm

        iterator = tqdm(pairs, desc="scoring", unit="img", disable=None)
    for dist_path, ref_path in iterator:
        try:
            x = read_image(dist_path).clamp(0, 1)[None]
        except ImageError as exc:
            result.rows += [ScoreRow(dist_path.name, m.name, None, f"cannot decode: {exc}") for m in specs]
            continue
        x_q = dequantise(quantise(x[0]))[None]
        y = None
        if ref_path is not None:
            try:
                y = read_image(ref_path).clamp(0, 1)[None].to(device)
            except ImageError as exc:
                y = exc
        for m in specs:
            result.rows.append(_one(m, built[m.name], x if m.input == "float" else x_q, y, ref_path, dist_path, device))
    return result


def _one(spec: MetricSpec, metric, x: torch.Tensor, y, ref_path: Path | None, dist_path: Path,
         device: torch.device) -> ScoreRow:
    name = dist_path.name
    if spec.kind == "FR":
        if ref_path is None:
            return ScoreRow(name, spec.name, None, f"no reference image with stem {dist_path.stem!r}")
        if isinstance(y, ImageError):
            return ScoreRow(name, spec.name, None, f"cannot decode reference: {y}")
    try:
        value = metric(x.to(device), y if spec.kind == "FR" else None)[0]
    except NotComputable as exc:
        return ScoreRow(name, spec.name, None, str(exc))
    if not math.isfinite(value) and not (spec.name.startswith("psnr") and value == math.inf):
        return ScoreRow(name, spec.name, None, f"non-finite value {value}")
    return ScoreRow(name, spec.name, float(value))


def format_scores(result: ScoreResult, digits: int = 4) -> str:
    """Per-image table, a mean row, then footnotes (not computable reasons, conventions)."""
    names = [m.name for m in result.metrics]
    width = max([len("image"), len("mean"), *(len(i) for i in result.images)])
    cols = [max(len(f"{n} {m.arrow}"), digits + 6) for n, m in zip(names, result.metrics)]

    def cell(v: float | None, w: int) -> str:
        return f"{'n/c':>{w}}" if v is None else f"{v:>{w}.{digits}f}"

    lines = ["  ".join([f"{'image':<{width}}", *(f"{n + ' ' + m.arrow:>{w}}" for n, m, w in zip(names, result.metrics, cols))])]
    for img in result.images:
        lines.append("  ".join([f"{img:<{width}}", *(cell(result.value(img, n), w) for n, w in zip(names, cols))]))
    means = result.means()
    lines.append("  ".join([f"{'mean':<{width}}", *(cell(means[n], w) for n, w in zip(names, cols))]))
    nc = result.not_computable()
    if nc:
        lines.append("")
        lines.append("n/c = not computable (excluded from the mean):")
        lines += [f"  {r.image} {r.metric}: {r.reason}" for r in nc]
    lines.append("")
    lines.append("conventions:")
    lines += [f"  {m.conventions()}" for m in result.metrics]
    return "\n".join(lines)


def write_csv(result: ScoreResult, path: str | os.PathLike) -> None:
    """Rows ``image,metric,value`` (pyiqa CLI style); not-computable images are left out."""
    import csv
    import io

    from ..files import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image", "metric", "value"])
    for r in result.rows:
        if r.value is not None:
            w.writerow([r.image, r.metric, repr(r.value)])
    atomic_write_text(path, buf.getvalue())


__all__ = ["ScoreResult", "ScoreRow", "format_scores", "pair_inputs", "score_images", "write_csv"]
