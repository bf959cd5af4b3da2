"""The metric table: every metric's facts in one row, and the protocol implementations follow.

Add a metric by adding a :class:`MetricSpec` row to :data:`METRIC_TABLE` and its implementation.

Defaults of the underlying libraries disagree (RGB vs Y, which Y, crop, data range), so every
convention is declared here and printed in reports; nothing is implicit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import torch


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
    min_size: int = 1  # smallest side (after crop) the metric can score

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    def conventions(self) -> str:
        """One line for report footnotes."""
        return (
            f"{self.name} ({self.kind}, {'higher' if self.higher_is_better else 'lower'} is better): "
            f"{self.colour}, crop {self.crop} px, {self.input} input; {self.implementation}. {self.description}"
        ).strip()


@runtime_checkable
class Metric(Protocol):
    """Scores a batch: ``sr`` (and ``ref`` for FR) are ``(N,3,H,W)`` RGB float in [0, 1].

    Returns one float per image. Raises :class:`rsr_bench.errors.NotComputable` when an image
    cannot be scored (too small, ...); callers score one image at a time when sizes differ.
    Expensive state (networks, model files) is built once in the factory.
    """

    spec: MetricSpec

    def __call__(self, sr: torch.Tensor, ref: torch.Tensor | None = None) -> list[float]: ...


_FR = "rsr_bench.metrics.fullref"

METRIC_TABLE: list[MetricSpec] = [
    MetricSpec(
        name="psnr",
        kind="FR",
        higher_is_better=True,
        colour="RGB (all 3 channels)",
        crop=4,
        input="uint8",
        implementation="rsr_bench (float64, 10*log10(255^2/MSE), RSR/BasicSR convention)",
        factory=f"{_FR}:Psnr",
        description="As RSR's published evaluation (options/test/RSR.yml).",
    ),
    MetricSpec(
        name="ssim",
        kind="FR",
        higher_is_better=True,
        colour="RGB (mean over channels)",
        crop=4,
        input="uint8",
        implementation="rsr_bench (float64, Gaussian 11x11 sigma 1.5 as two separable passes, valid, C1=(0.01*255)^2, C2=(0.03*255)^2)",
        factory=f"{_FR}:Ssim",
        description="As RSR/BasicSR calculate_ssim, no downsampling.",
        min_size=11,
    ),
    MetricSpec(
        name="psnr_y",
        kind="FR",
        higher_is_better=True,
        colour="Y (BT.601 limited range 16-235, MATLAB rgb2ycbcr)",
        crop=4,
        input="uint8",
        implementation="rsr_bench (float64, BasicSR test_y_channel convention)",
        factory=f"{_FR}:PsnrY",
        description="The SR literature's usual PSNR (e.g. bicubic x4 Set5 ~28.4 dB).",
    ),
    MetricSpec(
        name="ssim_y",
        kind="FR",
        higher_is_better=True,
        colour="Y (BT.601 limited range 16-235, MATLAB rgb2ycbcr)",
        crop=4,
        input="uint8",
        implementation="rsr_bench (float64, Gaussian 11x11 sigma 1.5, valid)",
        factory=f"{_FR}:SsimY",
        description="BasicSR test_y_channel SSIM.",
        min_size=11,
    ),
    MetricSpec(
        name="psnr_nocrop",
        kind="FR",
        higher_is_better=True,
        colour="RGB (all 3 channels)",
        crop=0,
        input="uint8",
        implementation="rsr_bench (float64)",
        factory=f"{_FR}:PsnrNoCrop",
        description="Matches the official calibration CSV convention (pyiqa ResultsCalibra).",
    ),
    MetricSpec(
        name="ssim_gray",
        kind="FR",
        higher_is_better=True,
        colour="grey (MATLAB rgb2gray: 0.2989 R + 0.5870 G + 0.1140 B, rounded to uint8)",
        crop=0,
        input="uint8",
        implementation="rsr_bench (float64, MATLAB ssim: Gaussian sigma 1.5, 11x11, same-size output, no downsampling)",
        factory=f"{_FR}:SsimGray",
        description="The convention of the official calibration values (MATLAB ssim on rgb2gray).",
        min_size=11,
    ),
    MetricSpec(
        name="lpips",
        kind="FR",
        higher_is_better=False,
        colour="RGB, [0,1] scaled to [-1,1] (lpips normalize=True)",
        crop=0,
        input="float",
        implementation="lpips 0.1.4 LPIPS(net='alex', version='0.1'), ImageNet AlexNet + v0.1 heads from the asset cache",
        factory="rsr_bench.metrics.perceptual:Lpips",
        description="As RSR evaluates it: unrounded SR output, full image, mean of per-image values.",
        min_size=31,
    ),
    MetricSpec(
        name="niqe",
        kind="NR",
        higher_is_better=False,
        colour="Y (YIQ, full range 0.299/0.587/0.114), rounded to uint8 levels",
        crop=0,
        input="uint8",
        implementation="pyiqa 0.1.16 NIQE, official LIVE pristine model (niqe-pris-params asset)",
        factory="rsr_bench.metrics.noref:Niqe",
        description="96x96 blocks, two scales (MATLAB bicubic imresize); needs at least two whole blocks.",
        min_size=96,
    ),
    MetricSpec(
        name="brisque",
        kind="NR",
        higher_is_better=False,
        colour="Y (YIQ, full range 0.299/0.587/0.114), 0-255",
        crop=0,
        input="uint8",
        implementation="pyiqa 0.1.16 BRISQUE version='original', official LIVE SVR (brisque-live-svr asset), float32",
        factory="rsr_bench.metrics.noref:Brisque",
        description="Each image scored alone (pyiqa's float32 result depends slightly on batch composition).",
        min_size=16,
    ),
    MetricSpec(
        name="piqe",
        kind="NR",
        higher_is_better=False,
        colour="Y (YIQ, full range), scaled by the image maximum",
        crop=0,
        input="uint8",
        implementation="pyiqa 0.1.16 PIQE (port of MATLAB piqe), 16x16 blocks, range 0-100",
        factory="rsr_bench.metrics.noref:Piqe",
        description="A constant image (no active block) scores 100, as the MATLAB formula gives.",
        min_size=16,
    ),
]


