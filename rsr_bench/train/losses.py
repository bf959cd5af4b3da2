"""Generator and discriminator losses of the RSR / ESRGAN recipe.

Perceptual loss: the paper uses VGG19 ``conv5_4`` before ReLU with ImageNet mean/std input
normalisation and an L1 criterion (BasicSR ``PerceptualLoss``). VGG19 ImageNet weights cannot
be fetched from any reachable mirror, so a user supplies torchvision's ``vgg19-dcbb9e9d.pth``
for the paper's loss; otherwise VGG16 ``conv5_3`` (before ReLU, ``features[:29]``) with the
genuine ImageNet weights from the LPIPS mirror is used, logged loudly and recorded in the
checkpoint metadata, because results trained that way are not the paper's recipe.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..files import sha256_file
from ..errors import ConfigError

log = logging.getLogger("rsr_bench.train")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision ``features`` index after the layer we stop at (conv, before its ReLU)
CUT = {"vgg19": 35, "vgg16": 29}
LAYER = {"vgg19": "conv5_4", "vgg16": "conv5_3"}


class VGGFeatures(nn.Module):
    """Frozen VGG ``features`` up to conv5_x (before ReLU), ImageNet-normalised input."""

    def __init__(self, arch: str, features_state: dict[str, torch.Tensor] | None) -> None:
        super().__init__()
        from torchvision.models import vgg as tv_vgg

        # features only: building the whole torchvision VGG would also initialise its 120M-param
        # classifier, which the perceptual loss never uses
        features = tv_vgg.make_layers(tv_vgg.cfgs[{"vgg16": "D", "vgg19": "E"}[arch]], batch_norm=False)
        net = nn.Module()
        net.features = features
        if features_state is None:  # test mode: torchvision's init keeps conv5 activations O(1)
            for mod in features.modules():
                if isinstance(mod, nn.Conv2d):
                    nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(mod.bias)
        else:
            sd = {k[len("features.") :]: v for k, v in features_state.items() if k.startswith("features.")}
            missing, unexpected = net.features.load_state_dict(sd, strict=False)
            needed = {k for k in net.features.state_dict() if int(k.split(".")[0]) < CUT[arch]}
            if needed & set(missing) or unexpected:
                raise ConfigError(f"{arch} weights: missing {sorted(needed & set(missing))[:4]}, unexpected {unexpected[:4]}")
        self.features = net.features[: CUT[arch]].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "VGGFeatures":  # always eval: a fixed feature extractor
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)


class PerceptualLoss(nn.Module):
    """``weight * L1(vgg(x), vgg(gt))`` at one layer, gt features without gradient."""

    def __init__(self, vgg: VGGFeatures, weight: float = 1.0) -> None:
        super().__init__()
        self.vgg, self.weight = vgg, weight

    def forward(self, x: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.vgg(gt.detach())
        return F.l1_loss(self.vgg(x), target) * self.weight


def build_perceptual(cfg: dict[str, Any]) -> tuple[VGGFeatures, dict[str, Any]]:
    """The perceptual backbone and a metadata record of which one it is and why."""
    p = cfg["perceptual"]
    backbone = p["backbone"]
    if backbone == "auto":
        backbone = "vgg19" if p.get("vgg19_weights") else "vgg16"
    info: dict[str, Any] = {"backbone": backbone}
    if backbone == "vgg19":
        path = p.get("vgg19_weights")
        if not path or not Path(path).is_file():
            raise ConfigError(
                f"perceptual.backbone vgg19 needs perceptual.vgg19_weights = torchvision's vgg19-dcbb9e9d.pth (got {path!r})"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        info.update(layer="conv5_4", weights=str(Path(path).resolve()), sha256=sha256_file(path), paper_exact=True)
        log.info("perceptual loss: VGG19 conv5_4 from %s (the paper's loss)", path)
        return VGGFeatures("vgg19", state), info
    if backbone == "vgg16":
        from ..fetch.assets import asset_provenance, ensure_asset

        path = ensure_asset("vgg16-features")
        state = torch.load(path, map_location="cpu", weights_only=True)
        info.update(
            layer="conv5_3",
            weights=str(path),
            sha256=sha256_file(path),
            provenance=_safe(asset_provenance, "vgg16-features"),
            paper_exact=False,
            deviation="VGG16 conv5_3 (LPIPS-mirror ImageNet weights) instead of the paper's VGG19 conv5_4",
        )
        log.warning(
            "\n" + "!" * 78 + "\n! PERCEPTUAL LOSS DEVIATES FROM THE PAPER: VGG16 conv5_3 (ImageNet weights from the\n"
            "! LPIPS mirror) instead of VGG19 conv5_4. Pass perceptual.vgg19_weights=<vgg19-dcbb9e9d.pth>\n"
            "! for the exact recipe. This is recorded in every checkpoint's metadata.\n" + "!" * 78
        )
        return VGGFeatures("vgg16", state), info
    log.warning("perceptual loss: RANDOM-INITIALISED VGG16 (tests only; meaningless for real training)")
    info.update(layer="conv5_3", weights=None, paper_exact=False, deviation="random VGG16 weights (test mode)")
    return VGGFeatures("vgg16", None), info


def _safe(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # provenance is informative only
        return {"error": str(exc)}


def g_gan_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """Relativistic average GAN loss for G (BasicSR ESRGANModel), D's real prediction detached."""
    real_pred = real_pred.detach()
    l_real = F.binary_cross_entropy_with_logits(real_pred - fake_pred.mean(), torch.zeros_like(real_pred))
    l_fake = F.binary_cross_entropy_with_logits(fake_pred - real_pred.mean(), torch.ones_like(fake_pred))
    return (l_real + l_fake) / 2


def d_gan_losses(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Relativistic average D losses, each against the other's detached mean, halved."""
    l_real = 0.5 * F.binary_cross_entropy_with_logits(real_pred - fake_pred.detach().mean(), torch.ones_like(real_pred))
    l_fake = 0.5 * F.binary_cross_entropy_with_logits(fake_pred - real_pred.detach().mean(), torch.zeros_like(fake_pred))
    return l_real, l_fake
