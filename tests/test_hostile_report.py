"""Hostile stores and report folders (issue 13: item 8's report side, CSV cells, atomic rebuild).

* A truncated or garbage SR PNG in the store, or an undecodable input/GT image named by a grid
  (``--images``), ended ``report`` in a traceback; the grid now shows a placeholder with the reason.
* A method or dataset named ``=HYPERLINK(...)`` (or starting with ``+``, ``-``, ``@``) became a
  formula when the CSV was opened in a spreadsheet; text cells are now written so spreadsheets
  show them as text, numbers stay numbers.
* A rebuild killed halfway left an ``index.html`` whose images had been deleted (the old assets
  were removed first). The report is now built in a temporary sibling and swapped in.

Planted bugs this module catches (each tried on the fixed code, one at a time): escaping
numbers too (negative means turn into text); escaping only ``=``; escaping the long CSV but not
the table CSV; deleting the old assets before the new report is complete; dropping a user's file
from the report folder on rebuild; a grid that skips the damaged method's panel instead of
showing why; decoding SR PNGs without the size limit.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import pytest
from synthetic_store import build_synthetic_store

from rsr_bench.report import build as build_module
from rsr_bench.report import build_report

FORMULAS = {"=1+2.x": ("=1+2", "x", ("-DIV2K",), 0.8), "bicubic.plain": ("bicubic", "plain", (), 0.0)}
DATASETS = {"@SUM(A1)": (True, ("+cmd",), "synthetic"), "-2+3": (False, (), "real")}


def read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_csv_text_cells_are_not_formulas_and_numbers_stay_numbers(tmp_path):
    store = build_synthetic_store(tmp_path / "store", methods=FORMULAS, datasets=DATASETS, n_images=2,
                                  skipped={}, failed=set())
    out = tmp_path / "rep"
    build_report(store.root, out, formats="csv")
    long_rows, wide_rows = read_csv(out / "results_long.csv"), read_csv(out / "table.csv")
    cells = [c for row in long_rows + wide_rows for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not _number(c))]
    header = long_rows[0]
    by_name = {(r[0], r[1], r[2]): r for r in long_rows[1:]}
    row = by_name[("'=1+2.x", "'@SUM(A1)", "psnr")]
    assert float(row[header.index("mean")]) > 0  # the value column is still a plain number
    assert ("'=1+2.x", "'-2+3", "niqe") in by_name
    wide = {r[0]: r for r in wide_rows[1:]}
    assert wide["'=1+2.x"][1:4] == ["'=1+2", "x", "'-DIV2K"]


def test_negative_numbers_are_left_as_numbers():
    from rsr_bench.report.exports import csv_cell

    assert csv_cell(-0.25) == "-0.25" and csv_cell("-0.25") == "'-0.25"  # text that looks like a number is text
    assert csv_cell("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0" and csv_cell("\tx") == "'\tx"
    assert csv_cell("plain") == "plain" and csv_cell(3) == "3"


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _referenced(index: Path) -> list[str]:
    html = index.read_text(encoding="utf-8")
    return [r for r in re.findall(r'(?:src|href)="([^"#:]+)"', html) if not r.startswith("http")]


def test_a_killed_rebuild_leaves_the_previous_report_whole(tmp_path, monkeypatch):
    store = build_synthetic_store(tmp_path / "store", n_images=2)
    out = tmp_path / "rep"
    build_report(store.root, out, plots=False)
    (out / "notes.txt").write_text("the user's own notes")
    before = (out / "index.html").read_text(encoding="utf-8")
    refs = _referenced(out / "index.html")
    assert any(r.startswith("assets/") for r in refs)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies after the new assets were written

    monkeypatch.setattr("rsr_bench.report.html.render_html", killed)
    with pytest.raises(KeyboardInterrupt):
        build_report(store.root, out, plots=False, grid_images=["NTIRE_syn/img001"])
    assert (out / "index.html").read_text(encoding="utf-8") == before
    assert [r for r in refs if not (out / r).exists()] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep", "store"]  # nothing half-built left


def test_rebuild_swaps_in_the_new_report_and_keeps_user_files(tmp_path):
    store = build_synthetic_store(tmp_path / "store", n_images=2)
    out = tmp_path / "rep"
    build_report(store.root, out, plots=False)
    (out / "notes.txt").write_text("the user's own notes")
    old_assets = {p.name for p in (out / "assets" / "grids").iterdir()}
    stale = tmp_path / f".{out.name}.building-leftover"  # what a SIGKILL during a build leaves
    stale.mkdir()
    (stale / build_module.MARKER).write_text("x")
    build_report(store.root, out, plots=False, grid_images=["AIM_syn/img001"])
    new_assets = {p.name for p in (out / "assets" / "grids").iterdir()}
    assert new_assets and new_assets != old_assets
    assert [r for r in _referenced(out / "index.html") if not (out / r).exists()] == []
    assert (out / "notes.txt").read_text() == "the user's own notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep", "store"]
    (tmp_path / "plain").mkdir()
    assert out.stat().st_mode == (tmp_path / "plain").stat().st_mode  # not mkdtemp's 0700


def test_report_into_a_foreign_folder_is_still_refused(tmp_path):
    store = build_synthetic_store(tmp_path / "store", n_images=1)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(Exception, match="not an rsr-bench report"):
        build_report(store.root, out, plots=False)
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


def _damage(store) -> dict[str, Path]:
    cells = store.root / "cells"
    truncated = cells / "rsr.div2k" / "NTIRE_syn" / "sr" / "img000.png"
    truncated.write_bytes(truncated.read_bytes()[:60])
    garbage = cells / "esrgan.div2k" / "NTIRE_syn" / "sr" / "img000.png"
    garbage.write_text("not a png")
    gt = store.root / "_inputs" / "AIM_syn" / "HR" / "img002.png"
    gt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    lr = store.root / "_inputs" / "AIM_syn" / "LR" / "img002.png"
    lr.write_text("garbage")
    return {"truncated": truncated, "garbage": garbage, "gt": gt, "lr": lr}


def test_damaged_images_become_placeholders_with_the_reason(tmp_path):
    store = build_synthetic_store(tmp_path / "store", n_images=3)
    bad = _damage(store)
    index = build_report(store.root, tmp_path / "rep", plots=False,
                         grid_images=["NTIRE_syn/img000", "AIM_syn/img002"])
    html = index.read_text(encoding="utf-8")
    for key in ("truncated", "garbage", "gt", "lr"):
        assert re.search(rf"cannot be decoded: {re.escape(str(bad[key]))}", html), key
    assert [r for r in _referenced(index) if not (index.parent / r).exists()] == []


def test_automatic_grids_survive_a_damaged_store(tmp_path):
    store = build_synthetic_store(tmp_path / "store", n_images=3)
    _damage(store)
    index = build_report(store.root, tmp_path / "rep", plots=False, grids_per_dataset=3)
    assert "cannot be decoded" in index.read_text(encoding="utf-8")


def test_a_bomb_in_the_store_is_refused_by_size(tmp_path, monkeypatch):
    store = build_synthetic_store(tmp_path / "store", n_images=1)
    monkeypatch.setenv("RSR_BENCH_MAX_PIXELS", "100")  # every 64x48 image is now "too large"
    index = build_report(store.root, tmp_path / "rep", plots=False, grid_images=["NTIRE_syn/img000"])
    assert "exceeds the maximum of 100 pixels" in index.read_text(encoding="utf-8")
    assert os.path.isfile(index)


def test_score_csv_file_names_are_not_formulas(tmp_path):
    """``score --csv`` wrote file names as they are: ``=1+2.png`` became a formula in a spreadsheet."""
    import numpy as np
    from click.testing import CliRunner
    from PIL import Image

    from rsr_bench.cli import cli

    rng = np.random.default_rng(0)
    for sub in ("dist", "ref"):
        (tmp_path / sub).mkdir()
        for name in ("=1+2.png", "@SUM(A1).png", "plain.png"):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / sub / name)
    out = tmp_path / "scores.csv"
    res = CliRunner().invoke(cli, ["score", str(tmp_path / "dist"), "--ref", str(tmp_path / "ref"), "--metrics", "psnr",
                                   "--csv", str(out), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    rows = read_csv(out)
    assert sorted(r[0] for r in rows[1:]) == ["'=1+2.png", "'@SUM(A1).png", "plain.png"]
    assert all(_number(r[2]) and r[1] == "psnr" for r in rows[1:])
