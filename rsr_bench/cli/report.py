"""`rsr-bench report`: print the cross-dataset table and write the HTML/CSV/Markdown/LaTeX report.

Option naming (as on every command): ``--store`` is the results store (alias ``--run``, as in
"the report of this run"; default ``RSR_BENCH_HOME`` or ./rsr-bench-results) and ``--out`` is
what the command writes, the *report* folder (default reports/<store name>). Passing a store as
``--out`` is detected and answered with a clear error, never written into.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.option("--store", "--run", "store", type=click.Path(file_okay=False), default=None,
              help="Results store to report on [env RSR_BENCH_HOME, default ./rsr-bench-results].")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Report folder (index.html + assets/ + table exports) [default reports/<store name>].")
@click.option("--format", "formats", default="html,csv,md,tex", show_default=True,
              help="Comma-separated: html, csv, md, tex.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Also write long rows method,dataset,metric,mean,std,n (+ n_failed, in_domain) to FILE.")
@click.option("--methods", default=None, help="Comma-separated names or globs (impressionism.*); default: all in the store.")
@click.option("--datasets", default=None, help="Comma-separated names or globs; default: all in the store.")
@click.option("--metrics", default=None, help="Comma-separated names or globs; default: all in the store.")
@click.option("--images", "images", default=None,
              help="Grid images: comma-separated DATASET/IMAGE or IMAGE; default: where the methods disagree most.")
@click.option("--grids-per-dataset", type=click.IntRange(min=0), default=1, show_default=True,
              help="Automatically picked grid images per dataset (0: no grids).")
@click.option("--crop", default=None, metavar="X,Y,W,H", help="Grid crop in SR pixels; default: automatic per grid.")
@click.option("--highlight", default="rsr", show_default=True, help="Method family framed green in the grids.")
@click.option("--title", default=None, help="Report title.")
@click.option("--no-plots", is_flag=True, help="Skip the figures (SVG plots).")
@click.option("--no-write", is_flag=True, help="Only print the table; write no report folder.")
def report_command(store, out, formats, csv_path, methods, datasets, metrics, images, grids_per_dataset, crop,
                   highlight, title, no_plots, no_write) -> None:
    """Print the cross-dataset table and write the report (reads the store only, never runs a model)."""
    from ..errors import ConfigError
    from ..files import store_root
    from ..report.build import build_report
    from ..report.exports import write_long_csv
    from ..report.grids import parse_crop
    from ..report.model import load_report_data
    from ..report.terminal import format_table
    from ..robust.naming import MARK
    from ..store import is_store

    root = store_root(store)
    if not is_store(root):
        raise ConfigError(f"{root} is not a results store (no cells/ or skipped.json); pass --store DIR "
                          "(on `report`, --out is the report folder)")
    if out is not None and is_store(out):
        raise ConfigError(f"--out {out} is a results store; on `report` the store is --store and --out is "
                          "the report folder (e.g. --out reports/NAME)")
    data = load_report_data(root, methods=methods, datasets=datasets, metrics=metrics, highlight=highlight)
    # Corrupted/attacked sets (name~corruption@severity) are many; their tables are the report's
    # Robustness section (and what `rsr-bench robust` prints), so the terminal shows the clean ones.
    derived = [d for d in data.datasets if MARK in d]
    click.echo(format_table(data.stats, methods=list(data.methods), datasets=[d for d in data.datasets if MARK not in d],
                            metrics=list(data.metrics), skipped=data.skipped))
    if derived:
        click.echo(f"{len(derived)} corrupted/attacked set(s) ({derived[0]}, ...): see the report's Robustness section")
    if csv_path:
        click.echo(f"long CSV: {write_long_csv(data, csv_path)}")
    if no_write:
        return
    path = build_report(
        root, Path(out) if out else Path("reports") / root.resolve().name, formats=formats,
        grid_images=[s.strip() for s in images.split(",") if s.strip()] if images else None,
        grids_per_dataset=grids_per_dataset, crop=parse_crop(crop) if crop else None,
        highlight=highlight, title=title, plots=not no_plots, data=data,
    )
    click.echo(f"report: {path}")
