"""Checkpoint key layouts of the RRDBNet family, converted to BasicSR names and loaded strictly.

The four methods ship the same network in three key layouts (conventions.md section 1):

* ``esrgan_old`` - the 2018 ESRGAN code: ``model.0``, ``model.1.sub.{i}.RDB{k}.conv{j}.0``,
  ``model.1.sub.{nb}`` (trunk conv), then the flattened upsampler / HR convs ``model.3``,
  ``model.6``, ``model.8``, ``model.10`` (x4).
* ``mmsr`` - ESRGAN-new / RealSR (Impressionism) / ESRGAN-FS: ``conv_first``,
  ``RRDB_trunk.{i}.RDB{k}.conv{j}``, ``trunk_conv``, ``upconv1/2``, ``HRconv``, ``conv_last``.
* ``basicsr`` - BasicSR / RSR / Real-ESRGAN: the names of :class:`~rsr_bench.methods.rrdbnet.RRDBNet`.

Wrappers: BasicSR saves ``{'params': sd}`` and, for GAN-trained models, ``{'params_ema': sd}``
(training snapshots may hold both). We prefer ``params_ema`` because that is what Real-ESRGAN's
own inference loads (``RealESRGANer``: "prefer to use params_ema", falling back to ``params``).
BasicSR's test scripts load ``param_key_g`` from the config, default ``params``, falling back to
``params`` when the requested key is missing. The released files of the methods here hold a
single key (RealESRGAN_x4plus: ``params_ema``; RSR.pth: ``params``),
so the preference only matters for training snapshots; ``param_key`` overrides it.
``module.`` prefixes (DataParallel) are stripped.

RealSR's own test code loads with ``strict=False``, so a wrong file silently runs a partly
random network. Here every load is strict and a mismatch raises :class:`ConfigError` naming
the detected layout and the missing / unexpected keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from .rrdbnet import RRDBNet

LAYOUTS = ("esrgan_old", "mmsr", "basicsr")
WRAPPER_KEYS = ("params_ema", "params")  # preference order, see module docstring

_MMSR_FIXED = {"trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2", "HRconv": "conv_hr"}
_MMSR_RDB = re.compile(r"^RRDB_trunk\.(\d+)\.RDB(\d)\.(conv\d)\.(weight|bias)$")
_OLD_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.(conv\d)\.0\.(weight|bias)$")
_OLD_TOP = re.compile(r"^model\.(\d+)\.(weight|bias)$")
_OLD_TRUNK = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")
_OLD_TAIL_X4 = {0: "conv_first", 3: "conv_up1", 6: "conv_up2", 8: "conv_hr", 10: "conv_last"}
_OLD_TAIL_X2 = {0: "conv_first", 3: "conv_up1", 5: "conv_hr", 7: "conv_last"}


@dataclass(frozen=True)
class Arch:
    """RRDBNet hyper-parameters inferred from a state_dict."""

    in_ch: int = 3
    out_ch: int = 3
    nf: int = 64
    nb: int = 23
    gc: int = 32
    scale: int = 4

    def build(self) -> RRDBNet:
        return RRDBNet(in_ch=self.in_ch, out_ch=self.out_ch, nf=self.nf, nb=self.nb, gc=self.gc, scale=self.scale)


def unwrap(obj: Any, param_key: str | None = None) -> tuple[dict[str, torch.Tensor], str | None]:
    """Return (state_dict, wrapper key used or None). ``param_key`` forces a wrapper key."""
    if not isinstance(obj, Mapping):
        raise ConfigError(f"checkpoint is a {type(obj).__name__}, expected a state_dict (a mapping of tensors)")
    if param_key is not None:
        if param_key not in obj:
            raise ConfigError(f"checkpoint has no {param_key!r} entry; top-level keys: {sorted(obj)[:10]}")
        return dict(obj[param_key]), param_key
    for key in WRAPPER_KEYS:
        if key in obj and isinstance(obj[key], Mapping):
            return dict(obj[key]), key
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        return dict(obj["state_dict"]), "state_dict"
    return dict(obj), None


def strip_prefix(sd: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Remove a DataParallel ``module.`` prefix from every key that has it."""
    return {(k.removeprefix(prefix)): v for k, v in sd.items()}


def detect_layout(sd: Mapping[str, Any]) -> str:
    """Name the key layout by the trunk naming (robust to a few missing or renamed keys)."""
    keys = list(sd)
    votes = {
        "basicsr": sum(k.startswith("body.") for k in keys),
        "mmsr": sum(k.startswith("RRDB_trunk.") for k in keys),
        "esrgan_old": sum(k.startswith("model.1.sub.") for k in keys),
    }
    best = max(votes, key=votes.__getitem__)
    if votes[best] == 0:
        raise ConfigError(
            "unrecognised RRDBNet checkpoint layout: no 'body.*' (BasicSR), 'RRDB_trunk.*' (mmsr) or "
            f"'model.1.sub.*' (old ESRGAN) keys; first keys: {keys[:8]}"
        )
    return best


