"""Full-reference distortion metrics (PSNR, SSIM and their declared variants), in float64 numpy/cv2.

Conventions follow RSR's published evaluation (BasicSR ``calculate_psnr`` / ``calculate_ssim``):
uint8-level inputs, border crop, Gaussian 11x11 sigma 1.5 SSIM over the 'valid' region, mean over
channels. The Y variants use BasicSR's ``test_y_channel`` luma (MATLAB ``rgb2ycbcr`` limited
range 16-235, not rounded); ``ssim_gray`` reproduces MATLAB ``ssim`` on ``rgb2gray`` images (the
convention of the official calibration values), with replicate padding and a same-size map.

Speed (issue 15): SSIM filters with cv2's separable ``GaussianBlur`` in float64 (BasicSR's values
to 1e-14, tested against BasicSR's formula written out), PSNR is one numpy mean; the float64
level conversion is shared between the FR metrics of an image. SSIM stays float64 although
float32 would pass at the displayed 3 decimals (measured on two RealSR camera pairs: 2.5e-7 and
4.2e-7 off): float64 reproduces BasicSR's published numbers to 1e-14 and costs ~0.3 s/MP.
PSNR is exact (an integer sum of squares).
"""

from __future__ import annotations

import math
import weakref

import cv2
import numpy as np
import torch

from .table import MetricSpec, check_inputs

_Y_WEIGHTS = (65.481, 128.553, 24.966)  # MATLAB rgb2ycbcr, for RGB in [0, 1] -> Y in [16, 235]
_GRAY_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)  # MATLAB rgb2gray
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

# The last few tensors converted to levels: every FR metric of one image receives the same SR
# and GT tensor objects (score_batch), so the float64 conversion is done once per image, not
# once per metric. Weak references: a freed tensor can never be mistaken for a new one.
_LEVELS_MEMO: list[tuple[weakref.ref, int, np.ndarray]] = []
_MEMO_SIZE = 4


def _levels(x: torch.Tensor) -> np.ndarray:
    """[0,1] float -> uint8 levels as a numpy ``(N, C, H, W)`` array, shared between the FR
    metrics of one image (see above). The inputs are quantised already (``k/255``), so float32
    ``x*255`` rounds exactly to ``k``; values outside [0, 1] are clamped (an SR PNG is)."""
    _LEVELS_MEMO[:] = [entry for entry in _LEVELS_MEMO if entry[0]() is not None]  # drop freed ones
    for ref, version, arr in _LEVELS_MEMO:
        if ref() is x and version == x._version:
            return arr
    arr = (x.detach().to("cpu", torch.float32) * 255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()
    _LEVELS_MEMO.insert(0, (weakref.ref(x), x._version, arr))
    del _LEVELS_MEMO[_MEMO_SIZE:]
    return arr


def _crop(x: np.ndarray, border: int) -> np.ndarray:
    return x[..., border:-border, border:-border] if border else x


def psnr_levels(a: np.ndarray, b: np.ndarray) -> list[float]:
    """PSNR of level batches ``(N, C, H, W)``: 10 log10(255^2 / MSE) per image. uint8 levels
    take an exact integer sum of squares (the value BasicSR's float64 ``np.mean((img - img2)**2)``
    gives, since its partial sums are exact integers too) at a fraction of the cost."""
    out = []
    for ai, bi in zip(a, b):
        if ai.dtype == np.uint8 and bi.dtype == np.uint8:
            d = (ai.astype(np.int64) - bi).ravel()  # int64: the sum of squares cannot overflow
            mse = int(np.dot(d, d)) / d.size
        else:
            mse = float(np.mean((ai.astype(np.float64) - bi) ** 2))
        out.append(math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse))
    return out


def _blur(x: np.ndarray, border: int) -> np.ndarray:
    """Gaussian 11x11, sigma 1.5 of an ``(H, W[, C])`` float64 array as cv2's separable filter
    (same taps as BasicSR's ``cv2.filter2D`` with the outer-product window; differs by float64
    rounding only, ~1e-14 on SSIM, at ~10x fewer operations)."""
    return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=border)


