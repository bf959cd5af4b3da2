"""The one RRDBNet (ESRGAN generator) behind ESRGAN, RSR, Impressionism, ESRGAN-FS, Real-ESRGAN.

Parameter names follow BasicSR (``conv_first``, ``body.{i}.rdb{k}.conv{j}``, ``conv_body``,
``conv_up1/2``, ``conv_hr``, ``conv_last``); other official layouts are converted to these
names by :mod:`rsr_bench.methods.layouts` before a strict load.

One forward serves every precision. ``forward(x)`` is the plain fp32 network of the official
scripts. ``forward(x, dtype)`` on a :meth:`RRDBNet.low_precision` copy runs the 345 dense-block
convolutions and the upsampling/HR convolutions in ``dtype`` (bf16/fp16) while the residual
stream (trunk, RRDB and RDB skip additions), ``conv_first`` and ``conv_body`` stay fp32: rounding
the *input image* to bf16 (8-bit mantissa, ~1 grey level) costs ~5 dB of agreement, and those two
convolutions are 0.2% of the FLOPs (measured: :mod:`rsr_bench.methods.engine`).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def _residual(x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """``x + 0.2 * y``: as the official code writes it in fp32 (bit-exact), one fused fp32 add otherwise."""
    return y * 0.2 + x if dtype is None else torch.add(x, y.to(x.dtype), alpha=0.2)


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; output scaled by 0.2 and added to the input."""

    def __init__(self, nf: int = 64, gc: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        a = x if dtype is None else x.to(dtype)
        x1 = self.lrelu(self.conv1(a))
        x2 = self.lrelu(self.conv2(torch.cat((a, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((a, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((a, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((a, x1, x2, x3, x4), 1))
        return _residual(x, x5, dtype)


class RRDB(nn.Module):
    """Residual-in-residual dense block: three RDBs, scaled by 0.2, long skip."""

    def __init__(self, nf: int = 64, gc: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(nf, gc)
        self.rdb2 = ResidualDenseBlock(nf, gc)
        self.rdb3 = ResidualDenseBlock(nf, gc)

    def forward(self, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        return _residual(x, self.rdb3(self.rdb2(self.rdb1(x, dtype), dtype), dtype), dtype)


class RRDBNet(nn.Module):
    """ESRGAN generator. ``scale`` must be 2 or 4 (nearest x2 upsampling stages).

    Defaults are the released x4 models: 16,697,987 parameters in 702 tensors.
    No clamp inside the network: callers clamp to [0, 1] once, as the official scripts do.
    """

    def __init__(
        self, *, in_ch: int = 3, out_ch: int = 3, nf: int = 64, nb: int = 23, gc: int = 32, scale: int = 4
    ) -> None:
        super().__init__()
        if scale not in (2, 4):
            raise ValueError(f"RRDBNet supports scale 2 or 4, got {scale}")
        self.scale = scale
        self.nf, self.nb, self.gc = nf, nb, gc
        self.conv_first = nn.Conv2d(in_ch, nf, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(nf, nf, 3, 1, 1)
        if scale == 4:
            self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def low_precision(self, dtype: torch.dtype) -> RRDBNet:
        """A copy whose parts that run in ``dtype`` (see the module docstring) are cast to it."""
        net = copy.deepcopy(self)
        for part in (net.body, net.conv_up1, getattr(net, "conv_up2", None), net.conv_hr, net.conv_last):
            if part is not None:
                part.to(dtype)
        return net

    def forward(self, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``dtype`` None: everything in ``x``'s dtype; else the mixed precision of the module docstring."""
        feat = self.conv_first(x)
        trunk = feat
        for block in self.body:
            trunk = block(trunk, dtype)
        feat = feat + self.conv_body(trunk)
        feat = feat if dtype is None else feat.to(dtype)
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        if self.scale == 4:
            feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))
