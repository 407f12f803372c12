"""The `reidbench` command. Thin: parse arguments, call a stage, print.

Each command group lives in its own module with a `register(app)` function.
`main` is the console-script entry point: a `UserError` becomes one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sqlite3
import sys
from typing import Annotated

import typer

from reidbench import __version__
from reidbench.cli import (
    configs,
    datasets,
    experiment,
    export,
    fusion,
    pairs,
    presets,
    retrieval,
    synth,
)
from reidbench.cli.common import err_console
from reidbench.errors import UserError

app = typer.Typer(
    name="reidbench",
    help="Person ReID benchmark: LVLM judges and ReID models side by side, measured and fused.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: click wraps long lines at any width, where rich's boxed tables cut option
    # names at 80 columns ("--budget-usd-pe…") when output is not a terminal.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reidbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    pass


for _module in (datasets, synth, pairs, retrieval, experiment, fusion, presets, export, configs):
    _module.register(app)


def _fail(message: str, code: int) -> None:
    # One line per problem (the pre-flight may report several), each a complete sentence.
    for line in message.splitlines() or [""]:
        err_console.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


def _sqlite_user_error(exc: Exception) -> str | None:
    """SQLite's disk-full / read-only errors (the response and feature caches) carry no errno."""
    text = str(exc).lower()
    for needle, advice in (
        ("disk is full", "no space left on the device; free some space and run again to resume"),
        ("readonly database", "the cache is read-only; choose a writable --out folder"),
        ("unable to open database", "cannot create the cache; choose a writable --out folder"),
    ):
        if needle in text:
            return f"cache database: {advice}"
    return None


def main(argv: list[str] | None = None) -> None:
    # Non-standalone mode hands us usage errors as exceptions, so a missing option is one
    # line like any other user error (click's standalone mode prints a multi-line box).
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="reidbench", standalone_mode=False)
    except UserError as exc:
        _fail(str(exc), 2)
    except OSError as exc:
        from reidbench.errors import os_user_error

        user = os_user_error(exc)
        if user is None:
            raise
        _fail(str(user), 2)
    except sqlite3.OperationalError as exc:
        message = _sqlite_user_error(exc)
        if message is None:
            raise
        _fail(message, 2)
    except typer.Abort:
        _fail("aborted", 130)
    except typer.TyperException as exc:  # typer's vendored click: usage and parameter errors
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]  # `reidbench dataset` alone: its help
            sys.exit(2)
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "reidbench"
        _fail(f"{exc.format_message()} (see `{where} --help`)", getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)
