"""Edge cases of the learned / no-reference metrics: size limits, constant and grey images,
batching, caching, large images. Synthetic images keep these fast; assets come from the
session cache (``network``: fetched through the PyPI mirrors on a fresh machine)."""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rsr_bench.errors import NotComputable
from rsr_bench.image import read_image
from rsr_bench.metrics import create_metric
from rsr_bench.metrics import perceptual as lpips_metric

pytestmark = [pytest.mark.network, pytest.mark.usefixtures("single_torch_thread")]


def _texture(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth random texture with noise, quantised (closer to natural images than white noise)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, max(2, h // 16), max(2, w // 16), generator=g)
    x = torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)
    x = (x + 0.05 * torch.randn(n, 3, h, w, generator=g)).clamp(0, 1)
    return (x * 255).round() / 255


@pytest.mark.parametrize("name,shape", [
    ("niqe", (95, 300)), ("niqe", (96, 96)), ("niqe", (191, 150)),
    ("piqe", (15, 64)), ("brisque", (15, 40)), ("lpips", (30, 64)),
])
def test_too_small_is_not_computable_with_reason(name, shape):
    x = _texture(1, *shape)
    metric = create_metric(name)
    with pytest.raises(NotComputable, match=f"{name}: image {shape[1]}x{shape[0]}"):
        metric(x, x if name == "lpips" else None)


@pytest.mark.parametrize("name,shape", [("niqe", (96, 192)), ("piqe", (16, 16)), ("brisque", (16, 16)), ("lpips", (31, 31))])
def test_smallest_computable_size(name, shape):
    x = _texture(1, *shape)
    (v,) = create_metric(name)(x, _texture(1, *shape, seed=1) if name == "lpips" else None)
    assert np.isfinite(v)


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_constant_images(level):
    x = torch.full((1, 3, 200, 200), level)
    for name in ("niqe", "brisque"):
        with pytest.raises(NotComputable, match="constant image"):
            create_metric(name)(x)
    assert create_metric("piqe")(x) == [100.0]  # no active block: MATLAB's formula gives 100
    assert create_metric("lpips")(x, x) == [0.0]


def test_greyscale_input_equals_replicated_rgb(tmp_path):
    grey = _texture(1, 200, 220)[:, :1]
    rgb = grey.expand(-1, 3, -1, -1).contiguous()
    for name in ("niqe", "brisque", "piqe"):
        assert create_metric(name)(grey) == pytest.approx(create_metric(name)(rgb), abs=1e-9), name
    other = _texture(1, 200, 220, seed=3)[:, :1]
    assert create_metric("lpips")(grey, other) == pytest.approx(create_metric("lpips")(rgb, other.expand(-1, 3, -1, -1)))
    # and a greyscale file on disk decodes to 3 equal channels that score like the tensor
    path = tmp_path / "grey.png"
    Image.fromarray((grey[0, 0].numpy() * 255).round().astype(np.uint8), mode="L").save(path)
    decoded = read_image(path)[None]
    assert create_metric("niqe")(decoded) == pytest.approx(create_metric("niqe")(grey), abs=1e-9)


def test_batch_equals_one_by_one_and_sub_batching(monkeypatch):
    x = _texture(3, 192, 200)
    y = _texture(3, 192, 200, seed=5)
    whole = {}
    for name in ("niqe", "piqe", "brisque", "lpips"):
        metric = create_metric(name)
        ref = y if name == "lpips" else None
        whole[name] = metric(x, ref)
        single = [metric(x[i:i + 1], None if ref is None else ref[i:i + 1])[0] for i in range(3)]
        # the no-reference metrics score each image alone: equal, not just close
        tol = 1e-5 if name == "lpips" else 0.0
        assert whole[name] == pytest.approx(single, abs=tol), name
    monkeypatch.setattr(lpips_metric, "PIXEL_BUDGET", 192 * 200)  # forces one image per forward pass
    assert create_metric("lpips")(x, y) == pytest.approx(whole["lpips"], abs=1e-5)


def test_networks_built_once_per_process(monkeypatch):
    calls = []
    real = lpips_metric.build_lpips_alex
    monkeypatch.setattr(lpips_metric, "build_lpips_alex", lambda *a: calls.append(1) or real(*a))
    m1 = create_metric("lpips")
    built = len(calls)
    assert built <= 1
    m2 = create_metric("lpips")
    x = _texture(2, 64, 64)
    m1(x, x)
    m2(x, x)
    assert m1 is m2 and len(calls) == built  # never rebuilt per call or per lookup


def test_size_mismatch_and_missing_reference():
    m = create_metric("lpips")
    with pytest.raises(NotComputable, match="needs a ground-truth"):
        m(_texture(1, 64, 64))
    with pytest.raises(NotComputable, match="differ in size"):
        m(_texture(1, 64, 64), _texture(1, 64, 72))


def test_missing_assets_give_fetch_command(monkeypatch, tmp_path):
    from rsr_bench.errors import UnavailableError
    from rsr_bench.metrics import get_metric_spec

    monkeypatch.setenv("RSR_BENCH_CACHE", str(tmp_path / "empty"))
    with pytest.raises(UnavailableError, match="rsr-bench fetch alexnet-features"):
        lpips_metric.Lpips(get_metric_spec("lpips"), "cpu", download=False)


@pytest.mark.slow
def test_large_image_within_memory():
    """A 3 MP image (2000x1500, DIV2K-sized SR output) is scored whole; peak RSS growth stays bounded.

    Measured here (peak RSS growth, 1 thread): NIQE 0.31 GB (pyiqa's own float64 conv path:
    0.89 GB, its im2col buffer), PIQE 0.28 GB, BRISQUE 0.27 GB, LPIPS 0.58 GB.
    """
    x = _texture(1, 1500, 2000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    for name in ("niqe", "brisque", "piqe"):
        (v,) = create_metric(name)(x)
        assert np.isfinite(v), name
    (v,) = create_metric("lpips")(x, x.flip(-1))
    assert np.isfinite(v)
    grown_gib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 2**20
    assert grown_gib < 2, f"peak memory grew by {grown_gib:.1f} GiB"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    x = _texture(2, 192, 200)
    y = _texture(2, 192, 200, seed=9)
    for name in ("lpips", "niqe", "piqe", "brisque"):
        ref = y if name == "lpips" else None
        cpu = create_metric(name, "cpu")(x, ref)
        gpu = create_metric(name, "cuda")(x.cuda(), None if ref is None else y.cuda())
        tol = 2e-2 if name == "brisque" else 1e-3
        assert gpu == pytest.approx(cpu, abs=tol), name


def test_fetch_metric_assets_fetches_each_rows_files_and_reports_failures(monkeypatch):
    """A run fetches every metric's model files before its progress bars; one that cannot be
    fetched is reported by name and does not stop the others (issue 15, item 5)."""
    from rsr_bench.fetch import assets
    from rsr_bench.metrics import fetch_metric_assets, select_metrics

    asked: list[str] = []

    def fake(name, **kw):
        asked.append(name)
        if name == "niqe-pris-params":
            raise FileNotFoundError("offline")
        return Path("/nowhere")

    monkeypatch.setattr(assets, "ensure_asset", fake)
    failed = fetch_metric_assets(select_metrics("psnr,lpips,niqe,brisque"))
    assert list(failed) == ["niqe"] and "offline" in failed["niqe"]
    assert asked == ["alexnet-features", "lpips-alex-v0.1-lin", "niqe-pris-params", "brisque-live-svr"]


@pytest.mark.parametrize("name", ["lpips", "niqe", "brisque", "piqe", "psnr"])
def test_a_rows_assets_are_exactly_what_its_implementation_loads(name, monkeypatch):
    """The row's ``assets`` (what the prefetch fetches) and the files the factory loads agree."""
    from rsr_bench import metrics as metrics_mod
    from rsr_bench.metrics import get_metric_spec, noref, perceptual

    loaded: list[str] = []
    for mod in (noref, perceptual):
        real = mod.ensure_asset
        monkeypatch.setattr(mod, "ensure_asset", lambda n, _real=real, **kw: loaded.append(n) or _real(n, **kw))
    monkeypatch.setattr(metrics_mod, "_cache", {})
    metrics_mod.create_metric(name)
    assert sorted(loaded) == sorted(get_metric_spec(name).assets)
