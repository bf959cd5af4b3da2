"""The in-tree NIQE, BRISQUE and PIQE (rsr_bench/metrics/noref.py, nss.py) against pyiqa 0.1.16's
classes, the oracle they replace, with the same model files on the same inputs.

Real images of many sizes come from ``$RSR_BENCH_REFERENCE_DATA`` (RealSRSet LR 120-360 px,
BSD100 HR 480x320 both ways, RealSR-JPEG outputs 480-1024 px; skipped where absent; the ``slow``
test takes every BSD100/RealSRSet/RealSR-camera image). Edge cases are synthetic: odd sizes,
NIQE's smallest sizes, near-constant, black and white images, noise, one-sided distributions.
Found on this machine: NIQE equal to ~2e-15 (float64), BRISQUE and PIQE bit-identical (float32,
same operation order); asserted to 1e-9 and 1e-6, far inside the table tolerances.

Bugs planted one at a time (each made a test here fail; test_metrics_calibration/edge catch
the larger ones too):

- YIQ weights of R and B swapped (0.114/0.587/0.299);
- Y not rounded to integer levels before NIQE/BRISQUE;
- NIQE half scale skipped (the second scale read at full size, 48x48 blocks);
- half-scale taps shifted by one pixel (inputs 2i-3 .. 2i+6);
- Gaussian window sigma 7/6 -> 1.2;
- MSCN divided by sigma instead of sigma + 1;
- AGGD grid step 0.001 -> 0.002;
- NIQE block 96 -> 95 (off by one);
- NIQE neighbour products along (1, 1) twice instead of (1, -1);
- BRISQUE SVR gamma 0.05 -> 0.5;
- BRISQUE zero borders replaced by replicated ones;
- PIQE activity threshold 0.1 -> 0.2; edge-segment threshold 0.1 -> 0.05;
- PIQE padding to the next multiple of 16 (MATLAB's) instead of the port's H % 16;
- PIQE surround keeping column 9 and leaving out column 8;
- the luminance cache ignoring the tensor's version (stale Y after an in-place edit), or keyed
  on the shape (another tensor served this one's Y);
- cv2's scalar-tail columns left unfixed (float32 rounding of the last W mod 8 columns);
- numpy's square root instead of torch's in the float32 MSCN.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from rsr_bench.errors import NotComputable
from rsr_bench.image import dequantise, quantise, read_image
from rsr_bench.metrics import create_metric, get_metric_spec, nss

pytestmark = [pytest.mark.network, pytest.mark.usefixtures("single_torch_thread")]

NAMES = ("niqe", "brisque", "piqe")
TOL = {"niqe": 1e-9, "brisque": 1e-6, "piqe": 1e-6}


@pytest.fixture(scope="module")
def oracle():
    """pyiqa's NIQE/BRISQUE/PIQE classes with the asset files (~5-10 s of imports, once)."""
    pytest.importorskip("pyiqa")
    from pyiqa.archs.brisque_arch import BRISQUE
    from pyiqa.archs.niqe_arch import NIQE
    from pyiqa.archs.piqe_arch import PIQE

    from rsr_bench.fetch.assets import ensure_asset

    nets = {"niqe": NIQE(pretrained_model_path=str(ensure_asset("niqe-pris-params"))),
            "brisque": BRISQUE(pretrained_model_path=str(ensure_asset("brisque-live-svr"))),
            "piqe": PIQE()}

    def score(name: str, x: torch.Tensor) -> float:
        """pyiqa's value for one (1,3,H,W) image, NaN where it fails or gives no number."""
        try:
            with torch.no_grad():
                return float(nets[name](x))
        except (AssertionError, RuntimeError, torch.linalg.LinAlgError):
            return math.nan

    return score


def _ours(name: str, x: torch.Tensor) -> float | None:
    """Our value, None when NotComputable."""
    try:
        return create_metric(name)(x)[0]
    except NotComputable:
        return None


