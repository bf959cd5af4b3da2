"""Assets before the bars (issue 15, item 5): a run fetches the weights and builds its metrics
before the first image is timed, so no image's time includes a download or a model build.

Bugs planted to check this test fails: the prefetch call removed from ``run`` (the metric is
first built inside the first image's scoring); prefetch running after the cells.
"""

from __future__ import annotations

from pathlib import Path

from rsr_bench import metrics as metrics_mod
from rsr_bench import runner
from rsr_bench.runner import RunOptions, run
from test_runner import _paired_set


def test_metrics_are_built_before_the_first_image(tmp_path: Path, monkeypatch) -> None:
    sets = _paired_set(tmp_path / "toy", 2)
    events: list[str] = []
    real_prepare, real_evaluate = metrics_mod.prepare_metrics, runner._CellRun.evaluate
    monkeypatch.setattr(metrics_mod, "prepare_metrics",
                        lambda specs, device="cpu": events.append("prepare") or real_prepare(specs, device))
    monkeypatch.setattr(runner._CellRun, "evaluate",
                        lambda self, *a, **k: events.append("image") or real_evaluate(self, *a, **k))
    summary = run(RunOptions(methods="bicubic", datasets="Toy", metrics="psnr,ssim", datasets_files=[sets],
                             store=tmp_path / "store", progress=False), log=lambda m: None)
    assert summary.exit_code == 0
    assert events[0] == "prepare" and events.count("prepare") == 1 and events.count("image") == 2
