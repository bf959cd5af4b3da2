"""Shared test fixtures.

- The asset/demo cache is one folder for the whole session: ``RSR_BENCH_CACHE`` if the caller
  set it (CI keeps downloads across runs that way), else a session temporary folder. Genuine
  mirror assets are therefore downloaded at most once per session.
- Nothing is ever written into the repository: stores and outputs go to ``tmp_path``.
- ``reference_data`` gives ``RSR_BENCH_REFERENCE_DATA`` (../shared/data in CI) or skips.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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
