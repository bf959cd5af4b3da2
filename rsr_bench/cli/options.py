"""Click options shared by several commands, so that one option name means one thing everywhere.

The naming rule: ``--store`` is always the results store (read, or evaluated into); ``--out`` is
always what the command writes (the report folder on ``report``, the table file or folder on
``paper``). Old spellings stay as hidden aliases (``run --out``, ``check --out``).
"""

from __future__ import annotations

from typing import Any

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


def store_option(help: str = "Results store [env RSR_BENCH_HOME, default ./rsr-bench-results].", **kwargs: Any):
    """``--store DIR`` plus the hidden ``--out`` alias of commands where ``--out`` used to be the store;
    the command merges the two with :func:`merge_alias`."""

    def decorate(f):
        f = click.option("--out", "store_alias", type=click.Path(file_okay=False), default=None, hidden=True)(f)
        return click.option("--store", "store", type=click.Path(file_okay=False), default=None, help=help, **kwargs)(f)

    return decorate


def merge_alias(value: Any, alias: Any, name: str = "--store", old: str = "--out") -> Any:
    """The option's value, given by its name or its old spelling (both only when they agree)."""
    if alias is not None and value is not None and str(alias) != str(value):
        raise click.UsageError(f"{name} {value} and {old} {alias} disagree; {old} is the old spelling of {name}")
    return value if value is not None else alias
