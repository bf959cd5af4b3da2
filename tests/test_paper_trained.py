"""Models trained here beside the paper's rows: ``rsr-bench paper table2`` and the HTML report.

Bugs this module catches (each planted once while writing it): the trained rows are missing
(not found from the card nor from the manifests); a trained row's first line says "paper" (it
would pass for a published value); the label is not printed; adding the rows changes a published
row; ``--no-trained`` still adds them; the report shows no "trained here" marker or no label;
a published method in the report gets the marker.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from rsr_bench import store
from rsr_bench.cli import cli
from rsr_bench.report import paper
from rsr_bench.report.model import TRAINED_HERE, trained_here
from test_train_card import write_tiny_run

LABEL_FACTS = ("rsr (PGD)", "200 iterations", "BSD100 (100 images)", "init impressionism.df2k")


def make_store(root: Path, card: Path | None, paper_field: str = "") -> Path:
    """A published method and a trained one, on both Table 2 sets; the trained one's manifests
    name its card (and carry ``paper_field``, the run-time copy of the card's label)."""
    methods = {"bicubic.x4": {"name": "bicubic.x4", "family": "bicubic", "tag": "x4", "fingerprint": "b"},
               "trained.tiny": {"name": "trained.tiny", "family": "trained", "tag": "tiny", "fingerprint": "t",
                                "trained_on": ["BSD100"], "card": str(card) if card else None, "paper": paper_field}}
    for m, info in methods.items():
        for d, psnr in (("NTIRE_syn", 25.0), ("AIM_syn", 22.0)):
            store.write_manifest(root, m, d, {"method": info, "dataset": {"name": d, "version": "1", "has_gt": True}})
            store.write_record(root, m, d, {"image": "a", "metrics": {"psnr": psnr + (m == "trained.tiny"),
                                                                       "ssim": 0.6, "lpips": 0.4}})
    return root


def table2(*args: str) -> str:
    res = CliRunner().invoke(cli, ["paper", "table2", *map(str, args)])
    assert res.exit_code == 0, res.output
    return res.output


def _published_part(out: str) -> str:
    return out.split("| trained.tiny")[0]


def test_table2_gains_labelled_trained_rows_from_the_card(tmp_path: Path) -> None:
    card = write_tiny_run(tmp_path)
    s = make_store(tmp_path / "s", card)  # manifests without the label: it comes from the card
    out = table2("--store", s, "--method-card", card)
    lines = out.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("| trained.tiny | BSD100 |"))
    assert f"| {TRAINED_HERE} (no published value) |" in lines[i] and "| paper |" not in lines[i]
    assert "measured (trained.tiny) | 26.000 | 23.000 | 24.500 |" in lines[i + 1]
    footer = next(line for line in lines if line.startswith("trained.tiny: trained here"))
    assert all(f in footer for f in LABEL_FACTS) and "not a published checkpoint" in footer
    plain = table2("--store", s, "--no-trained")
    assert "trained.tiny" not in plain
    # the published rows are the same with and without the trained ones
    assert _published_part(out).split("**Not measured")[0].rstrip() == plain.split("**Not measured")[0].rstrip()


def test_table2_finds_trained_rows_from_the_store_alone(tmp_path: Path) -> None:
    card = write_tiny_run(tmp_path)
    label = paper._squash(trained_here(__import__("yaml").safe_load(card.read_text())["paper"]))
    card.unlink()  # the card has gone: the manifests' copy of its label is used
    out = table2("--store", make_store(tmp_path / "s", card, paper_field=label), "--format", "html")
    assert "trained.tiny" in out and f"{TRAINED_HERE} (no published value)" in out
    assert "init impressionism.df2k" in out


def test_build_table_keeps_published_rows_unchanged() -> None:
    pub = paper.load_published()
    rows = paper.trained_rows({"trained.x": "trained here (test): rsr (PGD), 5 iterations"}, {"trained.x": ("BSD100",)})
    assert rows[0].values == {} and rows[0].trained and rows[0].columns == {"trained_on": "BSD100"}
    assert trained_here("Castillo et al., ICCVW 2021") is None
    assert pub.tables["table2"].rows[-1].id == "rsr"  # the published data itself is never extended


def test_report_html_marks_trained_methods_with_the_card_label(tmp_path: Path) -> None:
    card = write_tiny_run(tmp_path)
    s = make_store(tmp_path / "s", card)
    res = CliRunner().invoke(cli, ["report", "--store", str(s), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "r" / "index.html").read_text()
    assert html.count('class="trained-here"') == 1  # bicubic is not marked
    assert 'class="note trained-here-note"><b>trained.tiny</b>' in html
    assert all(f in html for f in LABEL_FACTS) and "a tiny test run" in html
