"""Hostile images (issue 13, item 5, the image side): a decompression bomb is one per-image error.

A 69-byte PNG whose header claims 30000x30000 raised PIL's DecompressionBombError, which is not
an ImageError, so the runner's decoder let it through: the run ended with a traceback, no image
scored, later datasets never ran. The decoding policy now has a maximum input size, read from
the file's header before any pixel is decoded (default ``DEFAULT_MAX_PIXELS``, overridable with
``RSR_BENCH_MAX_PIXELS``), and every decoder failure becomes an ImageError naming the file.

Planted bugs this module catches (each tried on the fixed code, one at a time): no size check
(PIL's own error escapes); the check after ``load()`` (the "header only" test sees a decode);
the 16-bit (OpenCV) path skipping the check; ignoring the environment override; catching only
OSError around the decoder (the corruption sweep finds DecompressionBombError and friends).
"""

from __future__ import annotations

import io
import random
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from rsr_bench.errors import ConfigError, ImageError
from rsr_bench.image import DEFAULT_MAX_PIXELS, max_pixels, read_image
from rsr_bench.runner import RunOptions, run


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(w: int, h: int, depth: int = 8) -> bytes:
    """A tiny PNG whose header claims ``w`` x ``h`` RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def save(path: Path, size=(12, 10), fmt: str | None = None) -> Path:
    arr = (np.random.default_rng(0).random((size[1], size[0], 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path, fmt)
    return path


@pytest.mark.parametrize("depth", [8, 16])
def test_decompression_bomb_is_an_image_error_naming_the_file(tmp_path, depth):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(30000, 30000, depth))
    assert len(path.read_bytes()) < 200
    with pytest.raises(ImageError, match=r"bomb\.png.*30000x30000.*RSR_BENCH_MAX_PIXELS"):
        read_image(path)


def test_size_is_checked_from_the_header_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(bomb_png(20000, 20000))

    def no_decode(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    with pytest.raises(ImageError, match=r"big\.png.*20000x20000 = 400,000,000 pixels.*maximum"):
        read_image(path)


def test_limit_is_documented_and_overridable(tmp_path, monkeypatch):
    assert max_pixels() == DEFAULT_MAX_PIXELS and 50_000_000 < DEFAULT_MAX_PIXELS < 900_000_000
    small, large = save(tmp_path / "s.png", (8, 8)), save(tmp_path / "l.jpg", (20, 10))
    monkeypatch.setenv("RSR_BENCH_MAX_PIXELS", "100")
    assert read_image(small).shape == (3, 8, 8)
    with pytest.raises(ImageError, match=r"l\.jpg.*20x10 = 200 pixels.*maximum of 100"):
        read_image(large)
    monkeypatch.setenv("RSR_BENCH_MAX_PIXELS", "0")  # no limit
    assert read_image(large).shape == (3, 10, 20)
    monkeypatch.setenv("RSR_BENCH_MAX_PIXELS", "lots")
    with pytest.raises(ConfigError, match="RSR_BENCH_MAX_PIXELS"):
        max_pixels()


def test_an_override_above_pillows_own_limit_is_honoured(tmp_path, monkeypatch):
    """Pillow refuses > 178 MP on its own; a user who raised our limit must not hit that."""
    path = tmp_path / "huge.png"
    path.write_bytes(bomb_png(20000, 10000))  # 200 MP, header only: the decode fails, not the size check
    monkeypatch.setenv("RSR_BENCH_MAX_PIXELS", str(10**9))
    with pytest.raises(ImageError) as err:
        read_image(path)
    assert "huge.png" in str(err.value) and "maximum" not in str(err.value)
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's global protection is left as it was


def test_corrupted_files_raise_only_image_errors(tmp_path):
    """Random byte flips and truncations of five formats: every failure names the file."""
    rng = random.Random(13)
    arr = (np.random.default_rng(0).random((24, 20, 3)) * 255).astype(np.uint8)
    sources = {}
    for fmt, ext in (("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp"), ("TIFF", ".tif"), ("WEBP", ".webp")):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, fmt)
        sources[ext] = buf.getvalue()
    others = []
    for i in range(600):
        ext = rng.choice(sorted(sources))
        data = bytearray(sources[ext])
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        path = tmp_path / f"f{i}{ext}"
        path.write_bytes(bytes(data))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                read_image(path)
        except ImageError as exc:
            assert path.name in str(exc)
        except Exception as exc:  # noqa: BLE001 - what the test looks for
            others.append(f"{path.name}: {type(exc).__name__}: {exc}")
        path.unlink()
    assert others == []


def test_a_bomb_in_a_dataset_is_one_failed_image_and_the_run_goes_on(tmp_path):
    for name in ("A", "B"):
        (tmp_path / name).mkdir()
        for i in range(2):
            save(tmp_path / name / f"im{i}.png", (8, 8))
    (tmp_path / "A" / "bomb.png").write_bytes(bomb_png(30000, 30000))
    sets = tmp_path / "sets.yaml"
    sets.write_text(f"datasets:\n  A: {{lr: {tmp_path}/A, scale: 4}}\n  B: {{lr: {tmp_path}/B, scale: 4}}\n")
    summary = run(RunOptions(methods="bicubic", datasets="A,B", metrics="niqe", datasets_files=[sets],
                             progress=False), log=lambda m: None)
    assert summary.exit_code == 1
    assert [(f["dataset"], f["image"], f["stage"]) for f in summary.failures] == [("A", "bomb", "decode-lr")]
    assert "30000x30000" in summary.failures[0]["message"]
    assert {(c.dataset, c.computed) for c in summary.cells} == {("A", 2), ("B", 2)}
