"""The `reidbench` command. Thin: parse arguments, call a stage, print.

Each command group lives in its own module with a `register(app)` function.
`main` is the console-script entry point: a `UserError` becomes one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from reidbench.cli import datasets, experiment, export, fusion, pairs, retrieval, synth
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

for _module in (datasets, synth, pairs, retrieval, experiment, fusion, export):
    _module.register(app)


def _fail(message: str, code: int) -> None:
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    # Non-standalone mode hands us usage errors as exceptions, so a missing option is one
    # line like any other user error (click's standalone mode prints a multi-line box).
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="reidbench", standalone_mode=False)
    except UserError as exc:
        _fail(str(exc), 2)
    except typer.Abort:
        _fail("aborted", 130)
    except typer.TyperException as exc:  # typer's vendored click: usage and parameter errors
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # `reidbench dataset` alone: show that group's help
            sys.exit(2)
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "reidbench"
        _fail(f"{exc.format_message()} (see `{where} --help`)", getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)
