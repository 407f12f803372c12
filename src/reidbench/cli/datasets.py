"""Commands: `reidbench dataset info`, `reidbench synth`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    dataset_app = typer.Typer(help="Inspect ReID datasets.", no_args_is_help=True)
    app.add_typer(dataset_app, name="dataset")

    @dataset_app.command("info")
    def info() -> None:
        """(placeholder while the loaders land)"""
