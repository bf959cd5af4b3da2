"""`rsr-bench run`: evaluate methods x datasets x metrics into the results store."""

from __future__ import annotations

import os
import sys

import click

from ..methods.cards import PRECISION_NAMES
from .options import data_root_option, datasets_file_option, merge_alias, method_card_option, store_option


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
@click.option("--precision", type=click.Choice(PRECISION_NAMES), default="auto", show_default=True,
              help="Inference precision for RRDBNet methods; auto: bf16 on a GPU or a CPU with native bf16 "
                   "(AVX512-BF16/AMX), else fp32.")
@click.option("--compile", "compile_", is_flag=True,
              help="torch.compile the RRDBNet methods (for GPUs: compiles at the first image of each size; on the "
                   "AVX2 CPU measured no faster). Falls back to eager with a warning where it cannot compile.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Predict up to N equal-size images in one forward (keeps a GPU busy on small images).")
@click.option("--shard", metavar="K/N", default=None,
              help="Compute only part K (counted from 0) of N of the work, balanced by image size: one task of a "
                   "batch-scheduler array sharing one --store (under torchrun the ranks split the work themselves).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@store_option(help="Results store to evaluate into [env RSR_BENCH_HOME, default ./rsr-bench-results].")
@datasets_file_option
@data_root_option
@method_card_option
def run_command(methods, datasets, metrics, limit, device, keep_going, force, checkpoint, tile, precision, compile_,
                batch, shard, quiet, store, store_alias, datasets_files, data_root, method_cards) -> None:
    """Evaluate METHODS on DATASETS; resumable (re-running computes only what is missing)."""
    from ..runner import RunOptions, run

    options = RunOptions(methods=methods, datasets=datasets, metrics=metrics, store=merge_alias(store, store_alias),
                         limit=limit, device=device, method_cards=method_cards, datasets_files=datasets_files,
                         data_root=data_root, keep_going=keep_going, force=force, progress=not quiet,
                         checkpoint=checkpoint, tile=tile, precision=precision, compile=compile_, batch=batch,
                         shard=shard)
    summary = run(options, log=lambda msg: click.secho(msg, fg="yellow", err=True))
    from ..report.terminal import format_run_summary

    if summary.rank and os.environ.get("WORLD_SIZE"):  # a torchrun rank other than 0: rank 0 prints the table
        done = sum(c.computed for c in summary.cells), sum(c.reused for c in summary.cells), len(summary.failures)
        click.echo(f"rank {summary.rank} of {summary.world}: {done[0]} image(s) computed, {done[1]} reused, "
                   f"{done[2]} failure(s)")
    else:
        click.echo(format_run_summary(summary))
    sys.exit(summary.exit_code)
