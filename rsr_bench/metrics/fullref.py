"""Full-reference distortion metrics (PSNR, SSIM and their declared variants), in float64.

Conventions follow RSR's published evaluation (BasicSR ``calculate_psnr`` / ``calculate_ssim``):
uint8-level inputs, border crop, Gaussian 11x11 sigma 1.5 SSIM over the 'valid' region, mean over
channels. The Y variants use BasicSR's ``test_y_channel`` luma (MATLAB ``rgb2ycbcr`` limited
range 16-235, not rounded); ``ssim_gray`` reproduces MATLAB ``ssim`` on ``rgb2gray`` images (the
convention of the official calibration values), with replicate padding and a same-size map.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .table import MetricSpec, check_inputs

_Y_WEIGHTS = (65.481, 128.553, 24.966)  # MATLAB rgb2ycbcr, for RGB in [0, 1] -> Y in [16, 235]
_GRAY_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)  # MATLAB rgb2gray


def _levels(x: torch.Tensor) -> torch.Tensor:
    """[0,1] float -> float64 uint8 levels (inputs are already quantised; rounding is exact)."""
    return (x.detach().to(torch.float64) * 255.0).round()


def _crop(x: torch.Tensor, border: int) -> torch.Tensor:
    return x[..., border:-border, border:-border] if border else x


def psnr_levels(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """PSNR of uint8-level float64 batches ``(N, C, H, W)``: 10 log10(255^2 / MSE) per image."""
    mse = ((a - b) ** 2).flatten(1).mean(1)
    return [math.inf if m == 0 else 10.0 * math.log10(255.0**2 / m) for m in mse.tolist()]


def _gaussian_taps(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def _gaussian_filter(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """'valid' 2-D Gaussian filtering of ``(B, C, H, W)`` as two 1-D passes (same result as the
    11x11 outer-product window up to float64 rounding, about 10x fewer operations)."""
    c = x.shape[1]
    k = taps.to(x)
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim_levels(a: torch.Tensor, b: torch.Tensor, *, padding: str = "valid") -> list[float]:
    """Wang et al. SSIM of uint8-level float64 batches, mean over channels and pixels.

    ``padding="valid"`` is BasicSR's convention; ``"replicate"`` gives MATLAB's same-size map.
    """
    n, c, h, w = a.shape
    x = a.reshape(n * c, 1, h, w)
    y = b.reshape(n * c, 1, h, w)
    if padding == "replicate":
        x = F.pad(x, (5, 5, 5, 5), mode="replicate")
        y = F.pad(y, (5, 5, 5, 5), mode="replicate")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    stats = _gaussian_filter(torch.cat([x, y, x * x, y * y, x * y], dim=1), _gaussian_taps())
    mu_x, mu_y, exx, eyy, exy = stats.unbind(1)
    sxx, syy, sxy = exx - mu_x**2, eyy - mu_y**2, exy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return ssim_map.reshape(n, -1).mean(1).tolist()


def _luma(levels: torch.Tensor, weights: tuple[float, float, float], offset: float, rescale: float) -> torch.Tensor:
    wt = torch.tensor(weights, dtype=torch.float64, device=levels.device).view(1, 3, 1, 1)
    return (levels / rescale * wt).sum(1, keepdim=True) + offset


def y_channel(levels: torch.Tensor) -> torch.Tensor:
    """BasicSR ``to_y_channel``: MATLAB rgb2ycbcr luma in [16, 235], unrounded, float64."""
    return _luma(levels, _Y_WEIGHTS, 16.0, 255.0)


def gray_channel(levels: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2gray`` on uint8 input: weighted sum rounded to uint8 levels."""
    return _luma(levels, _GRAY_WEIGHTS, 0.0, 1.0).round().clamp(0, 255)


class _FullRef:
    """Shared plumbing: convert to levels, project to the declared colour space, crop."""

    project = staticmethod(lambda levels: levels)

    def __init__(self, spec: MetricSpec, device: torch.device) -> None:
        self.spec = spec
        self.device = device

    def _prepare(self, sr: torch.Tensor, ref: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
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
