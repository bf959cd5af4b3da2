"""Image decoding policy, quantisation, PNG writing and MATLAB-compatible bicubic ``imresize``.

Every image entering the harness goes through :func:`read_image`, which applies one documented
policy so that results never depend on which library happened to decode a file:

- EXIF orientation is applied (a phone photo is scored the way it is displayed).
- Greyscale (``L``, ``I;16``, ``LA``) is replicated to 3 channels.
- Alpha (``RGBA``, ``LA``, palette with transparency) is **dropped**, colour values are kept as
  stored. This is what the official ESRGAN/RealSR/RSR test scripts do (``cv2.imread`` with
  ``IMREAD_COLOR``), so scores match theirs; compositing onto a background would change them.
- 16-bit PNGs keep full precision: values are divided by 65535 (PIL would truncate to 8 bit,
  so 16-bit files are decoded with OpenCV).
- Palette (``P``), ``CMYK``, ``YCbCr`` and other modes are converted to RGB by Pillow.
- Everything else is divided by 255. The result is a float32 ``(3, H, W)`` tensor in [0, 1].
- **Maximum size**: an image larger than :data:`DEFAULT_MAX_PIXELS` (2**27 = 134,217,728
  pixels, e.g. 16384x8192; a 108-megapixel phone photo fits) is refused from its header, before
  a single pixel is decoded, so a 69-byte PNG claiming 30000x30000 (a decompression bomb) costs
  nothing. Decoded, the limit is ~1.6 GB of float32. ``RSR_BENCH_MAX_PIXELS`` overrides it
  (``0``: no limit); Pillow's own, lower bomb limit is replaced by this one while we decode.

Any failure raises :class:`~rsr_bench.errors.ImageError` naming the file and the problem, so a
bad file is one failed image, never the end of a run.

``imresize``: SR benchmarks make their LR inputs with MATLAB's ``imresize(img, 1/4, 'bicubic')``
and the paper's "Bicubic" row upsamples with the same function. PIL, OpenCV and
``torch.nn.functional.interpolate`` all differ from it (kernel, antialiasing, border handling),
by up to a few tenths of a dB, so the harness carries its own implementation: two dense matrix
products; each output sample is a weighted sum of input samples with the Keys cubic kernel
(a = -0.5); when downscaling with antialiasing the kernel is stretched by 1/scale; indices
outside the image are mirrored symmetrically (edge sample repeated); each row of weights is
normalised to sum to one.
"""

from __future__ import annotations

import errno
import io
import math
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ConfigError, ImageError
from .files import atomic_write_bytes

if TYPE_CHECKING:  # torch is imported where used: `rsr-bench list` and --help stay under 1 s
    import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The largest image decoded unless ``RSR_BENCH_MAX_PIXELS`` says otherwise (see the module policy).
DEFAULT_MAX_PIXELS = 1 << 27
MAX_PIXELS_ENV = "RSR_BENCH_MAX_PIXELS"
_PIL_OPEN = threading.Lock()  # guards the moment Pillow's global bomb limit is lifted for our check


