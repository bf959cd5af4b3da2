"""Natural-scene statistics shared by NIQE, BRISQUE and PIQE (rsr_bench's own implementation).

The three no-reference metrics start from the same place: the luminance (Y of YIQ, full range
0.299/0.587/0.114), its MSCN coefficients (Mittal et al.: the image minus a local Gaussian mean,
divided by the local standard deviation plus 1; 7x7 window, sigma 7/6 as MATLAB ``fspecial``)
and, for NIQE/BRISQUE, a second scale at half size (MATLAB ``imresize`` bicubic with
antialiasing) and generalised-Gaussian shape fits by table look-up (shapes 0.2:0.001:10).

The arithmetic follows the pyiqa 0.1.16 conventions the scores were calibrated and published
with (MATLAB's rounding of the Y channel, a Gaussian kernel rounded to float32, a float32
half-scale resize, the same grid and operation order), so our values equal the previous
pyiqa-backed ones: NIQE to ~1e-15 (float64), BRISQUE and PIQE (float32, as published) bit for bit
on the reference machine. The convolutions are cv2's (10x faster than torch's on a CPU); the
reductions are torch's, whose float32 summation order the published numbers carry.
"""

from __future__ import annotations

import functools
import math
import weakref

import cv2
import numpy as np
import torch

#: Rows of the RGB -> YIQ matrix (NTSC); only Y is used.
YIQ = ((0.299, 0.587, 0.114), (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112))
GRID_STEP = 0.001  # shape grid of the (A)GGD fits: 0.2, 0.201, ..., 10
MSCN_SIZE, MSCN_SIGMA = 7, 7.0 / 6.0

_luma_cache: list = []  # [(weakref to the input, its version, Y)]: the last input only


def luma(x: torch.Tensor) -> torch.Tensor:
    """Y of YIQ of ``(N,3,H,W)`` RGB in [0, 1] -> ``(N,1,H,W)`` float32 in [0, 1].

    Computed as the full YIQ matrix product in float32, as the published code: NIQE/BRISQUE
    round 255 Y, and values like k + 0.5 round by their last bit. The last batch's result is
    kept (weakly referenced, so never confused with a later tensor): the three metrics scoring
    one batch (``score_batch`` passes each the same tensor) convert it once.
    """
    if _luma_cache:
        ref, version, y = _luma_cache[0]
        if ref() is x and x._version == version:
            return y
    w = torch.tensor(YIQ, dtype=torch.float32).t().to(x.device)
    y = torch.matmul(x.float().permute(0, 2, 3, 1), w)[..., :1].permute(0, 3, 1, 2).contiguous()
    _luma_cache[:] = [(weakref.ref(x), x._version, y)]
    return y


def luma_255(y: torch.Tensor) -> torch.Tensor:
    """Luminance in [0, 1] -> 0-255 rounded to integer levels (float32), the NIQE/BRISQUE input
    (MATLAB: the metrics read uint8 images, and Y is rounded)."""
    return (y * 255).round()


@functools.cache
def gaussian_window() -> np.ndarray:
    """MATLAB ``fspecial('gaussian', 7, 7/6)``, normalised in float64 then rounded to float32
    (the published implementations filter with the float32 kernel, also in float64)."""
    r = (MSCN_SIZE - 1) / 2
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * MSCN_SIGMA * MSCN_SIGMA))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return (h / h.sum()).astype(np.float32)


