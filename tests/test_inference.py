"""Inference engine: tiling geometry, exactness beyond the receptive field, precision, memory bound.

Bugs planted to check the auto-tile tests fail: the budget paying for one window while
``tile_batch`` windows run at once; the input and output images left out of the budget.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from rsr_bench.errors import ConfigError
from rsr_bench.methods.engine import (
    EngineOptions,
    RRDBEngine,
    engine_options,
    estimate_bytes,
    receptive_radius,
    select_device,
    tile_windows,
)
from rsr_bench.methods.rrdbnet import RRDBNet


def _net(scale: int = 4, nb: int = 1) -> RRDBNet:
    torch.manual_seed(0)
    net = RRDBNet(nf=8, nb=nb, gc=4, scale=scale).eval()
    for p in net.parameters():
        p.data.normal_(0, 0.1)
    return net


def _plain(net: RRDBNet, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(x)


@pytest.mark.parametrize("size,tile,overlap", [(37, 16, 5), (64, 16, 0), (10, 16, 4), (100, 33, 40)])
def test_tile_windows_cover_once_with_equal_windows(size: int, tile: int, overlap: int) -> None:
    wins = tile_windows(size, tile, overlap)
    covered = [0] * size
    lengths = {w1 - w0 for w0, w1, _, _ in wins}
    assert len(lengths) == 1
    for w0, w1, c0, c1 in wins:
        assert 0 <= w0 <= c0 < c1 <= w1 <= size and c1 - c0 <= tile
        assert c0 - w0 >= min(overlap, c0) and w1 - c1 >= min(overlap, size - c1)
        for i in range(c0, c1):
            covered[i] += 1
    assert covered == [1] * size


def test_tiled_equals_whole_image_beyond_receptive_field() -> None:
    net = _net(nb=1)
    x = torch.rand(2, 3, 45, 38)
    ref = _plain(net, x)
    overlap = math.ceil(receptive_radius(1)) + 1  # 15*nb + 3.25 -> 20
    eng = RRDBEngine(net, device="cpu", options=EngineOptions(tile=16, tile_overlap=overlap, tile_batch=3))
    out = eng(x)
    assert out.shape == ref.shape == (2, 3, 180, 152)
    assert (out - ref).abs().max() < 1e-5


def test_small_overlap_differs_but_only_near_seams() -> None:
    net = _net(nb=1)
    x = torch.rand(1, 3, 40, 40)
    ref = _plain(net, x)
    out = RRDBEngine(net, device="cpu", options=EngineOptions(tile=20, tile_overlap=2))(x)
    diff = (out - ref).abs()
    assert diff.max() > 1e-4  # the receptive field is cut
    assert diff[..., :40, :40].max() < 1e-5  # far from the seams at LR 20 (HR 80)


def test_whole_image_fp32_matches_plain_forward_x2() -> None:
    net = _net(scale=2)
    x = torch.rand(1, 3, 17, 23)
    ref = _plain(net, x)
    out = RRDBEngine(net, device="cpu")(x)
    assert out.shape == (1, 3, 34, 46) and out.dtype == torch.float32
    assert (out - ref).abs().max() < 1e-5


@pytest.mark.filterwarnings("ignore:--precision bf16")
def test_bf16_close_to_fp32() -> None:
    net = _net()
    x = torch.rand(1, 3, 16, 16)
    ref = _plain(net, x)
    out = RRDBEngine(net, device="cpu", options=EngineOptions(precision="bf16"))(x)
    assert out.dtype == torch.float32
    mse = ((out - ref) ** 2).mean().item()
    assert 10 * math.log10(ref.abs().max().item() ** 2 / mse) > 35


def test_non_finite_low_precision_output_falls_back_to_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    net = _net()
    x = torch.rand(1, 3, 12, 12)
    ref = _plain(net, x)
    eng = RRDBEngine(net, device="cpu", options=EngineOptions(precision="bf16"))
    forward = eng._forward
    monkeypatch.setattr(eng, "_forward", lambda t, low_precision: torch.full((1, 3, 48, 48), float("inf"))
                        if low_precision else forward(t, low_precision))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = eng(x)
    assert eng.fallbacks == 1 and any("non-finite" in str(w.message) for w in caught)
    assert (out - ref).abs().max() < 1e-5


def test_memory_bound_tiles_automatically() -> None:
    net = _net()
    x = torch.rand(1, 3, 40, 40)
    per_px = estimate_bytes(net, 1, 1, 1, "fp32")
    budget_gb = per_px * 30 * 30 / 2**30  # whole image (40x40) does not fit, a 30x30 window does
    eng = RRDBEngine(net, device="cpu", options=EngineOptions(tile_overlap=4, max_memory_gb=budget_gb))
    tile = eng.plan_tile(1, 40, 40)
    assert 16 <= tile <= 22
    calls: list[tuple[int, ...]] = []
    real = eng._run
    eng._run = lambda t: calls.append(tuple(t.shape)) or real(t)  # type: ignore[method-assign]
    out = eng(x)
    assert out.shape == (1, 3, 160, 160) and len(calls) >= 2
    assert all(s[2] * s[3] <= 30 * 30 for s in calls)


def test_out_of_memory_shrinks_batch_then_tile(monkeypatch: pytest.MonkeyPatch) -> None:
    net = _net()
    x = torch.rand(1, 3, 64, 64)
    ref = _plain(net, x)
    eng = RRDBEngine(net, device="cpu", options=EngineOptions(tile_overlap=20, tile_batch=4))
    real = eng._run
    seen: list[tuple[int, ...]] = []

    def flaky(t: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(t.shape))
        if t.shape[-1] * t.shape[-2] > 60 * 60:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 GB")
        return real(t)

    monkeypatch.setattr(eng, "_run", flaky)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = eng(x)
    assert seen[0] == (1, 3, 64, 64) and seen[-1][0] == 1 and seen[-1][-1] == 56
    assert (out - ref).abs().max() < 1e-5  # overlap 20 >= radius 18.25: still exact


def test_options_validation_and_device() -> None:
    with pytest.raises(ConfigError, match="precision"):
        EngineOptions(precision="int8")
    with pytest.raises(ConfigError, match="tile"):
        EngineOptions(tile=4)
    assert engine_options({"tile": 64, "checkpoint": "x"}).tile == 64
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in {"cpu", "cuda", "mps"}
    assert receptive_radius(23) == 348.25


def test_auto_tile_is_the_largest_that_fits_the_budget_and_is_recorded() -> None:
    """Issue 13.6: the tile is chosen from the budget and the image size (input and output
    images paid first, then ``tile_batch`` windows) and recorded in the engine provenance."""
    net = RRDBNet()  # the real width: nf=64, gc=32 (memory does not depend on nb)
    opts = EngineOptions(max_memory_gb=2.0, tile_overlap=16, tile_batch=2, precision="fp32")
    eng = RRDBEngine(net, device="cpu", options=opts)
    h = w = 1000
    tile = eng.plan_tile(1, h, w)
    images = 3 * h * w * 4 * (1 + 16)
    need = lambda t: images + estimate_bytes(net, 2, t + 32, t + 32, "fp32")  # noqa: E731
    assert 64 <= tile < 1000 and tile % 8 == 0
    assert need(tile) <= 2 * 2**30 < need(tile + 8)
    assert eng.provenance()["tiles_chosen"] == {"1000x1000": tile}
    assert eng.plan_tile(1, 64, 64) == 0  # a small input runs whole


def test_auto_tile_warns_when_the_images_alone_exceed_the_budget() -> None:
    eng = RRDBEngine(RRDBNet(nb=1), device="cpu",
                     options=EngineOptions(max_memory_gb=0.5, tile_overlap=32, precision="fp32"))
    with pytest.warns(UserWarning, match="for its input and output alone"):
        assert eng.plan_tile(1, 3000, 3000) == 128  # 4 x overlap: tiling cannot shrink the output
