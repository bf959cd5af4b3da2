"""Where things live: project resources, data root, results store, asset cache.

Every location can be overridden by an environment variable so that tests and CI never touch a
user's real directories.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The folder holding ``datasets.yaml`` and ``methods/`` (``RSR_BENCH_ROOT`` overrides).

    The package is installed editable from its checkout (see README), so the resources sit
    beside the package directory.
    """
    env = os.environ.get("RSR_BENCH_ROOT")
    root = Path(env) if env else PACKAGE_DIR.parent
    if not (root / "datasets.yaml").is_file():
        raise ConfigError(
            f"cannot find datasets.yaml under {root}; install rsr-bench editable from its checkout "
            "(pip install -e .) or set RSR_BENCH_ROOT to the checkout"
        )
    return root


def cache_dir() -> Path:
    """Downloaded and converted assets, and the generated demo suite (``RSR_BENCH_CACHE``)."""
    env = os.environ.get("RSR_BENCH_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "rsr-bench"


def data_root(override: str | os.PathLike | None = None) -> Path:
    """Root under which the official datasets are laid out (``--data-root`` / ``RSR_BENCH_DATA``)."""
    if override:
        return Path(override)
    return Path(os.environ.get("RSR_BENCH_DATA", "data"))


def store_root(override: str | os.PathLike | None = None) -> Path:
    """The results store (``--out`` / ``RSR_BENCH_HOME``), default ``./rsr-bench-results``."""
    if override:
        return Path(override)
    return Path(os.environ.get("RSR_BENCH_HOME", "rsr-bench-results"))
