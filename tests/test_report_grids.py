"""Grid helpers: the automatic crop finds where outputs differ; asset names are safe; image picking."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rsr_bench.report.grids import auto_crop, pick_images, slug
from rsr_bench.report.model import DatasetInfo, MethodInfo, MetricInfo, ReportData


def test_auto_crop_lands_on_the_disagreement():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (120, 160, 3)).astype(np.uint8)
    other = base.copy()
    other[70:100, 20:50] = 255 - other[70:100, 20:50]  # the only place the two outputs differ
    x, y, w, h = auto_crop([base, other], (160, 120))
    assert w == h == 40
    assert x <= 20 and x + w >= 50 and y <= 70 and y + h >= 100


def test_auto_crop_falls_back_to_centre_with_one_output():
    x, y, w, h = auto_crop([], (90, 60))
    assert (x, y) == ((90 - w) // 2, (60 - h) // 2)


def test_slug_is_safe_and_unique():
    a, b = slug("../etc", "<x>"), slug("..", "/etc<x>")
    assert "/" not in a and "<" not in a and not a.startswith(".")
    assert a != b


def test_pick_images_prefers_disagreement_and_avoids_failed():
    rows = []
    for img, spread in (("calm", 0.1), ("wild", 5.0), ("broken", 50.0)):
        for k, m in enumerate(("a.x", "b.x", "c.x")):
            rows.append((m, "D", img, "psnr", 20 + spread * k))
    results = pd.DataFrame(rows, columns=["method", "dataset", "image", "metric", "value"])
    failures = pd.DataFrame([("a.x", "D", "broken", "predict", "boom")],
                            columns=["method", "dataset", "image", "stage", "message"])
    data = ReportData(store_root=None, results=results, failures=failures, manifests={}, skipped={},
                      stats=pd.DataFrame(), methods={m: MethodInfo(m, m[0], "x") for m in ("a.x", "b.x", "c.x")},
                      datasets={"D": DatasetInfo("D", has_gt=True)},
                      metrics={"psnr": MetricInfo("psnr", "FR", True)})
    assert [(d, i) for d, i, _ in pick_images(data, 1)] == [("D", "wild")]
