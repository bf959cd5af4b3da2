"""`rsr-bench score` and :func:`rsr_bench.metrics.score.score_images`."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import find_calibration_dir
from rsr_bench.cli import cli
from rsr_bench.metrics.score import pair_inputs, score_images


pytestmark = pytest.mark.usefixtures("single_torch_thread")




def _png(path: Path, h: int, w: int, seed: int = 0, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    low = rng.random((h // 8 + 2, w // 8 + 2, 3))
    img = Image.fromarray((low * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    arr = np.clip(np.asarray(img, dtype=np.float64) + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(arr).convert(mode).save(path)
    return path


@pytest.fixture
def folders(tmp_path):
    dist, ref = tmp_path / "dist", tmp_path / "ref"
    dist.mkdir()
    ref.mkdir()
    for i, stem in enumerate(("a", "b")):
        _png(dist / f"{stem}.png", 200, 210, seed=i)
        _png(ref / f"{stem}.png", 200, 210, seed=i + 10)
    _png(dist / "tiny.png", 40, 40, seed=5)  # too small for NIQE, fine for PSNR/LPIPS
    _png(ref / "tiny.png", 40, 40, seed=6)
    _png(dist / "lonely.png", 200, 200, seed=7)  # no reference image
    return dist, ref


def test_pairing_by_stem(folders, tmp_path):
    dist, ref = folders
    pairs = {p.name: r.name if r else None for p, r in pair_inputs(dist, ref)}
    assert pairs == {"a.png": "a.png", "b.png": "b.png", "lonely.png": None, "tiny.png": "tiny.png"}
    assert pair_inputs(dist / "a.png", ref) == [(dist / "a.png", ref / "a.png")]
    assert pair_inputs(dist / "a.png", ref / "b.png") == [(dist / "a.png", ref / "b.png")]


@pytest.mark.network
def test_score_folder_records_not_computable(folders):
    dist, ref = folders
    result = score_images(dist, ref, "psnr,lpips,niqe,piqe")
    assert result.value("a.png", "niqe") is not None
    assert result.value("tiny.png", "niqe") is None
    nc = {(r.image, r.metric): r.reason for r in result.not_computable()}
    assert "96x96" in nc[("tiny.png", "niqe")]
    assert "no reference image" in nc[("lonely.png", "psnr")]
    assert result.value("lonely.png", "piqe") is not None  # NR metrics need no reference
    means = result.means()
    assert means["niqe"] == pytest.approx(np.mean([result.value(i, "niqe") for i in ("a.png", "b.png", "lonely.png")]))


@pytest.mark.network
def test_cli_prints_table_and_writes_csv(folders, tmp_path):
    dist, ref = folders
    out = tmp_path / "scores.csv"
    res = CliRunner().invoke(cli, ["score", "--metrics", "psnr,lpips,niqe", str(dist), "--ref", str(ref),
                                   "--csv", str(out), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "mean" in res.output and "n/c" in res.output and "conventions:" in res.output
    rows = list(csv.DictReader(out.open()))
    assert set(rows[0]) == {"image", "metric", "value"}
    assert ("tiny.png", "niqe") not in {(r["image"], r["metric"]) for r in rows}
    assert {(r["image"], r["metric"]) for r in rows} >= {("a.png", "psnr"), ("a.png", "lpips"), ("b.png", "niqe")}


def test_cli_fr_metric_without_ref_is_a_clear_error(folders):
    dist, _ = folders
    res = CliRunner().invoke(cli, ["score", "--metrics", "psnr", str(dist)])
    assert res.exit_code == 2 and "full-reference" in res.output and "--ref" in res.output


def test_cli_unknown_metric_suggests(folders):
    dist, _ = folders
    res = CliRunner().invoke(cli, ["score", "--metrics", "nique", str(dist)])
    assert res.exit_code == 2 and "niqe" in res.output


def test_cli_psnr_single_file_pair(folders):
    dist, ref = folders
    res = CliRunner().invoke(cli, ["score", "--metrics", "psnr_nocrop", str(dist / "a.png"), "--ref", str(ref / "a.png")])
    assert res.exit_code == 0, res.output
    assert "a.png" in res.output


@pytest.mark.network
def test_cli_on_calibration_pairs_matches_official(tmp_path):
    root = find_calibration_dir()
    if root is None:
        pytest.skip("no calibration images")
    out = tmp_path / "c.csv"
    res = CliRunner().invoke(cli, ["score", "--metrics", "psnr_nocrop,ssim_gray,lpips,niqe,brisque,piqe",
                                   str(root / "dist_dir"), "--ref", str(root / "ref_dir"), "--csv", str(out),
                                   "--device", "cpu"])
    assert res.exit_code == 0, res.output
    got = {(r["image"], r["metric"]): float(r["value"]) for r in csv.DictReader(out.open())}
    official = {  # results_official.csv
        "lpips": (0.7237, 0.2572, 0.05079, 0.05205, 0.4253, 1e-4),
        "psnr_nocrop": (21.11, 20.99, 27.01, 23.30, 21.62, 1e-2),
        "ssim_gray": (0.6993, 0.9978, 0.9989, 0.9669, 0.6519, 1e-2),
        "piqe": (100.00, 21.62, 35.86, 41.15, 76.95, 1e-2 + 1e-2 * 100),
    }
    for metric, (*values, tol) in official.items():
        for img, v in zip(("I03", "I04", "I06", "I08", "I19"), values):
            assert abs(got[(f"{img}.bmp", metric)] - v) <= tol, (metric, img, got[(f"{img}.bmp", metric)])
    assert got[("I04.bmp", "niqe")] == pytest.approx(3.6549, abs=1e-2)
    assert got[("I19.bmp", "brisque")] == pytest.approx(66.8415, abs=1e-2)
