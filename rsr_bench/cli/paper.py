"""``rsr-bench paper table1|table2``: the paper's tables beside re-measured values.

Options follow the naming rule: ``--store`` is the results store read (``--from-store`` an
alias), ``--out`` what is written (a file for one format, a folder with ``--format all``;
``--output`` is the old spelling, kept hidden).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .options import merge_alias


def _pairs(items: tuple[str, ...], option: str) -> dict[str, str]:
    from ..errors import ConfigError

    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise ConfigError(f"{option} {item!r}: expected KEY=VALUE")
        out[k.strip()] = v.strip()
    return out


def _common(f):
    f = click.option("--published", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="Published values (default reports/paper/published.yaml).")(f)
    f = click.option("--substitute", multiple=True, metavar="PAPER_SET=DATASET",
                     help="Measure a paper dataset on another one, e.g. NTIRE_syn=demo_noise (marked as not comparable).")(f)
    f = click.option("--output", "output", type=click.Path(path_type=Path), default=None, hidden=True)(f)
    f = click.option("--out", "-o", "out", type=click.Path(path_type=Path), default=None,
                     help="Write to this file (one format) or folder (--format all). Default: print.")(f)
    f = click.option("--format", "fmt", type=click.Choice(["markdown", "latex", "html", "all"]), default="markdown",
                     show_default=True)(f)
    f = click.option("--store", "--from-store", "store", type=click.Path(path_type=Path), default=None,
                     help="Results store [env RSR_BENCH_HOME, default ./rsr-bench-results].")(f)
    f = click.option("--method-card", "--cards", "method_cards", multiple=True, type=click.Path(exists=True, path_type=Path),
                     help="Extra method cards (e.g. your Table 1 training runs).")(f)
    f = click.option("--datasets-file", "datasets_files", multiple=True,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path))(f)
    return f


@click.group("paper")
def paper_command() -> None:
    """Regenerate the RSR paper's tables with published and measured values side by side."""


def _emit(name: str, row_methods: dict[str, str], options: dict[str, Any], trained: bool = False) -> None:
    """Build the table from the store, then print it or write it where ``--out`` says."""
    from ..report import paper

    res = paper.table_from_store(name, options["store"], published=options["published"], row_methods=row_methods,
                                 substitutes=_pairs(options["substitute"], "--substitute"),
                                 method_cards=options["method_cards"], datasets_files=options["datasets_files"],
                                 trained=trained)
    for note in res.notes:
        click.echo(note, err=True)
    out = merge_alias(options["out"], options["output"], "--out", "--output")
    if options["fmt"] != "all" and out is None:
        click.echo(paper.render(res, options["fmt"]), nl=False)
    for path in paper.write_tables(res, options["fmt"], out) if options["fmt"] == "all" or out else ():
        click.echo(f"wrote {path}")
    measured = sum(r.measured_any for r in res.rows)
    click.echo(f"{name}: {measured}/{len(res.rows)} row(s) with measurements from {res.store}", err=True)


@paper_command.command("table2")
@_common
@click.option("--trained/--no-trained", default=True, show_default=True,
              help="Add a row per model trained here (a --method-card written by rsr-bench train, or such a "
                   "method's results in --store), labelled from its card, beside the published rows.")
def table2(trained: bool, **options: Any) -> None:
    """Table 2: methods trained on one domain, tested on NTIRE_syn and AIM_syn.

    \b
    rsr-bench run --methods bicubic.x4,impressionism.df2k --datasets NTIRE_syn,AIM_syn --metrics psnr,ssim,lpips
    rsr-bench paper table2 --format all --out reports/paper/
    rsr-bench paper table2 --store runs/eval_store --method-card runs/small_cpu_rsr/method_card.yaml \\
        --substitute NTIRE_syn=demo_noise --substitute AIM_syn=demo_jpeg
    """
    _emit("table2", {}, options, trained=trained)


@paper_command.command("table1")
@_common
@click.option("--row", "rows", multiple=True, metavar="ROW_ID=METHOD",
              help="The method (a training run registered by a card) measuring an ablation row, e.g. eps10-it2-n1.5-l1p=rsr.eps10.")
@click.option("--runs", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="YAML mapping ROW_ID: METHOD for all your ablation runs.")
def table1(rows: tuple[str, ...], runs: Path | None, **options: Any) -> None:
    """Table 1: the RSR training ablation (eps, PGD iterations, noise structure, attack loss).

    Row ids are listed in reports/paper/published.yaml (e.g. eps14-it2-n1.5-l1p is the released
    RSR configuration, measured by rsr.official by default).
    """
    from ..files import read_yaml_mapping

    mapping = {str(k): str(v) for k, v in (read_yaml_mapping(runs, what="--runs") if runs else {}).items()}
    mapping.update(_pairs(rows, "--row"))
    _emit("table1", mapping, options)
