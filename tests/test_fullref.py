"""PSNR/SSIM against hand-computed values and an independent implementation (scikit-image)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from rsr_bench.errors import NotComputable
from rsr_bench.metrics import create_metric
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
    white = torch.ones(1, 3, 1, 1) * 255
    black = torch.zeros(1, 3, 1, 1)
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