def _filter(img: np.ndarray, k: np.ndarray, border: int) -> np.ndarray:
    """'same' correlation of ``(H,W)`` with the 7x7 window. cv2's ``filter2D`` sums the taps in
    row-major order with fused multiply-adds, as torch's float32 ``conv2d`` (the published
    scores') does, but ~10x faster; only its scalar tail (the last W mod 8 columns with AVX2)
    rounds each product separately, so in float32 the last W mod 16 columns are recomputed
    here with the fused rounding (float64 product and sum, one rounding to float32)."""
    out = cv2.filter2D(img, -1, k, borderType=border)
    tail = img.shape[1] % 16 if img.dtype == np.float32 else 0
    if tail:
        r = k.shape[0] // 2
        mode = "edge" if border == cv2.BORDER_REPLICATE else "constant"
        p = np.pad(img[:, -(tail + r):], ((r, r), (0, r)), mode=mode)
        if tail + r > img.shape[1]:  # narrower than the window: the left border too
            p = np.pad(img, ((r, r), (r, r)), mode=mode)
        p = p[:, -(tail + 2 * r):].astype(np.float64)
        acc = np.zeros((img.shape[0], tail), np.float32)
        for i in range(k.shape[0]):
            for j in range(k.shape[1]):
                acc = (acc + p[i:i + img.shape[0], j:j + tail] * np.float64(k[i, j])).astype(np.float32)
        out[:, -tail:] = acc
    return out


def _mscn(img: np.ndarray, border: int) -> np.ndarray:
    """MSCN of one ``(H,W)`` image in its own dtype: (x - mu) / (sigma + 1) with mu, sigma the
    local Gaussian mean and standard deviation. The square root is torch's (its float32
    ``sqrt`` is not always correctly rounded, and the published float32 scores used it)."""
    k = gaussian_window().astype(img.dtype)
    mu = _filter(img, k, border)
    sq = _filter(img * img, k, border)
    var = np.abs(sq - mu * mu) + np.finfo(img.dtype).eps
    sigma = torch.from_numpy(var).sqrt_().numpy()
    return (img - mu) / (sigma + 1)


def mscn_f64(img: np.ndarray) -> np.ndarray:
    """MSCN of a float64 ``(H,W)`` image, replicated borders (NIQE)."""
    return _mscn(img.astype(np.float64, copy=False), cv2.BORDER_REPLICATE)


def mscn_f32(img: torch.Tensor, border: str) -> torch.Tensor:
    """MSCN of float32 ``(N,1,H,W)`` on the CPU, borders ``"constant"`` (zeros: BRISQUE) or
    ``"replicate"`` (PIQE), as the published float32 scores were computed."""
    flag = {"constant": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE}[border]
    arr = img.detach().float().cpu().numpy()
    out = np.stack([_mscn(np.ascontiguousarray(a[0]), flag) for a in arr])[:, None]
    return torch.from_numpy(out).to(img.device)


@functools.lru_cache(maxsize=4)
def half_scale_weights() -> torch.Tensor:
    """The 10 taps of MATLAB ``imresize(x, 0.5)`` (bicubic a=-0.5, antialiasing: the kernel
    stretched by 2), float32. Output i reads inputs 2i-4 .. 2i+5 (symmetric borders)."""
    dist = torch.tensor(4.5, dtype=torch.float32) - torch.arange(10, dtype=torch.float32)
    t = (dist * 0.5).abs()
    near = (1.5 * t**3 - 2.5 * t**2 + 1) * (t <= 1).float()
    far = (-0.5 * t**3 + 2.5 * t**2 - 4 * t + 2) * ((t > 1) & (t <= 2)).float()
    w = near + far
    return w / w.sum()


