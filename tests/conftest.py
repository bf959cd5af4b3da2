"""Shared test fixtures.

- The asset/demo cache is one folder for the whole session: ``RSR_BENCH_CACHE`` if the caller
  set it (CI keeps downloads across runs that way), else a session temporary folder. Genuine
  mirror assets are therefore downloaded at most once per session.
- Nothing is ever written into the repository: stores and outputs go to ``tmp_path``.
- ``reference_data`` gives ``RSR_BENCH_REFERENCE_DATA`` (../shared/data in CI) or skips.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory):
    if not os.environ.get("RSR_BENCH_CACHE"):
        os.environ["RSR_BENCH_CACHE"] = str(tmp_path_factory.mktemp("rsr-bench-cache"))
    yield Path(os.environ["RSR_BENCH_CACHE"])


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RSR_BENCH_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("RSR_BENCH_DATA", str(tmp_path / "data"))


@pytest.fixture(scope="session")
def reference_data() -> Path:
    value = os.environ.get("RSR_BENCH_REFERENCE_DATA")
    if not value or not Path(value).is_dir():
        pytest.skip("RSR_BENCH_REFERENCE_DATA is not set (reference images from ../shared/data)")
    return Path(value).resolve()


def find_calibration_dir() -> Path | None:
    """The 5 official calibration pairs: pyiqa's wheel ships them; else the reference data."""
    try:
        p = Path(importlib.metadata.distribution("pyiqa").locate_file("ResultsCalibra"))
        if (p / "dist_dir" / "I03.bmp").is_file() and (p / "ref_dir" / "I03.bmp").is_file():
            return p
    except importlib.metadata.PackageNotFoundError:
        pass
    env = os.environ.get("RSR_BENCH_REFERENCE_DATA")
    if env and (Path(env) / "calibration" / "dist_dir" / "I03.bmp").is_file():
        return Path(env).resolve() / "calibration"
    return None


@pytest.fixture(scope="module")
def single_torch_thread():
    """Small images on shared, oversubscribed CPUs run ~10x faster on one thread (and reproducibly)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
