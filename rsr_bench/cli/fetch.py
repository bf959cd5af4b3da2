"""``rsr-bench fetch NAME...``: get datasets, method weights and assets onto this machine.

A thin layer over :func:`rsr_bench.fetch.fetch`: the same names, progress lines on the terminal,
exit status 2 when any fetch failed.
"""

from __future__ import annotations

import click


def _report(label: str, status: str) -> None:
    if status == "fetching":
        click.echo(f"{label}: fetching", err=True)
    elif status.startswith("failed"):
        click.secho(f"{label}: {status}", fg="red", err=True)
    else:
        click.echo(f"{label}: {status}")


@click.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="Folder the datasets live under (default: $RSR_BENCH_DATA or ./data).")
@click.option("--datasets-file", "datasets_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Extra datasets YAML file (repeatable).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show download progress bars.")
@click.option("--force", is_flag=True,
              help="Re-install datasets even when complete, and install over a folder rsr-bench did not create: "
                   "what is there is moved aside to FOLDER.moved-aside-TIME, never deleted (kept downloads are reused).")
def fetch_command(names: tuple[str, ...], data_root: str | None, datasets_files: tuple[str, ...],
                  progress: bool, force: bool) -> None:
    """Download datasets, method weights or assets: NAME is a dataset, a method (or glob such as
    'impressionism.*'), an asset, 'all-datasets' or 'all-assets'.

    Downloads resume after an interruption and are verified by size and sha256; dataset archives
    are extracted safely, laid out as datasets.yaml expects and checked (count, LR/HR pairing).
    Run without NAME to list what can be fetched.
    """
    from ..fetch import fetch, fetchable

    if names:
        fetch(names, data_root=data_root, datasets_files=datasets_files, force=force, progress=progress,
              report=_report)
        return
    datasets, assets = fetchable(data_root=data_root, datasets_files=datasets_files)
    click.echo("datasets:")
    for name, status in datasets.items():
        click.echo(f"  {name:<12} {status}")
    click.echo("assets: " + (", ".join(assets) or "(none)"))
    click.echo("also: a method name, family or glob; all-datasets; all-assets")
