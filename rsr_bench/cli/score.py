"""`rsr-bench score`: score images or folders directly, with the declared metric conventions."""

from __future__ import annotations

import click


@click.command("score")
@click.argument("dist", type=click.Path(exists=True))
@click.option("--ref", type=click.Path(exists=True), default=None,
              help="Reference image or folder (paired with DIST by file stem); needed for FR metrics.")
@click.option("--metrics", default="default", show_default=True,
              help="Comma-separated metric names or globs, 'default' or 'all'.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Also write rows image,metric,value to this file.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--digits", type=click.IntRange(1, 12), default=4, show_default=True)
def score_command(dist: str, ref: str | None, metrics: str, csv_path: str | None, device: str, digits: int) -> None:
    """Score DIST (an image or a folder) and print per-image values and means (exit 1 if a metric failed)."""
    from ..metrics.score import score_images
    from ..report.terminal import format_scores, write_csv
    from ..runner import resolve_device

    result = score_images(dist, ref, metrics, device=resolve_device(device), progress=True)
    click.echo(format_scores(result, digits=digits))
    if csv_path:
        write_csv(result, csv_path)
        click.echo(f"\nwrote {csv_path}", err=True)
    if result.errors():
        raise SystemExit(1)
