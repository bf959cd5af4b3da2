"""The corruption table: ten families x five severities, each level one documented parameter set.

Why a table: the docs, the dataset names (``demo_clean~jpeg@3``), the did-you-mean and the
report all read the same rows, so a level can never mean one thing in the docs and another in
the code (``tests/test_robust_corruptions.py`` checks the docs table against :func:`markdown_table`).

Two kinds of family:

- ``source="lr"``: applied to the dataset's LR image as it is (noise, impulses, JPEG);
- ``source="hr"``: the LR is made again from the clean HR with another degradation (blur or a
  wrong kernel *before* downsampling, i.e. a kernel mismatch, and the two real-like pipelines).

Every level's result is rounded to 8 bit once, at the end. Random parts draw from
``numpy.random.default_rng(seed)`` where ``seed`` hashes (image id, corruption, severity) with
sha256 (never Python's ``hash()``, which changes per process), so a corrupted LR is the same
bytes in every run and on every machine with the same numpy/Pillow. Motion blur's direction is
drawn from (image id, family) only, so that severities differ in length alone.

The degradations the demo suite already uses (Gaussian blur, Poisson-Gaussian noise, JPEG,
rounding) are imported from :mod:`rsr_bench.datasets.demo`: one implementation of each.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..datasets.demo import _gaussian_blur, _jpeg, _poisson_gaussian, _to_u8
from ..errors import ImageError
from ..image import imresize, resize_matrix
from .naming import SEVERITIES

#: Recipe version: part of every corrupted dataset's version; bump when a level's meaning changes.
RECIPE = "1"

Array = np.ndarray


@dataclass(frozen=True)
class Context:
    """What a corruption function may use besides the image: the scale, a seeded generator, the seeds."""

    scale: int
    rng: np.random.Generator
    seed: int
    angle: float  # motion-blur direction in degrees, from (image, family)


@dataclass(frozen=True)
class Corruption:
    """One family: ``levels[s - 1]`` is severity ``s``'s parameter, ``level_text`` says it in the docs."""

    name: str
    label: str
    source: str  # "lr" or "hr"
    parameter: str
    levels: tuple[Any, ...]
    level_text: tuple[str, ...]
    apply: Callable[[Array, Any, Context], Array]
    kernel: Callable[[Any], int] | None = None  # HR pixels a level's blur kernel spans (size check)
    description: str = ""


def seed_for(image: str, corruption: str, severity: int | str) -> int:
    """64-bit seed from sha256 of the three (stable across processes and machines)."""
    return int.from_bytes(hashlib.sha256(f"{image}|{corruption}|{severity}".encode()).digest()[:8], "little")


def _down(x: Array, scale: int, shape: tuple[int, int] | None = None) -> Array:
    """MATLAB bicubic (antialiased) resize of an HWC float64 image by 1/scale, or to ``shape``."""
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)
    if shape is None:
        return imresize(t, 1.0 / scale).permute(1, 2, 0).numpy()
    (h, w), (oh, ow) = x.shape[:2], shape
    mh = torch.from_numpy(resize_matrix(h, oh, oh / h))
    mw = torch.from_numpy(resize_matrix(w, ow, ow / w))
    return (mh @ t @ mw.T).permute(1, 2, 0).numpy()


def _blur(x: Array, sigma: float) -> Array:
    return _gaussian_blur(x * 255.0, sigma)  # the demo suite's separable Gaussian (takes 0-255 values)


def _blur_side(sigma: float) -> int:
    return 2 * math.ceil(3 * sigma) + 1


# -- LR families ------------------------------------------------------------------------------
def gaussian_noise(x: Array, sigma: float, ctx: Context) -> Array:
    return x + ctx.rng.standard_normal(x.shape) * (sigma / 255.0)


def sensor_noise(x: Array, p: tuple[float, float], ctx: Context) -> Array:
    a, read = p
    return _poisson_gaussian(x, a, (read / 255.0) ** 2, ctx.seed)


def _ycbcr(x: Array) -> Array:
    """Full-range BT.601 (JPEG's) YCbCr, chroma centred on 0."""
    m = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    return x @ m.T


def _rgb(y: Array) -> Array:
    m = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]])
    return y @ m.T