def _half_1d(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Halve float32 ``(N,1,H,W)`` along ``dim`` (-2 or -1) to ceil(n/2): output i is the
    weighted sum of inputs 2i-4 .. 2i+5 (summed in that order), borders mirrored with the edge
    repeated (MATLAB)."""
    n = x.shape[dim]
    out = math.ceil(n / 2)
    pre, post = 4, 2 * out + 4 - n
    padded = torch.cat([x.narrow(dim, 0, pre).flip(dim), x, x.narrow(dim, n - post, post).flip(dim)], dim=dim)
    weights = half_scale_weights().tolist()
    acc = torch.zeros(())
    for k, wk in enumerate(weights):
        tap = padded.narrow(dim, k, 2 * out - 1)
        tap = tap[..., ::2, :] if dim == -2 else tap[..., ::2]
        acc = acc + tap * torch.tensor(wk, dtype=torch.float32)
    return acc


def half_scale(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``imresize(x, 0.5)`` (bicubic, antialiasing) of ``(N,1,H,W)``, computed in float32
    (as the published NIQE/BRISQUE numbers were); rows first, then columns."""
    return _half_1d(_half_1d(x.float(), -2), -1)


@functools.lru_cache(maxsize=4)
def shape_grid(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The shape grid 0.2:0.001:10 (float32 steps, as the published code) and, in ``dtype``,
    the generalised Gaussian ratio r(a) = G(1/a)G(3/a)/G(2/a)^2 and its AGGD counterpart
    rho(a) = G(2/a)^2 / (G(1/a)G(3/a))."""
    grid = torch.arange(0.2, 10 + GRID_STEP, GRID_STEP).to(dtype)
    lg1, lg2, lg3 = torch.lgamma(1 / grid), torch.lgamma(2 / grid), torch.lgamma(3 / grid)
    return grid, (lg1 + lg3 - 2 * lg2).exp(), (2 * lg2 - (lg1 + lg3)).exp()


def nearest_on_grid(table: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Index of the grid entry nearest ``value`` (the first one on a tie; NaN -> index 0).

    In float64 the table is strictly increasing, so a binary search and a look at the two
    neighbours give the same index as a scan (NIQE fits thousands of blocks); in float32 it
    is not, and the few fits (BRISQUE) scan the whole table as the published code does."""
    if table.dtype != torch.float64 or not bool((table[1:] > table[:-1]).all()):
        return (table - value[..., None]).abs().argmin(dim=-1)
    hi = torch.searchsorted(table, value.contiguous()).clamp(1, len(table) - 1)
    lo = hi - 1
    pick = torch.where((table[hi] - value).abs() < (table[lo] - value).abs(), hi, lo)
    return torch.where(torch.isnan(value), torch.zeros_like(pick), pick)


def aggd_fit(x: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric generalised Gaussian fit (Lasmar et al., moment matching) over ``dims``:
    shape alpha and the left/right standard deviations. NaN where a side has no sample."""
    grid, _, rho_table = (t.to(x.device) for t in shape_grid(x.dtype))
    left, right = x < 0, x > 0
    n_left = left.sum(dim=dims, dtype=torch.float32).to(x.dtype)
    n_right = right.sum(dim=dims, dtype=torch.float32).to(x.dtype)
    sq = x * x
    left_std = ((sq * left).sum(dim=dims) / n_left).sqrt()
    right_std = ((sq * right).sum(dim=dims) / n_right).sqrt()
    g = left_std / right_std
    rhat = x.abs().mean(dim=dims).pow(2) / sq.mean(dim=dims)
    rhat_norm = rhat * (g.pow(3) + 1) * (g + 1) / (g.pow(2) + 1).pow(2)
    alpha = grid[nearest_on_grid(rho_table, rhat_norm)]
    return alpha, left_std, right_std


def ggd_fit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric generalised Gaussian fit of ``(N,1,H,W)``: shape and standard deviation."""
    grid, r_table, _ = (t.to(x.device) for t in shape_grid(x.dtype))
    var = x.pow(2).mean(dim=(-1, -2))
    mean_abs = x.abs().mean(dim=(-1, -2))
    alpha = grid[nearest_on_grid(r_table, (var / mean_abs**2).squeeze(-1))]
    return alpha, var.sqrt().squeeze(-1)


def gamma_ratio(alpha: torch.Tensor, num: float, den: float) -> torch.Tensor:
    """G(num/alpha) / G(den/alpha) by log-gamma."""
    return (torch.lgamma(num / alpha) - torch.lgamma(den / alpha)).exp()
