"""The method card that ``rsr-bench train`` writes: current format, loadable, labelled "trained here".

Bugs this module catches (each planted once while writing it): the card names the old
``rsr_bench.methods.rrdb:load`` alias instead of ``rrdb``; the label misses the iterations, the
data or the initialisation; the checkpoint path is written relative (the card would only work
from the run's own working folder); a freshly written card does not run through
``rsr-bench run --method-card``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml
from click.testing import CliRunner

from rsr_bench.cli import cli
from rsr_bench.methods.cards import load_method, load_method_specs
from rsr_bench.methods.rrdbnet import RRDBNet
from rsr_bench.report.model import trained_here
from rsr_bench.train import checkpoint as ckpt

CFG = {"name": "tiny_run", "scale": 4, "data": {"batch_size": 2, "gt_size": 64},
       "card": {"family": "trained", "tag": "tiny", "trained_on": ["BSD100"], "description": None}}
META = {"recipe": "rsr (PGD)", "world_size": 1, "data": {"hr_dir": "/x/bsd100/HR", "images": 100},
        "generator_init": {"pretrain_g": "impressionism.df2k"}}


def write_tiny_run(tmp_path: Path) -> Path:
    """A tiny generator checkpoint and the card the trainer writes for it (from another folder)."""
    torch.manual_seed(0)
    net = RRDBNet(in_ch=3, out_ch=3, nf=8, nb=1, gc=4, scale=4)
    weights = tmp_path / "run" / "models" / "net_g_200.pth"
    ckpt.save_net(weights, net)
    label = ckpt.card_label(CFG, META, 200)
    return ckpt.write_card(tmp_path / "run" / "method_card.yaml", family="trained", tag="tiny", weights=weights,
                           cfg=CFG, description="a tiny test run", label=label, init_licence="MIT")


def test_card_is_in_the_current_format_and_labelled(tmp_path: Path) -> None:
    card = yaml.safe_load(write_tiny_run(tmp_path).read_text())
    assert card["adapter"] == "rrdb" and card["family"] == "trained"
    label = trained_here(card["paper"])
    assert label is not None and "not a published checkpoint" in label
    for fact in ("rsr (PGD)", "200 iterations", "batch 2", "64 px", "BSD100 (100 images)", "init impressionism.df2k"):
        assert fact in label, fact
    opts = card["variants"]["tiny"]["options"]
    assert Path(opts["checkpoint"]).is_absolute() and opts["param_key"] == "params"
    assert "MIT" in card["licence"]


def test_fresh_card_loads_and_predicts_through_the_registry(tmp_path: Path) -> None:
    path = write_tiny_run(tmp_path)
    spec = load_method_specs([path])["trained.tiny"]
    assert spec.adapter == "rrdb" and spec.trained_on == ("BSD100",) and trained_here(spec.paper)
    method = load_method(spec, device="cpu")
    out = method.predict(torch.rand(1, 3, 8, 8))
    assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()


def test_fresh_card_runs_with_method_card_option(tmp_path: Path, monkeypatch) -> None:
    """``rsr-bench run --method-card`` evaluates it, and the label reaches the cell's manifest."""
    path = write_tiny_run(tmp_path)
    monkeypatch.chdir(tmp_path)  # the card must not depend on the working folder
    store = tmp_path / "store"
    res = CliRunner().invoke(cli, ["run", "--methods", "trained.tiny", "--method-card", str(path), "--datasets",
                                   "demo_clean", "--limit", "1", "--metrics", "psnr", "--device", "cpu", "--store",
                                   str(store), "--quiet"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((store / "cells" / "trained.tiny" / "demo_clean" / "manifest.json").read_text())
    assert trained_here(manifest["method"]["paper"]) and manifest["method"]["card"] == str(path)
    records = list((store / "cells" / "trained.tiny" / "demo_clean" / "records").iterdir())
    assert len(records) == 1
