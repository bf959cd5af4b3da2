"""The generalisation table and its exports against values computed here from the synthetic store.

Expected means, averages, best/second-best and in-domain marks are recomputed in this file from
the per-image values the synthetic builder wrote (not through rsr_bench.report.terminal or the report
code), with the paper's rules spelled out: mean of per-image values; average over the datasets
where the metric exists; highlights by displayed value; in-domain = trained_on ∩ ({dataset} ∪
dataset domains).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict

import numpy as np
import pytest

from rsr_bench.report.exports import latex, long_csv, markdown, wide_csv
from rsr_bench.report.model import load_report_data
from synthetic_store import build_synthetic_store
from rsr_bench.report.tables import AVERAGE, build_table

DECIMALS = {"psnr": 2, "ssim": 3, "lpips": 3, "niqe": 2}
HIGHER = {"psnr": True, "ssim": True, "lpips": False, "niqe": False}
IN_DOMAIN = {("impressionism.ntire", "NTIRE_syn"), ("impressionism.aim", "AIM_syn"), ("esrgan_fs.dped", "DPED_rw")}
SKIPPED = ("esrgan.div2k", "DPED_rw")
FAILED = ("impressionism.ntire", "AIM_syn", "img001")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return build_synthetic_store(tmp_path_factory.mktemp("store"), n_images=5)


@pytest.fixture(scope="module")
def table(synth):
    data = load_report_data(synth.root)
    return data, build_table(data)


def expected(synth):
    """(method, dataset, metric) -> (mean, std, n) and (method, metric) -> average or None."""
    per = defaultdict(list)
    for (m, d, _i, x), v in synth.values.items():
        per[(m, d, x)].append(v)
    cells = {k: (float(np.mean(v)), float(np.std(v)), len(v)) for k, v in per.items()}
    methods = sorted({k[0] for k in cells} | {SKIPPED[0]})
    datasets = sorted({k[1] for k in cells})
    avg = {}
    for x in DECIMALS:
        over = [d for d in datasets if any((m, d, x) in cells for m in methods)]
        for m in methods:
            vals = [cells[(m, d, x)][0] for d in over if (m, d, x) in cells]
            avg[(m, x)] = sum(vals) / len(vals) if len(vals) == len(over) else None
    return cells, avg


def ranks(values: dict[str, float | None], metric: str) -> dict[str, int]:
    shown = {k: round(v, DECIMALS[metric]) for k, v in values.items() if v is not None}
    order = sorted(set(shown.values()), reverse=HIGHER[metric])
    return {k: 1 if v == order[0] else 2 if len(order) > 1 and v == order[1] else 0 for k, v in shown.items()}


def test_cells_match_independent_means(synth, table):
    _, t = table
    cells, avg = expected(synth)
    assert {r.method.name for r in t.rows} == {k[0] for k in cells} | {SKIPPED[0]}
    for r in t.rows:
        for col, c in zip(t.columns, r.cells):
            m, x = r.method.name, col.metric.name
            if col.dataset == AVERAGE:
                want = avg[(m, x)]
                assert (c.value is None) == (want is None), (m, x)
                if want is not None:
                    assert c.value == pytest.approx(want, abs=1e-9)
                    assert c.text == f"{want:.{DECIMALS[x]}f}"
                continue
            key = (m, col.dataset, x)
            if key in cells:
                mean, std, n = cells[key]
                assert c.value == pytest.approx(mean, abs=1e-9), key
                assert c.std == pytest.approx(std, abs=1e-9), key
                assert c.n == n and c.text == f"{mean:.{DECIMALS[x]}f}"
            else:
                assert c.value is None and c.text == "—", key


def test_failed_image_is_excluded_and_counted(table):
    _, t = table
    row = next(r for r in t.rows if r.method.name == FAILED[0])
    c = next(c for col, c in zip(t.columns, row.cells) if col.key == f"psnr|{FAILED[1]}")
    assert c.n == 4 and c.n_failed == 1
    assert "1 image(s) not in this mean because of errors" in c.title


def test_missing_cells_have_reasons(table):
    _, t = table
    for r in t.rows:
        for col, c in zip(t.columns, r.cells):
            if col.dataset == "DPED_rw" and col.metric.name in ("psnr", "ssim", "lpips"):
                assert c.value is None and "no ground truth" in c.reason
            if (r.method.name, col.dataset) == SKIPPED and col.metric.name == "niqe":
                assert c.value is None and "weights not available" in c.reason
    esr = next(r for r in t.rows if r.method.name == SKIPPED[0])
    niqe_avg = next(c for col, c in zip(t.columns, esr.cells) if col.key == "niqe|average")
    assert niqe_avg.value is None and "missing on DPED_rw" in niqe_avg.reason


def test_best_second_and_in_domain(synth, table):
    _, t = table
    cells, avg = expected(synth)
    methods = [r.method.name for r in t.rows]
    for j, col in enumerate(t.columns):
        x = col.metric.name
        if col.dataset == AVERAGE:
            vals = {m: avg[(m, x)] for m in methods}
        else:
            vals = {m: cells.get((m, col.dataset, x), (None,))[0] for m in methods}
        want = ranks(vals, x) if sum(v is not None for v in vals.values()) >= 2 else {}
        for r in t.rows:
            got = r.cells[j].rank
            assert got == want.get(r.method.name, 0), (col.key, r.method.name)
            dom = col.dataset != AVERAGE and (r.method.name, col.dataset) in IN_DOMAIN
            assert r.cells[j].in_domain == dom, (col.key, r.method.name)
    # Sanity of the fixture itself: every column with values has a best.
    assert all(any(r.cells[j].rank == 1 for r in t.rows) for j, col in enumerate(t.columns)
               if sum(r.cells[j].value is not None for r in t.rows) >= 2)


def test_rows_grouped_by_family_with_training_sub_rows(table):
    _, t = table
    assert t.rows[0].family_label == "Bicubic" and t.rows[-1].family_label == "RSR"
    imp = [r for r in t.rows if r.method.family == "impressionism"]
    assert [r.family_first for r in imp] == [True, False] and imp[0].family_size == 2
    assert {r.trained_label for r in imp} == {"NTIRE_syn", "AIM_syn"}
    assert [m.name for m, _ in t.metric_groups] == ["psnr", "ssim", "lpips", "niqe"]
    # paired first, in datasets.yaml order (NTIRE_syn before AIM_syn, as the paper), then unpaired
    assert [c.dataset for c in t.columns[:4]] == ["NTIRE_syn", "AIM_syn", "DPED_rw", AVERAGE]


def test_long_csv_has_mean_std_n(synth, table):
    data, _ = table
    cells, _ = expected(synth)
    rows = list(csv.DictReader(io.StringIO(long_csv(data))))
    assert list(rows[0])[:6] == ["method", "dataset", "metric", "mean", "std", "n"]
    assert len(rows) == len(cells)
    for r in rows:
        mean, std, n = cells[(r["method"], r["dataset"], r["metric"])]
        assert float(r["mean"]) == pytest.approx(mean) and float(r["std"]) == pytest.approx(std)
        assert int(r["n"]) == n
        assert r["in_domain"] == ("" if r["method"] == "bicubic.default"
                                  else str((r["method"], r["dataset"]) in IN_DOMAIN).lower())


def test_markdown_latex_wide_csv_agree(table):
    _, t = table
    md, tex, wide = markdown(t), latex(t), wide_csv(t)
    for r in t.rows:
        for c in r.cells:
            if c.rank == 1:
                mark = "†" if c.in_domain else ""
                assert f"**{c.text}{mark}**" in md
                dagger = "$^\\dagger$" if c.in_domain else ""
                assert f"\\best{{{c.text}{dagger}}}" in tex
            elif c.rank == 2:
                assert f"\\second{{{c.text}" in tex
    assert "\\toprule" in tex and "\\bottomrule" in tex and "\\cmidrule" in tex
    assert "AIM\\_syn" in tex and "NTIRE\\_syn" in md
    header = next(csv.reader(io.StringIO(wide)))
    assert header[:4] == ["method", "family", "tag", "trained_on"] and "psnr|average" in header


def test_metric_error_only_affects_that_metric(tmp_path):
    import json

    synth = build_synthetic_store(tmp_path, n_images=3, failed=set())
    rec_path = tmp_path / "cells" / "rsr.div2k" / "NTIRE_syn" / "records" / "img000.json"
    rec = json.loads(rec_path.read_text())
    del rec["metrics"]["lpips"]
    rec["errors"] = [{"stage": "metric:lpips", "message": "RuntimeError: boom"}]
    rec_path.write_text(json.dumps(rec))
    data = load_report_data(synth.root)
    t = build_table(data)
    row = next(r for r in t.rows if r.method.name == "rsr.div2k")
    cells = {col.key: c for col, c in zip(t.columns, row.cells)}
    assert cells["lpips|NTIRE_syn"].n == 2 and cells["lpips|NTIRE_syn"].n_failed == 1
    assert cells["psnr|NTIRE_syn"].n == 3 and cells["psnr|NTIRE_syn"].n_failed == 0
    long_rows = {(r["metric"], r["dataset"]): r for r in csv.DictReader(io.StringIO(long_csv(data)))
                 if r["method"] == "rsr.div2k"}
    assert long_rows[("lpips", "NTIRE_syn")]["n_failed"] == "1" and long_rows[("psnr", "NTIRE_syn")]["n_failed"] == "0"
