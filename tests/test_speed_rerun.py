"""A re-run of a finished grid loads no model and imports no torch (issue 15: "a second `run` of
a finished grid < 2 s"; it was 5.6 s because every method was loaded before its cells were
looked at), while everything that should make it compute still does.

The fast path (``runner._finished_cells``) is taken only when every cell of a method is complete
for the same weights (the adapter's ``identify``, from the files alone) and the same request
(adapter options, device, host); anything else goes the usual way, which loads the method and
refuses to mix weights or precisions.

Bugs planted to check these tests fail (each one alone):
- the fast path ignores the fingerprint (changed weights silently reused) -> test_changed_weights_are_refused
- the fast path ignores pending images -> test_missing_image_is_computed
- the fast path ignores the request (a different --tile reused) -> test_changed_request_loads_the_method
- no fast path at all (every method loaded, the manifest's timings of the real run overwritten by
  the no-op's) -> test_rerun_loads_nothing_and_keeps_the_manifest and four more
(The fast path's own ``--force`` guard is redundant: under --force every image is pending, so
removing the guard alone changes nothing; test_force_recomputes checks the behaviour.)
- ``import torch`` back at the top of runner.py / the device resolved before a method needs it
  -> test_rerun_imports_no_torch
- the fast path's lookup of a card's adapter raising (a card naming an adapter that is not
  installed ended the whole run instead of skipping that method; found in review)
  -> test_card_with_unknown_adapter_is_skipped_not_fatal
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rsr_bench import runner, store
from rsr_bench.methods.rrdbnet import RRDBNet
from rsr_bench.runner import RunOptions, run

sys.path.insert(0, os.path.dirname(__file__))
from test_runner import _paired_set  # noqa: E402

CARD = "family: tiny\nadapter: rrdb\nvariants:\n  a:\n    scale: 4\n    options: {checkpoint: %s, precision: fp32}\n"


def _tiny_weights(path: Path, seed: int) -> None:
    torch.manual_seed(seed)
    torch.save(RRDBNet(nf=8, nb=1, gc=4).state_dict(), path)


@pytest.fixture
def grid(tmp_path: Path) -> dict:
    """A finished grid: bicubic and a tiny RRDBNet on a 2-image set, and a load counter."""
    _tiny_weights(tmp_path / "tiny.pth", 0)
    card = tmp_path / "tiny.yaml"
    card.write_text(CARD % (tmp_path / "tiny.pth"))
    kw = dict(methods="bicubic,tiny", datasets="Toy", metrics="psnr", datasets_files=[_paired_set(tmp_path / "toy", 2)],
              method_cards=[card], progress=False, store=tmp_path / "store", device="cpu")
    first = run(RunOptions(**kw), log=lambda m: None)
    assert [c.computed for c in first.cells] == [2, 2]
    return kw


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = runner.load_method

    def counting(spec, **kwargs):  # noqa: ANN001, ANN202
        seen.append(spec.name)
        return real(spec, **kwargs)

    monkeypatch.setattr(runner, "load_method", counting)
    return seen


def test_rerun_loads_nothing_and_keeps_the_manifest(grid: dict, loads: list[str]) -> None:
    before = {m: store.read_manifest(grid["store"], m, "Toy") for m in ("bicubic.x4", "tiny.a")}
    again = run(RunOptions(**grid), log=lambda m: None)
    assert loads == []
    assert [(c.method, c.computed, c.reused) for c in again.cells] == [("bicubic.x4", 0, 2), ("tiny.a", 0, 2)]
    assert {m: store.read_manifest(grid["store"], m, "Toy") for m in before} == before
    assert len(again.table()) == 2 and again.exit_code == 0


def test_missing_image_is_computed(grid: dict, loads: list[str]) -> None:
    store.record_path(grid["store"], "tiny.a", "Toy", "im01").unlink()
    again = run(RunOptions(**grid), log=lambda m: None)
    assert loads == ["tiny.a"]
    assert [(c.method, c.computed) for c in again.cells] == [("bicubic.x4", 0), ("tiny.a", 1)]


def test_changed_weights_are_refused(grid: dict, loads: list[str], tmp_path: Path) -> None:
    _tiny_weights(tmp_path / "tiny.pth", 1)
    logs: list[str] = []
    again = run(RunOptions(**{**grid, "keep_going": True}), log=logs.append)
    assert loads == ["tiny.a"]
    assert "come from other weights" in " ".join(logs) + str(again.skipped)


def test_changed_request_loads_the_method(grid: dict, loads: list[str]) -> None:
    again = run(RunOptions(**{**grid, "tile": 16}), log=lambda m: None)
    assert loads == ["tiny.a"]  # bicubic takes no tile: its request is unchanged
    assert [c.reused for c in again.cells] == [2, 2]


def test_force_recomputes(grid: dict, loads: list[str]) -> None:
    again = run(RunOptions(**{**grid, "force": True}), log=lambda m: None)
    assert sorted(loads) == ["bicubic.x4", "tiny.a"] and [c.computed for c in again.cells] == [2, 2]


def test_unavailable_weights_still_skip_with_the_reason(grid: dict, tmp_path: Path) -> None:
    (tmp_path / "tiny.pth").unlink()
    again = run(RunOptions(**{**grid, "methods": "tiny"}), log=lambda m: None)
    assert again.exit_code == 2 and "does not exist" in again.refused["tiny.a"]


PROBE = """
import json, sys
from rsr_bench.runner import RunOptions, run
kw = json.loads(sys.argv[1])
summary = run(RunOptions(**kw), log=lambda m: None)
print(json.dumps({"reused": [c.reused for c in summary.cells], "torch": "torch" in sys.modules}))
"""


def test_rerun_imports_no_torch(grid: dict) -> None:
    kw = {k: [str(p) for p in v] if isinstance(v, list) else str(v) if isinstance(v, Path) else v
          for k, v in grid.items()}
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(kw)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"reused": [2, 2], "torch": False}


def test_card_with_unknown_adapter_is_skipped_not_fatal(grid: dict, tmp_path: Path) -> None:
    ghost = tmp_path / "ghost.yaml"
    ghost.write_text("family: ghost\nadapter: nosuch\nvariants:\n  a:\n    scale: 4\n")
    again = run(RunOptions(**{**grid, "methods": "ghost.a,bicubic", "method_cards": [*grid["method_cards"], ghost]}),
                log=lambda m: None)
    assert [(c.method, c.reused) for c in again.cells] == [("bicubic.x4", 2)]
    assert again.exit_code == 2 and "adapter 'nosuch'" in again.refused["ghost.a"]
