"""``rsr-bench check``: the CI regression gate (logic in :mod:`rsr_bench.regression`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .options import merge_alias, store_option


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _echo_result(result, show_all: bool) -> None:  # noqa: ANN001 - regression.CheckResult, imported lazily
    from ..regression import EXIT_OK, EXIT_REGRESSION, EXIT_SETUP, diff_table

    prov = result.baseline.provenance
    click.echo(f"baseline {result.baseline.path} ({result.baseline.created}, "
               f"{prov.get('device', '?')}/{prov.get('precision', '?')})")
    for p in result.problems:
        click.secho(f"error: {p}", fg="red", err=True)
    for n in result.notes:
        click.echo(f"note: {n}")
    if result.comparisons:
        click.echo(diff_table(result.comparisons, show_all=show_all))
    colour = {EXIT_OK: "green", EXIT_REGRESSION: "red", EXIT_SETUP: "red"}[result.exit_code]
    click.secho(result.summary_line(), fg=colour, bold=True)


@click.command("check")
@click.option("--baseline", "baseline_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Baseline YAML (reports/baselines/*.yaml). With --update it is (re)written.")
@click.option("--from-store", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Compare results already in this store instead of evaluating.")
@store_option(help="Store to evaluate into and keep (resumable cache). Default: a temporary folder, deleted after.")
@click.option("--force", is_flag=True, help="Recompute every image in --store (cached records do not see code changes).")
@click.option("--device", default="auto", show_default=True, help="Device for the evaluation (cpu, cuda, auto).")
@click.option("--tolerance", "tolerances", multiple=True, metavar="METRIC=ABS[,REL]",
              help="Override a tolerance of the baseline (repeatable; 'default=' for unlisted metrics).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write JUnit XML, one testcase per comparison.")
@click.option("--allow-improvements", is_flag=True, help="Moves beyond tolerance in the better direction pass.")
@click.option("--ignore-fingerprints", is_flag=True, help="Do not fail when a method's weight sha256 changed.")
@click.option("--show-all", is_flag=True, help="List every comparison, not only those that moved.")
@click.option("--update", is_flag=True, help="Write a new baseline (with provenance) from the measurement.")
@click.option("--methods", multiple=True, help="With --update: methods to pin (default: the existing baseline's).")
@click.option("--datasets", multiple=True, help="With --update: datasets to pin.")
@click.option("--metrics", multiple=True, help="With --update: metrics to pin.")
@click.option("--limit", type=int, default=None, help="With --update: first N images of each dataset.")
@click.option("--method-card", "--cards", "method_cards", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Extra method card files/folders (your own checkpoints).")
@click.option("--datasets-file", "datasets_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Extra datasets.yaml files.")
def check_command(baseline_path: Path, from_store: Path | None, store: str | None, store_alias: str | None, force: bool,
                  device: str, tolerances: tuple[str, ...], junit_path: Path | None, allow_improvements: bool,
                  ignore_fingerprints: bool, show_all: bool, update: bool, methods: tuple[str, ...],
                  datasets: tuple[str, ...], metrics: tuple[str, ...], limit: int | None,
                  method_cards: tuple[Path, ...], datasets_files: tuple[Path, ...]) -> None:
    """Compare measured means with a baseline; exit 0 holds, 1 regression, 2 setup error.

    \b
    Examples:
      rsr-bench check --baseline reports/baselines/bicubic.x4.yaml
      rsr-bench check --baseline b.yaml --from-store runs/nightly --junit check.xml
      rsr-bench check --baseline b.yaml --update --methods my.model --datasets demo_clean --metrics psnr,lpips --limit 2
    """
    from .. import regression as rg
    from ..errors import RsrBenchError

    source = rg.MeasureOptions(store=from_store or merge_alias(store, store_alias), evaluate=from_store is None,
                               force=force, device=device, method_cards=method_cards, datasets_files=datasets_files)
    log = lambda msg: click.echo(msg, err=True)  # noqa: E731
    try:
        overrides = rg.parse_tolerance_option(tolerances)
        if update:
            new = rg.update_baseline(baseline_path, source, methods=_split(methods), datasets=_split(datasets),
                                     metrics=_split(metrics), limit=limit, tolerances=overrides, log=log)
            pinned = new.selection
            click.echo(f"wrote {baseline_path}: {len(new.entries)} entries ({len(pinned.methods)} method(s) x "
                       f"{len(pinned.datasets)} dataset(s) x {len(pinned.metrics)} metric(s)), device "
                       f"{new.provenance['device']}, precision {new.provenance['precision']}; round-trip check passed")
            sys.exit(rg.EXIT_OK)
        if methods or datasets or metrics or limit is not None:
            raise rg.CheckSetupError("--methods/--datasets/--metrics/--limit choose what --update pins; "
                                     "a check evaluates exactly what its baseline names")
        result = rg.check(baseline_path, source, tolerances=overrides, allow_improvements=allow_improvements,
                          check_fingerprints=not ignore_fingerprints, log=log)
    except RsrBenchError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        if junit_path and not update:
            rg.write_setup_error(junit_path, str(exc))
        sys.exit(rg.EXIT_SETUP)
    _echo_result(result, show_all)
    if junit_path:
        rg.write_check(junit_path, result)
        click.echo(f"JUnit XML: {junit_path}", err=True)
    sys.exit(result.exit_code)
