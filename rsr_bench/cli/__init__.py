"""Command-line entry point: a thin click layer over the Python API.

Commands live in their own modules and are imported only when used, so ``rsr-bench --help``
stays fast and a broken optional dependency only affects its own command.
"""

from __future__ import annotations

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


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="rsr-bench")
def cli() -> None:
    """Cross-dataset evaluation of real-world super-resolution methods."""


def main() -> None:
    cli()

