"""Robustness summary scores: degradation, mCE normalised by bicubic, attack drops, best-two marks.

Every expected number below is worked out by hand from the ImageNet-C definition (docs/robustness.md):
``CE_c = sum_s E(m, c, s) / sum_s E(bicubic, c, s)``, mCE = mean over corruptions; relative mCE
with ``E - E_clean`` in numerator and denominator.

Planted bugs this module catches (each tried by hand, one at a time):
- the degradation sign flipped for a higher-is-better metric (a PSNR drop reported as negative);
- mCE as the mean of per-severity ratios instead of the ratio of the sums;
- relative mCE not subtracting the clean error (equals the plain mCE);
- the PSNR error taken as the PSNR itself (bigger = better inverted) instead of 10^(-PSNR/20);
- a corruption on which bicubic lacks a severity still counted in the mCE;
- an attack drop filed under the wrong eps, or a white-box drop mixed with the transfer drop;
- the best-two marks given to the highest values of a lower-is-better column;
- a level compared with the clean mean over other images (an image failing, or with an infinite
  clean PSNR, on one side only moves one mean: a fake gain).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from rsr_bench.report.robust import RCell, RColumn, _rank
from rsr_bench.robust.summary import error, level_table, summarise


def _stats(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """Per-image results with one image per cell (the cell mean is that value)."""
    return pd.DataFrame([(m, d, "a", x, v) for m, d, x, v in rows], columns=["method", "dataset", "image", "metric", "value"])


ROWS = [
    # LPIPS (lower is better): clean, jpeg@1, jpeg@2, noise@1, noise@2 (noise@2 missing for bicubic in one test)
    ("bicubic.x4", "d", "lpips", 0.40), ("bicubic.x4", "d~jpeg@1", "lpips", 0.50), ("bicubic.x4", "d~jpeg@2", "lpips", 0.70),
    ("bicubic.x4", "d~gaussian_noise@1", "lpips", 0.60), ("bicubic.x4", "d~gaussian_noise@2", "lpips", 0.80),
    ("m", "d", "lpips", 0.20), ("m", "d~jpeg@1", "lpips", 0.30), ("m", "d~jpeg@2", "lpips", 0.60),
    ("m", "d~gaussian_noise@1", "lpips", 0.25), ("m", "d~gaussian_noise@2", "lpips", 0.35),
    # PSNR (higher is better)
    ("bicubic.x4", "d", "psnr", 30.0), ("bicubic.x4", "d~jpeg@1", "psnr", 28.0), ("bicubic.x4", "d~jpeg@2", "psnr", 26.0),
    ("m", "d", "psnr", 32.0), ("m", "d~jpeg@1", "psnr", 29.0), ("m", "d~jpeg@2", "psnr", 25.0),
    # attacks on m
    ("m", "d~pgd@eps2", "psnr", 27.0), ("m", "d~pgd@eps4", "psnr", 21.0), ("m", "d~transfer@eps4", "psnr", 30.5),
]


def _value(summary: pd.DataFrame, method: str, metric: str, statistic: str, level: float | None = None) -> float:
    s = summary[(summary["method"] == method) & (summary["metric"] == metric) & (summary["statistic"] == statistic)]
    if level is not None:
        s = s[s["level"] == level]
    assert len(s) == 1, (method, metric, statistic, level, s)
    return float(s["value"].iloc[0])


def test_levels_carry_the_clean_value_and_a_positive_degradation():
    lv = level_table(_stats(ROWS))
    r = lv[(lv["method"] == "m") & (lv["metric"] == "psnr") & (lv["group"] == "jpeg") & (lv["level"] == 2)].iloc[0]
    assert (r["dataset"], r["kind"], r["clean"], r["degradation"]) == ("d", "corruption", 32.0, pytest.approx(7.0))
    r = lv[(lv["method"] == "m") & (lv["metric"] == "lpips") & (lv["group"] == "jpeg") & (lv["level"] == 1)].iloc[0]
    assert r["degradation"] == pytest.approx(0.10)


def test_mean_degradation_over_every_corruption_and_severity():
    s = summarise(level_table(_stats(ROWS)))
    assert _value(s, "m", "lpips", "mean_degradation") == pytest.approx((0.1 + 0.4 + 0.05 + 0.15) / 4)
    assert _value(s, "m", "psnr", "mean_degradation") == pytest.approx((3 + 7) / 2)
    assert _value(s, "bicubic.x4", "psnr", "mean_degradation") == pytest.approx((2 + 4) / 2)
    assert _value(s, "m", "lpips", "clean") == pytest.approx(0.20)


def test_mce_is_the_ratio_of_sums_per_corruption_averaged():
    s = summarise(level_table(_stats(ROWS)))
    ce_jpeg = (0.30 + 0.60) / (0.50 + 0.70)
    ce_noise = (0.25 + 0.35) / (0.60 + 0.80)
    assert _value(s, "m", "lpips", "mce") == pytest.approx((ce_jpeg + ce_noise) / 2)
    assert _value(s, "bicubic.x4", "lpips", "mce") == pytest.approx(1.0)
    rel_jpeg = ((0.30 - 0.20) + (0.60 - 0.20)) / ((0.50 - 0.40) + (0.70 - 0.40))
    rel_noise = ((0.25 - 0.20) + (0.35 - 0.20)) / ((0.60 - 0.40) + (0.80 - 0.40))
    assert _value(s, "m", "lpips", "relative_mce") == pytest.approx((rel_jpeg + rel_noise) / 2)


def test_psnr_mce_uses_the_rmse_error():
    s = summarise(level_table(_stats(ROWS)))
    e = lambda p: 10 ** (-p / 20)  # noqa: E731
    assert error("psnr", 20.0) == pytest.approx(0.1)
    assert _value(s, "m", "psnr", "mce") == pytest.approx((e(29) + e(25)) / (e(28) + e(26)))
    assert error("ssim", 0.8) == pytest.approx(0.2) and error("lpips", 0.3) == 0.3


def test_a_corruption_bicubic_lacks_a_level_of_does_not_count():
    rows = [r for r in ROWS if not (r[0] == "bicubic.x4" and r[1] == "d~gaussian_noise@2")]
    s = summarise(level_table(_stats(rows)))
    assert _value(s, "m", "lpips", "mce") == pytest.approx((0.30 + 0.60) / (0.50 + 0.70))


def test_attack_drops_per_kind_and_eps():
    s = summarise(level_table(_stats(ROWS)))
    assert _value(s, "m", "psnr", "pgd_drop", 2.0) == pytest.approx(5.0)
    assert _value(s, "m", "psnr", "pgd_drop", 4.0) == pytest.approx(11.0)
    assert _value(s, "m", "psnr", "transfer_drop", 4.0) == pytest.approx(1.5)
    assert not ((s["method"] == "bicubic.x4") & s["statistic"].str.endswith("_drop")).any()


def test_without_bicubic_there_is_no_mce():
    s = summarise(level_table(_stats([r for r in ROWS if r[0] != "bicubic.x4"])))
    assert math.isnan(_value(s, "m", "lpips", "mce"))


@pytest.mark.parametrize("lower_better, values, ranks", [
    (True, [0.30, 0.10, 0.20, None], [0, 1, 2, 0]),
    (False, [0.30, 0.10, 0.20, None], [1, 0, 2, 0]),
    (True, [0.10, 0.10, 0.20], [1, 1, 2]),  # a tie on screen ties in colour
    (True, [0.1004, 0.1001, 0.3], [1, 1, 2]),  # equal at the shown 3 decimals
])
def test_best_two_marked_in_the_right_direction(lower_better, values, ranks):
    col = RColumn("lpips|mean_degradation||", "g", "Δ LPIPS", lower_better, 3)
    cells = [RCell(v, "") for v in values]
    _rank(cells, col)
    assert [c.rank for c in cells] == ranks


def test_levels_are_paired_with_the_clean_input_image_by_image():
    res = pd.DataFrame([
        ("m", "d", "a", "psnr", 30.0), ("m", "d", "b", "psnr", 20.0), ("m", "d", "c", "psnr", float("inf")),
        ("m", "d~jpeg@1", "a", "psnr", 29.0), ("m", "d~jpeg@1", "c", "psnr", 50.0),  # b failed; c clean is inf
    ], columns=["method", "dataset", "image", "metric", "value"])
    r = level_table(res).iloc[0]
    assert (r["value"], r["clean"], r["degradation"], r["n"]) == (29.0, 30.0, pytest.approx(1.0), 1)
