"""The built-in demo suite: real photographs from installed packages, degraded reproducibly.

It exists so a fresh machine can run a real cross-dataset evaluation without downloading any
dataset. Recipe (version ``DEMO_VERSION``; any change to it must bump the version):

- HR: six public-domain / CC0 photographs that ship inside scikit-image and matplotlib,
  each a fixed 256x256 crop (a multiple of 4, so no mod-crop is needed).
- LR_clean = MATLAB bicubic x4 (antialiased, a = -0.5) of the uint8 HR, as MATLAB computes it
  on uint8 images (rounded after each axis, see ``imresize_uint8``).
- ``demo_clean``: LR_clean.
- ``demo_noise``: LR_clean + sensor-like Poisson-Gaussian noise, variance ``0.003 * x +
  (3/255)^2`` per pixel and channel, seed from the image name, then rounded.
- ``demo_jpeg``: LR_clean saved as JPEG quality 30 (4:2:0), decoded.
- ``demo_real``: HR blurred (Gaussian sigma 1.2), bicubic x4, Poisson-Gaussian noise
  (``0.002 * x + (2/255)^2``), JPEG quality 50; its HR is not kept, so it is scored like a
  real-world set (no-reference metrics only).

Generated once into ``cache_dir()/demo/v<version>-<recipe hash>/`` through a temporary folder and
a rename, so an interrupted generation is never seen as complete, and a cache written by other
generating code (this module or ``resize.py`` changed) is never reused.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..files import cache_dir
from ..image import imresize, imresize_uint8

DEMO_VERSION = "1"
CROP = 256


@dataclass(frozen=True)
class DemoSet:
    name: str
    paired: bool


DEMO_SETS = {
    "demo_clean": DemoSet("demo_clean", True),
    "demo_noise": DemoSet("demo_noise", True),
    "demo_jpeg": DemoSet("demo_jpeg", True),
    "demo_real": DemoSet("demo_real", False),
}

# name -> (package, file inside the package's data folder, crop left, crop top)
SOURCES = {
    "astronaut": ("skimage", "astronaut.png", 140, 20),
    "chelsea": ("skimage", "chelsea.png", 100, 20),
    "coffee": ("skimage", "coffee.png", 150, 70),
    "rocket": ("skimage", "rocket.jpg", 190, 60),
    "motorcycle": ("skimage", "motorcycle_left.png", 240, 120),
    "grace_hopper": ("matplotlib", "grace_hopper.jpg", 128, 40),
}


def _source_path(package: str, filename: str) -> Path:
    if package == "skimage":
        import skimage.data

        return Path(skimage.data.__file__).parent / filename
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / filename


def _load_hr(name: str) -> np.ndarray:
    package, filename, left, top = SOURCES[name]
    with Image.open(_source_path(package, filename)) as im:
        arr = np.asarray(im.convert("RGB"))
    crop = arr[top : top + CROP, left : left + CROP]
    assert crop.shape == (CROP, CROP, 3), (name, crop.shape)
    return crop


def _seed(name: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{name}".encode()).digest()[:8], "little")


def _bicubic_down(hr_u8: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(hr, 1/4)`` on the uint8 image, as benchmark LR images are made."""
    import torch

    lr = imresize_uint8(torch.from_numpy(hr_u8).permute(2, 0, 1), 0.25)
    return lr.permute(1, 2, 0).numpy().astype(np.float64) / 255.0


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def _poisson_gaussian(x: np.ndarray, a: float, b: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(a * np.clip(x, 0, 1) + b)
    return x + sigma * rng.standard_normal(x.shape)


def _jpeg(u8: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=quality, subsampling=2)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"))


def _gaussian_blur(hr_u8: np.ndarray, sigma: float) -> np.ndarray:
    radius = int(np.ceil(3 * sigma))
    t = np.arange(-radius, radius + 1)
    k = np.exp(-(t**2) / (2 * sigma**2))
    k /= k.sum()
    x = hr_u8.astype(np.float64) / 255.0
    pad = np.pad(x, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
    x = sum(k[i] * pad[i : i + x.shape[0], radius:-radius] for i in range(len(k)))
    pad = np.pad(x, ((0, 0), (radius, radius), (0, 0)), mode="reflect")
    return sum(k[i] * pad[:, i : i + x.shape[1]] for i in range(len(k)))


def make_lr(dataset: str, name: str, hr_u8: np.ndarray) -> np.ndarray:
    """The uint8 LR image of demo set ``dataset`` for source image ``name`` (see module doc)."""
    import torch

    if dataset == "demo_real":
        blurred = _gaussian_blur(hr_u8, 1.2)
        lr = imresize(torch.from_numpy(blurred).permute(2, 0, 1), 0.25).permute(1, 2, 0).numpy()
        lr = _poisson_gaussian(lr, 0.002, (2 / 255) ** 2, _seed(name, "real"))
        return _jpeg(_to_u8(lr), 50)
    clean = _bicubic_down(hr_u8)
    if dataset == "demo_clean":
        return _to_u8(clean)
    if dataset == "demo_noise":
        return _to_u8(_poisson_gaussian(clean, 0.003, (3 / 255) ** 2, _seed(name, "noise")))
    if dataset == "demo_jpeg":
        return _jpeg(_to_u8(clean), 30)
    raise KeyError(dataset)


def recipe_hash() -> str:
    """Hash of the code that generates the suite, so a cache made by other code is never reused."""
    from .. import image as resize

    h = hashlib.sha256()
    for module_file in (__file__, resize.__file__):
        h.update(Path(module_file).read_bytes())
    return h.hexdigest()[:10]


def demo_dir() -> Path:
    return cache_dir() / "demo" / f"v{DEMO_VERSION}-{recipe_hash()}"


def _generate(dest: Path) -> None:
    records = {}
    for dataset, meta in DEMO_SETS.items():
        for name in SOURCES:
            hr = _load_hr(name)
            lr = make_lr(dataset, name, hr)
            (dest / dataset / "LR").mkdir(parents=True, exist_ok=True)
            Image.fromarray(lr).save(dest / dataset / "LR" / f"{name}.png")
            if meta.paired:
                (dest / dataset / "HR").mkdir(parents=True, exist_ok=True)
                Image.fromarray(hr).save(dest / dataset / "HR" / f"{name}.png")
            records[f"{dataset}/{name}"] = hashlib.sha256(lr.tobytes()).hexdigest()[:16]
    import PIL

    manifest = {"version": DEMO_VERSION, "pillow": PIL.__version__, "lr_pixel_sha256": records}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))


def ensure_demo_suite() -> Path:
    """Generate the demo suite if needed; returns its folder."""
    final = demo_dir()
    if (final / "manifest.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".demo-", dir=final.parent))
    try:
        _generate(tmp)
        try:
            tmp.rename(final)
        except OSError:  # another process finished first
            if not (final / "manifest.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def ensure_demo_dataset(name: str) -> tuple[Path, Path | None]:
    """(LR folder, HR folder or None) of demo set ``name``, generating the suite if needed."""
    root = ensure_demo_suite() / name
    return root / "LR", (root / "HR") if DEMO_SETS[name].paired else None
