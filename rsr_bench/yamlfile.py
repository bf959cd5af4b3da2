"""Reading the project's YAML files (cards, datasets, baselines, training configs) one way.

Always ``yaml.safe_load``; every error names the file and what it was expected to hold.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


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