def _old_to_basicsr(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # The old code flattens upsampler/HR convs into one Sequential: conv, LReLU (and nearest
    # Upsample) each take an index, hence the gaps. x4 uses 3/6/8/10, x2 uses 3/5/7.
    tops = {int(m.group(1)) for k in sd if (m := _OLD_TOP.match(k))}
    tail = _OLD_TAIL_X4 if tops & {6, 8, 10} else _OLD_TAIL_X2
    trunk_idx = [int(m.group(1)) for k in sd if (m := _OLD_TRUNK.match(k))]
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if m := _OLD_RDB.match(k):
            out[f"body.{m.group(1)}.rdb{m.group(2)}.{m.group(3)}.{m.group(4)}"] = v
        elif (m := _OLD_TOP.match(k)) and int(m.group(1)) in tail:
            out[f"{tail[int(m.group(1))]}.{m.group(2)}"] = v
        elif (m := _OLD_TRUNK.match(k)) and int(m.group(1)) == max(trunk_idx):
            out[f"conv_body.{m.group(2)}"] = v
        else:
            out[k] = v  # left as is: reported as unexpected by the strict load
    return out


def _mmsr_to_basicsr(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        head, _, leaf = k.rpartition(".")
        if m := _MMSR_RDB.match(k):
            out[f"body.{m.group(1)}.rdb{m.group(2)}.{m.group(3)}.{m.group(4)}"] = v
        elif head in _MMSR_FIXED:
            out[f"{_MMSR_FIXED[head]}.{leaf}"] = v
        else:
            out[k] = v
    return out


def to_basicsr(sd: Mapping[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    """Rename keys of ``layout`` to BasicSR names; unknown keys pass through unchanged."""
    if layout == "basicsr":
        return dict(sd)
    if layout == "mmsr":
        return _mmsr_to_basicsr(sd)
    if layout == "esrgan_old":
        return _old_to_basicsr(sd)
    raise ConfigError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")


def infer_arch(sd: Mapping[str, torch.Tensor]) -> Arch:
    """nf / nb / gc / in_ch / out_ch / scale from a BasicSR-named state_dict (defaults if absent)."""
    d = Arch()
    first = sd.get("conv_first.weight")
    last = sd.get("conv_last.weight")
    rdb = sd.get("body.0.rdb1.conv1.weight")
    blocks = {int(k.split(".")[1]) for k in sd if k.startswith("body.") and k.split(".")[1].isdigit()}
    has_up2 = any(k.startswith("conv_up2.") for k in sd)
    in_ch = int(first.shape[1]) if first is not None else d.in_ch
    if has_up2 and in_ch in (12, 48):
        raise ConfigError(
            "checkpoint is a pixel-unshuffle RRDBNet (BasicSR scale 1/2, e.g. RealESRGAN_x2plus); "
            "only x4 and mmsr-style x2 RRDBNets are supported"
        )
    return Arch(
        in_ch=in_ch,
        out_ch=int(last.shape[0]) if last is not None else d.out_ch,
        nf=int(first.shape[0]) if first is not None else d.nf,
        nb=max(blocks) + 1 if blocks else d.nb,
        gc=int(rdb.shape[0]) if rdb is not None else d.gc,
        scale=4 if has_up2 else 2,
    )


def _fmt(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > limit else shown or "none"


def load_strict(net: RRDBNet, sd: Mapping[str, torch.Tensor], *, layout: str, source: str) -> None:
    """``net.load_state_dict(sd, strict=True)`` with an error that says what is wrong and where."""
    own = net.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    wrong = sorted(k for k in set(own) & set(sd) if tuple(own[k].shape) != tuple(sd[k].shape))
    if missing or unexpected or wrong:
        parts = [(f"checkpoint {source} (detected layout: {layout}) does not fit RRDBNet("
                 f"nf={net.nf}, nb={net.nb}, gc={net.gc}, scale={net.scale})")]
        if missing:
            parts.append(f"missing keys (BasicSR names): {_fmt(missing)}")
        if unexpected:
            parts.append(f"unexpected keys (after conversion to BasicSR names): {_fmt(unexpected)}")
        if wrong:
            parts.append("shape mismatch: " + _fmt([f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in wrong]))
        raise ConfigError("; ".join(parts))
    net.load_state_dict(sd, strict=True)


@dataclass(frozen=True)
class LoadedCheckpoint:
    net: RRDBNet
    layout: str
    wrapper: str | None
    arch: Arch


def build_from_state_dict(
    obj: Any,
    *,
    layout: str | None = None,
    param_key: str | None = None,
    arch: Mapping[str, int] | None = None,
    source: str = "<state_dict>",
) -> LoadedCheckpoint:
    """Unwrap, strip prefixes, detect (or check) the layout, convert, build and load strictly.

    ``layout`` (if given) must match the detected one: a card that says ``mmsr`` but points at
    a BasicSR file is a mistake worth reporting. ``arch`` overrides inferred hyper-parameters.
    """
    sd, wrapper = unwrap(obj, param_key)
    sd = strip_prefix(sd)
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ConfigError(f"checkpoint {source}: non-tensor entries {_fmt(bad)}")
    detected = detect_layout(sd)
    if layout is not None and layout != detected:
        if layout not in LAYOUTS:
            raise ConfigError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
        raise ConfigError(f"checkpoint {source}: expected layout {layout!r} but the keys are {detected!r}")
    converted = to_basicsr(sd, detected)
    inferred = infer_arch(converted)
    if arch:
        extra = set(arch) - set(Arch.__dataclass_fields__)
        if extra:
            raise ConfigError(f"unknown arch option(s) {sorted(extra)}; allowed: {sorted(Arch.__dataclass_fields__)}")
        inferred = Arch(**{**inferred.__dict__, **{k: int(v) for k, v in arch.items()}})
    net = inferred.build()
    load_strict(net, {k: v.float() for k, v in converted.items()}, layout=detected, source=source)
    return LoadedCheckpoint(net.eval(), detected, wrapper, inferred)


def load_checkpoint(
    path: str | os.PathLike,
    *,
    layout: str | None = None,
    param_key: str | None = None,
    arch: Mapping[str, int] | None = None,
) -> LoadedCheckpoint:
    """Load an RRDBNet checkpoint file of any official layout (``weights_only=True``, on CPU)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, disallowed globals
        raise ConfigError(f"cannot read checkpoint {path} as a weights-only torch file: {exc}") from exc
    return build_from_state_dict(obj, layout=layout, param_key=param_key, arch=arch, source=str(path))
