"""Image grids like the RSR paper's figures 1, 4 and 5.

For each chosen image: an overview thumbnail (GT, else the upsampled input) with the crop
rectangle, then the same crop from the bicubic-upsampled input, every method and GT. Frames say
how a method relates to the dataset: blue in-domain, red cross-domain, green the highlighted
family. Only the crops and one small overview per grid are written, so a report stays light
whatever the image sizes; the crop is stored at native resolution and shown enlarged
(pixelated) on click.

Images are picked where the methods disagree most (per-image metric spread across methods,
cheap: no pixels read), and the crop where their outputs differ most (per-pixel spread).

Every image is decoded by the harness's policy (:func:`rsr_bench.image.read_image_array`, with
its size limit); one that is missing or cannot be decoded (a truncated SR PNG in a damaged
store, an unreadable input named by ``--images``) becomes a panel that says why, never an error.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from ..errors import ImageError
from ..image import read_image_array
from .model import ReportData
from .tables import family_label, metric_label

OVERVIEW_MAX = 300  # px, longest side of the overview thumbnail


@dataclass
class Panel:
    label: str
    sublabel: str
    frame: str  # input | gt | in | cross | highlight | neutral
    crop: str | None = None  # path relative to the report folder
    metrics: list[str] = field(default_factory=list)
    note: str | None = None  # why there is no image


@dataclass
class Grid:
    dataset: str
    image: str
    crop_box: tuple[int, int, int, int]  # x, y, w, h in SR pixels
    why: str
    overview: str | None
    size: tuple[int, int]  # SR width, height
    panels: list[Panel] = field(default_factory=list)


def slug(*parts: str) -> str:
    """A safe, unique file stem for user-named things (names may hold any character)."""
    text = "_".join(parts)
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:60].strip("-.") or "x"
    return f"{clean}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:8]}"


def parse_crop(spec: str) -> tuple[int, int, int, int]:
    """``"x,y,w,h"`` in SR pixels."""
    try:
        x, y, w, h = (int(v) for v in spec.split(","))
    except ValueError:
        from ..errors import ConfigError

        raise ConfigError(f"--crop expects x,y,w,h in SR pixels, got {spec!r}") from None
    return x, y, w, h


def pick_images(data: ReportData, per_dataset: int = 1) -> list[tuple[str, str, str]]:
    """``(dataset, image, why)``: per dataset, the images where the methods disagree most.

    Disagreement of an image = sum over metrics of the std across methods of its values,
    each metric scaled by its spread over the whole dataset so dB and [0,1] scores weigh alike.
    Images where some method failed are avoided (their grids would have holes).
    """
    out: list[tuple[str, str, str]] = []
    res = data.results
    if res.empty:
        return out
    errors = data.errors()
    # One pass over the long table (a pivot per dataset and metric was 0.4 s of a 4x4x100 report).
    by = res.groupby(["dataset", "metric"], sort=True)
    n_methods = by["method"].nunique()
    scale = by["value"].std(ddof=0).fillna(0.0).replace(0.0, 1.0)
    spread = res.groupby(["dataset", "metric", "image"], sort=True)["value"].std(ddof=0).fillna(0.0)
    keys = spread.index.droplevel("image")
    spread = (spread / scale.reindex(keys).to_numpy())[n_methods.reindex(keys).to_numpy() >= 2]
    images = res.groupby("dataset", sort=False)["image"].unique()
    for d in data.datasets:
        if d not in images.index:
            continue
        score = pd.Series(0.0, index=pd.Index(sorted(set(images[d])), name="image"))
        if d in spread.index.get_level_values("dataset"):
            score = score.add(spread.xs(d, level="dataset").groupby(level="image").sum(), fill_value=0)
        bad = set(errors.loc[errors["dataset"] == d, "image"])
        score = score.drop(labels=[i for i in bad if i in score.index])
        if score.empty:
            continue
        for image in score.sort_values(ascending=False, kind="stable").index[:per_dataset]:
            out.append((d, str(image), "picked automatically: the methods' metric values disagree most here"))
    return out


def resolve_requested(data: ReportData, requested: Sequence[str]) -> list[tuple[str, str, str]]:
    """``dataset/image`` or a bare ``image`` (every dataset that has it)."""
    from ..errors import ConfigError

    images_by_ds: dict[str, set[str]] = {}
    for r in data.results[["dataset", "image"]].drop_duplicates().itertuples(index=False):
        images_by_ds.setdefault(r.dataset, set()).add(r.image)
    for r in data.failures[["dataset", "image"]].drop_duplicates().itertuples(index=False):
        images_by_ds.setdefault(r.dataset, set()).add(r.image)
    out = []
    for spec in requested:
        ds, sep, image = spec.partition("/")
        if sep:
            if image not in images_by_ds.get(ds, set()):
                raise ConfigError(f"grid image {spec!r}: no image {image!r} of dataset {ds!r} in the store")
            out.append((ds, image, "requested"))
        else:
            hits = [d for d in data.datasets if spec in images_by_ds.get(d, set())]
            if not hits:
                raise ConfigError(f"grid image {spec!r} is in no dataset of the store (use DATASET/IMAGE)")
            out += [(d, spec, "requested") for d in hits]
    return out


Loaded = tuple["np.ndarray | None", "str | None"]
"""An image as uint8 ``(H, W, 3)``, or ``None`` and why not (``None`` too: no file, nothing to say)."""


def _load_rgb(path: str | Path | None) -> Loaded:
    if path is None or not Path(path).is_file():
        return None, None
    try:
        arr = read_image_array(path)
    except ImageError as exc:
        return None, f"cannot be decoded: {exc}"
    return np.rint(arr * 255.0).astype(np.uint8), None


def auto_crop(images: list[np.ndarray], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The square window where the outputs differ most (per-pixel std, box-summed)."""
    w, h = size
    side = max(16, min(128, min(w, h) // 3))
    side = min(side, w, h)
    same = [im for im in images if im.shape[:2] == (h, w)]
    if len(same) < 2:
        return ((w - side) // 2, (h - side) // 2, side, side)
    stack = np.stack([im.astype(np.float32).mean(axis=2) for im in same])
    spread = stack.std(axis=0)
    ii = np.pad(spread.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    box = ii[side:, side:] - ii[:-side, side:] - ii[side:, :-side] + ii[:-side, :-side]
    y, x = np.unravel_index(int(np.argmax(box)), box.shape)
    return int(x), int(y), side, side


def _clip_box(box: tuple[int, int, int, int], w: int, h: int) -> tuple[int, int, int, int]:
    x, y, bw, bh = box
    bw, bh = max(1, min(bw, w)), max(1, min(bh, h))
    return max(0, min(x, w - bw)), max(0, min(y, h - bh)), bw, bh


def _image_metrics(data: ReportData, method: str, dataset: str, image: str, limit: int = 3) -> list[str]:
    out = []
    for name, info in data.metrics.items():
        value = data.values.get((method, dataset, name), {}).get(image)
        if value is not None:
            out.append(f"{metric_label(name)}{info.arrow} {info.fmt(value)}")
        if len(out) == limit:
            break
    return out


def _record(data: ReportData, method: str, dataset: str, image: str) -> dict:
    from .. import store

    try:
        return store.read_record(data.store_root, method, dataset, image) or {}
    except (ValueError, OSError):
        return {}


def _sources(data: ReportData, methods: Sequence[str], dataset: str, image: str
             ) -> tuple[dict[str, Loaded], Loaded, Loaded]:
    """Every method's SR output, and the LR input and GT its records name (each with why it is missing)."""
    from .. import store

    srs: dict[str, Loaded] = {}
    lr_path = hr_path = None
    for m in methods:
        try:
            srs[m] = _load_rgb(store.sr_path(data.store_root, m, dataset, image))
        except ValueError:
            srs[m] = None, None
        rec = _record(data, m, dataset, image)
        lr_path = lr_path or rec.get("lr_path")
        hr_path = hr_path or rec.get("hr_path")
    return srs, _load_rgb(lr_path), _load_rgb(hr_path)


def _method_panel(data: ReportData, method: str, dataset: str, image: str, crop: str | None, has_output: bool,
                  problem: str | None = None) -> Panel:
    """One method's panel: its crop and per-image metrics, or why there is none."""
    info = data.methods[method]
    label, kind = family_label(info.family), data.frame_kind(method, dataset)
    sub = f"trained on {', '.join(info.trained_on)}" if info.trained_on else f"no training ({info.tag})"
    if (method, dataset) in data.skipped:
        return Panel(label, sub, kind, note=f"not run: {data.skipped[(method, dataset)]}")
    note = None
    if problem:
        note = f"SR output {problem}"
    elif not has_output:
        errs = data.errors()
        msgs = errs[(errs["method"] == method) & (errs["dataset"] == dataset) & (errs["image"] == image)]["message"]
        note = "no output: " + ("; ".join(map(str, msgs)) if len(msgs) else "SR image missing")
    return Panel(label, sub, kind, crop, _image_metrics(data, method, dataset, image), note)


def _overview(base: np.ndarray, box: tuple[int, int, int, int], path: Path) -> None:
    """A small copy of the whole image with the crop's rectangle drawn on it."""
    x, y, bw, bh = box
    im = Image.fromarray(base)
    ratio = min(1.0, OVERVIEW_MAX / max(im.size))
    im = im.resize((max(1, round(im.width * ratio)), max(1, round(im.height * ratio))), Image.LANCZOS)
    draw = ImageDraw.Draw(im)
    r = [x * ratio, y * ratio, (x + bw) * ratio - 1, (y + bh) * ratio - 1]
    draw.rectangle(r, outline=(255, 220, 0), width=max(1, round(2 * max(1.0, ratio))))
    im.save(path, quality=85)


def build_grid(data: ReportData, dataset: str, image: str, why: str, out_dir: Path, assets: str,
               crop: tuple[int, int, int, int] | None = None) -> Grid:
    """Write the crops and overview of one grid under ``out_dir/assets`` and describe them."""
    from .tables import table_methods

    methods = [m for m in table_methods(data) if (m, dataset) in data.manifests or (m, dataset) in data.skipped]
    loaded, (lr, lr_problem), (hr, hr_problem) = _sources(data, methods, dataset, image)
    srs = {m: arr for m, (arr, _) in loaded.items()}
    present = [a for a in srs.values() if a is not None]
    if present:
        h, w = present[0].shape[:2]
    elif hr is not None:
        h, w = hr.shape[:2]
    else:
        h, w = (lr.shape[0] * 4, lr.shape[1] * 4) if lr is not None else (64, 64)
    up = None if lr is None else np.asarray(Image.fromarray(lr).resize((w, h), Image.BICUBIC))
    box = _clip_box(crop, w, h) if crop else auto_crop(present, (w, h))
    if not crop:
        why += "; crop where the outputs differ most"
    x, y, bw, bh = box
    gdir = out_dir / assets / "grids"
    gdir.mkdir(parents=True, exist_ok=True)
    stem = slug(dataset, image)

    def save_crop(arr: np.ndarray | None, key: str) -> str | None:
        if arr is None or arr.shape[0] < y + bh or arr.shape[1] < x + bw:
            return None
        name = f"{stem}_{slug(key)}.png"
        Image.fromarray(np.ascontiguousarray(arr[y:y + bh, x:x + bw])).save(gdir / name, compress_level=3)
        return f"{assets}/grids/{name}"

    panels = [Panel("Input", f"bicubic ×{max(1, round(w / lr.shape[1])) if lr is not None else '?'}", "input",
                    save_crop(up, "input"), note=None if up is not None else f"input image {lr_problem or 'not found'}")]
    panels += [_method_panel(data, m, dataset, image, None if (m, dataset) in data.skipped else save_crop(srs.get(m), m),
                             srs.get(m) is not None, loaded[m][1]) for m in methods]
    if hr is not None or hr_problem:
        panels.append(Panel("GT", "ground truth", "gt", save_crop(hr, "gt"),
                            note=f"ground truth {hr_problem}" if hr_problem else None))
    overview = None
    if hr is not None or up is not None:
        overview = f"{assets}/grids/{stem}_overview.jpg"
        _overview(hr if hr is not None else up, box, out_dir / overview)
    return Grid(dataset, image, box, why, overview, (w, h), panels)


def build_grids(data: ReportData, out_dir: Path, assets: str, *, requested: Sequence[str] | None = None,
                per_dataset: int = 1, crop: tuple[int, int, int, int] | None = None) -> list[Grid]:
    chosen = resolve_requested(data, requested) if requested else pick_images(data, per_dataset)
    return [build_grid(data, d, i, why, out_dir, assets, crop) for d, i, why in chosen]
