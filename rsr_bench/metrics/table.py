"""The metric table: every fact about a metric is a field of its row, read from here only.

A row says what the metric measures (kind, direction), its convention (colour, crop, input,
implementation; copied into each cell manifest and printed in report footnotes), the smallest
image it can score, how reports show it (decimals; the table order is the display order),
whether it is in the default set, and how far its means may move in ``rsr-bench check``.
Defaults of the underlying libraries disagree (RGB vs Y, which Y, crop, data range), so every
convention is declared here; nothing is implicit.

Add a metric: one :class:`MetricSpec` row in :data:`METRIC_TABLE` plus one class implementing
:class:`Metric` (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from ..errors import NotComputable

if TYPE_CHECKING:  # no torch at run time: check_inputs/rgb_batch only call tensor methods
    import torch

Tolerance = tuple[float, float]  # (abs, rel): a mean may move by abs + rel * |baseline|

# `check` tolerances of a metric whose row sets none (a baseline file's "default" entry). Suited
# to CPU float nondeterminism across machines (different BLAS/oneDNN code paths flip a few
# uint8-rounded pixels: ~1e-3 dB PSNR, ~1e-5 SSIM, ~1e-5 LPIPS) while a changed resampling
# kernel or a perturbed weight moves these means by 1e-2..1e0; docs/regression-checks.md. On the
# other device kind (GPU vs CPU convolution, TF32 off, differs by ~1e-5 before rounding) a
# little looser. Another precision (fp16) is refused unless the baseline says otherwise.
DEFAULT_TOLERANCE: Tolerance = (1e-3, 1e-3)
DEFAULT_TOLERANCE_OTHER_DEVICE: Tolerance = (5e-3, 5e-3)

#: The fields a cell manifest records per metric (what the report footnotes are made of).
CONVENTION_FIELDS = ("kind", "higher_is_better", "colour", "crop", "input", "implementation", "description",
                     "decimals")


@dataclass(frozen=True)
class MetricSpec:
    """One row of the metric table."""

    name: str
    kind: Literal["FR", "NR"]
    higher_is_better: bool
    colour: str  # e.g. "RGB", "Y (BT.601 limited range, MATLAB rgb2ycbcr)"
    crop: int  # border pixels removed from each side before scoring
    input: Literal["uint8", "float"]  # scored on the uint8-rounded SR, or the unrounded output
    implementation: str  # what computes it, with version
    factory: str  # "module:attr" called as factory(spec, device) -> Metric
    description: str = ""
    min_size: int = 1  # smallest side (after the crop) the metric can score ...
    min_blocks: int = 1  # ... and how many whole min_size x min_size blocks the image must hold
    infinite: str = ""  # why +inf is a legitimate value: scored as "not computable: <this>"; else an error
    decimals: int = 3  # shown in reports and the terminal table
    default: bool = False  # part of the "default" metric selection
    tolerance: Tolerance = DEFAULT_TOLERANCE  # rsr-bench check, same device kind and precision
    tolerance_other_device: Tolerance = DEFAULT_TOLERANCE_OTHER_DEVICE
    assets: tuple[str, ...] = ()  # verified model files (rsr_bench.fetch.assets) the implementation loads

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    def manifest_fields(self) -> dict[str, Any]:
        """The structured convention stored in cell manifests (read back by the report)."""
        return {f: getattr(self, f) for f in CONVENTION_FIELDS}

    def conventions(self) -> str:
        """One line for report footnotes and ``rsr-bench list metrics``."""
        return convention_text(self.name, self.manifest_fields())

    def size_problem(self, height: int, width: int) -> str | None:
        """Why an image of this size cannot be scored, or None: the one "too small" rule."""
        h, w, s = height - 2 * self.crop, width - 2 * self.crop, self.min_size
        if min(h, w) >= s and (h // s) * (w // s) >= self.min_blocks:
            return None
        need = f"{s}x{s} px" if self.min_blocks == 1 else f"{self.min_blocks} whole {s}x{s} blocks"
        after = f" after a {self.crop} px crop" if self.crop else ""
        return f"{self.name}: image {width}x{height} is too small (needs at least {need}{after})"


def convention_text(name: str, fields: Mapping[str, Any]) -> str:
    """The footnote line of a metric from its structured convention (a row or a manifest entry)."""
    better = "higher" if fields.get("higher_is_better", True) else "lower"
    return (
        f"{name} ({fields.get('kind', '?')}, {better} is better): {fields.get('colour', '?')}, "
        f"crop {fields.get('crop', '?')} px, {fields.get('input', '?')} input; {fields.get('implementation', '?')}. "
        f"{fields.get('description', '')}"
    ).strip()


def check_inputs(spec: MetricSpec, sr: torch.Tensor, ref: torch.Tensor | None) -> None:
    """Raise :class:`NotComputable` (with the reason) for inputs ``spec`` cannot score."""
    if spec.kind == "FR":
        if ref is None:
            raise NotComputable(f"{spec.name} needs a ground-truth image")
        if sr.shape != ref.shape:
            raise NotComputable(f"{spec.name}: SR {tuple(sr.shape[-2:])} and GT {tuple(ref.shape[-2:])} differ in size")
    problem = spec.size_problem(*sr.shape[-2:])
    if problem:
        raise NotComputable(problem)


def rgb_batch(x: torch.Tensor) -> torch.Tensor:
    """(3,H,W)/(N,1,H,W)/(N,3,H,W) -> (N,3,H,W) (grey replicated: Y of equal R=G=B is grey)."""
    if x.dim() == 3:
        x = x[None]
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise NotComputable(f"expected 1 or 3 channels, got {x.shape[1]}")
    return x


@runtime_checkable
class Metric(Protocol):
    """Scores a batch: ``sr`` (and ``ref`` for FR) are ``(N,3,H,W)`` RGB float in [0, 1].

    Returns one float per image. Raises :class:`rsr_bench.errors.NotComputable` when an image
    cannot be scored (:func:`check_inputs` covers size and reference; the implementation adds
    its own cases, e.g. a constant image). Expensive state (networks, model files) is built once
    in the factory. NaN/inf policy: see :func:`rsr_bench.metrics.score_batch`.
    """

    spec: MetricSpec

    def __call__(self, sr: torch.Tensor, ref: torch.Tensor | None = None) -> list[float]: ...


_FR = "rsr_bench.metrics.fullref"
_NR = "rsr_bench.metrics.noref"
_PSNR_INF = "SR and GT are identical{}: PSNR is infinite"
_Y = "Y (BT.601 limited range 16-235, MATLAB rgb2ycbcr)"
_PSNR_TOL = {"tolerance": (0.01, 0.0), "tolerance_other_device": (0.03, 0.0)}
_SSIM_TOL = {"tolerance": (2e-4, 0.0), "tolerance_other_device": (1e-3, 0.0)}

# In display order (reports, terminal table, `list metrics`).
METRIC_TABLE: list[MetricSpec] = [
    MetricSpec(
        name="psnr", kind="FR", higher_is_better=True, colour="RGB (all 3 channels)", crop=4, input="uint8",
        implementation="rsr_bench (float64, 10*log10(255^2/MSE), RSR/BasicSR convention)",
        factory=f"{_FR}:Psnr",
        description="As RSR's published evaluation (options/test/RSR.yml).",
        infinite=_PSNR_INF.format(" after the 4 px border crop"), decimals=2, default=True, **_PSNR_TOL,
    ),
    MetricSpec(
        name="ssim", kind="FR", higher_is_better=True, colour="RGB (mean over channels)", crop=4, input="uint8",
        implementation="rsr_bench (float64, Gaussian 11x11 sigma 1.5 as cv2 separable passes, valid, "
                       "C1=(0.01*255)^2, C2=(0.03*255)^2)",
        factory=f"{_FR}:Ssim",
        description="As RSR/BasicSR calculate_ssim, no downsampling.",
        min_size=11, decimals=3, default=True, **_SSIM_TOL,
    ),
    MetricSpec(
        name="lpips", kind="FR", higher_is_better=False, colour="RGB, [0,1] scaled to [-1,1] (lpips normalize=True)",
        crop=0, input="float",
        implementation="rsr_bench in-tree LPIPS AlexNet v0.1 (= lpips 0.1.4 LPIPS(net='alex', version='0.1') "
                       "to 1e-6), ImageNet AlexNet + v0.1 heads from the asset cache",
        factory="rsr_bench.metrics.perceptual:Lpips",
        description="As RSR evaluates it: unrounded SR output, full image, mean of per-image values.",
        min_size=31,  # AlexNet's five stages (conv 11/4, two max-pools 3/2)
        assets=("alexnet-features", "lpips-alex-v0.1-lin"), decimals=3, default=True, tolerance=(5e-4, 0.0), tolerance_other_device=(2e-3, 0.0),
    ),
    MetricSpec(
        name="niqe", kind="NR", higher_is_better=False,
        colour="Y (YIQ, full range 0.299/0.587/0.114), rounded to uint8 levels", crop=0, input="uint8",
        implementation="rsr_bench in-tree NIQE, float64 (= pyiqa 0.1.16 NIQE to 1e-9), official LIVE pristine "
                       "model (niqe-pris-params asset)",
        factory=f"{_NR}:Niqe",
        description="96x96 blocks, two scales (MATLAB bicubic imresize); needs at least two whole blocks.",
        min_size=96, min_blocks=2,  # one block gives a degenerate (zero) covariance
        assets=("niqe-pris-params",), decimals=2, default=True, tolerance=(0.01, 1e-3), tolerance_other_device=(0.03, 3e-3),
    ),
    MetricSpec(
        name="brisque", kind="NR", higher_is_better=False, colour="Y (YIQ, full range 0.299/0.587/0.114), 0-255",
        crop=0, input="uint8",
        implementation="rsr_bench in-tree BRISQUE, float32 (= pyiqa 0.1.16 BRISQUE version='original' to 1e-6), "
                       "official LIVE SVR (brisque-live-svr asset)",
        factory=f"{_NR}:Brisque",
        description="Each image scored alone (a float32 convolution's result can depend on batch composition).",
        min_size=16,  # the 7x7 Gaussian window at full and half resolution
        assets=("brisque-live-svr",), decimals=2, default=True, tolerance=(0.05, 1e-3), tolerance_other_device=(0.2, 3e-3),
    ),
    MetricSpec(
        name="piqe", kind="NR", higher_is_better=False, colour="Y (YIQ, full range), scaled by the image maximum",
        crop=0, input="uint8",
        implementation="rsr_bench in-tree PIQE, float32 (= pyiqa 0.1.16's port of MATLAB piqe to 1e-6), "
                       "16x16 blocks, range 0-100",
        factory=f"{_NR}:Piqe",
        description="A constant image (no active block) scores 100, as the MATLAB formula gives.",
        min_size=16, decimals=2, default=True, tolerance=(0.05, 1e-3), tolerance_other_device=(0.2, 3e-3),
    ),
    MetricSpec(
        name="psnr_y", kind="FR", higher_is_better=True, colour=_Y, crop=4, input="uint8",
        implementation="rsr_bench (float64, BasicSR test_y_channel convention)",
        factory=f"{_FR}:PsnrY",
        description="The SR literature's usual PSNR (e.g. bicubic x4 Set5 ~28.4 dB).",
        infinite=_PSNR_INF.format(" after the 4 px border crop"), decimals=2, **_PSNR_TOL,
    ),
    MetricSpec(
        name="ssim_y", kind="FR", higher_is_better=True, colour=_Y, crop=4, input="uint8",
        implementation="rsr_bench (float64, Gaussian 11x11 sigma 1.5, valid)",
        factory=f"{_FR}:SsimY",
        description="BasicSR test_y_channel SSIM.",
        min_size=11, decimals=3, **_SSIM_TOL,
    ),
    MetricSpec(
        name="psnr_nocrop", kind="FR", higher_is_better=True, colour="RGB (all 3 channels)", crop=0, input="uint8",
        implementation="rsr_bench (float64)",
        factory=f"{_FR}:Psnr",  # the row's crop (0) is the only difference
        description="Matches the official calibration CSV convention (pyiqa ResultsCalibra).",
        infinite=_PSNR_INF.format(""), decimals=2, **_PSNR_TOL,
    ),
    MetricSpec(
        name="ssim_gray", kind="FR", higher_is_better=True,
        colour="grey (MATLAB rgb2gray: 0.2989 R + 0.5870 G + 0.1140 B, rounded to uint8)", crop=0, input="uint8",
        implementation="rsr_bench (float64, MATLAB ssim: Gaussian sigma 1.5, 11x11, same-size output, no downsampling)",
        factory=f"{_FR}:SsimGray",
        description="The convention of the official calibration values (MATLAB ssim on rgb2gray).",
        min_size=11, decimals=3, **_SSIM_TOL,
    ),
]
