"""``rsr-bench paper table1|table2``: the paper's tables beside re-measured values."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from ..report import paper
from ..errors import ConfigError


def _pairs(items: tuple[str, ...], option: str) -> dict[str, str]:
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
    f = click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
                     help="Write to this file (one format) or folder (--format all). Default: print.")(f)
    f = click.option("--format", "fmt", type=click.Choice(["markdown", "latex", "html", "all"]), default="markdown",
                     show_default=True)(f)
    f = click.option("--store", "--from-store", "store", type=click.Path(path_type=Path), default=None,
                     help="Results store (default --out / RSR_BENCH_HOME / ./rsr-bench-results).")(f)
    f = click.option("--method-card", "--cards", "extra_cards", multiple=True, type=click.Path(exists=True, path_type=Path),
                     help="Extra method cards (e.g. your Table 1 training runs).")(f)
    f = click.option("--datasets-file", "datasets_files", multiple=True,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path))(f)
    return f


@click.group("paper")
def paper_command() -> None:
    """Regenerate the RSR paper's tables with published and measured values side by side."""


def _emit(name: str, store: Path | None, published: Path | None, substitute: tuple[str, ...], output: Path | None,
          fmt: str, row_methods: dict[str, str], extra_cards: tuple[Path, ...], datasets_files: tuple[Path, ...]) -> None:
    from ..files import store_root

    root = store_root(store)
    pub = paper.load_published(published)
    known_methods = known_datasets = None
    try:
        from ..methods.cards import load_method_specs

        known_methods = load_method_specs([str(p) for p in extra_cards])
    except Exception as exc:  # noqa: BLE001 - the table is still useful without the registry
        click.echo(f"note: method registry unavailable ({exc}); reasons will be generic", err=True)
    try:
        from ..datasets import load_datasets

        known_datasets = load_datasets([str(p) for p in datasets_files])
    except Exception as exc:  # noqa: BLE001
        click.echo(f"note: dataset registry unavailable ({exc}); reasons will be generic", err=True)
    if not root.is_dir():
        click.echo(f"note: store {root} does not exist; showing published values only", err=True)
    res = paper.build_from_store(pub, name, root, row_methods=row_methods, substitutes=_pairs(substitute, "--substitute"),
                                 known_methods=known_methods, known_datasets=known_datasets)
    if fmt == "all":
        out_dir = output or Path(".")
        for p in paper.write_all(res, out_dir):
            click.echo(f"wrote {p}")
    elif output:
        from ..files import atomic_write_text

        atomic_write_text(output, paper.render(res, fmt))
        click.echo(f"wrote {output}")
    else:
        click.echo(paper.render(res, fmt), nl=False)
    measured = sum(r.measured_any for r in res.rows)
    click.echo(f"{name}: {measured}/{len(res.rows)} row(s) with measurements from {root}", err=True)


@paper_command.command("table2")
@_common
def table2(store: Path | None, published: Path | None, substitute: tuple[str, ...], output: Path | None, fmt: str,
           extra_cards: tuple[Path, ...], datasets_files: tuple[Path, ...]) -> None:
    """Table 2: methods trained on one domain, tested on NTIRE_syn and AIM_syn.

    \b
    rsr-bench run --methods bicubic.x4,impressionism.df2k --datasets NTIRE_syn,AIM_syn --metrics psnr,ssim,lpips
    rsr-bench paper table2 --format all -o reports/paper/
    """
    _emit("table2", store, published, substitute, output, fmt, {}, extra_cards, datasets_files)


@paper_command.command("table1")
@_common
@click.option("--row", "rows", multiple=True, metavar="ROW_ID=METHOD",
              help="The method (a training run registered by a card) measuring an ablation row, e.g. eps10-it2-n1.5-l1p=rsr.eps10.")
@click.option("--runs", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="YAML mapping ROW_ID: METHOD for all your ablation runs.")
def table1(store: Path | None, published: Path | None, substitute: tuple[str, ...], output: Path | None, fmt: str,
           extra_cards: tuple[Path, ...], datasets_files: tuple[Path, ...], rows: tuple[str, ...], runs: Path | None) -> None:
    """Table 1: the RSR training ablation (eps, PGD iterations, noise structure, attack loss).

    Row ids are listed in reports/paper/published.yaml (e.g. eps14-it2-n1.5-l1p is the released
    RSR configuration, measured by rsr.official by default).
    """
    mapping: dict[str, str] = {}
    if runs:
        data = yaml.safe_load(runs.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"--runs {runs}: expected a mapping ROW_ID: METHOD")
        mapping.update({str(k): str(v) for k, v in data.items()})
    mapping.update(_pairs(rows, "--row"))
    _emit("table1", store, published, substitute, output, fmt, mapping, extra_cards, datasets_files)
