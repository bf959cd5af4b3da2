"""Training config parsing, the ablation grid and the training data pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rsr_bench.errors import ConfigError
from rsr_bench.image import imresize
from rsr_bench.train import config as C
from rsr_bench.train.data import ShardedSampler, SRTrainDataset, subimage_positions

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "train"


def test_official_config_is_the_recipe() -> None:
    cfg = C.load_config(CONFIGS / "rsr_official.yaml")
    assert cfg["attack"] == {"loss": "l1+perceptual", "eps": 14 / 255, "alpha": 1 / 255, "iters": 2, "noise_scale": 1.5}
    t = cfg["train"]
    assert (t["lr"], t["betas"], t["gamma"], t["total_iter"]) == (1e-4, [0.9, 0.99], 0.5, 30000)
    assert t["milestones"] == [4000, 8000, 10000, 12000, 16000, 20000, 25000]
    assert (t["pixel_weight"], t["perceptual_weight"], t["gan_weight"]) == (1e-2, 1.0, 5e-3)
    assert (cfg["data"]["gt_size"], cfg["data"]["batch_size"]) == (128, 16)
    base = C.load_config(CONFIGS / "esrgan_baseline.yaml")
    assert base["attack"]["loss"] == "none" and base["train"] == t


def test_overrides_and_errors() -> None:
    cfg = C.load_config(CONFIGS / "rsr_official.yaml", ["train.lr=2e-4", "attack.eps=12/255", "data.subimages=null"])
    assert cfg["train"]["lr"] == 2e-4 and cfg["attack"]["eps"] == 12 / 255 and cfg["data"]["subimages"] is None
    with pytest.raises(ConfigError, match="Did you mean: attack.eps"):
        C.load_config(None, ["attack.epss=1"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        C.load_config(None, ["attack.eps"])
    with pytest.raises(ConfigError, match="attack.loss"):
        C.load_config(None, ["attack.loss=gan"])


def test_ablation_grid_one_run_per_table1_row() -> None:
    from rsr_bench.train.ablation import expand, load_grid

    rows = expand(load_grid(CONFIGS / "ablation_table1.yaml"))
    names = [n for n, _ in rows]
    # 5 eps + 4 iters + 3 noise + 3 losses, the official setting counted once
    assert len(rows) == 1 + 4 + 3 + 2 + 2 and names[0] == "base"
    assert len({cfg["out"] for _, cfg in rows}) == len(rows)
    eps = sorted(round(cfg["attack"]["eps"] * 255) for _, cfg in rows if cfg["attack"]["iters"] == 2
                 and cfg["attack"]["noise_scale"] == 1.5 and cfg["attack"]["loss"] == "l1+perceptual")
    assert eps == [10, 12, 14, 16, 18]


def test_subimage_positions_match_basicsr() -> None:
    assert subimage_positions(1356, 480, 240) == [0, 240, 480, 720, 876]
    assert subimage_positions(480, 480, 240) == [0]
    assert subimage_positions(300, 480, 240) == [0]


def test_sampler_disjoint_ranks_and_resumable() -> None:
    s0 = ShardedSampler(23, batch_size=3, world=2, rank=0, seed=5)
    s1 = ShardedSampler(23, batch_size=3, world=2, rank=1, seed=5)
    a, b = [i for i, _ in s0], [i for i, _ in s1]
    assert len(a) == len(b) == 9 and not set(a) & set(b) and len(set(a)) == 9
    full = list(s0)
    s0.set_epoch(0, start_batch=2)
    assert list(s0) == full[6:]
    s0.set_epoch(1)
    assert [i for i, _ in s0] != a


def test_windowed_lr_equals_full_image_bicubic(tmp_path: Path) -> None:
    """LR of a crop, computed from a window, is the crop of the whole image's MATLAB bicubic LR."""
    from rsr_bench.image import read_image, write_png

    rng = np.random.default_rng(0)
    img = torch.from_numpy(rng.random((3, 96, 120))).float()
    img = torch.nn.functional.avg_pool2d(img[None], 3, 1, 1)[0]  # some structure
    write_png(tmp_path / "hr" / "a.png", img)
    cfg = C.load_config(None, [f"data.hr_dir={tmp_path / 'hr'}", "data.subimages=null", "data.gt_size=32",
                               "data.use_flip=false", "data.use_rot=false", "data.quantize_lr=false"])
    ds = SRTrainDataset(cfg)
    hr = read_image(tmp_path / "hr" / "a.png")
    full = imresize(hr.double(), 0.25).clamp(0, 1).float()
    for top, left in [(0, 0), (5, 9), (16, 22), (3, 0)]:
        lr = ds.bicubic_lr(hr, top, left)
        assert torch.allclose(lr, full[:, top : top + 8, left : left + 8], atol=1e-6)
    item = ds[(0, (0, 0, 0, 0))]
    assert item["lq"].shape == (3, 8, 8) and item["gt"].shape == (3, 32, 32)


