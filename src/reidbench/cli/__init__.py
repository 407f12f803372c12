"""The `reidbench` command. Thin: parse arguments, call a stage, print.

Each command group lives in its own module with a `register(app)` function.
`main` is the console-script entry point: a `UserError` becomes one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from reidbench.cli import datasets, experiment, fusion, pairs, retrieval, synth
from reidbench.cli.common import err_console
from reidbench.errors import UserError

app = typer.Typer(
    name="reidbench",
    help="Person ReID benchmark: LVLM judges and ReID models side by side, measured and fused.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for _module in (datasets, synth, pairs, retrieval, experiment, fusion):
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, prog_name="reidbench")
    except UserError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
