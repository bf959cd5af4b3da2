"""The corruption table (rsr_bench/robust/corruptions.py): what each level does, on real images.

Planted bugs, each applied alone to a copy of the tree (made with benchmarks/mutate_train.py's
``copy_tree``) and this module run on it; all 13 were caught, first failing test named:

| planted bug | caught by |
|---|---|
| one family's levels in the wrong order (JPEG quality 10 -> 80) | test_every_family_degrades_monotonically_with_severity |
| two wrong-kernel levels swapped (bicubic-noaa <-> bilinear) | test_every_family_degrades_monotonically_with_severity |
| the seed ignores the severity | test_seed_is_sha256_of_image_corruption_severity |
| the seed from Python's ``hash()`` (changes per process) | test_seed_is_sha256_..., test_regeneration_is_byte_identical_in_a_fresh_process |
| Gaussian noise in 0-255 units (sigma, not sigma/255) | test_noise_families_have_their_documented_statistics |
| Poisson-Gaussian variance without the signal-dependent term | test_noise_families_have_their_documented_statistics |
| salt-and-pepper flips ``amount`` of the samples to each of 0 and 1 (twice the rate) | test_noise_families_have_their_documented_statistics |
| chroma noise added to the luma too | test_chroma_noise_leaves_luma_alone |
| Gaussian blur applied to the LR after downsampling (no kernel mismatch) | test_blur_is_applied_to_the_hr_before_downsampling |
| an HR family made from the (bicubic-upsampled) LR instead of the clean HR | test_hr_families_ignore_the_lr_and_lr_families_the_hr |
| motion kernel not normalised | test_every_family_degrades_..., test_motion_kernel_is_a_normalised_line_in_its_direction |
| motion direction ignored (always horizontal) | test_motion_kernel_is_a_normalised_line_in_its_direction |
| the size check ignores the kernel (no error for a 16 px image) | test_image_too_small_is_an_error_naming_size_and_need |
"""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from rsr_bench.errors import ImageError
from rsr_bench.image import encode_png, imresize, read_image_array
from rsr_bench.robust.corruptions import (
    CORRUPTIONS,
    RECIPE,
    SEVERITIES,
    _rgb,
    _ycbcr,
    corrupt,
    markdown_table,
    motion_kernel,
    seed_for,
    size_problem,
)

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ("astronaut", "coffee")