def test_cli_dry_run_and_prepare_subimages(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rsr_bench.cli import cli
    from rsr_bench.image import read_image, write_png

    res = CliRunner().invoke(cli, ["train", str(CONFIGS / "esrgan_baseline.yaml"), "attack.eps=10/255", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "loss: none" in res.output and "name: esrgan_baseline" in res.output
    bad = CliRunner().invoke(cli, ["train", str(CONFIGS / "rsr_official.yaml"), "atack.eps=1", "--dry-run"])
    assert bad.exit_code == 2 and "Did you mean: attack.eps" in bad.output

    img = torch.rand(3, 72, 104)
    write_png(tmp_path / "hr" / "x.png", img)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data:\n  hr_dir: {tmp_path / 'hr'}\n  subimages: {{size: 48, step: 24}}\n")
    res = CliRunner().invoke(cli, ["train", str(cfg), "--prepare-subimages", str(tmp_path / "sub")])
    assert res.exit_code == 0, res.output
    hr_subs = sorted((tmp_path / "sub" / "HR_sub").iterdir())
    lr_subs = sorted((tmp_path / "sub" / "LR_bicubic_X4_sub").iterdir())
    # rows 0, 24 (and 72-48=24 already there); cols 0, 24, 48, 56
    assert len(hr_subs) == len(lr_subs) == 2 * 4
    assert read_image(hr_subs[0]).shape == (3, 48, 48) and read_image(lr_subs[0]).shape == (3, 12, 12)


def test_multi_worker_batches_equal_single_process(tmp_path: Path) -> None:
    """Crops are seeded per sample, so workers change nothing, and resuming mid-epoch is exact."""
    from rsr_bench.image import write_png
    from rsr_bench.train.data import batches

    for i in range(6):
        write_png(tmp_path / "hr" / f"{i}.png", torch.rand(3, 40 + 4 * i, 48))
    cfg = C.load_config(None, [f"data.hr_dir={tmp_path / 'hr'}", "data.subimages=null", "data.gt_size=32"])
    ds = SRTrainDataset(cfg)

    def take(workers: int, start: int, n: int) -> list[torch.Tensor]:
        sampler = ShardedSampler(len(ds), batch_size=2, seed=3)
        it = batches(ds, sampler, start_iter=start, num_workers=workers)
        return [next(it)["lq"] for _ in range(n)]

    ref = take(0, 0, 5)  # 3 batches per epoch: crosses an epoch boundary
    assert all(torch.equal(a, b) for a, b in zip(ref, take(2, 0, 5)))
    assert all(torch.equal(a, b) for a, b in zip(ref[2:], take(0, 2, 3)))


def test_small_cpu_pair_differs_only_by_the_attack() -> None:
    """The CPU-scale RSR run and its baseline share init, data, seed, budget and losses."""
    rsr = C.load_config(CONFIGS / "small_cpu_rsr.yaml")
    base = C.load_config(CONFIGS / "small_cpu_esrgan.yaml")
    official = C.load_config(CONFIGS / "rsr_official.yaml")
    assert rsr["attack"] == official["attack"] and base["attack"]["loss"] == "none"
    for key in ("seed", "scale", "model", "data", "train", "perceptual"):
        assert rsr[key] == base[key], key
    assert rsr["out"] != base["out"] and rsr["card"]["tag"] != base["card"]["tag"]
    # the one loss the paper does not have is on here, and only here
    assert rsr["train"]["lowfreq_weight"] > 0 and official["train"]["lowfreq_weight"] == 0
