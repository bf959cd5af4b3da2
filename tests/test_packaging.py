"""A normal (non-editable) install works outside the checkout.

Builds a wheel from this checkout, installs it into a fresh virtual environment and, from a
temporary folder, runs ``rsr-bench list methods`` and a one-image bicubic run. The fresh venv
sees the test environment's third-party packages through a ``.pth`` line (reinstalling torch
would cost minutes and test nothing of ours); a ``.pth`` path line does not execute the editable
install's finder, so ``import rsr_bench`` there can only find the wheel's copy, which is asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _sh(args: list[str], cwd: Path, env: dict | None = None) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("wheel")
    _sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"), str(ROOT)], tmp)
    wheel = next((tmp / "dist").glob("rsr_bench-*.whl"))
    venv = tmp / "venv"
    _sh([sys.executable, "-m", "venv", str(venv)], tmp)
    py = venv / "bin" / "python"
    site = Path(_sh([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp).strip())
    (site / "deps-from-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _sh([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], tmp)
    return wheel, venv


def test_wheel_ships_project_data(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("rsr_bench/_project/datasets.yaml", "rsr_bench/_project/methods/bicubic.yaml",
                     "rsr_bench/_project/reports/paper/published.yaml", "rsr_bench/report/templates/report.html.j2"):
        assert required in names, f"{required} missing from {wheel.name}"


def test_installed_package_runs_outside_checkout(installed, tmp_path):
    _, venv = installed
    env = {k: v for k, v in os.environ.items() if k not in ("RSR_BENCH_ROOT", "PYTHONPATH")}
    env["RSR_BENCH_CACHE"] = os.environ.get("RSR_BENCH_CACHE", str(tmp_path / "cache"))
    where = _sh([str(venv / "bin" / "python"), "-c", "import rsr_bench; print(rsr_bench.__file__)"], tmp_path, env)
    assert str(venv) in where and str(ROOT) not in where, where
    listing = _sh([str(venv / "bin" / "rsr-bench"), "list", "methods"], tmp_path, env)
    assert "bicubic.x4" in listing and "impressionism.df2k" in listing
    _sh([str(venv / "bin" / "rsr-bench"), "run", "--methods", "bicubic", "--datasets", "demo_clean", "--metrics", "psnr",
         "--limit", "1", "--quiet", "--store", str(tmp_path / "store")], tmp_path, env)
    records = list((tmp_path / "store" / "cells" / "bicubic.x4" / "demo_clean" / "records").glob("*.json"))
    assert len(records) == 1
