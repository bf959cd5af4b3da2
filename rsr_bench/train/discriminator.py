"""ESRGAN's VGG-style discriminator (BasicSR ``VGGStyleDiscriminator128`` key names).

conv0_0 (3x3, bias) then four stride-2 4x4 convs with BatchNorm, channels nf..8nf, LeakyReLU
0.2, linear 8nf*4*4 -> 100 -> 1. The official net only accepts 128x128; ``input_size`` (a
multiple of 32) generalises the linear layer so CPU tests can use small patches. With the
default 128 the state_dict is identical to BasicSR's.
"""

from __future__ import annotations

import torch
from torch import nn


class VGGStyleDiscriminator(nn.Module):
    def __init__(self, in_ch: int = 3, nf: int = 64, input_size: int = 128) -> None:
        super().__init__()
        if input_size % 32:
            raise ValueError(f"discriminator input_size must be a multiple of 32, got {input_size}")
        self.input_size = input_size
        chans = [nf, nf, 2 * nf, 2 * nf, 4 * nf, 4 * nf, 8 * nf, 8 * nf, 8 * nf, 8 * nf]
        self.conv0_0 = nn.Conv2d(in_ch, nf, 3, 1, 1, bias=True)
        prev = nf
        for i, c in enumerate(chans[1:], start=1):
            stage, k = divmod(i, 2)
            stride_conv = k == 1
            conv = nn.Conv2d(prev, c, 4 if stride_conv else 3, 2 if stride_conv else 1, 1, bias=False)
            setattr(self, f"conv{stage}_{k}", conv)
            setattr(self, f"bn{stage}_{k}", nn.BatchNorm2d(c, affine=True))
            prev = c
        side = input_size // 32
        self.linear1 = nn.Linear(8 * nf * side * side, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"discriminator input must be {self.input_size}x{self.input_size}, got {tuple(x.shape)}")
        feat = self.lrelu(self.conv0_0(x))
        for name in ("0_1", "1_0", "1_1", "2_0", "2_1", "3_0", "3_1", "4_0", "4_1"):
            feat = self.lrelu(getattr(self, f"bn{name}")(getattr(self, f"conv{name}")(feat)))
        feat = feat.flatten(1)
        return self.linear2(self.lrelu(self.linear1(feat)))


class PairD(nn.Module):
    """Runs D on real and fake as two separate batches inside one call.

    BatchNorm must see real and fake separately (as the official code does), and DDP allows one
    forward per backward: this wrapper gives both in one DDP forward.
    """

    def __init__(self, d: nn.Module) -> None:
        super().__init__()
        self.d = d

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.d(real), self.d(fake)