def _agree(name: str, x: torch.Tensor, oracle, label: str) -> None:
    got, want = _ours(name, x), oracle(name, x)
    spec = get_metric_spec(name)
    if spec.size_problem(*x.shape[-2:]):
        assert got is None, f"{label}: {name} scored a too-small image"
        return
    if not math.isfinite(want):
        assert got is None or (name == "piqe" and got == 100.0), f"{label}: {name} {got}, pyiqa {want}"
        return
    assert got is not None, f"{label}: {name} not computable, pyiqa gives {want}"
    assert abs(got - want) <= TOL[name], f"{label}: {name} {got!r} vs pyiqa {want!r} ({got - want:+.3g})"


def _load(path: Path) -> torch.Tensor:
    x = dequantise(quantise(read_image(path)))[None]
    return x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x


def _real_images(reference_data: Path, every: bool) -> list[Path]:
    lr = sorted((reference_data / "realsrset" / "LR").glob("*.png"))
    bsd = sorted((reference_data / "bsd100" / "HR").glob("*.png"))
    outputs = sorted((reference_data / "realsrset" / "reference_outputs" / "impressionism_df2k_jpeg").glob("*.png"))
    camera = sorted((reference_data / "realsr_camera" / "HR").glob("*.png"))
    if every:
        return lr + bsd + outputs + camera
    sizes = {p: Image.open(p).size for p in bsd[:12]}  # header only
    wide = [p for p, (w, h) in sizes.items() if w > h][:2]
    tall = [p for p, (w, h) in sizes.items() if w < h][:2]
    return lr + wide + tall + [p for p in outputs if p.stem in ("chip", "Lincoln")]


@pytest.mark.parametrize("name", NAMES)
def test_real_images_equal_pyiqa(name, oracle, reference_data):
    paths = _real_images(reference_data, every=False)
    if not paths:
        pytest.skip("no RealSRSet/BSD100 images under RSR_BENCH_REFERENCE_DATA")
    sizes = {tuple(_load(p).shape[-2:]) for p in paths}
    assert len(sizes) >= 6  # really several sizes
    for path in paths:
        _agree(name, _load(path), oracle, path.name)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_reference_image_equals_pyiqa(name, oracle, reference_data):
    paths = _real_images(reference_data, every=True)
    if not paths:
        pytest.skip("no reference images under RSR_BENCH_REFERENCE_DATA")
    for path in paths:
        _agree(name, _load(path), oracle, path.name)


def _texture(h: int, w: int, seed: int = 0, noise: float = 0.05) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, max(2, h // 12), max(2, w // 12), generator=g)
    x = torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)
    return dequantise(quantise(x + noise * torch.randn(1, 3, h, w, generator=g)))


def _near_constant(h: int, w: int, level: float, k: int, seed: int = 0) -> torch.Tensor:
    """A flat image with ``k`` pixels one grey level brighter."""
    x = torch.full((1, 3, h, w), level)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(h * w, generator=g)[:k]
    x.view(1, 3, -1)[..., idx] += 1 / 255
    return dequantise(quantise(x))


EDGE_CASES = {
    "odd 97x203": lambda: _texture(97, 203),
    "odd 101x77": lambda: _texture(101, 77, 1),
    "16x16": lambda: _texture(16, 16, 2),
    "17x23": lambda: _texture(17, 23, 3),
    "31x47": lambda: _texture(31, 47, 4),
    "niqe 96x192": lambda: _texture(96, 192, 5),
    "niqe 193x289": lambda: _texture(193, 289, 6),
    "niqe 191x150": lambda: _texture(191, 150, 7),
    "piqe pad 110x118": lambda: _texture(110, 118, 8),
    "white noise": lambda: dequantise(quantise(torch.rand(1, 3, 200, 230, generator=torch.Generator().manual_seed(9)))),
    "near-constant, 3 px": lambda: _near_constant(200, 200, 0.5, 3),
    "near-constant, 200 px": lambda: _near_constant(192, 288, 0.2, 200),
    "near-black, 50 px": lambda: _near_constant(192, 192, 0.0, 50),
    "two levels": lambda: (torch.arange(200 * 210).view(1, 1, 200, 210) % 7 == 0).float().expand(1, 3, -1, -1) * 0.6,
    "black": lambda: torch.zeros(1, 3, 192, 200),
    "white": lambda: torch.ones(1, 3, 192, 200),
}


