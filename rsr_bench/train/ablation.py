"""The paper's Table 1 ablation as a grid file: one training run (and method card) per row.

Grid file::

    base: rsr_official.yaml            # a training config (relative to this file)
    out: experiments/ablation          # run folders: <out>/<row name>
    common: {train.total_iter: 18000}  # overrides for every row (optional)
    axes:                              # one-factor-at-a-time around the base, as Table 1 is laid out
      attack.eps: [10/255, 12/255, 14/255, 16/255, 18/255]
      attack.iters: [2, 4, 6, 8]
    rows:                              # and/or explicit rows
      - {name: l1_only, attack.loss: l1}

Rows identical to the base (the default value on each axis) are run once, named ``base``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from . import config as C

GRID_KEYS = {"base", "out", "common", "axes", "rows", "family"}


def _slug(key: str, value: Any) -> str:
    short = key.split(".")[-1]
    if isinstance(value, float) and key.endswith("eps"):
        text = f"{round(value * 255, 3):g}"
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9]+", "-", f"{short}{text}").strip("-")


def load_grid(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        grid = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"ablation grid {path}: {exc}") from exc
    extra = set(grid) - GRID_KEYS
    if extra:
        raise ConfigError(f"ablation grid {path}: unknown key(s) {sorted(extra)}; allowed: {sorted(GRID_KEYS)}")
    if "base" not in grid:
        raise ConfigError(f"ablation grid {path}: missing 'base' (the training config the rows modify)")
    grid["_path"] = path
    return grid


def expand(grid: dict[str, Any], overrides: list[str] = ()) -> list[tuple[str, dict[str, Any]]]:
    """``[(row name, effective config)]`` in table order, duplicates of the base removed."""
    base_path = (grid["_path"].parent / grid["base"]).resolve()
    base = C.load_config(base_path)
    C.apply_overrides(base, dict(grid.get("common") or {}))
    C.apply_overrides(base, list(overrides))
    rows: list[tuple[str, dict[str, Any]]] = []
    changes: list[tuple[str, dict[str, Any]]] = [("base", {})]
    for key, values in (grid.get("axes") or {}).items():
        for v in values:
            v = C.parse_value(v) if isinstance(v, str) else v
            changes.append((_slug(key, v), {key: v}))
    for row in grid.get("rows") or []:
        row = dict(row)
        name = row.pop("name", None) or "_".join(_slug(k, v) for k, v in row.items())
        changes.append((str(name), row))
    seen: dict[str, str] = {}
    out_root = Path(grid.get("out") or "experiments/ablation")
    family = str(grid.get("family") or "ablation")
    for name, change in changes:
        cfg = yaml.safe_load(yaml.safe_dump(base))  # deep copy
        C.apply_overrides(cfg, change)
        key = yaml.safe_dump({k: cfg[k] for k in ("attack", "train", "data", "model", "perceptual")}, sort_keys=True)
        if key in seen:
            continue
        seen[key] = name
        cfg["name"] = f"{base['name']}_{name}"
        cfg["out"] = str(out_root / name)
        cfg["card"]["family"] = family
        cfg["card"]["tag"] = name.replace(".", "_")
        rows.append((name, cfg))
    return rows


def run_ablation(grid_path: str | os.PathLike, overrides: list[str] = (), only: list[str] = ()) -> list[Path]:
    """Run the rows one after another (each resumable); ``only`` restricts to named rows."""
    from .trainer import train

    rows = expand(load_grid(grid_path), list(overrides))
    names = [n for n, _ in rows]
    unknown = [o for o in only if o not in names]
    if unknown:
        raise ConfigError(f"unknown ablation row(s) {unknown}; rows: {', '.join(names)}")
    return [train(cfg) for name, cfg in rows if not only or name in only]
