"""The inference engine behind every RRDBNet method: whole-image or tiled, fp32/bf16/fp16.

Why an engine rather than ``net(x)``: the official scripts run one whole-image fp32 forward,
which is the reference we must reproduce, but a 512x512 input adds 3.3 GiB of peak memory
on CPU (the x4 feature maps alone are 1 GiB each in fp32; 2.3 GiB with this engine in fp32,
1.5 GiB in bf16) and RRDBNet costs 35.85 MFLOP per LR pixel. The
engine keeps the reference semantics (``precision="fp32"``, whole image) wherever low precision
would not pay (``precision="auto"``, the default: see :func:`resolve_precision`) and adds:

* **Tiling.** The LR image is cut into cores of ``tile`` x ``tile`` pixels (evenly spread, so
  no sliver tiles); each core is run inside a window that adds ``tile_overlap`` pixels of real
  image context on every side (windows are shifted inward at the borders, so every window has
  the same size and windows are batched ``tile_batch`` at a time). Only the core of each
  window's output is kept; there is no blending.

  Receptive field: 15*nb + 2 LR convs plus the x2/x4 convs give a radius of 15*nb + 3.25 LR
  pixels (348.25 for nb=23). With ``tile_overlap >= 15*nb + 4`` tiled output equals the
  whole-image output up to float reassociation (tested). Below that, the 0.2 residual scalings
  make the influence of far pixels decay quickly. Measured with the genuine Impressionism
  DF2K-JPEG weights, fp32, tile 40 (a worst case: many seams) on RealSRSet ``Lincoln.png``
  (160x160 LR): uint8 PSNR of tiled vs whole-image output, and the largest difference in
  8-bit levels:

  ======= ========= ==========
  overlap PSNR (dB) max |diff|
  ======= ========= ==========
  0       36.7      86
  4       40.8      77
  8       44.2      93
  16      50.2      37
  24      56.8      12
  32      61.0      5
  ======= ========= ==========

  The default overlap of 32 keeps tiled output above 60 dB of the whole-image output (tests
  require >= 50 dB on real weights); use ``tile_overlap >= 349`` for bit-level agreement. Tiling
  costs ``((tile + 2*overlap) / tile)^2`` times the compute, so it is a memory tool, not a
  speed-up: the default is whole image.

* **Precision.** ``bf16`` / ``fp16`` run the 345 RDB convolutions and the upsampling/HR convs
  in low precision, but keep the residual stream (trunk and RRDB/RDB skip additions) and the
  first and trunk-closing convs in fp32 (``RRDBNet.forward(x, dtype)``). Measured on a real 64x64 crop with genuine weights
  (uint8 PSNR vs fp32): plain ``model.to(bfloat16)`` 46.3 dB, fp32 residuals 46.7 dB, plus fp32
  conv_first/conv_body 51.6 dB, at the same speed. A batch
  whose output has a non-finite value is recomputed in fp32 (``fallbacks`` counts them).
* ``channels_last`` memory format and ``torch.inference_mode`` (a few % faster in fp32 on CPU,
  and what cuDNN / oneDNN prefer for low precision). On CUDA, cuDNN autotuning is on
  (``torch.backends.cudnn.benchmark``): each new input shape is timed once per process, which
  pays back over a dataset of repeated sizes (tiles and batches are equal-sized by design).
* ``compile`` (``--compile``): ``torch.compile`` of the network, for GPUs. It compiles at the
  first input (and again for new shapes); if compiling fails (no C++ compiler or Triton, an
  unsupported device) the engine warns once with the reason and runs eager, recording
  ``compile: "fallback: ..."`` in the manifest. Measured on the AVX2 CPU here (1 thread, 64x96 LR):
  105 s to compile, then 3.46 s vs 3.44 s eager per forward: no gain on this CPU (oneDNN
  convolutions are 92 % of the time either way), so it is off by default.
* **Memory bound.** The whole-image pass's peak memory is estimated from the input size; if it
  exceeds ``memory_fraction`` of the memory available on the device (or ``max_memory_gb``),
  the image is tiled automatically; an out-of-memory error shrinks the tile batch, then the
  tile, then (warned) the overlap, and retries.
"""

from __future__ import annotations

import itertools
import math
import platform
import warnings
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..errors import ConfigError
from .cards import PRECISION_NAMES
from .rrdbnet import RRDBNet

#: Accepted ``precision`` names -> compute dtype; ``auto`` (the default) is resolved per device
#: by :func:`resolve_precision` when the engine is built.
PRECISIONS = dict(zip(PRECISION_NAMES, (None, torch.float32, torch.bfloat16, torch.float16), strict=True))
MIN_TILE = 16

