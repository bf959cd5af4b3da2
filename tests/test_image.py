"""Decoding policy: every documented case, with real files where the reference data has them."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from rsr_bench.errors import ImageError
from rsr_bench.image import match_hr_to_lr, quantise, read_image, write_png


def _save(path, arr, **kw):
    Image.fromarray(arr).save(path, **kw)
    return path


def test_rgb_png_roundtrip(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    p = _save(tmp_path / "a.png", arr)
    img = read_image(p)
    assert img.shape == (3, 7, 9) and img.dtype == torch.float32
    assert torch.equal(quantise(img).permute(1, 2, 0), torch.from_numpy(arr))


def test_greyscale_becomes_three_equal_channels(tmp_path):
    arr = np.arange(64, dtype=np.uint8).reshape(8, 8)
    img = read_image(_save(tmp_path / "g.png", arr))
    assert img.shape == (3, 8, 8)
    assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])
    assert img[0, 0, 5].item() == pytest.approx(5 / 255)


def test_rgba_alpha_dropped_colour_kept(tmp_path):
    arr = np.zeros((4, 4, 4), dtype=np.uint8)
    arr[..., 0] = 200
    arr[..., 3] = 0  # fully transparent: colour must still be the stored colour
    img = read_image(_save(tmp_path / "a.png", arr))
    assert img.shape == (3, 4, 4)
    assert img[0].max().item() == pytest.approx(200 / 255)


def test_16bit_rgb_keeps_full_precision(tmp_path):
    import cv2

    arr = np.full((4, 4, 3), 0, dtype=np.uint16)
    arr[..., 2] = 1  # red in BGR order, one 16-bit level
    arr[..., 1] = 65535
    cv2.imwrite(str(tmp_path / "d.png"), arr)
    img = read_image(tmp_path / "d.png")
    assert img[0, 0, 0].item() == pytest.approx(1 / 65535, rel=1e-6)  # would be 0 at 8 bit
    assert img[1, 0, 0].item() == pytest.approx(1.0)


def test_16bit_grey(tmp_path):
    arr = np.array([[0, 257, 65535]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    img = read_image(tmp_path / "g16.png")
    assert img.shape == (3, 1, 3)
    assert img[0, 0].tolist() == pytest.approx([0, 257 / 65535, 1.0])


def test_palette_and_cmyk_to_rgb(tmp_path):
    pal = Image.new("P", (3, 2))
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.putpixel((1, 1), 1)
    pal.save(tmp_path / "p.png")
    img = read_image(tmp_path / "p.png")
    assert img[:, 1, 1].tolist() == [1.0, 0.0, 0.0]
    Image.new("CMYK", (2, 2), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    img = read_image(tmp_path / "c.jpg")
    assert img.shape == (3, 2, 2) and img[0].mean() > 0.8 and img[1].mean() < 0.2


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((2, 4, 3), dtype=np.uint8)  # 4 wide, 2 tall
    arr[0, 0] = 255
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW for display
    im.save(tmp_path / "o.jpg", exif=exif, quality=100)
    img = read_image(tmp_path / "o.jpg")
    assert img.shape == (3, 4, 2)  # displayed upright: 2 wide, 4 tall


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty file"), (b"hello, not an image", "not a recognised image")],
)
def test_bad_files_name_the_file(tmp_path, content, message):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(ImageError, match=message) as exc:
        read_image(p)
    assert str(p) in str(exc.value)


def test_truncated_png(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    (tmp_path / "t.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="t.png"):
        read_image(tmp_path / "t.png")


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        read_image(tmp_path / "nope.png")


def test_hr_mod_crop_and_mismatch(tmp_path):
    hr = torch.zeros(3, 35, 42)
    assert match_hr_to_lr(hr, (8, 10), 4, tmp_path / "hr.png").shape == (3, 32, 40)
    with pytest.raises(ImageError, match=r"HR is 42x35 but LR is 9x8"):
        match_hr_to_lr(hr, (8, 9), 4, tmp_path / "hr.png")


def test_write_png_is_atomic_and_exact(tmp_path):
    img = torch.rand(3, 5, 6)
    write_png(tmp_path / "o" / "x.png", img)
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["x.png"]
    assert torch.equal(quantise(read_image(tmp_path / "o" / "x.png")), quantise(img))


def test_real_wild_inputs(reference_data):
    wild = reference_data / "wild_inputs"
    grey = read_image(wild / "00017_gray.png")
    assert grey.shape[0] == 3 and torch.equal(grey[0], grey[2])
    rgba = read_image(wild / "children-alpha.png")
    assert rgba.shape == (3, 350, 566)
    deep = read_image(wild / "tree_alpha_16bit.png")
    assert deep.shape == (3, 256, 342)
    levels = torch.unique((deep * 65535).round())
    assert (levels % 257 != 0).any(), "16-bit file decoded with 8-bit precision"
    jpg = read_image(wild / "wolf_gray.jpg")
    assert jpg.shape == (3, 236, 236)