def _ssim_image(x: np.ndarray, y: np.ndarray, padding: str) -> float:
    """SSIM of one ``(C, H, W)`` float64 level image pair: BasicSR's ``_ssim`` formula, mean
    over channels and pixels; ``valid`` keeps BasicSR's ``[5:-5, 5:-5]`` region, ``replicate``
    is MATLAB's same-size map with replicated borders."""
    cv2.setNumThreads(torch.get_num_threads())  # follow the process's thread setting (rsr-bench --threads)
    x = np.ascontiguousarray(x.transpose(1, 2, 0), dtype=np.float64)
    y = np.ascontiguousarray(y.transpose(1, 2, 0), dtype=np.float64)
    replicate = padding == "replicate"
    border = cv2.BORDER_REPLICATE if replicate else cv2.BORDER_REFLECT_101
    keep = (slice(None), slice(None)) if replicate else (slice(5, -5), slice(5, -5))

    def blur(z: np.ndarray) -> np.ndarray:
        out = _blur(z, border)[keep]
        return out if out.ndim == 3 else out[..., None]

    mu1, mu2 = blur(x), blur(y)
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    sigma1_sq = blur(x * x) - mu1_sq
    sigma2_sq = blur(y * y) - mu2_sq
    sigma12 = blur(x * y) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + _C1) * (2 * sigma12 + _C2)) / ((mu1_sq + mu2_sq + _C1) * (sigma1_sq + sigma2_sq + _C2))
    return float(np.mean([ssim_map[..., c].mean() for c in range(ssim_map.shape[-1])]))


def ssim_levels(a: np.ndarray, b: np.ndarray, *, padding: str = "valid") -> list[float]:
    """Wang et al. SSIM of level batches ``(N, C, H, W)`` (uint8 or float64; computed in float64).

    ``padding="valid"`` is BasicSR's convention; ``"replicate"`` gives MATLAB's same-size map.
    """
    return [_ssim_image(x, y, padding) for x, y in zip(a, b)]


def _luma(levels: np.ndarray, weights: tuple[float, float, float], offset: float, rescale: float) -> np.ndarray:
    """Weighted channel sum of ``(N, 3, H, W)`` levels, added in B, G, R order: BasicSR works on
    cv2's BGR arrays (``np.dot(img, [24.966, 128.553, 65.481])``), and the same order makes our
    float64 sum bit-identical to it instead of 1 ulp off."""
    x = levels.astype(np.float64) / rescale
    b, g, r = x[:, 2:3] * weights[2], x[:, 1:2] * weights[1], x[:, 0:1] * weights[0]
    return b + g + r + offset


def y_channel(levels: np.ndarray) -> np.ndarray:
    """BasicSR ``to_y_channel``: MATLAB rgb2ycbcr luma in [16, 235], unrounded, float64."""
    return _luma(levels, _Y_WEIGHTS, 16.0, 255.0)


def gray_channel(levels: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` on uint8 input: weighted sum rounded to uint8 levels."""
    return _luma(levels, _GRAY_WEIGHTS, 0.0, 1.0).round().clip(0, 255)


class _FullRef:
    """Shared plumbing: convert to levels, project to the declared colour space, crop."""

    project = staticmethod(lambda levels: levels)

    def __init__(self, spec: MetricSpec, device: torch.device) -> None:
        self.spec = spec
        self.device = device

    def _prepare(self, sr: torch.Tensor, ref: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
        check_inputs(self.spec, sr, ref)
        a = _crop(self.project(_levels(sr)), self.spec.crop)
        b = _crop(self.project(_levels(ref)), self.spec.crop)
        return a, b


class Psnr(_FullRef):
    def __call__(self, sr: torch.Tensor, ref: torch.Tensor | None = None) -> list[float]:
        return psnr_levels(*self._prepare(sr, ref))


class Ssim(_FullRef):
    padding = "valid"

    def __call__(self, sr: torch.Tensor, ref: torch.Tensor | None = None) -> list[float]:
        return ssim_levels(*self._prepare(sr, ref), padding=self.padding)


class PsnrY(Psnr):
    project = staticmethod(y_channel)


class SsimY(Ssim):
    project = staticmethod(y_channel)


class SsimGray(Ssim):
    project = staticmethod(gray_channel)
    padding = "replicate"