#: Measured cost of low precision without native support (docs/performance.md): RRDBNet x4,
#: genuine weights, 1 thread, AMD EPYC AVX2 (no AVX512-BF16/AMX), predict s/MP bf16 / fp32.
SLOW_BF16_FACTOR = 12.6
_warned: set[str] = set()


def select_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (or None) picks cuda, then mps, then cpu; anything else is passed to torch."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def receptive_radius(nb: int) -> float:
    """LR-pixel radius of RRDBNet's receptive field (348.25 for nb=23)."""
    return 15 * nb + 3.25


@dataclass(frozen=True)
class EngineOptions:
    """How to run the network. ``tile=0`` means whole image (auto-tiled if over the memory bound)."""

    tile: int = 0
    tile_overlap: int = 32
    tile_batch: int = 4
    precision: str = "auto"
    channels_last: bool = True
    memory_fraction: float = 0.5
    max_memory_gb: float | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")
        if self.tile and self.tile < MIN_TILE:
            raise ConfigError(f"tile must be 0 (whole image) or >= {MIN_TILE}, got {self.tile}")
        if self.tile_overlap < 0 or self.tile_batch < 1:
            raise ConfigError("tile_overlap must be >= 0 and tile_batch >= 1")
        if not 0 < self.memory_fraction <= 1:
            raise ConfigError(f"memory_fraction must be in (0, 1], got {self.memory_fraction}")


def available_memory(device: torch.device) -> int | None:
    """Free bytes on ``device`` (MemAvailable on Linux CPUs), or None when unknown."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            with open("/proc/meminfo", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


def estimate_bytes(net: RRDBNet, n: int, h: int, w: int, precision: str) -> int:
    """Peak activation bytes of one forward over an (n, 3, h, w) input (deliberately generous).

    Trunk (LR size): fp32 residual stream (3 x nf) plus the dense concat inputs and outputs in
    the compute dtype. Upsampling (scale^2 x LR size): the interpolated map, the conv output
    and a channels_last copy, nf channels each.
    """
    b = (PRECISIONS[precision] or torch.float32).itemsize  # "auto" estimated as fp32 (generous)
    nf, gc, s = net.nf, net.gc, net.scale
    trunk = 3 * nf * 4 + 3 * (nf + 4 * gc) * b
    up = 3 * nf * b * s * s + 2 * 3 * 4 * s * s
    return int(n * h * w * max(trunk, up) * 1.25)


def tile_windows(size: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Along one axis: (window_start, window_end, core_start, core_end); all windows equal length."""
    count = max(1, math.ceil(size / tile))
    bounds = [round(i * size / count) for i in range(count + 1)]
    length = min(size, max(b1 - b0 for b0, b1 in itertools.pairwise(bounds)) + 2 * overlap)
    out = []
    for c0, c1 in itertools.pairwise(bounds):
        w0 = min(max(c0 - overlap, 0), size - length)
        out.append((w0, w0 + length, c0, c1))
    return out


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    msg = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)


