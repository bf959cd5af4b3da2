"""``rsr-bench fetch NAME...``: get datasets, method weights and assets onto this machine.

One command for everything downloadable, so the message "X is missing; run `rsr-bench fetch X`"
works whatever X is. A NAME is resolved in this order: ``all-assets`` / ``all-datasets``, a
dataset name (``datasets.yaml`` or ``--datasets-file``), a method name, family or glob (its
adapter module's ``fetch(spec)``), an asset name. Each name is attempted even when an earlier
one failed; the command fails at the end, listing what did not work.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable

import click

from ..errors import RsrBenchError
from ..registry import unknown


def _method_matches(pattern: str, names: list[str]) -> list[str]:
    if any(c in pattern for c in "*?["):
        return [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    if pattern in names:
        return [pattern]
    return [n for n in names if n.startswith(pattern + ".")]


def _method_fetcher(spec) -> Callable[[], object] | None:
    name = spec.adapter.partition(":")[0]
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise RsrBenchError(f"method {spec.name}: cannot import its adapter {name!r}: {exc}") from exc
    fetch = getattr(module, "fetch", None)
    return (lambda: fetch(spec)) if callable(fetch) else None


def _resolve(name: str, datasets: dict, data_root, progress: bool, force: bool = False) -> list[tuple[str, Callable[[], object] | None]]:
    """``[(label, action)]`` for one NAME; ``action`` None means "nothing to download"."""
    from ..fetch.datasets import fetch_dataset

    def dataset_action(spec):
        return lambda: fetch_dataset(spec, data_root, progress=progress, force=force)

    if name == "all-datasets":
        return [(f"dataset {s.name}", dataset_action(s)) for s in datasets.values() if s.fetch]
    if name in datasets:
        if datasets[name].builtin:
            return [(f"dataset {name} (built in, generated on first use)", None)]
        return [(f"dataset {name}", dataset_action(datasets[name]))]
    if name == "all-assets":
        from ..fetch.assets import ensure_asset, list_assets

        return [(f"asset {a.name}", (lambda n=a.name: ensure_asset(n))) for a in list_assets()]

    from ..methods.cards import load_method_specs

    methods = load_method_specs()
    hits = _method_matches(name, list(methods))
    if hits:
        return [(f"method {m}", _method_fetcher(methods[m])) for m in hits]

    from ..fetch.assets import ensure_asset, list_assets

    assets = [a.name for a in list_assets()]
    if name in assets:
        return [(f"asset {name}", lambda: ensure_asset(name))]
    raise unknown("dataset, method or asset", name,
                  [*datasets, *methods, *assets, "all-assets", "all-datasets"])


@click.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="Folder the datasets live under (default: $RSR_BENCH_DATA or ./data).")
@click.option("--datasets-file", "datasets_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Extra datasets YAML file (repeatable).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show download progress bars.")
@click.option("--force", is_flag=True, help="Re-install datasets that are already complete (kept downloads are reused).")
def fetch_command(names: tuple[str, ...], data_root: str | None, datasets_files: tuple[str, ...],
                  progress: bool, force: bool) -> None:
    """Download datasets, method weights or assets: NAME is a dataset, a method (or glob such as
    'impressionism.*'), an asset, 'all-datasets' or 'all-assets'.

    Downloads resume after an interruption and are verified by size and sha256; dataset archives
    are extracted safely, laid out as datasets.yaml expects and checked (count, LR/HR pairing).
    Run without NAME to list what can be fetched.
    """
    from ..datasets import load_datasets
    from ..files import data_root as resolve_data_root

    root = resolve_data_root(data_root)
    datasets = load_datasets(files=datasets_files, data_root=root)
    if not names:
        from ..fetch.assets import list_assets
        from ..fetch.datasets import check_layout

        click.echo("datasets:")
        for n, s in sorted(datasets.items()):
            if s.fetch:
                problems = check_layout(s)
                click.echo(f"  {n:<12} {'present' if not problems else 'missing: ' + problems[0]}")
        click.echo("assets: " + (", ".join(a.name for a in list_assets()) or "(none)"))
        click.echo("also: a method name, family or glob; all-datasets; all-assets")
        return

    plan: list[tuple[str, Callable[[], object] | None]] = []
    for name in names:  # resolve everything first: a typo fails before any download starts
        plan.extend(p for p in _resolve(name, datasets, root, progress, force) if p[0] not in {q[0] for q in plan})

    failures: list[str] = []
    for label, action in plan:
        if action is None:
            click.echo(f"{label}: nothing to download")
            continue
        click.echo(f"{label}: fetching", err=True)
        try:
            result = action()
        except RsrBenchError as exc:
            click.secho(f"{label}: failed: {exc}", fg="red", err=True)
            failures.append(f"{label}: {exc}")
            continue
        click.echo(f"{label}: ok" + (f" ({result})" if result is not None else ""))
    if failures:
        raise RsrBenchError(f"{len(failures)} of {len(plan)} fetches failed:\n  " + "\n  ".join(failures))