@pytest.mark.parametrize("case", EDGE_CASES)
def test_edge_cases_equal_pyiqa(case, oracle):
    x = EDGE_CASES[case]()
    for name in NAMES:
        if torch.all(x == x.flatten()[0]) and name != "piqe":
            with pytest.raises(NotComputable, match="constant image"):
                create_metric(name)(x)
            continue
        _agree(name, x, oracle, case)


def test_black_and_constant_piqe_is_100():
    for level in (0.0, 0.3, 1.0):
        assert create_metric("piqe")(torch.full((2, 3, 40, 48), level)) == [100.0, 100.0]


def test_batch_scores_equal_each_images_own():
    """Each image is scored alone: a batch's scores equal the images' own, bit for bit."""
    a, b = _texture(120, 130, 1), _texture(120, 130, 2)
    for name in ("brisque", "piqe"):
        batch = create_metric(name)(torch.cat([a, b, a]))
        assert batch == [create_metric(name)(a)[0], create_metric(name)(b)[0], create_metric(name)(a)[0]], name


def test_luma_is_shared_but_never_stale():
    """The three metrics of one batch convert it once; an in-place edit or another tensor is
    never served the cached luminance."""
    x = _texture(200, 220, 3)
    y1 = nss.luma(x)
    assert nss.luma(x) is y1  # shared
    before = create_metric("piqe")(x)[0]
    x.copy_(_texture(200, 220, 5))  # in place: same object, new version
    assert not torch.equal(nss.luma(x), y1)
    assert create_metric("piqe")(x)[0] == create_metric("piqe")(x.clone())[0] != before
    other = _texture(200, 220, 4)
    assert not torch.equal(nss.luma(other), nss.luma(x))


def test_half_scale_matches_matlab_imresize_on_a_ramp():
    """MATLAB imresize(x, 0.5) of a linear ramp is the ramp sampled at 2i + 0.5 away from the
    borders (the bicubic kernel reproduces linear functions), and odd sizes round up."""
    ramp = torch.arange(41, dtype=torch.float32).view(1, 1, 41, 1).expand(1, 1, 41, 9).contiguous()
    half = nss.half_scale(ramp)
    assert half.shape == (1, 1, 21, 5)
    inner = half[0, 0, 3:-3, 0]
    assert torch.allclose(inner, torch.arange(3, 18, dtype=torch.float32) * 2 + 0.5, atol=1e-4)


def test_model_files_are_read_without_code_execution(monkeypatch):
    """BRISQUE's SVR goes through ``torch.load(weights_only=True)``; NIQE's through loadmat."""
    from rsr_bench.metrics import noref

    seen = {}
    real = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    noref.Brisque(get_metric_spec("brisque"))
    assert seen.get("weights_only") is True


def test_pristine_params_are_kept_without_scipy(tmp_path, monkeypatch):
    """NIQE's .mat is read with scipy.io once (~0.4 s of import per run), then from a .npz kept
    beside it and named by the .mat's hash; a damaged .npz is read again from the .mat.
    Planted bugs: the .npz not keyed on the .mat's content (an edited .mat served stale values);
    a damaged .npz trusted (an exception instead of a re-read)."""
    import shutil
    import sys

    import numpy as np
    import scipy.io

    from rsr_bench.fetch.assets import ensure_asset
    from rsr_bench.metrics.noref import pristine_params

    mat = tmp_path / "niqe.mat"
    shutil.copy(ensure_asset("niqe-pris-params", download=False), mat)
    want = scipy.io.loadmat(str(mat))
    mu, cov = pristine_params(mat)
    assert np.array_equal(mu, want["mu_prisparam"]) and np.array_equal(cov, want["cov_prisparam"])
    (cached,) = tmp_path.glob("niqe.mat.*.npz")
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "scipy.io", None)  # importing scipy.io now fails
        mu2, cov2 = pristine_params(mat)
    assert np.array_equal(mu2, mu) and np.array_equal(cov2, cov)
    cached.write_bytes(b"not an npz")
    assert np.array_equal(pristine_params(mat)[1], cov)
    scipy.io.savemat(str(mat), {"mu_prisparam": want["mu_prisparam"] + 1, "cov_prisparam": want["cov_prisparam"]})
    assert np.array_equal(pristine_params(mat)[0], want["mu_prisparam"] + 1)
