"""Command: `reidbench presets [--json]`: each documented preset, status, capabilities, price."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from reidbench.cli.common import console


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
        table.add_column("preset", overflow="fold", min_width=14)
        table.add_column("status", min_width=10)
        table.add_column("use instead", overflow="fold", min_width=10)
        table.add_column("USD/M in, out", min_width=8)
        table.add_column("as of", min_width=10)
        table.add_column("accepts", min_width=10)
        sources: list[str] = []
        for r in records:
            life, cap, price = r["lifecycle"], r["capabilities"], r["price"]
            status = life["status"] + (f"\n{life['date']}" if life["date"] else "")
            status += "" if life["verified"] else " *"
            accepts = [k for k in ("logprobs", "temperature", "seed") if cap[k]]
            caps = ", ".join([*accepts, cap["max_tokens_param"]])
            if price is None:
                cost, as_of = "unknown: set price_in/out_per_mtok", "-"
            elif price.get("local"):
                cost, as_of = "0 (local)", "-"
            else:
                cost = f"{price['in_per_mtok']:g}, {price['out_per_mtok']:g}"
                cost += "" if price["verified"] else " *"
                as_of = price["as_of"]
                if price["source"] != life["source"]:
                    sources.append(f"{r['name']} price: {price['source']}")
            sources.append(f"{r['name']} status: {life['source']}")
            table.add_row(r["name"], status, r["active_successor"] or "", cost, as_of, caps)
        console.print(table)
        console.print("Sources:\n  " + "\n  ".join(sorted(sources)), markup=False, soft_wrap=True)
        console.print(
            "Notes on each figure: `reidbench presets --json`; how they were checked: "
            "docs/judges.md.",
            markup=False,
        )
