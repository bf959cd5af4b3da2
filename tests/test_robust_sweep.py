"""`rsr-bench robust` end to end: checks before anything runs, per-image errors, resumability,
white-box and transfer cells, the non-differentiable reason, the CLI and the summary it prints.

Planted bugs this module catches (each tried by hand, one at a time):
- a bad option (unknown corruption/method/attack, severity 6, eps 0 or 2, a set without GT, a
  derived set given as a base) detected only after the store was created or work started;
- an image too small for a corruption failing the whole cell (or the sweep) instead of being an
  error record of that image in that cell;
- a second identical sweep recomputing cells or re-attacking (not resumable);
- bicubic.x4 (the mCE reference) not added when the user leaves it out;
- a precomputed method crashing the white-box attack instead of getting "not differentiable";
- the white-box attack evaluated on the clean input (no PSNR drop) or applied with the wrong sign;
- `--method-card` not reaching the sweep (a card-only method unknown);
- a derived set that `check` cannot resolve (a robustness cell that no baseline can pin).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from rsr_bench import store
from rsr_bench.datasets.demo import ensure_demo_dataset
from rsr_bench.errors import ConfigError, UnknownNameError
from rsr_bench.robust.sweep import RobustOptions, plan, run_robust


@pytest.fixture()
def sets(tmp_path: Path, monkeypatch) -> Path:
    """``mine``: two 32x32-LR crops of demo photographs and one 4x4 image (too small for blur@5)."""
    monkeypatch.setenv("RSR_BENCH_CACHE", str(tmp_path / "cache"))
    lr_src, hr_src = ensure_demo_dataset("demo_clean")
    root = tmp_path / "mine"
    for sub in ("LR", "HR"):
        (root / sub).mkdir(parents=True)
    for name in ("astronaut", "coffee"):
        Image.open(lr_src / f"{name}.png").crop((0, 0, 32, 32)).save(root / "LR" / f"{name}.png")
        Image.open(hr_src / f"{name}.png").crop((0, 0, 128, 128)).save(root / "HR" / f"{name}.png")
    Image.fromarray(np.full((4, 4, 3), 100, np.uint8)).save(root / "LR" / "tiny.png")
    Image.fromarray(np.full((16, 16, 3), 100, np.uint8)).save(root / "HR" / "tiny.png")
    f = tmp_path / "sets.yaml"
    f.write_text(f"root: {tmp_path}\ndatasets:\n  mine: {{lr: mine/LR, hr: mine/HR, scale: 4}}\n"
                 "  nogt: {lr: mine/LR, scale: 4}\n")
    return f


def _opts(sets: Path, tmp_path: Path, **kw) -> RobustOptions:
    base = dict(methods="bicubic.x4", datasets="mine", corruptions="jpeg,gaussian_blur", severities="1,5",
                metrics="psnr", datasets_files=[sets], store=tmp_path / "store", progress=False)
    return RobustOptions(**{**base, **kw})


@pytest.mark.parametrize("over, error, words", [
    (dict(corruptions="jpg"), UnknownNameError, "Did you mean: jpeg"),
    (dict(methods="bicubc.x4"), UnknownNameError, "bicubic.x4"),
    (dict(severities="0-3"), ConfigError, "1-5"),
    (dict(severities="6"), ConfigError, "1-5"),
    (dict(attacks="pgd", eps="0"), ConfigError, r"outside \(0, 1\]"),
    (dict(attacks="pgd", eps="2"), ConfigError, r"outside \(0, 1\]"),
    (dict(attacks="pdg"), UnknownNameError, "pgd"),
    (dict(attacks="transfer", surrogate="realesrgan.x4plsu"), UnknownNameError, "realesrgan.x4plus"),
    (dict(datasets="nogt"), ConfigError, "no ground truth"),
    (dict(datasets="mine~jpeg@1"), ConfigError, "already a derived set"),
    (dict(metrics="niqe"), ConfigError, "full-reference"),
    (dict(corruptions="none"), ConfigError, "nothing to do"),
])
def test_bad_input_is_an_error_before_anything_runs(sets, tmp_path, over, error, words):
    with pytest.raises(error, match=words):
        run_robust(_opts(sets, tmp_path, **over), log=lambda m: None)
    assert not (tmp_path / "store").exists()
    assert not (tmp_path / "cache" / "robust").exists()


def test_plan_adds_the_reference_and_expands_names(sets, tmp_path):
    from rsr_bench.robust.sweep import REFERENCE

    p = plan(_opts(sets, tmp_path, methods="realesrgan.x4plus", attacks="pgd,transfer", eps="2/255,eps8",
                   corruptions="jpeg", severities="2-3"))
    assert p.methods == [REFERENCE, "realesrgan.x4plus"]
    assert p.run_datasets == ["mine", "mine~jpeg@2", "mine~jpeg@3", "mine~transfer@eps2", "mine~transfer@eps8"]
    assert [d.name for d in p.whitebox] == ["mine~pgd@eps2", "mine~pgd@eps8"]


def _precomputed_card(tmp_path: Path) -> Path:
    """A method whose outputs were made elsewhere (bicubic-like PNGs): no gradient to attack."""
    out = tmp_path / "published"
    card = tmp_path / "pub.yaml"
    card.write_text("family: pub\nadapter: rsr_bench.adapters.precomputed:load\nvariants:\n  x4:\n    scale: 4\n"
                    "    options: {root: published, pattern: '{id}.png'}\n")
    out.mkdir()
    hr = tmp_path / "mine" / "HR"
    for p in hr.iterdir():  # the clean HR, a little darker (a perfect output has no finite PSNR)
        Image.fromarray((np.asarray(Image.open(p).convert("RGB")) * 0.9).astype(np.uint8)).save(out / p.name)
    return card


def test_sweep_end_to_end_with_errors_attacks_and_resume(sets, tmp_path):
    card = _precomputed_card(tmp_path)
    o = _opts(sets, tmp_path, methods="pub.x4", method_cards=[card], attacks="pgd", eps="8/255", attack_iters=2,
              corruptions="jpeg,gaussian_blur")
    s = run_robust(o, log=lambda m: None)
    assert s.plan.methods == ["bicubic.x4", "pub.x4"]
    # the 4x4 image cannot take blur@5: one error record per method in that cell, nothing else lost
    bad = {(f["method"], f["dataset"], f["image"]) for f in s.failures}
    assert ("bicubic.x4", "mine~gaussian_blur@5", "tiny") in bad
    rec = store.read_record(o.store, "bicubic.x4", "mine~gaussian_blur@5", "tiny")
    assert rec["errors"] and "too small" in rec["errors"][0]["message"]
    assert not store.read_record(o.store, "bicubic.x4", "mine~gaussian_blur@5", "coffee").get("errors")
    assert s.exit_code == 1
    # white-box: bicubic is attacked through imresize; the precomputed method gets its reason
    assert s.skipped.get(("pub.x4", "mine~pgd-i2@eps8"), "").startswith("not differentiable"), (s.skipped, s.run.skipped)
    df = store.load_results(o.store)
    psnr = df[(df.method == "bicubic.x4") & (df.metric == "psnr") & (df.image == "coffee")].set_index("dataset")["value"]
    assert psnr["mine~pgd-i2@eps8"] < psnr["mine"] - 1.0
    assert psnr["mine~jpeg@5"] < psnr["mine~jpeg@1"] < psnr["mine"]
    scores = s.scores()
    assert set(scores["statistic"]) >= {"clean", "mean_degradation", "mce", "pgd_drop"}
    # a second identical sweep computes and attacks nothing
    again = run_robust(o, log=lambda m: None)
    assert sum(c.computed for c in again.run.cells) == 0
    assert again.whitebox_cells == [] and again.seconds.get("attack", 0.0) == 0.0


def test_cli_with_a_method_card_prints_the_summary(sets, tmp_path):
    from rsr_bench.cli import cli

    card = _precomputed_card(tmp_path)
    res = CliRunner().invoke(cli, ["robust", "--methods", "pub.x4", "--method-card", str(card), "--datasets", "mine",
                                    "--datasets-file", str(sets), "--corruptions", "jpeg", "--severities", "5",
                                    "--metrics", "psnr", "--store", str(tmp_path / "store"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "pub.x4" in res.output and "bicubic.x4" in res.output


def test_check_pins_a_corrupted_cell_like_any_other(tmp_path, monkeypatch):
    """`check --update` writes a baseline over demo_clean~jpeg@5; `check` re-evaluates it and holds."""
    from rsr_bench.cli import cli

    monkeypatch.setenv("RSR_BENCH_CACHE", str(tmp_path / "cache"))
    b = tmp_path / "b.yaml"
    common = ["--methods", "bicubic.x4", "--datasets", "demo_clean~jpeg@5", "--metrics", "psnr", "--limit", "1"]
    res = CliRunner().invoke(cli, ["check", "--baseline", str(b), "--update", *common])
    assert res.exit_code == 0, res.output
    assert "demo_clean~jpeg@5" in b.read_text()
    res = CliRunner().invoke(cli, ["check", "--baseline", str(b)])
    assert res.exit_code == 0 and "0 failed" in res.output, res.output
