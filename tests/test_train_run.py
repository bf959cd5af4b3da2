"""End-to-end training on real images with a tiny network: checkpoints, card, resume."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch

from rsr_bench.train import config as C

REF = os.environ.get("RSR_BENCH_REFERENCE_DATA")
HR = Path(REF) / "bsd100" / "HR" if REF else None
needs_data = pytest.mark.skipif(not (HR and HR.is_dir()), reason="RSR_BENCH_REFERENCE_DATA/bsd100/HR not available")


def tiny_overrides(out: Path, hr: Path | None = HR, **extra: object) -> dict[str, object]:
    o: dict[str, object] = {
        "name": "tiny",
        "out": str(out),
        "model.nf": 8, "model.nb": 1, "model.gc": 8, "model.d_nf": 8, "model.pretrain_g": None,
        "data.hr_dir": str(hr), "data.subimages": None, "data.gt_size": 32, "data.batch_size": 2,
        "data.num_workers": 0, "data.cache_images": 0,
        "train.total_iter": 3, "train.device": "cpu", "train.threads": 1, "train.milestones": [2],
        "perceptual.backbone": "random-vgg16",
        "logger.print_freq": 1, "logger.save_checkpoint_freq": 2, "logger.tensorboard": False,
        "logger.progress": False,
    }
    o.update(extra)
    return o


def tiny_cfg(out: Path, **extra: object) -> dict:
    cfg = C.load_config(None)
    C.apply_overrides(cfg, tiny_overrides(out, **extra))
    return cfg


@pytest.mark.slow
@needs_data
def test_tiny_training_writes_loadable_checkpoint_and_card(tmp_path: Path) -> None:
    from rsr_bench.methods.layouts import load_checkpoint
    from rsr_bench.methods.cards import parse_card
    from rsr_bench.train.trainer import train

    out = train(tiny_cfg(tmp_path / "run"))
    g_path = out / "models" / "net_g_3.pth"
    obj = torch.load(g_path, weights_only=True)
    assert set(obj) == {"params"}
    loaded = load_checkpoint(g_path)
    assert loaded.layout == "basicsr" and loaded.arch.nb == 1
    meta = (out / "models" / "net_g_3.json").read_text()
    assert "random VGG16" in meta and "MATLAB bicubic" in meta
    assert (out / "config.yaml").is_file() and (out / "training_states" / "2.state").is_file()
    rows = list(csv.DictReader((out / "losses.csv").open()))
    assert [int(r["iter"]) for r in rows] == [1, 2, 3]
    assert float(rows[0]["delta_linf"]) <= 14 / 255 + 1e-6
    # LR schedule as BasicSR: milestone 2 halves the rate from iteration 3 on
    assert [float(r["lr"]) for r in rows] == [1e-4, 1e-4, 5e-5]
    (spec,) = parse_card(out / "method_card.yaml")
    assert spec.name == "trained.tiny" and Path(spec.options["checkpoint"]) == g_path.resolve()


@pytest.mark.slow
@needs_data
def test_periodic_validation_through_runner(tmp_path: Path) -> None:
    """The checkpoint is evaluated by the harness's own runner and metrics (one demo image, PSNR)."""
    from rsr_bench.train.trainer import train

    out = train(tiny_cfg(tmp_path / "run", **{"train.total_iter": 1, "val.freq": 1, "val.datasets": ["demo_clean"],
                                               "val.metrics": ["psnr"], "val.limit": 1}))
    val = list(csv.DictReader((out / "val.csv").open()))
    assert [(r["iter"], r["dataset"], r["metric"]) for r in val] == [("1", "demo_clean", "psnr")]
    assert 0 < float(val[0]["value"]) < 60  # a 1-iteration random net scores low, but it is scored
    assert (out / "val" / "store" / "cells" / "trained.tiny_iter1" / "demo_clean" / "manifest.json").is_file()


@pytest.mark.slow
@needs_data
def test_resume_after_kill_matches_uninterrupted(tmp_path: Path) -> None:
    from rsr_bench.train.trainer import train

    full = train(tiny_cfg(tmp_path / "full", **{"train.total_iter": 4}))
    # "killed" after iteration 2 (its checkpoint written), then restarted with the same command
    part = tiny_cfg(tmp_path / "part", **{"train.total_iter": 4, "train.stop_after": 2})
    train(part)
    assert not (tmp_path / "part" / "models" / "net_g_4.pth").exists()
    train(tiny_cfg(tmp_path / "part", **{"train.total_iter": 4}))
    a = torch.load(full / "models" / "net_g_4.pth", weights_only=True)["params"]
    b = torch.load(tmp_path / "part" / "models" / "net_g_4.pth", weights_only=True)["params"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    da = torch.load(full / "models" / "net_d_4.pth", weights_only=True)["params"]
    db = torch.load(tmp_path / "part" / "models" / "net_d_4.pth", weights_only=True)["params"]
    for k in da:
        assert torch.equal(da[k], db[k]), k
    rows = list(csv.DictReader((tmp_path / "part" / "losses.csv").open()))
    assert [int(r["iter"]) for r in rows] == [1, 2, 3, 4]


@needs_data
def test_esrgan_baseline_has_no_attack(tmp_path: Path) -> None:
    from rsr_bench.train.trainer import train

    from rsr_bench.methods.layouts import load_checkpoint

    out = train(tiny_cfg(tmp_path / "base", **{"attack.loss": "none", "train.total_iter": 1}))
    rows = list(csv.DictReader((out / "losses.csv").open()))
    assert rows[0]["attack_loss_start"] == ""
    assert load_checkpoint(out / "models" / "net_g_1.pth").arch.nf == 8
    assert (out / "method_card.yaml").is_file()


def test_generator_init_from_file_and_from_method_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pretrain_g accepts an official-layout file or a registered RRDBNet method; loads are strict."""
    import yaml

    from rsr_bench.errors import ConfigError
    from rsr_bench.methods.rrdbnet import RRDBNet
    from rsr_bench.train.trainer import init_generator

    torch.manual_seed(0)
    src = RRDBNet(nf=8, nb=1, gc=8)
    ckpt = tmp_path / "g.pth"
    torch.save({"params_ema": src.state_dict()}, ckpt)
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "mine.yaml").write_text(yaml.safe_dump({
        "family": "mine", "adapter": "rsr_bench.methods.rrdb:load",
        "variants": {"tiny": {"scale": 4, "options": {"checkpoint": str(ckpt)}}},
    }))
    monkeypatch.setenv("RSR_BENCH_METHODS", str(cards))
    for ref in (str(ckpt), "mine.tiny"):
        cfg = tiny_cfg(tmp_path / "x", **{"model.pretrain_g": ref})
        g, info = init_generator(cfg)
        assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), src.state_dict().values()))
        assert info["pretrain_g"] in (str(ckpt.resolve()), "mine.tiny") and len(info["sha256"]) == 64
    with pytest.raises(ConfigError, match="does not fit"):
        init_generator(tiny_cfg(tmp_path / "x", **{"model.pretrain_g": str(ckpt), "model.nf": 16}))
