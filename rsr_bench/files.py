"""Where files live and how the project reads and writes them safely.

- Locations: project data (``datasets.yaml``, ``methods/``), the asset cache, the data root and
  the results store, each overridable by an environment variable so tests and CI never touch a
  user's real folders.
- Writes are atomic: a killed process must never leave a half-written file that a later run reads
  back, so every write goes to a temporary file in the same folder, is fsynced, then renamed.
- YAML is always read with ``yaml.safe_load``; every error names the file and its role.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The folder holding ``datasets.yaml``, ``methods/`` and ``reports/paper/``.

    ``RSR_BENCH_ROOT`` overrides. Otherwise the checkout beside the package (an editable
    install, where users edit these files), else the copy a normal install ships inside the
    package (``rsr_bench/_project/``, written by the build hook in setup.py).
    """
    env = os.environ.get("RSR_BENCH_ROOT")
    candidates = [Path(env)] if env else [PACKAGE_DIR.parent, PACKAGE_DIR / "_project"]
    for root in candidates:
        if (root / "datasets.yaml").is_file():
            return root
    raise ConfigError(
        f"cannot find datasets.yaml under {' or '.join(map(str, candidates))}; reinstall rsr-bench "
        "(pip install .) or set RSR_BENCH_ROOT to a checkout"
    )


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
    """The results store (``--store`` / ``RSR_BENCH_HOME``), default ``./rsr-bench-results``."""
    if override:
        return Path(override)
    return Path(os.environ.get("RSR_BENCH_HOME", "rsr-bench-results"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_yaml_mapping(path: str | os.PathLike, *, what: str, error: type[Exception] = ConfigError) -> dict[str, Any]:
    """The mapping in ``path`` (an empty file gives ``{}``); ``what`` names the file's role."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{what} {path}: invalid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{what} {path}: expected a mapping at top level")
    return data
