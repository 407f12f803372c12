"""Commands: `reidbench config list` and `reidbench config show NAME` (the shipped examples)."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The example configs shipped with reidbench.", no_args_is_help=True)
    app.add_typer(group, name="config")

    @group.command("list")
    def list_() -> None:
        """Names of the shipped example configs (`reidbench config show NAME` prints one)."""
        from reidbench.shipped_configs import list_configs

        for name in list_configs():
            typer.echo(name)

    @group.command("show")
    def show(
        name: Annotated[str, typer.Argument(help="A name from `reidbench config list`.")],
    ) -> None:
        """Print a shipped config; save it (`> my.toml`), edit it, `reidbench run my.toml`."""
        from reidbench.shipped_configs import config_text

        typer.echo(config_text(name), nl=False)
