"""``rsr-bench check``: the CI regression gate (logic in :mod:`rsr_bench.check`)."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path

import click

from .. import check as chk
from ..errors import RsrBenchError


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@click.command("check")
@click.option("--baseline", "baseline_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Baseline YAML (reports/baselines/*.yaml). With --update it is (re)written.")
@click.option("--from-store", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Compare results already in this store instead of evaluating.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Store to evaluate into and keep (resumable cache). Default: a temporary folder, deleted after.")
@click.option("--force", is_flag=True, help="Recompute every image in --out (cached records do not see code changes).")
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
@click.option("--method-card", "--cards", "extra_cards", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Extra method card files/folders (your own checkpoints).")
@click.option("--datasets-file", "datasets_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Extra datasets.yaml files.")
def check_command(baseline_path: Path, from_store: Path | None, out: Path | None, force: bool, device: str,
                  tolerances: tuple[str, ...], junit_path: Path | None, allow_improvements: bool,
                  ignore_fingerprints: bool, show_all: bool, update: bool, methods: tuple[str, ...],
                  datasets: tuple[str, ...], metrics: tuple[str, ...], limit: int | None,
                  extra_cards: tuple[Path, ...], datasets_files: tuple[Path, ...]) -> None:
    """Compare measured means with a baseline; exit 0 holds, 1 regression, 2 setup error.

    \b
    Examples:
      rsr-bench check --baseline reports/baselines/bicubic.x4.yaml
      rsr-bench check --baseline b.yaml --from-store runs/nightly --junit check.xml
      rsr-bench check --baseline b.yaml --update --methods my.model --datasets demo_clean --metrics psnr,lpips --limit 2
    """
    try:
        code = _run(baseline_path, from_store, out, force, device, tolerances, junit_path, allow_improvements,
                    ignore_fingerprints, show_all, update, _split(methods), _split(datasets), _split(metrics), limit,
                    [str(p) for p in extra_cards], [str(p) for p in datasets_files])
    except RsrBenchError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        if junit_path and not update:
            from ..check.junit import TestCase, write

            write(junit_path, "rsr-bench check", [TestCase("setup", "check", error=str(exc))], {"exit_code": "2"})
        code = chk.EXIT_SETUP
    sys.exit(code)


def _measure(baseline: chk.Baseline | None, *, methods: list[str], datasets: list[str], metrics: list[str],
             limit: int | None, from_store: Path | None, out: Path | None, force: bool, device: str,
             extra_cards: list[str], datasets_files: list[str]) -> chk.Measured:
    images = baseline.images if baseline is not None else None
    if from_store is not None:
        if not from_store.is_dir():
            raise chk.CheckSetupError(f"--from-store {from_store} does not exist")
        return chk.read_store(from_store, methods=methods, datasets=datasets, images=images, limit=limit)
    with (nullcontext(str(out)) if out is not None else chk.temp_store()) as root:
        click.echo(f"evaluating {len(methods)} method(s) x {len(datasets)} dataset(s) x {len(metrics)} metric(s)"
                   f"{f', {limit} image(s) each' if limit else ''} into {root} ...", err=True)
        chk.evaluate(methods=methods, datasets=datasets, metrics=metrics, out=Path(root), limit=limit, device=device,
                     extra_cards=extra_cards, datasets_files=datasets_files, force=force)
        return chk.read_store(root, methods=methods, datasets=datasets, images=images, limit=limit)


def _run(baseline_path: Path, from_store: Path | None, out: Path | None, force: bool, device: str,
         tolerances: tuple[str, ...], junit_path: Path | None, allow_improvements: bool, ignore_fingerprints: bool,
         show_all: bool, update: bool, methods: list[str], datasets: list[str], metrics: list[str], limit: int | None,
         extra_cards: list[str], datasets_files: list[str]) -> int:
    overrides = chk.parse_tolerance_option(tolerances)
    if update:
        return _update(baseline_path, overrides, from_store, out, force, device, methods, datasets, metrics, limit,
                       extra_cards, datasets_files)
    if methods or datasets or metrics or limit is not None:
        raise chk.CheckSetupError("--methods/--datasets/--metrics/--limit choose what --update pins; "
                                  "a check evaluates exactly what its baseline names")
    baseline = chk.load_baseline(baseline_path)
    measured = _measure(baseline, methods=baseline.methods, datasets=baseline.datasets, metrics=baseline.metrics,
                        limit=baseline.limit, from_store=from_store, out=out, force=force, device=device,
                        extra_cards=extra_cards, datasets_files=datasets_files)
    result = chk.check(baseline, measured, overrides=overrides, allow_improvements=allow_improvements,
                       check_fingerprints=not ignore_fingerprints)
    _print(result, show_all)
    if junit_path:
        chk.write_junit(junit_path, result)
        click.echo(f"JUnit XML: {junit_path}", err=True)
    return result.exit_code


def _print(result: chk.CheckResult, show_all: bool) -> None:
    click.echo(f"baseline {result.baseline.path} ({result.baseline.created}, "
               f"{result.baseline.provenance.get('device', '?')}/{result.baseline.provenance.get('precision', '?')})")
    for p in result.problems:
        click.secho(f"error: {p}", fg="red", err=True)
    for n in result.notes:
        click.echo(f"note: {n}")
    if result.comparisons:
        click.echo(chk.diff_table(result.comparisons, show_all=show_all))
    colour = {chk.EXIT_OK: "green", chk.EXIT_REGRESSION: "red", chk.EXIT_SETUP: "red"}[result.exit_code]
    click.secho(result.summary_line(), fg=colour, bold=True)


def _update(baseline_path: Path, overrides: dict, from_store: Path | None, out: Path | None, force: bool, device: str,
            methods: list[str], datasets: list[str], metrics: list[str], limit: int | None,
            extra_cards: list[str], datasets_files: list[str]) -> int:
    old = chk.load_baseline(baseline_path) if baseline_path.exists() else None
    methods = methods or (old.methods if old else [])
    datasets = datasets or (old.datasets if old else [])
    metrics = metrics or (old.metrics if old else [])
    if limit is None and old is not None:
        limit = old.limit
    if not (methods and datasets and metrics):
        raise chk.CheckSetupError(f"{baseline_path} does not exist yet: name what to pin with --methods, --datasets, "
                                  "--metrics (and --limit)")
    measured = _measure(None, methods=methods, datasets=datasets, metrics=metrics, limit=limit, from_store=from_store,
                        out=out, force=force, device=device, extra_cards=extra_cards, datasets_files=datasets_files)
    tolerances = dict(old.tolerances) if old else dict(chk.DEFAULT_TOLERANCES)
    tolerances.update(overrides)
    new = chk.build_baseline(measured, methods=methods, datasets=datasets, metrics=metrics, limit=limit,
                             tolerances=tolerances, other_device=old.other_device if old else None,
                             other_precision=old.other_precision if old else None)
    chk.save_baseline(new, baseline_path)
    # Round trip: the file just written must read back and hold against the same measurement.
    again = chk.check(chk.load_baseline(baseline_path), measured)
    if again.exit_code != chk.EXIT_OK:
        raise chk.CheckSetupError(f"{baseline_path} was written but does not round-trip: {again.summary_line()}")
    click.echo(f"wrote {baseline_path}: {len(new.entries)} entries ({len(new.methods)} method(s) x "
               f"{len(new.datasets)} dataset(s) x {len(new.metrics)} metric(s)), device {new.provenance['device']}, "
               f"precision {new.provenance['precision']}; round-trip check passed")
    return chk.EXIT_OK
