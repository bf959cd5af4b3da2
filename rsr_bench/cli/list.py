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
    if what == "methods":
        from ..methods.cards import load_method_specs, method_availability

        for spec in load_method_specs(method_cards).values():
            try:
                reason = method_availability(spec)
            except Exception as exc:  # noqa: BLE001 - listing must survive one broken card
                reason = f"{type(exc).__name__}: {exc}"
            status = click.style("ready", fg="green") if reason is None else click.style("unavailable", fg="yellow")
            trained = ",".join(spec.trained_on) or "-"
            click.echo(f"{spec.name:32s} x{spec.scale}  trained_on={trained:22s} {status}" + (f"  {reason}" if reason else ""))
    elif what == "datasets":
        from ..datasets import load_datasets

        for spec in load_datasets(datasets_files, data_root).values():
            reason = spec.missing_reason()
            gt = "paired" if spec.has_gt else "no GT"
            status = click.style("ready", fg="green") if reason is None else click.style("missing", fg="yellow")
            click.echo(f"{spec.name:14s} {spec.kind:9s} x{spec.scale} {gt:7s} {status}" + (f"  {reason}" if reason else ""))
    else:
        from ..metrics import METRICS

        for spec in METRICS.values():
            click.echo(f"{spec.name:12s} {spec.kind}  {spec.arrow}  {spec.conventions()}")
