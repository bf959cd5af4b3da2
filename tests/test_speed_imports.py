"""`rsr-bench --help` and `list` stay under 1 s (issue 15, item 3) by never importing torch or
pandas (2.9 s and 0.7 s of imports on the reference machine). Checked structurally, in a fresh
interpreter, rather than by timing a shared CI machine.

Bugs planted to check these tests fail: a top-level ``import torch`` back in image.py, in
methods/cards.py or in metrics/table.py; ``list`` going through the DataFrame API again.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from click.testing import CliRunner
from rsr_bench.cli import cli
result = CliRunner().invoke(cli, {args!r})
print(json.dumps({{"code": result.exit_code, "out": result.output,
                   "heavy": sorted(m for m in ("torch", "pandas", "torchvision", "lpips", "pyiqa") if m in sys.modules)}}))
"""


def _probe(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["list", "methods"], ["list", "metrics"],
                                  ["list", "datasets"]], ids=" ".join)
def test_help_and_list_import_neither_torch_nor_pandas(args: list[str]) -> None:
    probe = _probe(args)
    assert probe["code"] == 0, probe["out"]
    assert probe["heavy"] == [], f"rsr-bench {' '.join(args)} imported {probe['heavy']}"


def test_list_still_shows_every_row() -> None:
    from rsr_bench import api

    out = _probe(["list", "metrics"])["out"]
    assert all(name in out for name in api.list_metrics()["name"])
    frame, records = api.list_methods(), api.list_methods(records=True)
    assert list(frame.itertuples(index=False)) == [tuple(r) for r in records]


def test_building_lpips_imports_neither_lpips_nor_torchvision() -> None:
    """LPIPS is in-tree: the lpips package and torchvision are no part of a run's fixed cost."""
    code = ("import json, sys; from rsr_bench.metrics import create_metric; create_metric('lpips')\n"
            "print(json.dumps(sorted(m for m in ('lpips', 'torchvision') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_scoring_no_reference_metrics_does_not_import_pyiqa() -> None:
    """NIQE/BRISQUE/PIQE are in-tree: pyiqa's ~4 s import is no part of a run (issue 15).
    Planted: noref.py importing pyiqa's NIQE again."""
    code = ("import json, sys, torch; from rsr_bench.metrics import create_metric\n"
            "x = torch.rand(1, 3, 200, 200)\n"
            "values = [create_metric(n)(x)[0] for n in ('niqe', 'brisque', 'piqe')]\n"
            "print(json.dumps({'values': values, 'pyiqa': sorted(m for m in sys.modules if m.split('.')[0] == 'pyiqa')}))")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(probe["values"]) == 3 and probe["pyiqa"] == []


def test_report_does_not_import_torch(tmp_path) -> None:
    """`rsr-bench report` reads a store and draws; torch (2.9 s of imports) is no part of it.
    Planted: the severity range back in robust/corruptions.py (which imports torch) for naming.py."""
    from synthetic_store import build_synthetic_store

    synth = build_synthetic_store(tmp_path / "store", n_images=2)
    probe = _probe(["report", "--store", str(synth.root), "--out", str(tmp_path / "rep"), "--no-plots"])
    assert probe["code"] == 0, probe["out"]
    assert "torch" not in probe["heavy"]
