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
import math
import warnings
from collections.abc import Mapping

import torch

from ..fetch.assets import asset_provenance, ensure_asset
from ..errors import NotComputable
from .table import MetricSpec

#: Sub-batches are split so that one forward pass sees at most this many pixels (memory bound).
PIXEL_BUDGET = 8 * 1024 * 1024

#: AlexNet's five stages (conv 11/4, 2 max-pools 3/2) need at least this many pixels per side.
MIN_SIZE = 31


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

    @staticmethod
    def _rgb(x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x[None]
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    def __call__(self, sr: torch.Tensor, ref: torch.Tensor | None = None) -> list[float]:
        if ref is None:
            raise NotComputable("lpips needs a ground-truth image")
        sr, ref = self._rgb(sr), self._rgb(ref)
        if sr.shape != ref.shape:
            raise NotComputable(f"lpips: SR {tuple(sr.shape[-2:])} and GT {tuple(ref.shape[-2:])} differ in size")
        h, w = sr.shape[-2:]
        if min(h, w) < MIN_SIZE:
            raise NotComputable(f"lpips: image {w}x{h} is too small (AlexNet needs at least {MIN_SIZE} px per side)")
        step = max(1, PIXEL_BUDGET // (h * w))
        out: list[float] = []
        with torch.inference_mode():
            for i in range(0, sr.shape[0], step):
                a = sr[i:i + step].to(self.device, torch.float32)
                b = ref[i:i + step].to(self.device, torch.float32)
                d = self.net(a, b, normalize=True)
                out.extend(d.flatten().double().tolist())
        bad = [v for v in out if not math.isfinite(v)]
        if bad:
            raise NotComputable(f"lpips: non-finite result {bad[0]}")
        return out

