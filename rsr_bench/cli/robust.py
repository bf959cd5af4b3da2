"""`rsr-bench robust`: corruption sweeps and adversarial attacks per method, into the results store."""

from __future__ import annotations

import sys

import click

from .options import data_root_option, datasets_file_option, merge_alias, method_card_option, store_option


@click.command("robust")
@click.option("--methods", default="all", show_default=True, help="Comma-separated names or globs, or 'all' (bicubic.x4, the mCE reference, is always added).")
@click.option("--datasets", default="demo_clean", show_default=True, help="Clean paired datasets to corrupt and attack.")
@click.option("--corruptions", default=None, help="Comma-separated families or 'all' / 'none' [default: all, or none with --attack].")
@click.option("--severities", default="1-5", show_default=True, help="Severities 1-5: a range (1-5) or a list (1,3,5).")
@click.option("--attack", "attacks", default="none", show_default=True, help="pgd (white-box), transfer, pgd,transfer or none.")
@click.option("--eps", default="1/255,2/255,4/255,8/255", show_default=True, help="L-inf budgets in (0, 1]: 4/255, 0.0157 or eps4.")
@click.option("--attack-loss", type=click.Choice(["l1", "lpips"]), default="l1", show_default=True, help="Distance to the clean HR the attack ascends.")
@click.option("--attack-iters", type=click.IntRange(min=1), default=10, show_default=True, help="PGD iterations.")
@click.option("--attack-step", type=float, default=None, help="PGD step in 1/255 [default: 2.5 eps / iterations].")
@click.option("--surrogate", default="realesrgan.x4plus", show_default=True, help="Method the transfer attack is crafted on.")
@click.option("--metrics", default="psnr,ssim,lpips", show_default=True, help="Comma-separated metrics (at least one full-reference).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N images of each dataset (also generated only for those).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--force", is_flag=True, help="Recompute results already in the store (generated inputs are reused).")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None, help="Local checkpoint for the (single) selected learned method.")
@click.option("--tile", type=click.IntRange(min=0), default=None, help="Tile size in LR pixels for RRDBNet inference (0 = whole image).")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None, help="Inference precision for RRDBNet methods (attacks run in fp32).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@store_option(help="Results store to evaluate into [env RSR_BENCH_HOME, default ./rsr-bench-results].")
@datasets_file_option
@data_root_option
@method_card_option
def robust_command(methods, datasets, corruptions, severities, attacks, eps, attack_loss, attack_iters, attack_step,
                   surrogate, metrics, limit, device, force, checkpoint, tile, precision, quiet, store, store_alias,
                   datasets_files, data_root, method_cards) -> None:
    """Evaluate METHODS on corrupted and attacked copies of paired DATASETS (resumable; inputs made once).

    Results are ordinary cells (dataset names like demo_clean~jpeg@3, demo_clean~pgd@eps4; attack
    options that differ from the defaults are part of the name, e.g. demo_clean~pgd-i3@eps4), so
    `rsr-bench report` shows them in its Robustness section and `check` can pin them.
    """
    from ..report.robust import format_summary
    from ..robust.sweep import RobustOptions, run_robust

    options = RobustOptions(
        methods=methods, datasets=datasets, corruptions=corruptions, severities=severities, attacks=attacks, eps=eps,
        attack_loss=attack_loss, attack_iters=attack_iters, attack_step=attack_step, surrogate=surrogate,
        metrics=metrics, store=merge_alias(store, store_alias), limit=limit, device=device, method_cards=method_cards,
        datasets_files=datasets_files, data_root=data_root, force=force, progress=not quiet, checkpoint=checkpoint,
        tile=tile, precision=precision)
    summary = run_robust(options, log=lambda msg: click.secho(msg, fg="yellow", err=True))
    click.echo(format_summary(summary))
    sys.exit(summary.exit_code)
