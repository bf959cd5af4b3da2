"""``rsr-bench train CONFIG.yaml [KEY=VALUE ...]``: RSR robust training (or the ESRGAN baseline)."""

from __future__ import annotations

import click


@click.command("train", context_settings={"ignore_unknown_options": False})
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--ablation", is_flag=True, help="CONFIG is an ablation grid file: run one training per row.")
@click.option("--row", "rows", multiple=True, help="With --ablation: run only this row (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the effective config (or the ablation rows) and exit.")
@click.option("--prepare-subimages", type=click.Path(file_okay=False), default=None,
              help="Write data.hr_dir as 480 px HR sub-images plus their MATLAB-bicubic LR into this folder, then exit.")
def train_command(config: str, overrides: tuple[str, ...], ablation: bool, rows: tuple[str, ...], dry_run: bool,
                  prepare_subimages: str | None) -> None:
    """Train RSR (PGD robust ESRGAN) with the official recipe, overridable by KEY=VALUE.

    \b
    Examples:
      rsr-bench train configs/train/rsr_official.yaml data.hr_dir=DIV2K/DIV2K_train_HR
      rsr-bench train configs/train/rsr_official.yaml attack.eps=12/255 train.lr=2e-4
      torchrun --nproc_per_node 4 -m rsr_bench.train configs/train/rsr_official.yaml
      rsr-bench train --ablation configs/train/ablation_table1.yaml --row base
    """
    from ..train import config as C

    if ablation:
        from ..train.ablation import expand, load_grid, run_ablation

        if dry_run:
            for name, cfg in expand(load_grid(config), list(overrides)):
                changed = {k: v for k, v in cfg["attack"].items()}
                click.echo(f"{name:24s} out={cfg['out']}  attack={changed}")
            return
        for out in run_ablation(config, list(overrides), list(rows)):
            click.echo(str(out))
        return
    cfg = C.load_config(config, overrides)
    if prepare_subimages:
        from ..train.data import prepare_subimages as prep

        sub = cfg["data"]["subimages"] or {"size": 480, "step": 240, "thresh": 0}
        hr, lr = prep(cfg["data"]["hr_dir"], prepare_subimages, scale=cfg["scale"], size=sub["size"], step=sub["step"],
                      thresh=sub.get("thresh", 0))
        click.echo(f"wrote {hr} and {lr}; train with data.hr_dir={hr} data.lr_dir={lr} data.subimages=null")
        return
    if dry_run:
        click.echo(C.dump(cfg))
        return
    from ..train.trainer import train

    out = train(cfg)
    click.echo(str(out))
