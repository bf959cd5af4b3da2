"""LPIPS (AlexNet, v0.1) exactly as RSR evaluates it, with weights from the asset cache.

Why not ``lpips.LPIPS(net='alex')`` directly: it asks torchvision to download the ImageNet
AlexNet at construction, which fails offline, and importing lpips (with torchvision) was most of
a run's fixed cost. :class:`LpipsAlex` is the ``lpips`` package's computation written out
(``normalize=True`` on [0, 1] RGB, full image, spatial average), loaded with the verified
``alexnet-features`` and ``lpips-alex-v0.1-lin`` assets; it equals the package to float32
rounding (tested on the calibration pairs). The network is built once per metric instance
(``create_metric`` caches it).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..fetch.assets import asset_provenance, ensure_asset
from .table import MetricSpec, check_inputs, rgb_batch

#: Sub-batches are split so that one forward pass sees at most this many pixels (memory bound).
PIXEL_BUDGET = 8 * 1024 * 1024


# lpips 0.1.4 (lpips/lpips.py, pretrained_networks.alexnet), written out so that a run does not
# import the lpips package and torchvision (3-4 s of its fixed cost); equal to it to float32
# rounding (tests/test_metrics_calibration.py compares the two on the calibration pairs).
_SHIFT = (-0.030, -0.088, -0.188)  # lpips.ScalingLayer
_SCALE = (0.458, 0.448, 0.450)
# torchvision AlexNet ``features`` indices of the five convs: (in, out, kernel, stride, padding).
_ALEX_CONVS = {"0": (3, 64, 11, 4, 2), "3": (64, 192, 5, 1, 2), "6": (192, 384, 3, 1, 1),
               "8": (384, 256, 3, 1, 1), "10": (256, 256, 3, 1, 1)}


class LpipsAlex(torch.nn.Module):
    """``lpips.LPIPS(net='alex', version='0.1')``: ImageNet AlexNet's relu1..relu5 features of both
    images, unit-normalised over channels, squared differences weighted by the five v0.1 linear
    heads, spatially averaged and summed. ``forward(a, b)`` takes [0, 1] images (lpips'
    ``normalize=True``) and returns ``(N, 1, 1, 1)`` distances like the package."""

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        self.convs = nn.ModuleDict({k: nn.Conv2d(i, o, k_, s, p) for k, (i, o, k_, s, p) in _ALEX_CONVS.items()})
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in (64, 192, 384, 256, 256))
        self.register_buffer("shift", torch.tensor(_SHIFT)[None, :, None, None])
        self.register_buffer("scale", torch.tensor(_SCALE)[None, :, None, None])

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """relu1..relu5 of torchvision AlexNet (lpips' five slices: max-pools before conv 3 and 6)."""
        F = torch.nn.functional
        c = self.convs
        r1 = F.relu(c["0"](x))
        r2 = F.relu(c["3"](F.max_pool2d(r1, 3, 2)))
        r3 = F.relu(c["6"](F.max_pool2d(r2, 3, 2)))
        r4 = F.relu(c["8"](r3))
        return [r1, r2, r3, r4, F.relu(c["10"](r4))]

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa = self.features(((2 * a - 1) - self.shift) / self.scale)
        fb = self.features(((2 * b - 1) - self.shift) / self.scale)
        val = 0
        for lin, xa, xb in zip(self.lins, fa, fb):
            na = xa / (torch.sqrt(torch.sum(xa**2, dim=1, keepdim=True)) + 1e-10)  # lpips.normalize_tensor
            nb = xb / (torch.sqrt(torch.sum(xb**2, dim=1, keepdim=True)) + 1e-10)
            val = val + lin((na - nb) ** 2).mean([2, 3], keepdim=True)  # lpips.spatial_average
        return val


def build_lpips_alex(features: Mapping[str, torch.Tensor] | None, lin: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """The LPIPS AlexNet v0.1 with the given trunk and heads, in eval mode.

    ``features`` uses torchvision names (``features.{0,3,6,8,10}.*``); ``None`` keeps a random
    initialisation (tests use this to show random weights fail calibration).
    """
    model = LpipsAlex()
    with torch.no_grad():
        if features is not None:
            for idx, conv in model.convs.items():
                conv.weight.copy_(features[f"features.{idx}.weight"])
                conv.bias.copy_(features[f"features.{idx}.bias"])
        for k, head in enumerate(model.lins):
            head.weight.copy_(lin[f"lin{k}.model.1.weight"])
    model.eval().requires_grad_(False)
    return model


class Lpips:
    """``metric(sr, ref) -> list[float]`` for ``(N,3,H,W)`` (or ``(N,1,H,W)``) float images in [0, 1]."""

    def __init__(self, spec: MetricSpec, device: torch.device | str = "cpu",
                 features: Mapping[str, torch.Tensor] | None = None, *, download: bool = True) -> None:
        self.spec = spec
        self.device = torch.device(device)
        if features is None:
            features = torch.load(ensure_asset("alexnet-features", download=download),
                                  map_location="cpu", weights_only=True)
            self.provenance = {"alexnet-features": asset_provenance("alexnet-features")}
        else:
            self.provenance = {"alexnet-features": {"source": "caller-supplied"}}
        lin = torch.load(ensure_asset("lpips-alex-v0.1-lin", download=download),
                         map_location="cpu", weights_only=True)
        self.provenance["lpips-alex-v0.1-lin"] = asset_provenance("lpips-alex-v0.1-lin")
        self.net = build_lpips_alex(features, lin).to(self.device)

    def __call__(self, sr: torch.Tensor, ref: torch.Tensor | None = None) -> list[float]:
        sr, ref = rgb_batch(sr), None if ref is None else rgb_batch(ref)
        check_inputs(self.spec, sr, ref)
        h, w = sr.shape[-2:]
        step = max(1, PIXEL_BUDGET // (h * w))
        out: list[float] = []
        with torch.inference_mode():
            for i in range(0, sr.shape[0], step):
                a = sr[i:i + step].to(self.device, torch.float32)
                b = ref[i:i + step].to(self.device, torch.float32)
                d = self.net(a, b)
                out.extend(d.flatten().double().tolist())
        return out

