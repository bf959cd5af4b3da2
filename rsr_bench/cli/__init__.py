"""Command-line entry point: a thin click layer over the Python API.

Commands live in their own modules and are imported only when used, so ``rsr-bench --help``
stays fast and a broken optional dependency only affects its own command.
"""

from __future__ import annotations

import os
import sys

import click

from .. import __version__
from ..errors import RsrBenchError

# command name -> "module:click_command". Add a command by adding one line here.
LAZY_COMMANDS: dict[str, str] = {
    "run": "rsr_bench.cli.run:run_command",
    "list": "rsr_bench.cli.list:list_command",
    "report": "rsr_bench.cli.report:report_command",
    "fetch": "rsr_bench.cli.fetch:fetch_command",
    "score": "rsr_bench.cli.score:score_command",
    "train": "rsr_bench.cli.train:train_command",
    "check": "rsr_bench.cli.check:check_command",
    "paper": "rsr_bench.cli.paper:paper_command",
    "robust": "rsr_bench.cli.robust:robust_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            from ..registry import import_object

            return import_object(LAZY_COMMANDS[name])
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        try:
            return super().invoke(ctx)
        except RsrBenchError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)


THREADS_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def free_cores() -> int:
    """The default thread count: the CPUs this process may run on minus the current 1-minute
    load average (rounded), at least 1. On a shared 2-core machine with one other busy job this
    is 1, which measured twice as fast as 2 threads competing with that job (issue 15)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    return max(1, min(cpus, round(cpus - load)))


def apply_threads(threads: int | None) -> int | None:
    """Set the compute thread count for this process before torch/OpenCV start (they read
    ``OMP_NUM_THREADS`` once, at import). ``None``: keep a count the environment already sets,
    else :func:`free_cores`. Returns the count set, or None when the environment's was kept."""
    if threads is None and any(os.environ.get(k) for k in THREADS_ENV):
        return None
    n = threads if threads is not None else free_cores()
    for key in THREADS_ENV:
        os.environ[key] = str(n)
    if "torch" in sys.modules:  # imported already (an API caller): apply directly
        sys.modules["torch"].set_num_threads(n)
    return n


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="rsr-bench")
@click.option("--threads", type=click.IntRange(min=1), default=None, envvar="RSR_BENCH_THREADS",
              help="Compute threads (torch, OpenCV) [default: OMP_NUM_THREADS if set, else the free cores: "
                   "usable CPUs minus the 1-minute load average, at least 1].")
def cli(threads: int | None) -> None:
    """Cross-dataset evaluation of real-world super-resolution methods."""
    apply_threads(threads)


def main() -> None:
    cli()

