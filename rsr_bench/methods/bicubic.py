"""The paper's "Bicubic" row: MATLAB-compatible bicubic upsampling of the LR input."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where used: `rsr-bench list` and --help stay under 1 s
    import torch

from ..errors import ConfigError
from ..image import imresize
from .cards import Adapter, ImageKey, MethodSpec


FINGERPRINT = "matlab-imresize-bicubic-a-0.5"


@dataclass
class BicubicMethod:
    spec: MethodSpec
    device: torch.device
    fingerprint: str = FINGERPRINT
    provenance: Mapping[str, Any] = field(default_factory=lambda: {"source": "rsr_bench.image.imresize"})

    def predict(self, lr: torch.Tensor, images: Sequence[ImageKey] = ()) -> torch.Tensor:
        # float64 keeps the result bit-stable across devices and BLAS builds before rounding.
        import torch

        with torch.inference_mode():
            out = imresize(lr.to(self.device, torch.float64), float(self.spec.scale))
        return out.to(torch.float32)


def load(spec: MethodSpec, *, device: torch.device, options: Mapping[str, Any]) -> BicubicMethod:
    if options:
        raise ConfigError(f"method {spec.name}: bicubic takes no options, got {sorted(options)}")
    return BicubicMethod(spec, device)


ADAPTER = Adapter("bicubic", load, identify=lambda spec, options: FINGERPRINT)