@pytest.fixture(scope="module")
def demo() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(clean LR, HR) float HWC of two demo images (real photographs, LR = MATLAB bicubic x4)."""
    from rsr_bench.datasets import load_datasets

    spec = load_datasets()["demo_clean"].resolved()
    out = {}
    for sample in spec.samples():
        if sample.id in IMAGES:
            out[sample.id] = (read_image_array(sample.lr_path).astype(np.float64),
                              read_image_array(sample.hr_path).astype(np.float64))
    assert sorted(out) == sorted(IMAGES)
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


def test_table_has_ten_families_of_five_documented_levels() -> None:
    assert len(CORRUPTIONS) == 10
    for c in CORRUPTIONS.values():
        assert len(c.levels) == len(c.level_text) == len(SEVERITIES) == 5, c.name
        assert c.source in ("lr", "hr"), c.name
        assert c.name.replace("_", "").isalnum(), c.name  # it is spelled inside dataset and folder names


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_every_family_degrades_monotonically_with_severity(demo, name) -> None:
    """PSNR of the corrupted LR against the clean LR falls strictly from severity 1 to 5, per image."""
    c = CORRUPTIONS[name]
    for image, (lr, hr) in demo.items():
        clean = _u8(lr)
        psnr = [_psnr(corrupt(c, s, image, lr, hr, 4), clean) for s in SEVERITIES]
        assert all(b < a for a, b in itertools.pairwise(psnr)), (name, image, [round(p, 2) for p in psnr])
        assert 15 < psnr[-1] and psnr[0] < 60, (name, image, psnr)  # visible at 1, not destroyed at 5


def test_outputs_are_uint8_at_the_clean_lr_size(demo) -> None:
    lr, hr = demo["coffee"]
    hr_odd = np.pad(hr, ((0, 3), (0, 2), (0, 0)), mode="edge")  # a mod-crop remainder is cropped, as match_hr_to_lr does
    for c in CORRUPTIONS.values():
        out = corrupt(c, 3, "coffee", lr, hr_odd, 4)
        assert out.dtype == np.uint8 and out.shape == lr.shape, c.name


def test_seed_is_sha256_of_image_corruption_severity() -> None:
    expected = int.from_bytes(hashlib.sha256(b"img|jpeg|3").digest()[:8], "little")
    assert seed_for("img", "jpeg", 3) == expected
    seeds = {seed_for(i, c, s) for i in ("a", "b") for c in CORRUPTIONS for s in SEVERITIES}
    assert len(seeds) == 2 * len(CORRUPTIONS) * len(SEVERITIES)


def test_same_content_other_image_id_gets_other_noise(demo) -> None:
    lr, hr = demo["coffee"]
    c = CORRUPTIONS["gaussian_noise"]
    a, b = corrupt(c, 4, "coffee", lr, hr, 4), corrupt(c, 4, "coffee-copy", lr, hr, 4)
    assert not np.array_equal(a, b)
    assert np.array_equal(a, corrupt(c, 4, "coffee", lr, hr, 4))


_FRESH = """
import hashlib, sys, numpy as np
from rsr_bench.image import encode_png, read_image_array
from rsr_bench.robust.corruptions import CORRUPTIONS, corrupt
import torch
lr, hr = (read_image_array(p).astype(np.float64) for p in sys.argv[1:3])
for name, c in CORRUPTIONS.items():
    for s in (1, 5):
        png = encode_png(torch.from_numpy(corrupt(c, s, "coffee", lr, hr, 4)).permute(2, 0, 1))
        print(name, s, hashlib.sha256(png).hexdigest())
