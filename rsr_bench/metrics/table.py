"""The declared metric table. Add a metric by adding a :class:`MetricSpec` here."""

from __future__ import annotations

from .base import MetricSpec

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
        implementation="rsr_bench (float64, Gaussian 11x11 sigma 1.5, valid, C1=(0.01*255)^2, C2=(0.03*255)^2)",
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
]
