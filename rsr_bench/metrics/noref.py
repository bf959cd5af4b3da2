"""No-reference metrics NIQE, BRISQUE and PIQE: pyiqa 0.1.16's implementations, explicit model files.

Why wrap pyiqa instead of calling ``pyiqa.create_metric``: its default path downloads model files
from Hugging Face on first use (fails offline) and gives a crash or a silent NaN for images it
cannot score. Here the official LIVE models come from the verified asset cache
(``niqe-pris-params``, ``brisque-live-svr``), the convention is pinned (pyiqa defaults: Y of YIQ,
i.e. full-range 0.299/0.587/0.114; NIQE 96x96 blocks at two scales; BRISQUE ``version='original'``;
PIQE 16x16 blocks), and unscoreable images raise :class:`~rsr_bench.errors.NotComputable`.

Batches are split so one call sees at most :data:`PIXEL_BUDGET` pixels (NIQE and BRISQUE work in
float64); a single image is always scored whole because tiling would change the statistics.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator

import torch

from ..errors import NotComputable
from ..fetch.assets import asset_provenance, ensure_asset
from .table import MetricSpec, check_inputs, rgb_batch

PIXEL_BUDGET = 4 * 1024 * 1024

_patch_lock = threading.Lock()


def _correlate_taps(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """'valid' 2-D cross-correlation of ``(N,C,H,W)`` with a small ``(kh,kw)`` kernel as a sum of
    shifted slices. Same arithmetic as ``conv2d`` up to summation order (float64: ~1e-15), but
    ~15x faster on CPU, where float64 ``conv2d`` has no fast kernel."""
    kh, kw = kernel.shape
    h, w = x.shape[-2] - kh + 1, x.shape[-1] - kw + 1
    out = torch.zeros(*x.shape[:-2], h, w, dtype=x.dtype, device=x.device)
    for i in range(kh):
        for j in range(kw):
            out.add_(x[..., i:i + h, j:j + w], alpha=float(kernel[i, j]))
    return out


def _gauss_normalize_fast(img: torch.Tensor, kernel_size: int = 7, sigma: float = 7.0 / 6, C: int = 1,
                          padding: str = "same") -> torch.Tensor:
    """pyiqa's ``normalize_img_with_gauss`` (MSCN) with its own kernel and padding, but the two
    float64 Gaussian filters done by :func:`_correlate_taps` (they are 70% of NIQE's time)."""
    from pyiqa.archs.func_util import safe_sqrt
    from pyiqa.matlab_utils import ExactPadding2d, fspecial

    kernel = fspecial(kernel_size, sigma, 1).to(img)[0, 0]  # float32-rounded, exactly as pyiqa
    pad = ExactPadding2d(kernel.shape, 1, 1, mode=padding)
    mu = _correlate_taps(pad(img), kernel)
    std = _correlate_taps(pad(img**2), kernel)
    return (img - mu) / (safe_sqrt((std - mu**2).abs()) + C)


@contextlib.contextmanager
def _fast_niqe_filters() -> Iterator[None]:
    """Use :func:`_gauss_normalize_fast` inside pyiqa's NIQE for the duration of our call only
    (other users of pyiqa in this process, e.g. the benchmark's baseline, are unaffected)."""
    from pyiqa.archs import niqe_arch

    with _patch_lock:
        original = niqe_arch.normalize_img_with_gauss
        niqe_arch.normalize_img_with_gauss = _gauss_normalize_fast
        try:
            yield
        finally:
            niqe_arch.normalize_img_with_gauss = original


class _NoRef:
    """Shared plumbing: size checks (the row's rule), sub-batching, device, finite results."""

    needs_texture = True  # NIQE/BRISQUE fit distributions to MSCN coefficients: undefined if constant
    one_at_a_time = False  # score each image alone so its value never depends on its batch-mates

    def __init__(self, spec: MetricSpec, device: torch.device | str = "cpu") -> None:
        self.spec = spec
        self.device = torch.device(device)
        self.provenance: dict = {}
        self.net = self._build().to(self.device).eval()

    def _build(self) -> torch.nn.Module:
        raise NotImplementedError

    def _score(self, x: torch.Tensor) -> list[float]:
        return self.net(x).flatten().double().tolist()

    def __call__(self, sr: torch.Tensor, ref: torch.Tensor | None = None) -> list[float]:
        x = rgb_batch(sr).float()
        check_inputs(self.spec, x, None)
        if self.needs_texture and bool((x.flatten(1).amax(1) == x.flatten(1).amin(1)).any()):
            raise NotComputable(f"{self.spec.name}: a constant image has no natural-scene statistics")
        step = 1 if self.one_at_a_time else max(1, PIXEL_BUDGET // (x.shape[-2] * x.shape[-1]))
        out: list[float] = []
        with torch.inference_mode():
            for i in range(0, x.shape[0], step):
                chunk = x[i:i + step].to(self.device)
                try:
                    out.extend(self._score(chunk))
                except (torch.linalg.LinAlgError, AssertionError, RuntimeError) as exc:
                    if isinstance(exc, RuntimeError) and "out of memory" in str(exc):
                        raise
                    raise NotComputable(f"{self.spec.name}: statistics cannot be estimated ({exc})") from None
        for v in out:
            if not math.isfinite(v):
                raise NotComputable(f"{self.spec.name}: non-finite result ({v})")
        return out


class Niqe(_NoRef):
    """NIQE with the official LIVE pristine model (pyiqa ``niqe``)."""

    def _build(self) -> torch.nn.Module:
        from pyiqa.archs.niqe_arch import NIQE

        path = ensure_asset("niqe-pris-params")
        self.provenance = {"niqe-pris-params": asset_provenance("niqe-pris-params")}
        return NIQE(test_y_channel=True, color_space="yiq", pretrained_model_path=str(path))

    def _score(self, x: torch.Tensor) -> list[float]:
        if x.device.type != "cpu":  # on a GPU 98 small shifted adds lose to one float64 conv
            return super()._score(x)
        with _fast_niqe_filters():
            return super()._score(x)


class Brisque(_NoRef):
    """BRISQUE with the official LIVE SVR (pyiqa ``brisque``, ``version='original'``)."""

    # pyiqa computes BRISQUE in float32 and picks the AGGD shape from a discrete grid, so the
    # summation order of a batched convolution moves scores by up to ~0.01: score images alone.
    one_at_a_time = True

    def _build(self) -> torch.nn.Module:
        from pyiqa.archs.brisque_arch import BRISQUE

        path = ensure_asset("brisque-live-svr")
        self.provenance = {"brisque-live-svr": asset_provenance("brisque-live-svr")}
        sv_coef, sv = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code
        net = BRISQUE.__new__(BRISQUE)
        torch.nn.Module.__init__(net)
        # The attributes pyiqa's BRISQUE.__init__ sets for version='original' (it would torch.load
        # the file with weights_only=False, which we refuse to do).
        net.kernel_size, net.kernel_sigma, net.test_y_channel = 7, 7 / 6, True
        net.sv_coef, net.sv = sv_coef, sv
        net.gamma, net.rho, net.scale, net.version = 0.05, -153.591, 1, "original"
        return net

    def _score(self, x: torch.Tensor) -> list[float]:
        # pyiqa keeps sv/sv_coef as plain attributes (not buffers): move them with the input.
        if self.net.sv.device != x.device:
            self.net.sv, self.net.sv_coef = self.net.sv.to(x.device), self.net.sv_coef.to(x.device)
        return super()._score(x)


class Piqe(_NoRef):
    """PIQE, pyiqa's port of MATLAB ``piqe()`` (16x16 blocks, 0-100); needs no model file."""

    needs_texture = False

    def _build(self) -> torch.nn.Module:
        from pyiqa.archs.piqe_arch import PIQE

        self.provenance = {"model": "none (analytic)"}
        return PIQE()

    def _score(self, x: torch.Tensor) -> list[float]:
        # MATLAB/pyiqa divide by the image maximum: an all-black image would give 0/0. Every
        # constant image has no active block, so the formula gives 100 (C / C * 100); use a
        # maximum of 1 for black images to get that same value instead of NaN.
        black = x.flatten(1).amax(1) == 0
        if bool(black.any()):
            x = x.clone()
            x[black] = 1.0 / 255.0
        return super()._score(x)