class RRDBEngine:
    """Runs one RRDBNet on one device with fixed options; ``engine(lr) -> sr`` (fp32, lr's device).

    The given ``net`` is moved to the device and memory format in place (and used as the fp32
    network); low-precision runs keep an extra low-precision copy.
    """

    def __init__(self, net: RRDBNet, *, device: str | torch.device | None = "auto", options: EngineOptions | None = None) -> None:
        self.device = select_device(device)
        self.options = options or EngineOptions()
        self.scale = net.scale
        self.fallbacks = 0
        self.tiles_chosen: dict[str, int] = {}  # "HxW" of an input -> automatic tile (LR px)
        self._provenance: dict[str, Any] = {"tiles_chosen": self.tiles_chosen}
        self._fmt = torch.channels_last if self.options.channels_last else torch.contiguous_format
        self.net32 = net.eval().to(self.device, memory_format=self._fmt)
        for p in self.net32.parameters():
            p.requires_grad_(False)
        self.precision, self.precision_reason = resolve_precision(self.options.precision, self.device)
        dtype = PRECISIONS[self.precision]
        self.dtype = None if dtype == torch.float32 else dtype
        self.net_lp = None if self.dtype is None else self.net32.low_precision(dtype).to(memory_format=self._fmt)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.compiled: dict[bool, Any] = {}
        self.compile_status = "off"
        if self.options.compile:
            self._compile()

    def _compile(self) -> None:
        """Wrap the networks in ``torch.compile`` (compilation itself happens at the first call)."""
        try:
            self.compiled = {False: torch.compile(self.net32)}
            if self.net_lp is not None:
                self.compiled[True] = torch.compile(self.net_lp)
            self.compile_status = "on"
        except Exception as exc:  # noqa: BLE001 - any failure means: run eager, and say why
            self._compile_failed(exc)

    def _compile_failed(self, exc: BaseException) -> None:
        """Drop the compiled networks, say why once, and record it (the manifest shows it)."""
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        reason = f"{type(exc).__name__}: {first}"
        self.compiled, self.compile_status = {}, f"fallback: {reason}"
        self._provenance["compile"] = self.compile_status
        warnings.warn(f"--compile: torch.compile failed here ({reason}); running the network eager (same "
                      "results, no compile speed-up)", stacklevel=4)

    def _forward(self, x: torch.Tensor, low_precision: bool) -> torch.Tensor:
        x = x.to(memory_format=self._fmt)
        net = self.compiled.get(low_precision)
        if net is not None:
            try:
                return (net(x, self.dtype) if low_precision else net(x)).float()
            except Exception as exc:  # noqa: BLE001 - a compiler failure falls back; OOM is handled by the caller
                if _is_oom(exc):
                    raise
                self._compile_failed(exc)
        return (self.net_lp(x, self.dtype) if low_precision else self.net32(x)).float()

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """One batch on the device; non-finite low-precision output falls back to fp32."""
        with torch.inference_mode():
            x = x.to(self.device, torch.float32)
            if self.net_lp is None:
                return self._forward(x, low_precision=False)
            y = self._forward(x, low_precision=True)
            if not bool(torch.isfinite(y).all()):
                self.fallbacks += 1
                warnings.warn(f"non-finite {self.precision} output; recomputed this batch in fp32", stacklevel=3)
                y = self._forward(x, low_precision=False)
            return y

    # -- planning -------------------------------------------------------------------------
    def memory_budget(self) -> int | None:
        """Bytes one pass may use: ``max_memory_gb``, else ``memory_fraction`` of what is free now."""
        if self.options.max_memory_gb is not None:
            return int(self.options.max_memory_gb * 2**30)
        avail = available_memory(self.device)
        return None if avail is None else int(avail * self.options.memory_fraction)

    def plan_tile(self, n: int, h: int, w: int) -> int:
        """The tile size to use: the configured one, 0 for whole image, or one that fits memory.

        The budget pays first for the fp32 input and output images (they exist whatever the
        tile), then for ``tile_batch`` windows of ``tile + 2*overlap`` px side at once. An input
        whose images alone exceed the budget (x4 of 8000x8000 LR: 13 GiB in fp32) runs with tile
        ``4*overlap`` and a warning: tiling cannot shrink the output.
        """
        if self.options.tile:
            return self.options.tile
        budget = self.memory_budget()
        prec = self.precision
        if budget is None or estimate_bytes(self.net32, n, h, w, prec) <= budget:
            return 0
        images = n * 3 * h * w * 4 * (1 + self.scale**2)
        per_px = estimate_bytes(self.net32, self.options.tile_batch, 1, 1, prec)
        overlap = self.options.tile_overlap
        side = int(math.sqrt(max(budget - images, 0) / per_px)) - 2 * overlap
        floor = max(MIN_TILE, 4 * overlap)  # below this the overlap more than doubles the compute
        if side < floor:
            tile = floor
            warnings.warn(f"a {w}x{h} input needs {images / 2**30:.1f} GiB for its input and output alone; with "
                          f"tile {tile} the pass needs ~{(images + per_px * (tile + 2 * overlap) ** 2) / 2**30:.1f} "
                          f"GiB, over the memory budget of {budget / 2**30:.1f} GiB (memory_fraction "
                          f"{self.options.memory_fraction} of free memory)", stacklevel=3)
        else:
            tile = side // 8 * 8
        self.tiles_chosen[f"{h}x{w}"] = tile
        return tile

    def provenance(self) -> dict[str, Any]:
        """The engine's settings and decisions for the manifest (a live dict: the tiles chosen
        for large inputs are added to it as they are planned)."""
        self._provenance.update(
            precision=self.precision, precision_requested=self.options.precision,
            precision_reason=self.precision_reason, tile=self.options.tile or "auto",
            tile_overlap=self.options.tile_overlap, tile_batch=self.options.tile_batch,
            memory_fraction=self.options.memory_fraction, channels_last=self.options.channels_last,
            device=str(self.device), threads=torch.get_num_threads(), compile=self.compile_status,
        )
        if self.device.type == "cuda":
            self._provenance["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
        if self.device.type == "cpu":
            self._provenance["cpu"] = cpu_flags()
        elif self.device.type == "cuda":
            self._provenance["gpu"] = torch.cuda.get_device_name(self.device)
        return self._provenance

    def _tiled(self, lr: torch.Tensor, tile: int, overlap: int, batch: int) -> torch.Tensor:
        n, c, h, w = lr.shape
        s = self.scale
        out = torch.empty((n, c, h * s, w * s), dtype=torch.float32, device=lr.device)
        wins = [(ty, tx) for ty in tile_windows(h, tile, overlap) for tx in tile_windows(w, tile, overlap)]
        jobs = [(i, ty, tx) for i in range(n) for ty, tx in wins]
        for k in range(0, len(jobs), batch):
            group = jobs[k : k + batch]
            stack = torch.stack([lr[i, :, ty[0] : ty[1], tx[0] : tx[1]] for i, ty, tx in group])
            y = self._run(stack).to(lr.device)
            for (i, ty, tx), yi in zip(group, y):
                (wy0, _, cy0, cy1), (wx0, _, cx0, cx1) = ty, tx
                out[i, :, cy0 * s : cy1 * s, cx0 * s : cx1 * s] = yi[
                    :, (cy0 - wy0) * s : (cy1 - wy0) * s, (cx0 - wx0) * s : (cx1 - wx0) * s
                ]
        return out

    def __call__(self, lr: torch.Tensor) -> torch.Tensor:
        """(N, 3, h, w) float in [0, 1] -> (N, 3, h*s, w*s) float32 on ``lr``'s device, unclamped.

        On out-of-memory the pass is retried with, in turn: a smaller tile batch (same output),
        a smaller tile (same output while the overlap covers the receptive field), and finally
        a smaller overlap (output deviates more from the whole-image pass; warned).
        """
        if lr.ndim != 4:
            raise ValueError(f"expected an (N, C, H, W) tensor, got shape {tuple(lr.shape)}")
        n, _, h, w = lr.shape
        tile = self.plan_tile(n, h, w)
        overlap, batch = self.options.tile_overlap, self.options.tile_batch
        while True:
            try:
                if tile == 0 or (tile >= h and tile >= w):
                    return self._run(lr).to(lr.device)
                return self._tiled(lr, tile, overlap, batch)
            except Exception as exc:
                if not _is_oom(exc):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if tile == 0 or (tile >= h and tile >= w):
                    tile = max(MIN_TILE, max(h, w) // 2 // 8 * 8)
                elif batch > 1:
                    batch //= 2
                elif tile > MIN_TILE:
                    tile = max(MIN_TILE, tile // 2)
                elif overlap > 0:
                    overlap //= 2
                else:
                    raise
                warnings.warn(
                    f"out of memory; retrying with tile {tile}, tile_batch {batch}, overlap {overlap}", stacklevel=2
                )


def engine_options(options: dict[str, Any]) -> EngineOptions:
    """EngineOptions from adapter options (only the engine's keys are read)."""
    fields = EngineOptions.__dataclass_fields__
    kwargs = {k: options[k] for k in fields if k in options and options[k] is not None}
    try:
        return replace(EngineOptions(), **kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad engine option: {exc}") from exc


def cpu_has_fast_bf16() -> bool:
    """True when oneDNN reports native bf16 (AVX512-BF16 / AMX); bf16 is slow elsewhere."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # op missing in this torch build
        return False


_SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


def cpu_flags() -> dict[str, Any]:
    """What decides CPU inference speed, for the manifest: model, the speed-relevant ISA flags
    present (from /proc/cpuinfo), torch's kernel level and oneDNN's native-bf16 verdict."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return {"model": model or platform.processor() or "unknown",
            "flags": [f for f in _SPEED_FLAGS if f in flags],
            "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "native_bf16": cpu_has_fast_bf16()}


def resolve_precision(requested: str, device: torch.device) -> tuple[str, str]:
    """The precision to run and why. ``auto``: bf16 on a CUDA device with bf16 and on a CPU with
    native bf16 (AVX512-BF16/AMX, where it was 2.1-2.4x faster than fp32), fp32 elsewhere (on an
    AVX2 CPU bf16 is emulated and ~12x slower; MPS is left at fp32). An explicit low precision
    is honoured, but on a CPU without native support it warns once per process with the cost."""
    if requested == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16", "auto: CUDA device with bf16"
        if device.type == "cpu" and cpu_has_fast_bf16():
            return "bf16", "auto: CPU with native bf16 (AVX512-BF16/AMX)"
        return "fp32", f"auto: no native bf16 on this {device.type}"
    if requested != "fp32" and device.type == "cpu" and not cpu_has_fast_bf16():
        if requested not in _warned:
            _warned.add(requested)
            warnings.warn(f"--precision {requested} on a CPU without native {requested} (no AVX512-BF16/AMX): "
                          f"emulated, about {SLOW_BF16_FACTOR:g}x slower than fp32 (measured for bf16 on an AVX2 "
                          "EPYC); use --precision auto or fp32", stacklevel=3)
        return requested, "requested (no native support on this CPU: slow)"
    return requested, "requested"


__all__ = [
    "PRECISIONS",
    "EngineOptions",
    "RRDBEngine",
    "available_memory",
    "cpu_flags",
    "cpu_has_fast_bf16",
    "engine_options",
    "estimate_bytes",
    "receptive_radius",
    "resolve_precision",
    "select_device",
    "tile_windows",
]
