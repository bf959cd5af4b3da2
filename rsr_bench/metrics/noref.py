"""No-reference metrics NIQE, BRISQUE and PIQE, implemented here from the published algorithms.

NIQE (Mittal, Soundararajan, Bovik 2013), BRISQUE (Mittal, Moorthy, Bovik 2012, the original
LIVE SVR) and PIQE (Venkatanath et al. 2015, MATLAB ``piqe``), with the conventions of pyiqa
0.1.16, whose values the benchmark was calibrated and published with (Y of YIQ; NIQE 96x96
blocks at two scales, float64; BRISQUE ``version='original'`` and PIQE 16x16 blocks, float32).
The shared steps (luminance, MSCN, half-scale resize, generalised Gaussian fits) live in
:mod:`rsr_bench.metrics.nss`. Why not call pyiqa: importing it costs ~4 s per run (issue 15), its
licence is non-commercial, and its default path downloads model files on first use. pyiqa stays
the test oracle (tests/test_metrics_noref.py compares the two on real images).

The official LIVE models come from the verified asset cache (``niqe-pris-params``, a MATLAB
v5 file read with ``scipy.io.loadmat``; ``brisque-live-svr``, tensors read with
``torch.load(weights_only=True)``); neither runs code from the file. Unscoreable images raise
:class:`~rsr_bench.errors.NotComputable`. Every image is scored alone, so a score never
depends on its batch-mates.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch

from ..errors import NotComputable
from ..files import atomic_write_bytes, sha256_file
from ..fetch.assets import asset_provenance, ensure_asset
from . import nss
from .table import MetricSpec, check_inputs, rgb_batch

NIQE_BLOCK = 96
PIQE_BLOCK = 16
PIQE_ACTIVITY = 0.1  # a block is "spatially active" when its MSCN variance exceeds this
PIQE_EDGE_STD = 0.1  # a block edge segment with a lower std marks a noticeable artifact
PIQE_SEGMENT = 6  # length of the edge segments

# BRISQUE 'original': the RBF SVR's gamma and bias, and the [min, max] of each of the 36
# features over the LIVE training set (scaled to [-1, 1]); from the official MATLAB release
# (live.ece.utexas.edu BRISQUE, allrange / svm model).
BRISQUE_GAMMA, BRISQUE_RHO = 0.05, -153.591
BRISQUE_RANGES = (
    (0.338, 10), (0.017204, 0.806612), (0.236, 1.642), (-0.123884, 0.20293), (0.000155, 0.712298),
    (0.001122, 0.470257), (0.244, 1.641), (-0.123586, 0.179083), (0.000152, 0.710456), (0.000975, 0.470984),
    (0.249, 1.555), (-0.135687, 0.100858), (0.000174, 0.684173), (0.000913, 0.534174), (0.258, 1.561),
    (-0.143408, 0.100486), (0.000179, 0.685696), (0.000888, 0.536508), (0.471, 3.264), (0.012809, 0.703171),
    (0.218, 1.046), (-0.094876, 0.187459), (1.5e-05, 0.442057), (0.001272, 0.40803), (0.222, 1.042),
    (-0.115772, 0.162604), (1.6e-05, 0.444362), (0.001374, 0.40243), (0.227, 0.996), (-0.117188, 0.098323),
    (3e-05, 0.531903), (0.001122, 0.369589), (0.228, 0.99), (-0.12243, 0.098658), (2.8e-05, 0.530092),
    (0.001118, 0.370399),
)


class _NoRef:
    """Shared plumbing: size checks (the row's rule), one image at a time, finite results."""

    needs_texture = True  # NIQE/BRISQUE fit distributions to MSCN coefficients: undefined if constant

    def __init__(self, spec: MetricSpec, device: torch.device | str = "cpu") -> None:
        self.spec = spec
        self.device = torch.device(device)
        self.provenance: dict = {}
        self._build()

    def _build(self) -> None:
        """Load the model file (once per process, by ``create_metric``)."""

    def _score(self, y: torch.Tensor) -> float:
        """Score one image from its ``(1,1,H,W)`` luminance (Y of YIQ, float32 in [0, 1])."""
        raise NotImplementedError

    def __call__(self, sr: torch.Tensor, ref: torch.Tensor | None = None) -> list[float]:
        x = rgb_batch(sr).float()
        check_inputs(self.spec, x, None)
        if self.needs_texture and bool((x.flatten(1).amax(1) == x.flatten(1).amin(1)).any()):
            raise NotComputable(f"{self.spec.name}: a constant image has no natural-scene statistics")
        out: list[float] = []
        with torch.inference_mode():
            y = nss.luma(x.to(self.device))  # shared by the three metrics of one batch
            for i in range(x.shape[0]):
                try:
                    out.append(float(self._score(y[i:i + 1])))
                except torch.linalg.LinAlgError as exc:
                    raise NotComputable(f"{self.spec.name}: statistics cannot be estimated ({exc})") from None
        for v in out:
            if not math.isfinite(v):
                raise NotComputable(f"{self.spec.name}: non-finite result ({v})")
        return out


def _niqe_block_features(blocks: torch.Tensor) -> torch.Tensor:
    """The 18 NIQE features of each ``(B,h,w)`` MSCN block: AGGD shape and mean scale of the
    coefficients, then shape, mean, left and right scale of the products of neighbours along
    the four orientations (each block wraps around itself, as MATLAB ``circshift``)."""
    alpha, left, right = nss.aggd_fit(blocks, (-1, -2))
    to_beta = nss.gamma_ratio(alpha, 1, 3).sqrt()
    feats = [alpha, (left * to_beta + right * to_beta) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        alpha, left, right = nss.aggd_fit(blocks * torch.roll(blocks, shift, dims=(1, 2)), (-1, -2))
        to_beta = nss.gamma_ratio(alpha, 1, 3).sqrt()
        beta_l, beta_r = left * to_beta, right * to_beta
        feats += [alpha, (beta_r - beta_l) * nss.gamma_ratio(alpha, 2, 1), beta_l, beta_r]
    return torch.stack(feats, dim=-1)


def _blocks(img: np.ndarray, size: int) -> torch.Tensor:
    """Whole ``size`` x ``size`` blocks of ``(H,W)``, column by column (MATLAB ``blockproc`` order)."""
    nh, nw = img.shape[0] // size, img.shape[1] // size
    blocks = img[:nh * size, :nw * size].reshape(nh, size, nw, size).transpose(2, 0, 1, 3)
    return torch.from_numpy(np.ascontiguousarray(blocks).reshape(-1, size, size))


def niqe_features(y255: torch.Tensor) -> torch.Tensor:
    """``(blocks, 36)`` features of a ``(1,1,H,W)`` rounded 0-255 luminance: 18 per 96x96 block
    at full scale and 18 of the same region at half scale (48x48)."""
    h, w = (s // NIQE_BLOCK * NIQE_BLOCK for s in y255.shape[-2:])
    img = y255[0, 0, :h, :w].double().cpu().numpy()
    full = _niqe_block_features(_blocks(nss.mscn_f64(img), NIQE_BLOCK))
    half = (nss.half_scale(torch.from_numpy(img / 255.0)[None, None]).double() * 255.0)[0, 0].numpy()
    return torch.cat([full, _niqe_block_features(_blocks(nss.mscn_f64(half), NIQE_BLOCK // 2))], dim=-1)


def niqe_distance(feats: torch.Tensor, mu_pris: torch.Tensor, cov_pris: torch.Tensor) -> float:
    """Distance between the pristine multivariate Gaussian and the one fitted to the blocks'
    features (NIQE eq. 10): mean over each feature's finite values, covariance over the blocks
    with no NaN (a block with a one-sided distribution has undefined features)."""
    finite = ~torch.isnan(feats)
    mu = torch.where(finite, feats, 0).sum(dim=0) / finite.float().sum(dim=0)
    rows = feats[finite.all(dim=1)]
    if rows.shape[0] == 0:
        raise NotComputable("niqe: no block has two-sided MSCN statistics (the image is too flat)")
    cov = torch.cov(rows.t(), correction=1 if rows.shape[0] > 1 else 0)
    diff = (mu_pris - mu)[None]
    return float((diff @ torch.linalg.pinv((cov_pris + cov) / 2) @ diff.t()).sqrt())


def pristine_params(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """NIQE's pristine mean and covariance from the model's .mat file. Importing scipy.io to read
    it costs ~0.4 s per run (issue 15: fixed cost), so the two arrays are also kept beside it as
    ``<file>.<sha256[:16]>.npz`` (plain arrays, loaded without pickle) and read from there next
    time; a cache that cannot be written only costs the import again."""
    cached = path.with_name(f"{path.name}.{sha256_file(path)[:16]}.npz")
    try:
        with np.load(cached, allow_pickle=False) as z:
            return z["mu_prisparam"], z["cov_prisparam"]
    except (OSError, KeyError, ValueError):  # absent or damaged: read the .mat again
        pass
    import scipy.io  # MAT v5 reader: plain arrays, no code execution

    params = scipy.io.loadmat(str(path), variable_names=("mu_prisparam", "cov_prisparam"))
    mu, cov = np.asarray(params["mu_prisparam"], np.float64), np.asarray(params["cov_prisparam"], np.float64)
    buf = io.BytesIO()
    np.savez(buf, mu_prisparam=mu, cov_prisparam=cov)
    try:
        atomic_write_bytes(cached, buf.getvalue())
    except OSError:
        pass
    return mu, cov


class Niqe(_NoRef):
    """NIQE with the official LIVE pristine model (``niqe-pris-params``), float64."""

    def _build(self) -> None:
        path = ensure_asset("niqe-pris-params")
        self.provenance = {"niqe-pris-params": asset_provenance("niqe-pris-params")}
        mu, cov = pristine_params(path)
        self.mu_pris = torch.from_numpy(np.ravel(mu)).double()
        self.cov_pris = torch.from_numpy(cov).double()

    def _score(self, y: torch.Tensor) -> float:
        return niqe_distance(niqe_features(nss.luma_255(y)), self.mu_pris, self.cov_pris)


def brisque_features(y255: torch.Tensor) -> torch.Tensor:
    """The 36 BRISQUE features of ``(N,1,H,W)`` rounded 0-255 luminance, float32: at full and
    half scale, the GGD shape and variance of the MSCN coefficients, then AGGD shape, mean and
    left/right variances of neighbour products along four orientations (whole image, wrapping)."""
    feats = []
    y = y255
    for _ in range(2):
        m = nss.mscn_f32(y, "constant")[:, 0]
        alpha, sigma = nss.ggd_fit(m[:, None])
        feats += [alpha, sigma.pow(2)]
        for shift in ((0, 1), (1, 0), (1, 1), (-1, 1)):
            alpha, left, right = nss.aggd_fit(m * torch.roll(m, shift, dims=(-2, -1)), (-1, -2))
            eta = (right - left) * (torch.lgamma(2.0 / alpha)
                                    - (torch.lgamma(1.0 / alpha) + torch.lgamma(3.0 / alpha)) / 2).exp()
            feats += [alpha, eta, left.pow(2), right.pow(2)]
        y = nss.half_scale(y)
    return torch.stack(feats, dim=-1)


class Brisque(_NoRef):
    """BRISQUE with the official LIVE SVR (``brisque-live-svr``), float32 as published."""

    def _build(self) -> None:
        path = ensure_asset("brisque-live-svr")
        self.provenance = {"brisque-live-svr": asset_provenance("brisque-live-svr")}
        sv_coef, sv = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code
        if sv.dim() != 2 or sv.shape[1] != len(BRISQUE_RANGES) or sv_coef.shape != sv.shape[:1]:
            raise NotComputable(f"brisque: {path} holds support vectors {tuple(sv.shape)} and "
                                f"coefficients {tuple(sv_coef.shape)}, expected (n, 36) and (n,)")
        self.sv = sv.float().to(self.device)  # (n, 36), used transposed: the published summation order
        self.sv_coef = sv_coef.float().to(self.device)
        self.ranges = torch.tensor(BRISQUE_RANGES, dtype=torch.float32, device=self.device)

    def _score(self, y: torch.Tensor) -> float:
        feats = brisque_features(nss.luma_255(y))
        lo, hi = self.ranges[:, 0], self.ranges[:, 1]
        scaled = -1 + 2 * (feats - lo) / (hi - lo)
        dist = (scaled[:, :, None] - self.sv.t()[None]).pow(2).sum(dim=1)
        return float(torch.exp(-dist * BRISQUE_GAMMA) @ self.sv_coef - BRISQUE_RHO)


def _piqe_noise(blocks: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """Blocks whose MSCN look like Gaussian noise: the block's standard deviation against the
    ratio of the std of its two centre columns to that of the rest (the published port keeps
    column 8 in the surround and leaves out column 9; so do we, for the same values)."""
    sigma = var.sqrt()
    centre = blocks[..., 7:9]
    surround = torch.cat([blocks[..., :7], blocks[..., 8:9], blocks[..., 10:]], dim=-1)
    ratio = torch.nan_to_num(centre.std(dim=(2, 3)) / surround.std(dim=(2, 3)))
    beta = (sigma - ratio).abs() / torch.maximum(sigma, ratio)
    return sigma > 2 * beta


def _piqe_artifacts(blocks: torch.Tensor) -> torch.Tensor:
    """Blocks with a noticeable artifact: a flat segment (std < :data:`PIQE_EDGE_STD`) of
    :data:`PIQE_SEGMENT` pixels along any of the four edges."""
    edges = torch.stack([blocks[:, :, 0, :], blocks[:, :, :, -1], blocks[:, :, -1, :], blocks[:, :, :, 0]])
    segments = edges.unfold(-1, PIQE_SEGMENT, 1).contiguous()  # contiguous: the same std, 2x faster
    return ((segments.std(dim=-1) < PIQE_EDGE_STD).sum(dim=3) > 0).any(dim=0)


def piqe_score(y: torch.Tensor) -> torch.Tensor:
    """PIQE of ``(N,1,H,W)`` luminance in [0, 1] (not all zero), float32: scaled by its maximum to
    0-255 and rounded, MSCN (replicated borders), 16x16 blocks; active blocks (MSCN variance >
    0.1) count as distorted by artifacts (1 - variance) or noise (variance); score =
    100 (sum + 1) / (active + 1). Bottom/right padding mirrors H % 16 / W % 16 rows/columns, as
    the published port does (MATLAB pads up to the next multiple of 16)."""
    img = torch.round(255 * (y / y.flatten(1).amax(dim=1).view(-1, 1, 1, 1)))
    h, w = img.shape[-2:]
    rows = torch.cat([torch.arange(h), torch.arange(h - 1, h - 1 - h % PIQE_BLOCK, -1)]).to(img.device)
    cols = torch.cat([torch.arange(w), torch.arange(w - 1, w - 1 - w % PIQE_BLOCK, -1)]).to(img.device)
    img = img[..., rows[:, None], cols]
    m = nss.mscn_f32(img, "replicate")
    blocks = m.unfold(2, PIQE_BLOCK, PIQE_BLOCK).unfold(3, PIQE_BLOCK, PIQE_BLOCK)
    blocks = blocks.contiguous().view(img.shape[0], -1, PIQE_BLOCK, PIQE_BLOCK)
    var = blocks.var(dim=(2, 3), unbiased=True)
    active = (var > PIQE_ACTIVITY).float()
    distorted = active * _piqe_artifacts(blocks).float() * (1 - var) + active * _piqe_noise(blocks, var).float() * var
    return (distorted.sum(dim=1) + 1) / (1 + active.sum(dim=1)) * 100


class Piqe(_NoRef):
    """PIQE (MATLAB ``piqe`` as ported by pyiqa 0.1.16); needs no model file."""

    needs_texture = False

    def _build(self) -> None:
        self.provenance = {"model": "none (analytic)"}

    def _score(self, y: torch.Tensor) -> float:
        if not bool(y.amax() > 0):
            # MATLAB divides by the maximum (0/0 for black); every constant image has no
            # active block, so the formula gives 100: score black images the same way.
            return 100.0
        return float(piqe_score(y))
