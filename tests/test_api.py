"""The public Python API: the README's notebook example, lazy imports, one options object."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import rsr_bench
from rsr_bench.errors import ConfigError
from rsr_bench.runner import RunOptions

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_notebook_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = readme_example()
    assert len(code.strip().splitlines()) <= 6
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)  # noqa: S102 - the documented example, verbatim
    df = ns["df"]
    assert list(df.columns) == ["method", "dataset", "metric", "mean", "std", "n"]
    assert set(df.metric) == {"psnr", "ssim"} and set(df.method) == {"bicubic.x4"} and (df.n == 2).all()
    summary = df.attrs["summary"]
    assert summary.cells[0].computed == 2 and summary.exit_code == 0
    assert (tmp_path / "reports" / "notebook" / "index.html").is_file()
    assert "bicubic.x4" in set(rsr_bench.list_methods().name)


def test_import_is_light_and_exports_the_api() -> None:
    code = "import sys, rsr_bench; print(sorted(m for m in ('torch', 'pandas', 'click') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    for name in ("run", "load_results", "build_report", "check", "score", "list_methods", "list_datasets",
                 "list_metrics", "RunOptions"):
        assert callable(getattr(rsr_bench, name)) and name in dir(rsr_bench)
    with pytest.raises(AttributeError):
        rsr_bench.nope  # noqa: B018


def test_run_options_validated_in_one_place() -> None:
    with pytest.raises(ConfigError, match="limit"):
        RunOptions(limit=0)
    with pytest.raises(ConfigError, match="precision"):
        RunOptions(precision="fp8")
    with pytest.raises(ConfigError, match="tile"):
        RunOptions(tile=-1)
    with pytest.raises(ConfigError, match="device"):
        RunOptions(device="gpu0")
    opts = RunOptions(method_cards="card.yaml", tile=0, checkpoint=None)
    assert opts.method_cards == ("card.yaml",) and opts.engine_options() == {"tile": 0}


def test_lists_and_score(tmp_path: Path) -> None:
    from PIL import Image

    metrics = rsr_bench.list_metrics()
    assert {"psnr", "lpips"} <= set(metrics.name) and metrics.set_index("name").loc["psnr", "higher_is_better"]
    datasets = rsr_bench.list_datasets().set_index("name")
    assert datasets.loc["demo_clean", "has_gt"] and not datasets.loc["demo_real", "has_gt"]
    Image.new("RGB", (32, 32), (10, 20, 30)).save(tmp_path / "a.png")
    Image.new("RGB", (32, 32), (12, 20, 30)).save(tmp_path / "ref.png")
    scores = rsr_bench.score(tmp_path / "a.png", tmp_path / "ref.png", "psnr", device="cpu")
    assert list(scores.columns) == ["image", "metric", "value", "reason", "error"]
    assert scores.loc[0, "value"] == pytest.approx(scores.attrs["result"].means()["psnr"])


def test_check_from_python(tmp_path: Path) -> None:
    from test_check import make_store

    from rsr_bench.regression import MeasureOptions

    store = make_store(tmp_path / "s")
    baseline = rsr_bench.update_baseline(tmp_path / "b.yaml", MeasureOptions(store=store, evaluate=False),
                                         methods=["m.good"], datasets=["ds1"], metrics=["psnr"], log=lambda m: None)
    assert [e.mean for e in baseline.entries] == [26.0]
    result = rsr_bench.check(tmp_path / "b.yaml", MeasureOptions(store=store, evaluate=False))
    assert result.exit_code == 0 and result.summary_line().endswith("OK")