def max_pixels() -> int | None:
    """The decode limit in pixels: ``RSR_BENCH_MAX_PIXELS`` (``0``: none), else the default."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not raw:
        return DEFAULT_MAX_PIXELS
    if not raw.isdigit():
        raise ConfigError(f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r}: expected a number of pixels "
                          "(0 = no limit)")
    return int(raw) or None


def _check_size(path: Path, width: int, height: int) -> None:
    limit = max_pixels()
    if limit is not None and width * height > limit:
        raise ImageError(
            f"{path}: {width}x{height} = {width * height:,} pixels exceeds the maximum of {limit:,} pixels per "
            f"image (a decompression bomb, or a larger image than allowed: raise {MAX_PIXELS_ENV}, 0 = no limit)"
        )


def _png_bit_depth(data: bytes) -> int | None:
    if data[:8] != _PNG_SIGNATURE or len(data) < 25:
        return None
    return data[24]


def _decode_16bit_png(data: bytes, path: Path) -> np.ndarray:
    import cv2

    _check_size(path, int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))  # IHDR
    try:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except Exception as exc:  # noqa: BLE001 - cv2.error, MemoryError: a bad file is one failed image
        raise ImageError(f"{path}: cannot decode 16-bit PNG ({type(exc).__name__}: {exc})") from None
    if arr is None:
        raise ImageError(f"{path}: cannot decode 16-bit PNG (corrupt or truncated)")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.shape[2] == 2:  # grey + alpha
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    else:
        arr = arr[:, :, 2::-1]  # BGR(A) -> RGB, alpha dropped
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    return arr.astype(np.float32) / scale


def _open_pil(data: bytes, path: Path) -> Image.Image:
    """Open lazily (header only) and apply our size limit before anything is decoded."""
    with _PIL_OPEN:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # ours replaces Pillow's (may be higher)
        try:
            im = Image.open(io.BytesIO(data))
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    try:
        _check_size(path, *im.size)
    except ImageError:
        im.close()
        raise
    return im


def _decode_pil(data: bytes, path: Path) -> np.ndarray:
    try:
        with _open_pil(data, path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float32)
                arr = arr / (65535.0 if arr.max() > 255 or im.mode != "I" else 255.0)
                return np.repeat(arr[:, :, None], 3, axis=2)
            if im.mode == "F":
                arr = np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)
                return np.repeat(arr[:, :, None], 3, axis=2)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA").convert("RGB") if im.mode != "RGBA" else im.convert("RGB")
            elif im.mode != "RGB":
                im = im.convert("RGB")
            return np.asarray(im, dtype=np.float32) / 255.0
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a recognised image file") from None
    except ImageError:
        raise
    except MemoryError:
        raise ImageError(f"{path}: not enough memory to decode this image") from None
    except Exception as exc:  # noqa: BLE001 - decoders raise OSError, SyntaxError, struct.error, ...
        raise ImageError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from None


def read_image_array(path: str | os.PathLike) -> np.ndarray:
    """Decode ``path`` by the policy above into an ``(H, W, 3)`` float32 array in [0, 1]."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror})") from None
    if not data:
        raise ImageError(f"{path}: empty file (0 bytes)")
    arr = _decode_16bit_png(data, path) if _png_bit_depth(data) == 16 else _decode_pil(data, path)
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageError(f"{path}: image has no pixels ({arr.shape[1]}x{arr.shape[0]})")
    return np.ascontiguousarray(arr)


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """Decode ``path`` into a ``(3, H, W)`` float32 tensor in [0, 1] (see module policy)."""
    import torch

    return torch.from_numpy(read_image_array(path)).permute(2, 0, 1).contiguous()