"""


def test_regeneration_is_byte_identical_in_a_fresh_process(demo, tmp_path) -> None:
    """Another process (another hash seed) writes the same PNG bytes for every family."""
    import torch

    lr, hr = demo["coffee"]
    lr_p, hr_p = tmp_path / "lr.png", tmp_path / "hr.png"
    lr_p.write_bytes(encode_png(torch.from_numpy(lr).permute(2, 0, 1)))
    hr_p.write_bytes(encode_png(torch.from_numpy(hr).permute(2, 0, 1)))
    here = []
    for name, c in CORRUPTIONS.items():
        for s in (1, 5):
            png = encode_png(torch.from_numpy(corrupt(c, s, "coffee", lr, hr, 4)).permute(2, 0, 1))
            here.append(f"{name} {s} {hashlib.sha256(png).hexdigest()}")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _FRESH, str(lr_p), str(hr_p)], capture_output=True, text=True,
                         env=env, cwd=ROOT, check=True).stdout.split("\n")
    assert [ln for ln in out if ln] == here


def test_noise_families_have_their_documented_statistics() -> None:
    """On a flat mid-grey image (nothing clipped): noise std, signal-dependent variance, impulse rate."""
    flat = np.full((128, 128, 3), 0.5)
    sig = CORRUPTIONS["gaussian_noise"].levels[2] / 255
    res = corrupt(CORRUPTIONS["gaussian_noise"], 3, "x", flat, None, 4) / 255.0 - 0.5
    assert res.std() == pytest.approx(sig, rel=0.05)
    a, r = CORRUPTIONS["sensor_noise"].levels[4]
    for level in (0.25, 0.75):
        img = np.full((128, 128, 3), level)
        res = corrupt(CORRUPTIONS["sensor_noise"], 5, "x", img, None, 4) / 255.0 - level
        assert res.var() == pytest.approx(a * level + (r / 255) ** 2 + 1 / 12 / 255**2, rel=0.08), level
    amount = CORRUPTIONS["salt_pepper"].levels[4]
    out = corrupt(CORRUPTIONS["salt_pepper"], 5, "x", flat, None, 4)
    assert (out == 0).mean() == pytest.approx(amount / 2, rel=0.15)
    assert (out == 255).mean() == pytest.approx(amount / 2, rel=0.15)


def test_chroma_noise_leaves_luma_alone(demo) -> None:
    lr, hr = demo["astronaut"]
    out = corrupt(CORRUPTIONS["chroma_noise"], 5, "astronaut", lr, hr, 4) / 255.0
    clipped = (out <= 0) | (out >= 1)
    keep = ~clipped.any(axis=2)
    dy = (_ycbcr(out) - _ycbcr(lr))[keep]
    assert np.abs(dy[:, 0]).max() < 1.5 / 255  # luma: only the 8-bit rounding
    assert dy[:, 1:].std() > 5 / 255  # chroma: the noise
    assert np.allclose(_rgb(_ycbcr(lr)), lr, atol=1e-6)


def test_blur_is_applied_to_the_hr_before_downsampling(demo) -> None:
    """Against an independent blur (scipy) of the HR, then MATLAB bicubic: a kernel mismatch."""
    import torch

    lr, hr = demo["coffee"]
    for s in (1, 4):
        sigma = CORRUPTIONS["gaussian_blur"].levels[s - 1]
        ref = np.stack([gaussian_filter(hr[..., c], sigma, mode="mirror", truncate=3.0) for c in range(3)], axis=-1)
        ref = imresize(torch.from_numpy(ref).permute(2, 0, 1), 0.25).permute(1, 2, 0).numpy()
        out = corrupt(CORRUPTIONS["gaussian_blur"], s, "coffee", lr, hr, 4)
        assert np.abs(out.astype(int) - _u8(ref).astype(int)).max() <= 1, s


def test_hr_families_ignore_the_lr_and_lr_families_the_hr(demo) -> None:
    lr, hr = demo["coffee"]
    black = np.zeros_like(lr)
    for c in CORRUPTIONS.values():
        a = corrupt(c, 2, "coffee", lr, hr, 4)
        if c.source == "hr":
            assert np.array_equal(a, corrupt(c, 2, "coffee", black, hr, 4)), c.name
            assert _psnr(a, _u8(lr)) > 25, c.name  # made from the real HR, close to the clean LR
        else:
            assert np.array_equal(a, corrupt(c, 2, "coffee", lr, np.zeros_like(hr), 4)), c.name
            assert np.array_equal(a, corrupt(c, 2, "coffee", lr, None, 4)), c.name


def test_motion_kernel_is_a_normalised_line_in_its_direction() -> None:
    flat = motion_kernel(9, 0.0)
    assert flat.sum() == pytest.approx(1.0)
    assert np.allclose(flat[4], flat.sum(axis=0)) and flat[4].min() > 0  # all mass on the centre row, spread along it
    upright = motion_kernel(9, 90.0)
    assert np.allclose(upright, flat.T, atol=1e-9)
    diag = motion_kernel(9, 45.0)  # up and to the right: on the anti-diagonal
    yy, xx = np.mgrid[0:9, 0:9]
    assert diag[np.abs(yy + xx - 8) > 1].sum() == 0 and diag[np.abs(yy + xx - 8) == 0].sum() > 0.5


def test_image_too_small_is_an_error_naming_size_and_need() -> None:
    hr = np.full((16, 16, 3), 0.5)
    lr = np.full((4, 4, 3), 0.5)
    length = CORRUPTIONS["motion_blur"].levels[4]
    with pytest.raises(ImageError, match=rf"16x16 px \(HR\).*motion_blur@5.*at least {length} px"):
        corrupt(CORRUPTIONS["motion_blur"], 5, "tiny", lr, hr, 4)
    assert size_problem(CORRUPTIONS["motion_blur"], 1, (16, 16)) is None
    for c in CORRUPTIONS.values():  # LR families take any size
        if c.source == "lr":
            assert corrupt(c, 5, "tiny", lr, hr, 4).shape == (4, 4, 3)


def test_docs_table_is_the_code_table() -> None:
    """docs/robustness.md prints the table this module generates (one home for the levels)."""
    doc = (ROOT / "docs" / "robustness.md").read_text(encoding="utf-8")
    assert markdown_table() in doc
    assert f"recipe {RECIPE}" in doc.lower() or f"recipe version {RECIPE}" in doc.lower()
