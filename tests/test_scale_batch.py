"""``--batch N``: equal-size images share one forward and one scoring call (issue 11: keep a GPU
busy on small images), with the same records as one image at a time.

Bugs planted to check these tests fail (each one alone):
- records zipped with the outputs in the wrong order (reversed) -> test_batched_records_equal_unbatched
- images of different sizes stacked together (no grouping by size) -> test_equal_sizes_share_a_forward
- no image-by-image retry of a failing batch (batch-mates lose their results) -> test_one_bad_image_keeps_its_batch_mates
- todo not sorted by size (equal sizes never meet) -> test_equal_sizes_share_a_forward
- the batch size ignored -> test_equal_sizes_share_a_forward
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rsr_bench import runner, store
from rsr_bench.errors import ConfigError
from rsr_bench.methods.rrdbnet import RRDBNet
from rsr_bench.runner import RunOptions, run

sys.path.insert(0, os.path.dirname(__file__))

CARDS = """family: tiny
adapter: rrdb
variants:
  a:
    scale: 4
    options: {checkpoint: %s, precision: fp32}
"""
PUBLISHED = "family: pub\nadapter: precomputed\nvariants:\n  x4:\n    scale: 4\n    options: {root: published}\n"
SIZES = [(16, 16), (12, 20), (16, 16), (12, 20), (16, 16), (16, 16)]  # (h, w) of LR images, interleaved


def _mixed_set(root: Path) -> Path:
    for i, (h, w) in enumerate(SIZES):
        arr = np.random.default_rng(i).integers(0, 256, (4 * h, 4 * w, 3), dtype=np.uint8)
        for sub in ("HR", "LR"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(root / "HR" / f"im{i}.png")
        Image.fromarray(arr).resize((w, h), Image.BICUBIC).save(root / "LR" / f"im{i}.png")
    (root / "sets.yaml").write_text(f"datasets:\n  Mixed:\n    lr: {root}/LR\n    hr: {root}/HR\n    scale: 4\n")
    return root / "sets.yaml"


@pytest.fixture
def setup(tmp_path: Path) -> dict:
    torch.manual_seed(0)
    torch.save(RRDBNet(nf=8, nb=1, gc=4).state_dict(), tmp_path / "tiny.pth")
    (tmp_path / "tiny.yaml").write_text(CARDS % (tmp_path / "tiny.pth"))
    return dict(datasets="Mixed", metrics="psnr,ssim,lpips", datasets_files=[_mixed_set(tmp_path / "set")],
                method_cards=[tmp_path / "tiny.yaml"], progress=False, device="cpu")


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    real = runner._predict

    def counting(method, dataset, samples, lrs, device):  # noqa: ANN001, ANN202
        seen.append(len(samples))
        return real(method, dataset, samples, lrs, device)

    monkeypatch.setattr(runner, "_predict", counting)
    return seen


def _values(root: Path, method: str) -> dict:
    return {rec["image"]: (rec["metrics"], rec["sr_sha256"]) for _, _, rec in store.iter_records_of(root, method, "Mixed")}


def test_batched_records_equal_unbatched(setup: dict, tmp_path: Path) -> None:
    for batch in (1, 3):
        summary = run(RunOptions(methods="tiny,bicubic", store=tmp_path / f"b{batch}", batch=batch, **setup),
                      log=lambda m: None)
        assert summary.exit_code == 0 and [c.computed for c in summary.cells] == [6, 6]
    for method in ("tiny.a", "bicubic.x4"):
        one, three = _values(tmp_path / "b1", method), _values(tmp_path / "b3", method)
        assert one.keys() == three.keys() == {f"im{i}" for i in range(6)}
        for image, (metrics, sha) in one.items():
            # same PNG bytes: the batched forward rounds to the same 8-bit levels on these images
            assert three[image][1] == sha, (method, image)
            for name, value in metrics.items():
                assert three[image][0][name] == pytest.approx(value, rel=1e-6, abs=1e-6), (method, image, name)


def test_equal_sizes_share_a_forward(setup: dict, tmp_path: Path, batches: list[int]) -> None:
    run(RunOptions(methods="tiny", store=tmp_path / "s", batch=3, **setup), log=lambda m: None)
    assert batches == [3, 1, 2]  # sorted by size: 16x16 x3, then a chunk of one 16x16 and the two 20x12
    batches.clear()
    run(RunOptions(methods="tiny", store=tmp_path / "t", **setup), log=lambda m: None)
    assert batches == [1] * 6


def test_one_bad_image_keeps_its_batch_mates(setup: dict, tmp_path: Path, batches: list[int]) -> None:
    """A precomputed method missing one output fails that image only, not its batch."""
    (tmp_path / "pub.yaml").write_text(PUBLISHED)
    published = tmp_path / "published" / "Mixed"
    published.mkdir(parents=True)
    for i, (h, w) in enumerate(SIZES):
        if i != 2:
            Image.open(tmp_path / "set" / "HR" / f"im{i}.png").save(published / f"im{i}.png")
    summary = run(RunOptions(**{**setup, "methods": "pub", "batch": 4, "method_cards": [tmp_path / "pub.yaml"],
                                "store": tmp_path / "p"}), log=lambda m: None)
    assert [(c.computed, c.failed) for c in summary.cells] == [(5, 1)]
    assert [f["image"] for f in summary.failures] == ["im2"] and "im2" in summary.failures[0]["message"]
    assert batches == [4, 1, 1, 1, 1, 2]  # the failing batch of four retried image by image


@pytest.mark.parametrize("bad", [0, -1, True])
def test_batch_must_be_positive(bad: object) -> None:
    with pytest.raises(ConfigError, match="batch"):
        RunOptions(batch=bad)
