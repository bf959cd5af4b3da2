"""PSNR/SSIM against hand-computed values, scikit-image, and BasicSR's formulas written out.

Bugs planted to check the BasicSR tests fail: SSIM window sigma 1.6 (fails at 1e-3); the
'valid' crop of 4 instead of 5 (fails at 1e-5); C2 from 0.02 (fails); the Y weights in RGB
sum order (the bit-identical luma check fails); a level memo keyed on ``id`` without a version
(the never-stale test fails after the in-place change).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from rsr_bench.errors import NotComputable
from rsr_bench.metrics import create_metric
from rsr_bench.metrics import fullref
from rsr_bench.metrics.fullref import y_channel


def _t(arr_u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr_u8).permute(2, 0, 1)[None].float() / 255


def test_psnr_hand_computed():
    a = np.zeros((12, 12, 3), np.uint8)
    b = a.copy()
    b[4:8, 4:8, 0] = 10  # after the 4 px crop: 16 of 4*4*3=48 values differ by 10
    mse = 16 * 100 / 48
    assert create_metric("psnr")(_t(b), _t(a))[0] == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)
    assert create_metric("psnr")(_t(a), _t(a))[0] == math.inf


def test_crop_excludes_border():
    a = np.zeros((20, 20, 3), np.uint8)
    b = a.copy()
    b[:4] = 255  # only inside the cropped border
    assert create_metric("psnr")(_t(b), _t(a))[0] == math.inf
    assert create_metric("psnr_nocrop")(_t(b), _t(a))[0] < 10


def test_against_skimage():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    sr = np.clip(gt.astype(int) + rng.integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
    c = 4
    ref_psnr = peak_signal_noise_ratio(gt[c:-c, c:-c], sr[c:-c, c:-c], data_range=255)
    assert create_metric("psnr")(_t(sr), _t(gt))[0] == pytest.approx(ref_psnr, abs=1e-9)
    # skimage's gaussian SSIM, made 'valid' by cropping its half-window from the map edges.
    ssims = []
    for ch in range(3):
        _, smap = structural_similarity(
            gt[c:-c, c:-c, ch].astype(np.float64), sr[c:-c, c:-c, ch].astype(np.float64), data_range=255,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True, truncate=3.5,
        )
        ssims.append(smap[5:-5, 5:-5].mean())
    assert create_metric("ssim")(_t(sr), _t(gt))[0] == pytest.approx(float(np.mean(ssims)), abs=1e-6)


def test_ssim_identical_is_one_and_too_small_not_computable():
    a = _t(np.random.default_rng(1).integers(0, 256, (20, 20, 3), dtype=np.uint8))
    assert create_metric("ssim")(a, a)[0] == pytest.approx(1.0)
    tiny = a[..., :12, :12]
    with pytest.raises(NotComputable, match="too small"):
        create_metric("ssim")(tiny, tiny)


def test_y_channel_matches_matlab_formula():
    white = np.ones((1, 3, 1, 1)) * 255
    black = np.zeros((1, 3, 1, 1))
    assert y_channel(white).item() == pytest.approx(235.0, abs=1e-3)
    assert y_channel(black).item() == pytest.approx(16.0)


def test_fr_metric_needs_reference():
    a = torch.rand(1, 3, 16, 16)
    with pytest.raises(NotComputable, match="ground-truth"):
        create_metric("psnr")(a, None)


def test_calibration_psnr_and_grey_ssim(reference_data):
    """Official values (results_official.csv): PSNR RGB no crop and MATLAB ssim on rgb2gray."""
    import csv

    from rsr_bench.image import read_image

    cal = reference_data / "calibration"
    rows = {r[0]: r[1:] for r in csv.reader(open(cal / "results_official.csv"))}
    names = [n.replace(".bmp", "") for n in rows["Method"]]
    for i, name in enumerate(names):
        dist = read_image(cal / "dist_dir" / f"{name}.bmp")[None]
        ref = read_image(cal / "ref_dir" / f"{name}.bmp")[None]
        assert create_metric("psnr_nocrop")(dist, ref)[0] == pytest.approx(float(rows["psnr"][i]), abs=0.01)
        assert create_metric("ssim_gray")(dist, ref)[0] == pytest.approx(float(rows["ssim"][i]), abs=0.01)


# --- BasicSR's formulas written out (basicsr/metrics/psnr_ssim.py), the independent reference; the
# per-channel _ssim is the researchers' pipeline's in benchmarks/bench_pipeline.py (one copy) ---
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_pipeline import _basicsr_ssim as _basicsr_ssim_channel  # noqa: E402


def _basicsr(img: np.ndarray, img2: np.ndarray, crop: int, y: bool) -> tuple[float, float]:
    """calculate_psnr / calculate_ssim on HWC uint8 RGB, turned into BGR as BasicSR reads it."""
    img, img2 = img[..., ::-1].astype(np.float64), img2[..., ::-1].astype(np.float64)
    img, img2 = img[crop:-crop, crop:-crop], img2[crop:-crop, crop:-crop]
    if y:
        to_y = lambda im: np.dot(im / 255.0, [24.966, 128.553, 65.481]) + 16.0  # noqa: E731 - bgr2ycbcr y_only
        img, img2 = to_y(img)[..., None], to_y(img2)[..., None]
    psnr = 10.0 * np.log10(255.0**2 / np.mean((img - img2) ** 2))
    ssim = np.array([_basicsr_ssim_channel(img[..., i], img2[..., i]) for i in range(img.shape[2])]).mean()
    return float(psnr), float(ssim)


def _real_pairs(root) -> list[tuple[np.ndarray, np.ndarray]]:
    """Real SR-like pairs: RealSR camera HR vs its registered LR shot (a 600x500 crop) and
    BSD100 HR vs the MATLAB-bicubic LR upscaled x4 with PIL bicubic."""
    from PIL import Image

    cam = root / "realsr_camera"
    hr = np.asarray(Image.open(cam / "HR" / "cam1_01.png").convert("RGB"))[200:700, 300:900]
    lr = np.asarray(Image.open(cam / "LR_registered" / "cam1_01.png").convert("RGB"))[200:700, 300:900]
    bsd = root / "bsd100"
    gt = Image.open(bsd / "HR" / "img_002.png").convert("RGB")
    up = Image.open(bsd / "LR_bicubic_x4" / "img_002.png").convert("RGB").resize(gt.size, Image.BICUBIC)
    return [(lr, hr), (np.asarray(up), np.asarray(gt))]


@pytest.mark.parametrize("y", [False, True], ids=["rgb", "y"])
def test_psnr_ssim_equal_basicsr_formula_on_real_images(reference_data, y: bool) -> None:
    """The cv2 separable SSIM and the numpy PSNR give BasicSR's values (PSNR identical; SSIM to
    3e-14, measured <= 1.9e-14: BasicSR's 11x11 ``filter2D`` runs through OpenCV's DFT path, so
    its own float64 rounding is of that order)."""
    psnr, ssim = create_metric("psnr_y" if y else "psnr"), create_metric("ssim_y" if y else "ssim")
    for sr, gt in _real_pairs(reference_data):
        want_psnr, want_ssim = _basicsr(sr, gt, crop=4, y=y)
        a, b = _t(sr), _t(gt)
        assert abs(ssim(a, b)[0] - want_ssim) < 3e-14
        assert psnr(a, b)[0] == want_psnr
        assert 0.2 < want_ssim < 0.99  # a real, imperfect pair (not a degenerate case)
        if y:  # the luma itself is bit-identical to BasicSR's bgr2ycbcr(y_only=True)
            want_y = np.dot(sr[..., ::-1].astype(np.float64) / 255.0, [24.966, 128.553, 65.481]) + 16.0
            assert np.array_equal(y_channel(fullref._levels(a))[0, 0], want_y)


def test_ssim_gray_is_matlab_same_size_replicate(reference_data) -> None:
    """ssim_gray: MATLAB's same-size map with replicated borders (the filter2D reference with
    BORDER_REPLICATE and no crop)."""
    sr, gt = _real_pairs(reference_data)[1]
    grey = lambda im: np.round(im.astype(np.float64) @ np.array([0.298936021293775, 0.587043074451121,  # noqa: E731
                                                                   0.114020904255103]))
    a, b = grey(sr), grey(gt)
    window = np.outer(cv2.getGaussianKernel(11, 1.5), cv2.getGaussianKernel(11, 1.5).T)
    f = lambda z: cv2.filter2D(z, -1, window, borderType=cv2.BORDER_REPLICATE)  # noqa: E731
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = f(a), f(b)
    s1, s2, s12 = f(a * a) - mu1**2, f(b * b) - mu2**2, f(a * b) - mu1 * mu2
    want = (((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))).mean()
    assert abs(create_metric("ssim_gray")(_t(sr), _t(gt))[0] - want) < 1e-13


def test_level_conversion_is_shared_but_never_stale() -> None:
    """Two FR metrics of one image convert it once; an in-place change or a new tensor is
    converted again (a stale memo would score the wrong image)."""
    x = torch.rand(1, 3, 16, 16)
    first = fullref._levels(x)
    assert fullref._levels(x) is first
    x.copy_(torch.randint(0, 256, x.shape) / 255)
    assert fullref._levels(x) is not first and np.array_equal(fullref._levels(x), np.round(x.double().numpy() * 255))
    y = x.clone()
    assert fullref._levels(y) is not fullref._levels(x)
