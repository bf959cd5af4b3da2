"""datasets.yaml parsing, errors, availability and sample matching."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rsr_bench.datasets import load_datasets, parse_datasets_file, select_datasets
from rsr_bench.errors import ConfigError, UnknownNameError


def _write(path, text):
    path.write_text(text)
    return path


def test_project_file_declares_official_and_demo_sets(tmp_path):
    specs = load_datasets(data_root=tmp_path)
    for name in ("NTIRE_syn", "AIM_syn", "DPED_rw", "FACES_rw"):
        assert specs[name].count == 100
        assert str(tmp_path) in str(specs[name].lr_dir)
    assert specs["NTIRE_syn"].has_gt and not specs["DPED_rw"].has_gt
    assert specs["demo_noise"].has_gt and not specs["demo_real"].has_gt
    reason = specs["NTIRE_syn"].missing_reason()
    assert "expected" in reason and str(tmp_path / "NTIRE_syn") in reason


def test_unknown_key_named(tmp_path):
    f = _write(tmp_path / "d.yaml", "datasets:\n  X:\n    lr: a\n    hr_dir: b\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['hr_dir'\]"):
        parse_datasets_file(f, tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("datasets:\n  X:\n    hr: b\n", "missing required key 'lr'"),
        ("datasets:\n  X:\n    lr: a\n    scale: four\n", "scale and count must be integers"),
        ("datasets:\n  X:\n    lr: a\n    kind: weird\n", "kind must be one of"),
        ("sets:\n  X: {}\n", "unknown top-level key"),
        ("datasets: [1, 2]\n", "must be a mapping"),
        ("datasets:\n  X:\n    lr: [unclosed\n", "invalid YAML"),
    ],
)
def test_errors_name_file_and_problem(tmp_path, text, message):
    f = _write(tmp_path / "d.yaml", text)
    with pytest.raises(ConfigError, match=message) as exc:
        parse_datasets_file(f, tmp_path)
    assert str(f) in str(exc.value)


def test_did_you_mean(tmp_path):
    specs = load_datasets(data_root=tmp_path)
    with pytest.raises(UnknownNameError, match="Did you mean: NTIRE_syn"):
        select_datasets("NTIRE_sin", specs)
    assert [s.name for s in select_datasets("demo_*", specs)] == ["demo_clean", "demo_noise", "demo_jpeg", "demo_real"]


def test_user_file_root_and_samples(tmp_path):
    (tmp_path / "mine" / "LR").mkdir(parents=True)
    (tmp_path / "mine" / "HR").mkdir()
    for name in ("b", "a"):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "mine" / "LR" / f"{name}x4.png")
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "mine" / "HR" / f"{name}.png")
    f = _write(tmp_path / "mine.yaml", "root: mine\ndatasets:\n  Mine:\n    lr: LR\n    hr: HR\n    lr_suffix: x4\n")
    specs = load_datasets([f], data_root=tmp_path / "elsewhere")
    mine = specs["Mine"]
    assert mine.missing_reason() is None
    samples = mine.samples()
    assert [s.id for s in samples] == ["a", "b"]
    assert samples[0].hr_path == tmp_path / "mine" / "HR" / "a.png"
    assert "NTIRE_syn" in specs  # the project's sets are still there


def test_demo_suite_is_deterministic(tmp_path, monkeypatch):
    from rsr_bench.datasets.demo import DEMO_VERSION, ensure_demo_suite

    first = ensure_demo_suite()
    monkeypatch.setenv("RSR_BENCH_CACHE", str(tmp_path / "other"))
    second = ensure_demo_suite()
    assert first != second and second.name.startswith(f"v{DEMO_VERSION}-")
    assert (first / "manifest.json").read_text() == (second / "manifest.json").read_text()
    lr = sorted((second / "demo_noise" / "LR").iterdir())
    assert len(lr) == 6 and Image.open(lr[0]).size == (64, 64)
    assert not (second / "demo_real" / "HR").exists()
