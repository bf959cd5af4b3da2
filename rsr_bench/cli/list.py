"""`rsr-bench list methods|datasets|metrics`: what is registered, and whether it can run here."""

from __future__ import annotations

import click

from .options import data_root_option, datasets_file_option, method_card_option


@click.command("list")
@click.argument("what", type=click.Choice(["methods", "datasets", "metrics"]))
@datasets_file_option
@data_root_option
@method_card_option
def list_command(what, datasets_files, data_root, method_cards) -> None:
    """List METHODS, DATASETS or METRICS with availability and reasons."""
    from .. import api

    if what == "metrics":
        for m in api.list_metrics(records=True):
            click.echo(f"{m.name:12s} {m.kind}  {'↑' if m.higher_is_better else '↓'}  {m.conventions}")
        return
    if what == "methods":
        table = api.list_methods(method_cards, records=True)
    else:
        table = api.list_datasets(datasets_files, data_root, records=True)
    for row in table:
        if what == "methods":
            head = f"{row.name:32s} x{row.scale}  trained_on={','.join(row.trained_on) or '-':22s}"
        else:
            head = f"{row.name:14s} {row.kind:9s} x{row.scale} {'paired' if row.has_gt else 'no GT':7s}"
        label = row.status if what == "datasets" else "ready" if row.available else "unavailable"
        status = click.style(label, fg="green" if row.available else "yellow")
        notes = getattr(row, "notes", "")
        click.echo(f"{head} {status}" + (f"  {row.reason}" if row.reason else "") + (f"  note: {notes}" if notes else ""))
