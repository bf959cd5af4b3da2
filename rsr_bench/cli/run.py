"""`rsr-bench run`: evaluate methods x datasets x metrics into the results store."""

from __future__ import annotations

import sys

import click

from .options import data_root_option, datasets_file_option, merge_alias, method_card_option, store_option


def skipped_lines(skipped: dict[tuple[str, str], str]) -> list[str]:
    """One line per method when its reason is the same on every dataset, else one per cell."""
    by_method: dict[str, dict[str, str]] = {}
    for (m, d), reason in sorted(skipped.items()):
        by_method.setdefault(m, {})[d] = reason
    lines = []
    for m, cells in by_method.items():
        reasons = set(cells.values())
        if len(reasons) == 1 and len(cells) > 1:
            lines.append(f"{m} (all {len(cells)} datasets): {reasons.pop()}")
        else:
            lines += [f"{m} on {d}: {r}" for d, r in cells.items()]
    return lines


def _echo_summary(summary) -> None:  # noqa: ANN001 - runner.RunSummary, imported lazily
    """The run's table, then what was skipped and why, and every per-image failure."""
    from ..report.terminal import format_table

    click.echo()
    click.echo(format_table(summary.table(), methods=summary.methods, datasets=summary.datasets,
                            metrics=summary.metrics, skipped=summary.skipped))
    if summary.skipped_datasets:
        click.echo("\ndatasets not on disk (skipped):")
        for name, reason in summary.skipped_datasets.items():
            click.echo(f"  {name}: {reason}")
    method_skips = {k: v for k, v in summary.skipped.items() if k[1] not in summary.skipped_datasets}
    if method_skips:
        click.echo("\nmethods skipped:")
        for line in skipped_lines(method_skips):
            click.echo(f"  {line}")
    if summary.failures:
        click.secho(f"\n{len(summary.failures)} per-image failure(s):", fg="red")
        for f in summary.failures:
            click.echo(f"  {f['method']} | {f['dataset']} | {f['image']} [{f['stage']}]: {f['message']}")
    click.echo(f"\nresults stored in {summary.store}")


@click.command("run")
@click.option("--methods", default="all", show_default=True, help="Comma-separated names or globs (impressionism.*), or 'all'.")
@click.option("--datasets", default="all", show_default=True, help="Comma-separated names or globs, or 'all' (every available dataset).")
@click.option("--metrics", default="default", show_default=True, help="Comma-separated metric names, 'default' or 'all'.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N images of each dataset.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--keep-going/--fail-fast", default=True, show_default=True, help="Record per-image errors and go on, or stop at the first.")
@click.option("--force", is_flag=True, help="Recompute results already in the store.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Local checkpoint file for the (single) selected learned method.")
@click.option("--tile", type=click.IntRange(min=0), default=None, help="Tile size in LR pixels for RRDBNet methods (0 = whole image).")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None, help="Inference precision for RRDBNet methods.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@store_option(help="Results store to evaluate into [env RSR_BENCH_HOME, default ./rsr-bench-results].")
@datasets_file_option
@data_root_option
@method_card_option
def run_command(methods, datasets, metrics, limit, device, keep_going, force, checkpoint, tile, precision, quiet,
                store, store_alias, datasets_files, data_root, method_cards) -> None:
    """Evaluate METHODS on DATASETS; resumable (re-running computes only what is missing)."""
    from ..runner import RunOptions, run

    options = RunOptions(methods=methods, datasets=datasets, metrics=metrics, store=merge_alias(store, store_alias),
                         limit=limit, device=device, method_cards=method_cards, datasets_files=datasets_files,
                         data_root=data_root, keep_going=keep_going, force=force, progress=not quiet,
                         checkpoint=checkpoint, tile=tile, precision=precision)
    summary = run(options, log=lambda msg: click.secho(msg, fg="yellow", err=True))
    _echo_summary(summary)
    sys.exit(summary.exit_code)
