"""`rsr-bench report` (minimal terminal version; the HTML report replaces this)."""

from __future__ import annotations

import click

from .options import store_option


@click.command("report")
@store_option
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None, help="Write long rows method,dataset,metric,mean,std,n.")
def report_command(out, csv_path) -> None:
    """Print the cross-dataset table from the store (never runs a model)."""
    from ..paths import store_root
    from ..store import load_results, load_skipped
    from ..summary import aggregate, format_table

    root = store_root(out)
    summary = aggregate(load_results(root))
    click.echo(format_table(summary, skipped=load_skipped(root)))
    if csv_path:
        summary.to_csv(csv_path, index=False)
