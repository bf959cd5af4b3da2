"""MATLAB-compatible bicubic ``imresize``.

SR benchmarks make their LR inputs with MATLAB's ``imresize(img, 1/4, 'bicubic')`` and the
paper's "Bicubic" row upsamples with the same function. PIL, OpenCV and
``torch.nn.functional.interpolate`` all differ from it (kernel, antialiasing, border handling),
by up to a few tenths of a dB, so the harness carries its own implementation.

MATLAB's algorithm, written as two dense matrix products: each output sample is a weighted sum
of input samples with the Keys cubic kernel (a = -0.5); when downscaling with antialiasing the
kernel is stretched by 1/scale; indices that fall outside the image are mirrored
symmetrically (edge sample repeated), and each row of weights is normalised to sum to one.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

__all__ = ["imresize", "imresize_uint8", "resize_matrix"]


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * (
        (ax > 1) & (ax <= 2)
    )


@lru_cache(maxsize=64)
def resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool = True) -> np.ndarray:
    """The (out_len, in_len) float64 matrix that resamples one axis as MATLAB does."""
    kernel_width = 4.0
    if scale < 1 and antialias:
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - idx
    if scale < 1 and antialias:
        w = scale * _cubic(dist * scale)
    else:
        w = _cubic(dist)
    w = w / w.sum(axis=1, keepdims=True)
    # MATLAB's symmetric padding: [1..L, L..1] repeated.
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    src = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    mat = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(mat, (np.repeat(np.arange(out_len), taps), src.ravel()), w.ravel())
    return mat


def imresize(img: torch.Tensor, scale: float, *, antialias: bool = True) -> torch.Tensor:
    """Resize ``(..., H, W)`` by ``scale`` like MATLAB's ``imresize(img, scale, 'bicubic')``.

    Output size is ``ceil(H * scale) x ceil(W * scale)``, as in MATLAB. No clamping or
    rounding: callers that need uint8 do that once, explicitly. Computation runs in the
    input's dtype (use float64 for bit-faithful LR generation).
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if not img.is_floating_point():
        raise TypeError("imresize expects a floating-point tensor")
    h, w = img.shape[-2:]
    out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
    mh = torch.from_numpy(resize_matrix(h, out_h, float(scale), antialias)).to(img)
    mw = torch.from_numpy(resize_matrix(w, out_w, float(scale), antialias)).to(img)
    return mh @ img @ mw.T


def imresize_uint8(img_u8: torch.Tensor, scale: float, *, antialias: bool = True) -> torch.Tensor:
    """MATLAB ``imresize`` on a uint8 image: ``(..., H, W)`` uint8 in, uint8 out.

    MATLAB resizes one dimension at a time (rows first when both scales are equal) and stores
    the intermediate in the input's class, so a uint8 image is rounded between the two passes.
    Reproducing that matches the LR images of the standard benchmarks (Set5/Set14
    ``LR_bicubic_x4``) far more often than a single rounding at the end.
    """
    if img_u8.dtype != torch.uint8:
        raise TypeError("imresize_uint8 expects a uint8 tensor")
    x = img_u8.to(torch.float64)
    h, w = x.shape[-2:]
    out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
    mh = torch.from_numpy(resize_matrix(h, out_h, float(scale), antialias))
    mw = torch.from_numpy(resize_matrix(w, out_w, float(scale), antialias))
    x = (mh @ x).round().clamp(0, 255)
    return (x @ mw.T).round().clamp(0, 255).to(torch.uint8)
