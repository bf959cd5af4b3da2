"""Click options shared by several commands, so they are spelled the same everywhere."""

from __future__ import annotations

import click

datasets_file_option = click.option(
    "--datasets-file", "datasets_files", multiple=True, type=click.Path(dir_okay=False),
    help="Extra datasets YAML file (repeatable); entries override datasets.yaml.",
)
data_root_option = click.option(
    "--data-root", type=click.Path(file_okay=False), default=None,
    help="Root of the official datasets [env RSR_BENCH_DATA, default ./data].",
)
method_card_option = click.option(
    "--method-card", "method_cards", multiple=True, type=click.Path(),
    help="Extra method card file or folder (repeatable) [env RSR_BENCH_METHODS].",
)
store_option = click.option(
    "--out", "out", type=click.Path(file_okay=False), default=None,
    help="Results store [env RSR_BENCH_HOME, default ./rsr-bench-results].",
)