def chroma_noise(x: Array, sigma: float, ctx: Context) -> Array:
    """Gaussian noise on Cb and Cr only, drawn at half resolution and bilinearly upsampled (blotchy,
    like a camera's colour noise); luma untouched."""
    h, w = x.shape[:2]
    noise = ctx.rng.standard_normal((1, 2, (h + 1) // 2, (w + 1) // 2)) * (sigma / 255.0)
    noise = F.interpolate(torch.from_numpy(noise), size=(h, w), mode="bilinear", align_corners=False)
    ycc = _ycbcr(x)
    ycc[..., 1:] += noise[0].permute(1, 2, 0).numpy()
    return _rgb(ycc)


def salt_pepper(x: Array, amount: float, ctx: Context) -> Array:
    """Each sample (pixel and channel) becomes 0 or 1 with probability ``amount / 2`` each."""
    u = ctx.rng.random(x.shape)
    out = x.copy()
    out[u < amount / 2] = 0.0
    out[u >= 1 - amount / 2] = 1.0
    return out


def jpeg(x: Array, quality: int, ctx: Context) -> Array:
    return _jpeg(_to_u8(x), int(quality)).astype(np.float64) / 255.0


# -- HR families (the LR is made again from the clean HR) ---------------------------------------
def gaussian_blur(hr: Array, sigma: float, ctx: Context) -> Array:
    return _down(_blur(hr, sigma), ctx.scale)


def motion_kernel(length: int, angle: float) -> Array:
    """A line of ``length`` HR pixels at ``angle`` degrees, antialiased (supersampled), sum 1."""
    k = np.zeros((length, length))
    c = (length - 1) / 2
    t = np.linspace(-c, c, 16 * length)
    ys, xs = c - t * math.sin(math.radians(angle)), c + t * math.cos(math.radians(angle))
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    for dy, dx, wgt in ((0, 0, (1 - fy) * (1 - fx)), (1, 0, fy * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 1, fy * fx)):
        yy, xx = np.clip(y0 + dy, 0, length - 1), np.clip(x0 + dx, 0, length - 1)
        np.add.at(k, (yy, xx), wgt)
    return k / k.sum()


def motion_blur(hr: Array, length: int, ctx: Context) -> Array:
    from scipy.ndimage import convolve

    k = motion_kernel(int(length), ctx.angle)
    blurred = np.stack([convolve(hr[..., c], k, mode="reflect") for c in range(hr.shape[2])], axis=-1)
    return _down(blurred, ctx.scale)


def wrong_kernel(hr: Array, kind: str, ctx: Context) -> Array:
    """Downsampling with another kernel than MATLAB's antialiased bicubic (the clean LR's)."""
    s = ctx.scale
    t = torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1)[None]
    if kind == "area":
        out = F.avg_pool2d(t, s)
    elif kind == "bilinear":
        out = F.interpolate(t, scale_factor=1 / s, mode="bilinear", align_corners=False)
    elif kind == "bicubic-noaa":
        out = imresize(t, 1.0 / s, antialias=False)
    elif kind == "nearest-centre":
        out = t[..., s // 2 :: s, s // 2 :: s]
    elif kind == "nearest":
        out = t[..., ::s, ::s]
    else:
        raise ValueError(kind)
    return out[0].permute(1, 2, 0).numpy()


def pipeline(hr: Array, p: tuple[float, float, float, int], ctx: Context) -> Array:
    """Blur (HR) -> bicubic down -> Poisson-Gaussian noise -> JPEG."""
    sigma, a, read, quality = p
    lr = _down(_blur(hr, sigma), ctx.scale)
    lr = _poisson_gaussian(lr, a, (read / 255.0) ** 2, ctx.seed)
    return jpeg(lr, quality, ctx)


def pipeline2(hr: Array, p: tuple[tuple[float, float, int], tuple[float, float, int]], ctx: Context) -> Array:
    """Second order (Real-ESRGAN's idea): [blur -> halve -> noise -> JPEG] at HR, then [blur -> resize
    to the LR size -> noise -> JPEG] on the result; each stage's noise has its own seed."""
    (s1, a1, q1), (s2, a2, q2) = p
    h, w = hr.shape[:2]
    mid = _down(_blur(hr, s1), 2, ((h + 1) // 2, (w + 1) // 2))
    mid = jpeg(_poisson_gaussian(mid, a1, (1 / 255.0) ** 2, ctx.seed), q1, ctx)
    lr = _down(_blur(mid, s2), 1, (h // ctx.scale, w // ctx.scale))
    lr = _poisson_gaussian(lr, a2, (1 / 255.0) ** 2, ctx.seed ^ 0x5EED)
    return jpeg(lr, q2, ctx)


_P2_LEVELS = (((0.6, 0.0002, 90), (0.4, 0.0002, 85)), ((0.8, 0.0004, 80), (0.6, 0.0004, 70)),
              ((1.0, 0.0006, 70), (0.8, 0.0006, 55)), ((1.2, 0.001, 60), (1.0, 0.001, 40)),
              ((1.5, 0.0015, 50), (1.2, 0.0015, 30)))


def _p2(level: tuple) -> str:
    (s1, a1, q1), (s2, a2, q2) = level
    return f"σ {s1}, a {a1}, q {q1} / σ {s2}, a {a2}, q {q2}"


CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in (
    Corruption("gaussian_noise", "Gaussian noise", "lr", "σ (of 255), i.i.d. per pixel and channel",
               (2, 5, 10, 15, 25), ("2", "5", "10", "15", "25"), gaussian_noise),
    Corruption("sensor_noise", "Poisson-Gaussian sensor noise", "lr", "variance a·x + (r/255)²: a, r",
               ((0.0005, 1), (0.001, 1.5), (0.002, 2), (0.004, 3), (0.008, 4)),
               ("0.0005, 1", "0.001, 1.5", "0.002, 2", "0.004, 3", "0.008, 4"), sensor_noise),
    Corruption("chroma_noise", "Chroma (colour) noise", "lr", "σ (of 255) on Cb and Cr, half-resolution grid",
               (3, 6, 10, 15, 22), ("3", "6", "10", "15", "22"), chroma_noise),
    Corruption("salt_pepper", "Salt-and-pepper", "lr", "fraction of samples set to 0 or 1",
               (0.002, 0.005, 0.01, 0.02, 0.04), ("0.2 %", "0.5 %", "1 %", "2 %", "4 %"), salt_pepper),
    Corruption("jpeg", "JPEG", "lr", "quality (Pillow, 4:2:0)", (80, 60, 40, 25, 10),
               ("80", "60", "40", "25", "10"), jpeg),
    Corruption("gaussian_blur", "Gaussian blur (before downsampling)", "hr", "σ in HR pixels",
               (1.0, 1.5, 2.0, 2.5, 3.2), ("1.0", "1.5", "2.0", "2.5", "3.2"), gaussian_blur, _blur_side),
    Corruption("motion_blur", "Motion blur (before downsampling)", "hr",
               "line length in HR pixels (direction per image)", (5, 9, 13, 19, 25),
               ("5", "9", "13", "19", "25"), motion_blur, int),
    Corruption("wrong_kernel", "Wrong downsampling kernel", "hr", "kernel used instead of antialiased bicubic",
               ("area", "bilinear", "bicubic-noaa", "nearest-centre", "nearest"),
               ("area (box average)", "bilinear, no antialiasing", "bicubic, no antialiasing",
                "nearest (pixel centre)", "nearest (top-left: also a 1.5 px shift)"), wrong_kernel),
    Corruption("pipeline", "Blur → noise → JPEG", "hr", "blur σ (HR px), noise a, r, JPEG quality",
               ((0.6, 0.0003, 1, 85), (0.9, 0.0006, 1, 70), (1.2, 0.001, 1.5, 55), (1.5, 0.0015, 2, 40),
                (1.8, 0.0025, 2.5, 25)),
               ("0.6, 0.0003, 1, 85", "0.9, 0.0006, 1, 70", "1.2, 0.001, 1.5, 55", "1.5, 0.0015, 2, 40",
                "1.8, 0.0025, 2.5, 25"), pipeline, lambda p: _blur_side(p[0])),
    Corruption("pipeline2", "Second-order blur → noise → JPEG", "hr",
               "stage 1 at HR (σ, a, q) / stage 2 at HR/2 (σ, a, q); r = 1",
               _P2_LEVELS, tuple(_p2(level) for level in _P2_LEVELS), pipeline2,
               lambda p: max(_blur_side(p[0][0]), 2 * _blur_side(p[1][0]))),
)}


def size_problem(corruption: Corruption, severity: int, hr_hw: tuple[int, int]) -> str | None:
    """Why an image with HR size ``hr_hw`` is too small for this level (None: it is not)."""
    if corruption.kernel is None:
        return None
    need = corruption.kernel(corruption.levels[severity - 1])
    if min(hr_hw) < need:
        return (f"image is {hr_hw[1]}x{hr_hw[0]} px (HR), too small for {corruption.name}@{severity}: "
                f"its kernel spans {need} px, so each side needs at least {need} px")
    return None


def corrupt(corruption: Corruption, severity: int, image: str, lr: Array, hr: Array | None, scale: int) -> Array:
    """The uint8 HWC corrupted LR of ``image`` (``lr``/``hr``: float HWC in [0, 1]).

    ``hr`` is mod-cropped to a multiple of ``scale`` first, so an HR family's LR has the clean
    LR's size ``(H // scale, W // scale)``. Raises :class:`~rsr_bench.errors.ImageError` when the
    image is too small for the level.
    """
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity}")
    seed = seed_for(image, corruption.name, severity)
    angle = float(seed_for(image, corruption.name, "angle") % 180)
    ctx = Context(scale=scale, rng=np.random.default_rng(seed), seed=seed, angle=angle)
    if corruption.source == "hr":
        if hr is None:
            raise ImageError(f"{corruption.name} regenerates the LR from the HR, and image {image!r} has none")
        problem = size_problem(corruption, severity, hr.shape[:2])
        if problem:
            raise ImageError(problem)
        h, w = hr.shape[:2]
        hr = hr[: h - h % scale, : w - w % scale]
        out = corruption.apply(hr.astype(np.float64), corruption.levels[severity - 1], ctx)
    else:
        out = corruption.apply(lr.astype(np.float64), corruption.levels[severity - 1], ctx)
    return _to_u8(out)


def markdown_table(names: Sequence[str] | None = None) -> str:
    """The docs' table: one row per family, one column per severity (the parameter of each level)."""
    rows = ["| name | corruption | LR made from | parameter | " + " | ".join(f"severity {s}" for s in SEVERITIES) + " |",
            "|---|---|---|---|" + "---|" * len(SEVERITIES)]
    for c in (CORRUPTIONS[n] for n in (names or CORRUPTIONS)):
        where = "the dataset's LR" if c.source == "lr" else "the clean HR"
        rows.append(f"| `{c.name}` | {c.label} | {where} | {c.parameter} | " + " | ".join(c.level_text) + " |")
    return "\n".join(rows) + "\n"