def quantise(img: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to uint8 levels, as ``round(x * 255)`` in the official scripts."""
    import torch

    return (img.clamp(0, 1) * 255.0).round().to(torch.uint8)


def dequantise(img_u8: torch.Tensor) -> torch.Tensor:
    import torch

    return img_u8.to(torch.float32) / 255.0


def to_uint8_hwc(img: torch.Tensor) -> np.ndarray:
    """``(3,H,W)`` float or uint8 tensor -> ``(H,W,3)`` uint8 array."""
    import torch

    if img.dtype != torch.uint8:
        img = quantise(img)
    return img.permute(1, 2, 0).cpu().numpy()


def encode_png(img: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(to_uint8_hwc(img)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def write_png(path: str | os.PathLike, img: torch.Tensor) -> None:
    """Write a ``(3,H,W)`` image as an 8-bit PNG atomically (temp file + rename)."""
    atomic_write_bytes(path, encode_png(img))


def mod_crop(img: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop ``(..., H, W)`` to multiples of ``scale`` from the bottom/right, as BasicSR does."""
    h, w = img.shape[-2:]
    return img[..., : h - h % scale, : w - w % scale]


def match_hr_to_lr(hr: torch.Tensor, lr_hw: tuple[int, int], scale: int, hr_path: Path) -> torch.Tensor:
    """Make HR exactly ``scale x`` LR, or explain why it cannot.

    When HR is larger only by the remainder of a mod-crop (HR side in
    ``[scale*lr, scale*lr + scale)``), the extra bottom/right pixels are cropped, which is what
    producing LR with ``imresize`` from an un-mod-cropped HR implies. Anything else is an error
    naming both sizes.
    """
    h, w = hr.shape[-2:]
    want_h, want_w = lr_hw[0] * scale, lr_hw[1] * scale
    if (h, w) == (want_h, want_w):
        return hr
    if want_h <= h < want_h + scale and want_w <= w < want_w + scale:
        return hr[..., :want_h, :want_w]
    raise ImageError(
        f"{hr_path}: HR is {w}x{h} but LR is {lr_hw[1]}x{lr_hw[0]} at scale x{scale} "
        f"(expected {want_w}x{want_h}, or up to {scale - 1} px more for a mod-crop remainder)"
    )


def scan_images(folder: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """Image files in ``folder`` (not recursive, sorted by name, hidden files ignored), and the
    image-named entries that cannot be read, each as ``"name (why)"``: dangling symbolic links
    and link loops, which would otherwise vanish from a dataset without a word."""
    images: list[Path] = []
    skipped: list[str] = []
    for p in sorted(Path(folder).iterdir()):
        if p.name.startswith(".") or p.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if p.is_file():
            images.append(p)
        elif p.is_symlink():
            try:
                os.stat(p)
            except OSError as exc:
                why = ("symbolic link loop" if exc.errno == errno.ELOOP else
                       f"dangling symbolic link to {os.readlink(p)}" if exc.errno == errno.ENOENT else
                       f"symbolic link that cannot be followed: {exc.strerror}")
                skipped.append(f"{p.name} ({why})")
    return images, skipped


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files in ``folder`` (not recursive), sorted by name; hidden files ignored."""
    return scan_images(folder)[0]


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * (
        (ax > 1) & (ax <= 2)
    )


@lru_cache(maxsize=64)
def resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool = True) -> np.ndarray:
    """The (out_len, in_len) float64 matrix that resamples one axis as MATLAB does."""
    kernel_width = 4.0
    if scale < 1 and antialias:
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - idx
    if scale < 1 and antialias:
        w = scale * _cubic(dist * scale)
    else:
        w = _cubic(dist)
    w = w / w.sum(axis=1, keepdims=True)
    # MATLAB's symmetric padding: [1..L, L..1] repeated.
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    src = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    mat = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(mat, (np.repeat(np.arange(out_len), taps), src.ravel()), w.ravel())
    return mat


def imresize(img: torch.Tensor, scale: float, *, antialias: bool = True) -> torch.Tensor:
    """Resize ``(..., H, W)`` by ``scale`` like MATLAB's ``imresize(img, scale, 'bicubic')``.

    Output size is ``ceil(H * scale) x ceil(W * scale)``, as in MATLAB. No clamping or
    rounding: callers that need uint8 do that once, explicitly. Computation runs in the
    input's dtype (use float64 for bit-faithful LR generation).
    """
    import torch

    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if not img.is_floating_point():
        raise TypeError("imresize expects a floating-point tensor")
    h, w = img.shape[-2:]
    out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
    mh = torch.from_numpy(resize_matrix(h, out_h, float(scale), antialias)).to(img)
    mw = torch.from_numpy(resize_matrix(w, out_w, float(scale), antialias)).to(img)
    return mh @ img @ mw.T


def imresize_uint8(img_u8: torch.Tensor, scale: float, *, antialias: bool = True) -> torch.Tensor:
    """MATLAB ``imresize`` on a uint8 image: ``(..., H, W)`` uint8 in, uint8 out.

    MATLAB resizes one dimension at a time (rows first when both scales are equal) and stores
    the intermediate in the input's class, so a uint8 image is rounded between the two passes.
    Reproducing that matches the LR images of the standard benchmarks (Set5/Set14
    ``LR_bicubic_x4``) far more often than a single rounding at the end.
    """
    import torch

    if img_u8.dtype != torch.uint8:
        raise TypeError("imresize_uint8 expects a uint8 tensor")
    x = img_u8.to(torch.float64)
    h, w = x.shape[-2:]
    out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
    mh = torch.from_numpy(resize_matrix(h, out_h, float(scale), antialias))
    mw = torch.from_numpy(resize_matrix(w, out_w, float(scale), antialias))
    x = (mh @ x).round().clamp(0, 255)
    return (x @ mw.T).round().clamp(0, 255).to(torch.uint8)
