"""Command: `reidbench presets [--json]`: each documented preset, status, capabilities, price."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from reidbench.cli.common import console


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def register(app: typer.Typer) -> None:
    @app.command("presets")
    def presets(
        as_json: Annotated[
            bool, typer.Option("--json", help="Print one JSON list instead of the table.")
        ] = False,
    ) -> None:
        """List the LVLM presets: status (active/deprecated/retired), capabilities, dated price."""
        from reidbench.judges.presets import PRESETS, preset_record

        records = [preset_record(p) for p in PRESETS.values()]
        if as_json:
            typer.echo(json.dumps(records, indent=2))
            return
        table = Table(
            title="LVLM presets (checked 2026-12-04; * = not confirmed on the provider's page)"
        )
        for column in (
            "preset",
            "status",
            "use instead",
            "capabilities",
            "USD / M tokens in, out",
            "price as of",
            "sources",
        ):
            table.add_column(column, overflow="fold")
        for r in records:
            life, cap, price = r["lifecycle"], r["capabilities"], r["price"]
            status = life["status"] + (f" {life['date']}" if life["date"] else "")
            status += "" if life["verified"] else " *"
            caps = (
                f"logprobs {_yes(cap['logprobs'])}, temperature {_yes(cap['temperature'])}, "
                f"seed {_yes(cap['seed'])}, {cap['max_tokens_param']}"
            )
            if price is None:
                cost, as_of, price_source = "unknown: set price_in/out_per_mtok", "-", ""
            elif price.get("local"):
                cost, as_of, price_source = "0 (local)", "-", ""
            else:
                cost = f"{price['in_per_mtok']:g}, {price['out_per_mtok']:g}"
                cost += "" if price["verified"] else " *"
                as_of, price_source = price["as_of"], price["source"]
            sources = life["source"] + (
                f"\n{price_source}" if price_source and price_source != life["source"] else ""
            )
            table.add_row(
                r["name"], status, r["active_successor"] or "", caps, cost, as_of, sources
            )
        console.print(table)
        console.print(
            "Notes on each figure: `reidbench presets --json`; how they were checked: "
            "docs/judges.md.",
            markup=False,
        )
