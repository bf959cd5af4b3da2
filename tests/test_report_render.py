"""The rendered report folder: table cells in the HTML, escaping, offline assets, grids, CLI.

Expected values are recomputed here from the synthetic store's per-image values.
"""

from __future__ import annotations

import re
from collections import defaultdict
from html.parser import HTMLParser
from urllib.parse import unquote

import numpy as np
import pytest
from click.testing import CliRunner

from rsr_bench.cli import cli
from rsr_bench.report import build_report
from synthetic_store import build_synthetic_store

EVIL = '<img src=x onerror=alert(1)>"\'&'
DECIMALS = {"psnr": 2, "ssim": 3, "lpips": 3, "niqe": 2}
HIGHER = {"psnr": True, "ssim": True, "lpips": False, "niqe": False}
IN_DOMAIN = {("impressionism.ntire", "NTIRE_syn"), ("impressionism.aim", "AIM_syn"), ("esrgan_fs.dped", "DPED_rw")}


class Page(HTMLParser):
    """Collects table cells (by row method and data-col), asset references and grid frames."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], dict] = {}
        self.refs: list[str] = []
        self.frames: list[str] = []
        self.scripts_src: list[str] = []
        self._row: str | None = None
        self._cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-method" in a:
            self._row = a["data-method"]
        if tag == "td" and "data-col" in a and self._row:
            self._cell = {"cls": set((a.get("class") or "").split()), "title": a.get("title", ""), "text": ""}
            self.cells[(self._row, a["data-col"])] = self._cell
        if tag in ("img", "script", "link") and (a.get("src") or a.get("href")):
            self.refs.append(a.get("src") or a.get("href"))
        if tag == "a" and a.get("href") and not a["href"].startswith("#"):
            self.refs.append(a["href"])
        if tag == "div" and "frame" in (a.get("class") or "").split():
            self.frames.append(a["class"])

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None and not self._cell.get("done"):
            self._cell["text"] += data
            self._cell["done"] = True  # the first text node is the value; marks and std follow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    synth = build_synthetic_store(store, n_images=5, provenance_extra={"note": EVIL})
    index = build_report(store, tmp_path_factory.mktemp("out") / "rep")
    html = index.read_text(encoding="utf-8")
    page = Page()
    page.feed(html)
    return synth, index, html, page


def test_report_folder_contents(built):
    _, index, _, _ = built
    names = {p.name for p in index.parent.iterdir()}
    assert {"index.html", "assets", "results_long.csv", "table.csv", "table.md", "table.tex"} <= names


def test_html_table_cells_highlights_and_marks(built):
    synth, _, _, page = built
    per = defaultdict(list)
    for (m, d, _i, x), v in synth.values.items():
        per[(m, d, x)].append(v)
    means = {k: float(np.mean(v)) for k, v in per.items()}
    for x, decimals in DECIMALS.items():
        for d in synth.images:
            col = {m: means.get((m, d, x)) for m in {k[0] for k in means} | {"esrgan.div2k"}}
            shown = {m: round(v, decimals) for m, v in col.items() if v is not None}
            order = sorted(set(shown.values()), reverse=HIGHER[x])
            for m, v in col.items():
                cell = page.cells[(m, f"{x}|{d}")]
                if v is None:
                    assert cell["text"] == "—" and "na" in cell["cls"] and cell["title"]
                    continue
                assert cell["text"] == f"{v:.{decimals}f}"
                assert ("best" in cell["cls"]) == (shown[m] == order[0])
                assert ("second" in cell["cls"]) == (len(order) > 1 and shown[m] == order[1])
                assert ("in" in cell["cls"]) == ((m, d) in IN_DOMAIN)
                assert f"n = {len(per[(m, d, x)])} images" in cell["title"]
    assert "not run: weights not available" in page.cells[("esrgan.div2k", "niqe|DPED_rw")]["title"]
    assert "no ground truth" in page.cells[("rsr.div2k", "psnr|DPED_rw")]["title"]
    assert "1 image(s) not in this mean because of errors" in page.cells[("impressionism.ntire", "psnr|AIM_syn")]["title"]


def test_user_data_is_escaped(built):
    _, _, html, _ = built
    assert EVIL not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "RuntimeError: &lt;synthetic&gt; failure &amp; co" in html  # the failed image's message


def test_offline_and_every_reference_exists(built):
    _, index, html, page = built
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no network references"
    assert "@import" not in html
    assert page.refs
    for ref in page.refs:
        assert not ref.startswith(("/", "http")), ref
        assert (index.parent / unquote(ref)).is_file(), ref
    total = sum(p.stat().st_size for p in (index.parent / "assets").rglob("*") if p.is_file())
    assert total < 5_000_000


def test_grids_frames_and_panels(built):
    _, _, html, page = built
    # one automatic grid per dataset, each: input, 6 methods (one skipped on DPED_rw), GT on paired sets
    assert html.count('class="grid"') == 3
    kinds = [set(f.split()) - {"frame"} for f in page.frames]
    assert sum(k == {"gt"} for k in kinds) == 2 and sum(k == {"input"} for k in kinds) == 3
    assert sum(k == {"highlight"} for k in kinds) == 3  # RSR, green
    assert {"in"} in kinds and {"cross"} in kinds
    assert "not run: weights not available" in html  # the skipped cell's panel says why
    assert html.count('class="zoom"') >= 3 * 6


def test_footnotes(built):
    _, _, html, _ = built
    for needle in ("psnr (FR, higher is better)", "niqe (NR, lower is better)", "synthetic test store",
                   "cpu (synthetic)", "rsr_bench 0.1.0", "2026-11-26T08:00:00Z"):
        assert needle in html, needle


def test_requested_images_and_crop(tmp_path, built):
    synth, _, _, _ = built
    out = build_report(synth.root, tmp_path / "r", formats="html", grid_images=["NTIRE_syn/img002", "img003"],
                       crop=(4, 4, 16, 16), plots=False)
    html = out.read_text(encoding="utf-8")
    assert html.count('class="grid"') == 1 + 3
    assert "crop x=4, y=4, 16×16 px" in html


def test_cli_prints_table_and_writes_report(built, tmp_path):
    synth, _, _, _ = built
    csv_path = tmp_path / "long.csv"
    res = CliRunner().invoke(cli, ["report", "--store", str(synth.root), "--out", str(tmp_path / "rep"),
                                   "--format", "md,csv", "--csv", str(csv_path), "--methods", "rsr.*,bicubic"])
    assert res.exit_code == 0, res.output
    assert "rsr.div2k" in res.output and "impressionism" not in res.output
    assert csv_path.read_text().startswith("method,dataset,metric,mean,std,n")
    assert (tmp_path / "rep" / "table.md").is_file() and not (tmp_path / "rep" / "index.html").exists()


def test_cli_refuses_store_as_out(built):
    synth, _, _, _ = built
    res = CliRunner().invoke(cli, ["report", "--store", str(synth.root), "--out", str(synth.root)])
    assert res.exit_code == 2 and "--store" in res.output


def test_refuses_foreign_non_empty_out(built, tmp_path):
    synth, _, _, _ = built
    (tmp_path / "mine.txt").write_text("precious")
    from rsr_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="not an rsr-bench report"):
        build_report(synth.root, tmp_path, formats="md")
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_method_skipped_everywhere_is_listed_not_a_row(tmp_path):
    from synthetic_store import DEFAULT_DATASETS

    skipped = {("realesrgan.x4plus", d): "weights not available: run `rsr-bench fetch realesrgan`"
               for d in DEFAULT_DATASETS}
    synth = build_synthetic_store(tmp_path / "s", n_images=2, skipped=skipped)
    html = build_report(synth.root, tmp_path / "r", formats="html,md", plots=False, grids_per_dataset=0) \
        .read_text(encoding="utf-8")
    assert 'data-method="realesrgan.x4plus"' not in html
    assert "No results, so no row" in html and "realesrgan.x4plus: weights not available" in html
    assert "realesrgan" not in (tmp_path / "r" / "table.md").read_text()


def test_hostile_names_are_escaped_everywhere(tmp_path):
    name = 'Set<marquee>&"x\'%20'
    methods = {"bicubic.default": ("bicubic", "default", (), 0.0), "rsr.<blink>": ("rsr", "<blink>", (name,), 1.0)}
    synth = build_synthetic_store(tmp_path / "s", methods=methods, datasets={name: (True, (), "user")},
                                  n_images=2, skipped={}, failed=set())
    index = build_report(synth.root, tmp_path / "r")
    html = index.read_text(encoding="utf-8")
    assert "<marquee" not in html and "<blink" not in html and "Set&lt;marquee&gt;&amp;" in html
    page = Page()
    page.feed(html)
    for ref in page.refs:
        assert (index.parent / unquote(ref)).is_file(), ref
    assert "Set\\textless{}marquee\\textgreater{}\\&" in (tmp_path / "r" / "table.tex").read_text()
    assert "Set\\<marquee\\>&" in (tmp_path / "r" / "table.md").read_text()


def test_cli_terminal_table_leaves_corrupted_sets_to_the_robustness_section(tmp_path):
    """A robustness sweep adds dozens of name~corruption@severity sets; the terminal shows the
    clean ones and one line pointing at the report's Robustness section."""
    sets = {"NTIRE_syn": (True, (), "synthetic"), "NTIRE_syn~jpeg@3": (True, (), "synthetic"),
            "NTIRE_syn~gaussian_noise@5": (True, (), "synthetic")}
    synth = build_synthetic_store(tmp_path / "store", datasets=sets, n_images=2, skipped={}, failed=set())
    res = CliRunner().invoke(cli, ["report", "--store", str(synth.root), "--no-write"])
    assert res.exit_code == 0, res.output
    assert "NTIRE_syn  (" in res.output and "~jpeg@3  (" not in res.output
    assert "2 corrupted/attacked set(s)" in res.output and "Robustness section" in res.output
