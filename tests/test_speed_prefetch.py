"""Assets before the bars (issue 15, item 5): a run fetches the weights and its metrics' model
files before the first image is timed, so no image's time includes a download.

Bugs planted to check this test fails: the prefetch call removed from ``run``; prefetch
running after the cells.
"""

from __future__ import annotations

from pathlib import Path

from rsr_bench import metrics as metrics_mod
from rsr_bench import runner
from rsr_bench.runner import RunOptions, run
from test_runner import _paired_set


def test_metric_files_are_fetched_before_the_first_image(tmp_path: Path, monkeypatch) -> None:
    sets = _paired_set(tmp_path / "toy", 2)
    events: list[str] = []
    real_prepare, real_start = metrics_mod.fetch_metric_assets, runner._CellRun.start
    monkeypatch.setattr(metrics_mod, "fetch_metric_assets",
                        lambda specs: events.append("prepare") or real_prepare(specs))
    monkeypatch.setattr(runner._CellRun, "start",
                        lambda self, *a, **k: events.append("image") or real_start(self, *a, **k))
    summary = run(RunOptions(methods="bicubic", datasets="Toy", metrics="psnr,ssim,niqe", datasets_files=[sets],
                             store=tmp_path / "store", progress=False), log=lambda m: None)
    assert summary.exit_code == 0
    assert events[0] == "prepare" and events.count("prepare") == 1 and events.count("image") == 2
