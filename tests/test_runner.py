"""Runner: bad-input corpus, resume, kill-and-resume, store contents, CLI end to end."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from rsr_bench import store
from rsr_bench.cli import cli
from rsr_bench.runner import RunOptions, run


def _img(path: Path, h: int, w: int, seed: int) -> None:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _paired_set(root: Path, n: int, lr_size: int = 16) -> Path:
    for i in range(n):
        _img(root / "HR" / f"im{i:02d}.png", 4 * lr_size, 4 * lr_size, i)
        hr = Image.open(root / "HR" / f"im{i:02d}.png")
        (root / "LR").mkdir(exist_ok=True)
        hr.resize((lr_size, lr_size), Image.BICUBIC).save(root / "LR" / f"im{i:02d}.png")
    f = root / "sets.yaml"
    f.write_text(f"datasets:\n  Toy:\n    lr: {root}/LR\n    hr: {root}/HR\n    scale: 4\n")
    return f


def test_bad_input_corpus_keeps_other_results(tmp_path):
    sets = _paired_set(tmp_path / "toy", 2)
    lr, hr = tmp_path / "toy" / "LR", tmp_path / "toy" / "HR"
    (lr / "zero.png").write_bytes(b"")
    (hr / "zero.png").write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(buf, format="PNG")
    (lr / "trunc.png").write_bytes(buf.getvalue()[:40])
    (lr / "text.png").write_text("this is not an image")
    _img(lr / "mismatch.png", 16, 16, 7)
    _img(hr / "mismatch.png", 50, 64, 7)
    _img(lr / "nohr.png", 16, 16, 8)
    _img(lr / "tiny.png", 8, 8, 9)
    _img(hr / "tiny.png", 32, 32, 9)
    summary = run(RunOptions(methods="bicubic", datasets="Toy", metrics="psnr,ssim", datasets_files=[sets], progress=False),
                  log=lambda m: None)
    assert summary.exit_code == 1
    stages = {(f["image"], f["stage"]) for f in summary.failures}
    assert stages == {
        ("zero", "decode-lr"), ("zero", "decode-hr"), ("trunc", "decode-lr"), ("trunc", "decode-hr"),
        ("text", "decode-lr"), ("text", "decode-hr"), ("mismatch", "decode-hr"), ("nohr", "decode-hr"),
    }
    msgs = {f["image"]: f["message"] for f in summary.failures}
    assert "HR is 64x50 but LR is 16x16" in msgs["mismatch"]
    assert "empty file" in msgs["zero"] and "zero.png" in msgs["zero"]
    results = store.load_results(summary.store)
    good = results[results.image.isin(["im00", "im01", "tiny"])]
    assert len(good) == 6 and good.value.notna().all()
    assert store.sr_path(summary.store, "bicubic.x4", "Toy", "tiny").is_file()
    assert not store.sr_path(summary.store, "bicubic.x4", "Toy", "text").exists()
    failures = store.load_failures(summary.store)
    assert set(failures.image) == {"zero", "trunc", "text", "mismatch", "nohr"}


def test_resume_computes_only_missing(tmp_path):
    sets = _paired_set(tmp_path / "toy", 3)
    kw = dict(methods="bicubic", datasets="Toy", datasets_files=[sets], progress=False)
    first = run(RunOptions(metrics="psnr", limit=2, **kw), log=lambda m: None)
    assert first.cells[0].computed == 2
    rec = store.record_path(first.store, "bicubic.x4", "Toy", "im00")
    mtime = rec.stat().st_mtime_ns
    second = run(RunOptions(metrics="psnr", **kw), log=lambda m: None)
    assert (second.cells[0].computed, second.cells[0].reused) == (1, 2)
    assert rec.stat().st_mtime_ns == mtime
    third = run(RunOptions(metrics="psnr,ssim", **kw), log=lambda m: None)  # a new metric: every image gets it, psnr is kept
    assert third.cells[0].computed == 3
    df = store.load_results(third.store)
    assert len(df) == 6
    forced = run(RunOptions(metrics="psnr", force=True, **kw), log=lambda m: None)
    assert forced.cells[0].computed == 3


def _cli_env(tmp_path: Path, out: Path) -> dict:
    env = dict(os.environ)
    env.update(RSR_BENCH_HOME=str(out), PYTHONUNBUFFERED="1")
    return env


def test_kill_and_resume_matches_uninterrupted(tmp_path):
    sets = _paired_set(tmp_path / "toy", 14, lr_size=48)
    args = [sys.executable, "-m", "rsr_bench", "run", "--methods", "bicubic", "--datasets", "Toy",
            "--metrics", "psnr,ssim", "--datasets-file", str(sets), "--quiet"]
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen(args, env=_cli_env(tmp_path, killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = killed / "cells" / "bicubic.x4" / "Toy" / "records"
    deadline = time.time() + 120
    while time.time() < deadline and (not records.is_dir() or len(list(records.glob("*.json"))) < 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(list(records.glob("*.json")))
    assert 3 <= n_before < 14, "the run was not interrupted mid-way"
    subprocess.run(args, env=_cli_env(tmp_path, killed), check=True, capture_output=True)
    subprocess.run(args, env=_cli_env(tmp_path, clean), check=True, capture_output=True)
    a = store.load_results(killed).sort_values(["image", "metric"]).reset_index(drop=True)
    b = store.load_results(clean).sort_values(["image", "metric"]).reset_index(drop=True)
    assert len(a) == 28
    assert a.equals(b)
    for png in (clean / "cells" / "bicubic.x4" / "Toy" / "sr").glob("*.png"):
        assert (killed / "cells" / "bicubic.x4" / "Toy" / "sr" / png.name).read_bytes() == png.read_bytes()
    leftovers = [p for p in killed.rglob("*") if p.name.endswith(".tmp")]
    assert len(leftovers) <= 1  # at most the temp file being written at the kill, never read back


def test_cli_run_report_list(tmp_path):
    sets = _paired_set(tmp_path / "toy", 2)
    runner = CliRunner()
    out = tmp_path / "store"
    res = runner.invoke(cli, ["run", "--methods", "bicubic", "--datasets", "Toy,NTIRE_syn", "--metrics", "psnr,ssim",
                              "--datasets-file", str(sets), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "bicubic.x4" in res.output and "psnr↑" in res.output
    assert "NTIRE_syn" in res.output and "LR folder not found" in res.output
    csv = tmp_path / "t.csv"
    rep = runner.invoke(cli, ["report", "--store", str(out), "--csv", str(csv), "--no-write"])
    assert rep.exit_code == 0, rep.output
    psnr_run = [line for line in res.output.splitlines() if line.startswith("bicubic.x4")][0]
    assert psnr_run.split()[1] in rep.output
    assert csv.read_text().splitlines()[0].startswith("method,dataset,metric,mean,std,n")
    lst = runner.invoke(cli, ["list", "datasets", "--datasets-file", str(sets)])
    assert "Toy" in lst.output and "missing" in lst.output
    bad = runner.invoke(cli, ["run", "--methods", "bicubik", "--out", str(out)])
    assert bad.exit_code == 2 and "Did you mean: bicubic" in bad.output


def test_engine_options_do_not_break_weight_free_methods(tmp_path):
    sets = _paired_set(tmp_path / "toy", 1)
    summary = run(RunOptions(methods="bicubic", datasets="Toy", metrics="psnr", datasets_files=[sets], progress=False,
                             precision="bf16", tile=64), log=lambda m: None)
    assert summary.exit_code == 0 and not summary.skipped and summary.cells[0].computed == 1


def test_store_option_and_its_old_spelling(tmp_path):
    sets = _paired_set(tmp_path / "toy", 1)
    args = ["run", "--methods", "bicubic", "--datasets", "Toy", "--metrics", "psnr", "--datasets-file", str(sets), "--quiet"]
    for option in ("--store", "--out"):  # --out: the old spelling, a hidden alias
        res = CliRunner().invoke(cli, [*args, option, str(tmp_path / option)])
        assert res.exit_code == 0, res.output
        assert len(store.load_results(tmp_path / option)) == 1
    res = CliRunner().invoke(cli, [*args, "--store", str(tmp_path / "a"), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "disagree" in res.output
    assert "--store" in CliRunner().invoke(cli, ["run", "--help"]).output
    assert "--out" not in CliRunner().invoke(cli, ["run", "--help"]).output


def test_other_weights_refused_unless_the_cell_holds_only_failures(tmp_path):
    """Results of other weights are never mixed into a cell; a cell whose every image failed
    (e.g. a run that crashed in the engine) holds nothing to mix and is recomputed."""
    sets = _paired_set(tmp_path / "toy", 2)
    kw = dict(methods="bicubic", datasets="Toy", metrics="psnr", datasets_files=[sets], progress=False,
              store=tmp_path / "store")
    first = run(RunOptions(**kw), log=lambda m: None)
    manifest = store.read_manifest(first.store, "bicubic.x4", "Toy")
    manifest["method"]["fingerprint"] = "weights-of-another-run"
    store.write_manifest(first.store, "bicubic.x4", "Toy", manifest)
    logs: list[str] = []
    refused = run(RunOptions(**kw), log=logs.append)
    assert "come from other weights" in " ".join(logs) + " ".join(str(f) for f in refused.failures) + str(refused.skipped)
    for image in ("im00", "im01"):
        rec = store.read_record(first.store, "bicubic.x4", "Toy", image)
        store.write_record(first.store, "bicubic.x4", "Toy",
                           {**rec, "metrics": {}, "errors": [{"stage": "predict", "message": "engine crashed"}]})
    again = run(RunOptions(**kw), log=lambda m: None)
    assert again.cells[0].computed == 2 and again.exit_code == 0
    assert store.read_manifest(first.store, "bicubic.x4", "Toy")["method"]["fingerprint"] != "weights-of-another-run"
