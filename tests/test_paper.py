"""`rsr-bench paper table1|table2`: published values beside measured ones, unmeasured rows explained."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from rsr_bench import store
from rsr_bench.report import paper
from rsr_bench.cli import cli


def make_store(root: Path) -> Path:
    cells = {
        ("bicubic.x4", "NTIRE_syn"): {"a": {"psnr": 25.0, "ssim": 0.66, "lpips": 0.60}, "b": {"psnr": 26.0, "ssim": 0.68, "lpips": 0.62}},
        ("bicubic.x4", "AIM_syn"): {"a": {"psnr": 22.0, "ssim": 0.61, "lpips": 0.70}},
        ("impressionism.df2k", "NTIRE_syn"): {"a": {"psnr": 24.9, "ssim": 0.65, "lpips": 0.22}},
        ("bicubic.x4", "demo_noise"): {"a": {"psnr": 30.0, "ssim": 0.8, "lpips": 0.1}},
    }
    for (m, d), images in cells.items():
        store.write_manifest(root, m, d, {"method": {"name": m, "fingerprint": "f"}, "dataset": {"name": d, "version": "1"}})
        for img, metrics in images.items():
            store.write_record(root, m, d, {"image": img, "metrics": metrics})
    store.update_skipped(root, {("impressionism.df2k", "AIM_syn"): "weights not available: run rsr-bench fetch"}, set())
    return root


def run(*args: str) -> str:
    res = CliRunner().invoke(cli, ["paper", *map(str, args)])
    assert res.exit_code == 0, res.output
    return res.output


def test_published_values_match_the_paper() -> None:
    pub = paper.load_published()
    t2, t1 = pub.tables["table2"], pub.tables["table1"]
    assert len(t2.rows) == 9 and len(t1.rows) == 12
    rsr = next(r for r in t2.rows if r.id == "rsr")
    assert rsr.values["lpips"] == {"NTIRE_syn": 0.23, "AIM_syn": 0.37, "avg": 0.30}
    assert t1.rows[0].values == rsr.values  # the released configuration is Table 1's first row
    assert "Generalized Real-World Super-Resolution" in pub.citation()
    for r in [*t2.rows, *t1.rows]:  # the paper's avg column is the mean of the two datasets (to rounding)
        for m, v in r.values.items():
            assert abs((v["NTIRE_syn"] + v["AIM_syn"]) / 2 - v["avg"]) <= 0.0051, (r.id, m)
    unmeasurable = {r.id for r in t2.rows if r.method is None}
    assert unmeasurable == {"impressionism-aim", "esrganfs-ntire"}


def test_table2_markdown_published_measured_and_reasons(tmp_path: Path) -> None:
    out = run("table2", "--store", make_store(tmp_path / "s"))
    lines = out.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("| Bicubic"))
    assert "| paper | 25.51 | 22.35 | 23.93 |" in lines[i]
    assert "measured (bicubic.x4) | 25.500 | 22.000 | 23.750 |" in lines[i + 1]
    assert "| Δ | -0.010 | -0.350 | -0.180 |" in lines[i + 2]
    j = next(k for k, line in enumerate(lines) if "| Impressionism | NTIRE\\_syn |" in line)
    assert "24.900 | n/a | n/a" in lines[j + 1] and "+0.080" in lines[j + 2]
    # the data-only skip of one cell is listed per dataset, naming the row (Markdown-escaped like the report's)
    assert "AIM\\_syn (AIM columns of Impressionism (NTIRE\\_syn)): skipped: weights not available" in out
    assert "Impressionism (AIM\\_syn): no public Impressionism model trained on AIM\\_syn" in out
    assert "ESRGAN-FS (NTIRE\\_syn): no ESRGAN-FS model for NTIRE 2020 was released" in out
    assert "rsr.official" in out and "Not measured" in out and "Castillo" in out


def test_table2_substitute_marks_not_comparable(tmp_path: Path) -> None:
    out = run("table2", "--store", make_store(tmp_path / "s"), "--substitute", "NTIRE_syn=demo_noise")
    assert "PSNR↑ NTIRE\\*" in out and "NTIRE\\_syn measured on demo\\_noise instead" in out and "NOT comparable" in out
    assert "measured (bicubic.x4) | 30.000 | 22.000 | 26.000 |" in out


def test_table1_rows_from_training_runs(tmp_path: Path) -> None:
    root = make_store(tmp_path / "s")
    runs = tmp_path / "runs.yaml"
    runs.write_text("eps10-it2-n1.5-l1p: bicubic.x4\n")
    out = run("table1", "--store", root, "--runs", runs, "--row", "eps12-it2-n1.5-l1p=impressionism.df2k")
    assert "| 10/255 | 2 | 1.5 | L1+P | paper | 23.16 | 21.84 | 22.50 |" in out
    assert "measured (bicubic.x4) | 25.500 | 22.000 | 23.750 |" in out
    assert "measured (impressionism.df2k) | 24.900 | n/a | n/a" in out
    assert "eps=18/255, iters=2, noise=1.5, loss=L1+P: no training run given" in out
    res = CliRunner().invoke(cli, ["paper", "table1", "--store", str(root), "--row", "nope=x"])
    assert res.exit_code == 2 and "unknown table1 row id" in res.output


def test_latex_and_html_formats(tmp_path: Path) -> None:
    root = make_store(tmp_path / "s")
    out_dir = tmp_path / "tables"
    run("table2", "--store", root, "--format", "all", "-o", out_dir)
    tex = (out_dir / "table2.tex").read_text()
    assert r"\begin{tabular}" in tex and r"\multicolumn{3}{c}{PSNR $\uparrow$}" in tex
    assert "25.51 & 22.35 & 23.93" in tex and "25.500 & 22.000 & 23.750" in tex
    assert r"ESRGAN-FS (NTIRE\_syn): no ESRGAN-FS model" in tex
    body = tex[tex.index(r"\midrule"):tex.index(r"\bottomrule")]
    rows = [line for line in body.splitlines() if line.endswith(r"\\")]
    assert rows and all(line.count("&") == 3 + 9 - 1 for line in rows)  # 3 lead + 9 value columns
    assert r"\end{table*}" in tex
    html_text = (out_dir / "table2.html").read_text()
    ET.fromstring(html_text.replace("<br>", "<br/>"))  # well-formed fragment
    assert "<td" in html_text and "25.51" in html_text and "25.500" in html_text and "Not measured" in html_text
    md = (out_dir / "table2.md").read_text()
    assert md.startswith("**Table 2**")


def test_build_table_from_dataframe_without_store() -> None:
    pub = paper.load_published()
    summary = pd.DataFrame([("rsr.official", d, m, v, 100) for d, m, v in [
        ("NTIRE_syn", "psnr", 24.30), ("AIM_syn", "psnr", 22.00), ("NTIRE_syn", "ssim", 0.65),
        ("AIM_syn", "ssim", 0.60), ("NTIRE_syn", "lpips", 0.23), ("AIM_syn", "lpips", 0.37)]],
        columns=["method", "dataset", "metric", "mean", "n"])
    res = paper.build_table(pub, "table2", summary)
    rsr = next(r for r in res.rows if r.row.id == "rsr")
    assert rsr.reasons == {}
    assert rsr.cells["psnr"]["avg"].measured == pytest.approx(23.15)
    assert rsr.cells["psnr"]["NTIRE_syn"].diff == pytest.approx(-0.01)
    bic = next(r for r in res.rows if r.row.id == "bicubic")
    assert set(bic.reasons) == {"NTIRE_syn", "AIM_syn"}
    assert all("not in store" in why and "--methods bicubic.x4" in why for why in bic.reasons.values())


def test_weights_missing_explains_the_whole_row(tmp_path: Path) -> None:
    root = make_store(tmp_path / "s")
    store.update_skipped(root, {("rsr.official", "NTIRE_syn"): "dataset missing: LR folder not found",
                                ("rsr.official", "demo_noise"): "official weights for rsr.official cannot be downloaded"}, set())
    out = run("table2", "--store", root)
    assert "RSR (DIV2K): weights not available: official weights for rsr.official cannot be downloaded" in out
    assert "NTIRE\\_syn (NTIRE columns of" in out and "not on disk: LR folder not found" in out


def test_table1_runs_file_matches_the_ablation_grid() -> None:
    """Every Table 1 row has a run in the shipped mapping, named as the training grid names its cards."""
    import yaml

    from rsr_bench.files import project_root

    runs = yaml.safe_load((project_root() / "reports/paper/table1_runs.yaml").read_text())
    pub = paper.load_published()
    assert set(runs) == {r.id for r in pub.tables["table1"].rows}
    from rsr_bench.train.ablation import expand, load_grid

    rows = expand(load_grid(project_root() / "configs/train/ablation_table1.yaml"))
    made = {f"{cfg['card']['family']}.{cfg['card']['tag']}" for _, cfg in rows}
    assert set(runs.values()) == made
    res = paper.build_table(pub, "table1", pd.DataFrame(columns=["method", "dataset", "metric", "mean", "n"]),
                            row_methods=runs)
    assert [r.method for r in res.rows] == list(runs.values())


def test_out_option_and_its_old_spellings(tmp_path: Path) -> None:
    root = make_store(tmp_path / "s")
    for option in ("--out", "-o", "--output"):  # --output: the old spelling, a hidden alias
        path = tmp_path / f"table{option}.md"
        run("table2", "--store", root, option, path)
        assert path.read_text(encoding="utf-8").startswith("**Table 2**")
    res = CliRunner().invoke(cli, ["paper", "table2", "--store", str(root), "--out", "a.md", "--output", "b.md"])
    assert res.exit_code == 2 and "disagree" in res.output


def test_missing_store_and_broken_cards_are_noted_on_stderr(tmp_path: Path) -> None:
    """The table is still printed; the notes say why it holds published values only."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: [unclosed\n")
    res = CliRunner().invoke(cli, ["paper", "table2", "--store", str(tmp_path / "nope"), "--method-card", str(bad)])
    assert res.exit_code == 0, res.output
    assert f"store {tmp_path / 'nope'} does not exist; showing published values only" in res.output
    assert "method registry unavailable" in res.output and "bad.yaml" in res.output
