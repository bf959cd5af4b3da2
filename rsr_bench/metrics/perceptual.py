"""LPIPS (AlexNet, v0.1) exactly as RSR evaluates it, with weights from the asset cache.

Why not ``lpips.LPIPS(net='alex')`` directly: it asks torchvision to download the ImageNet
AlexNet at construction, which fails offline. We build the same ``lpips`` network with a random
trunk and load the verified ``alexnet-features`` and ``lpips-alex-v0.1-lin`` assets into it, so
the computation is the ``lpips`` package's own (``normalize=True`` on [0, 1] RGB, full image,
spatial average). The network is built once per metric instance (``create_metric`` caches it).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Mapping

import torch

from ..fetch.assets import asset_provenance, ensure_asset
from .table import MetricSpec, check_inputs, rgb_batch

#: Sub-batches are split so that one forward pass sees at most this many pixels (memory bound).
PIXEL_BUDGET = 8 * 1024 * 1024


def build_lpips_alex(features: Mapping[str, torch.Tensor] | None, lin: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """An ``lpips.LPIPS(net='alex', version='0.1')`` with the given trunk and heads, in eval mode.

    ``features`` uses torchvision names (``features.{0,3,6,8,10}.*``); ``None`` keeps the
    random initialisation (tests use this to show random weights fail calibration).
    """
    import lpips

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net="alex", version="0.1", pretrained=False, pnet_rand=True, verbose=False)
    with torch.no_grad():
        if features is not None:
            slices = {name: mod for sl in model.net.children() for name, mod in sl.named_children()}
            for idx in ("0", "3", "6", "8", "10"):
                conv = slices[idx]
                conv.weight.copy_(features[f"features.{idx}.weight"])
                conv.bias.copy_(features[f"features.{idx}.bias"])
        for k, head in enumerate(model.lins):
            head.model[1].weight.copy_(lin[f"lin{k}.model.1.weight"])
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
                d = self.net(a, b, normalize=True)
                out.extend(d.flatten().double().tolist())
        return out

