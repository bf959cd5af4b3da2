"""A fake installed distribution that declares an rsr-bench adapter plugin (for tests).

Writes ``<root>/<module>.py`` and ``<root>/<dist>-1.0.dist-info/{METADATA,entry_points.txt}`` and
puts ``root`` on ``sys.path``: exactly what ``pip install`` leaves for a package whose
pyproject.toml has ``[project.entry-points."rsr_bench.adapters"] <name> = "<module>:ADAPTER"``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest


def install_plugin(root: Path, monkeypatch: pytest.MonkeyPatch, *, name: str, module: str, source: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(source)
    info = root / f"{module}-1.0.dist-info"  # the wheel spec's escaped name: '-' would end the name
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[rsr_bench.adapters]\n{name} = {module}:ADAPTER\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, module, raising=False)
    importlib.invalidate_caches()
