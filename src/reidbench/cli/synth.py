"""Command: `reidbench synth OUT [--train-ids N] [--test-ids N] [--cameras 6] [--seed S]`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from reidbench.datasets.synthetic import DEFAULT_TEST_IDS, DEFAULT_TRAIN_IDS


def summary_lines(out: Path, result: dict[str, object], seconds: float) -> list[str]:
    files = int(str(result["files"]))
    if result["reused"]:
        head = f"{out} already holds this synthetic dataset; nothing written"
    else:
        rate = f" ({files / seconds:.0f} images/s)" if seconds > 0 else ""
        head = f"wrote {files} images to {out} in {seconds:.1f} s{rate}"
        if result["resumed"]:
            head += f"; {result['resumed']} kept from an interrupted run"
    r = result
    return [
        head,
        "  subset   | # ids | # images",
        f"  train    | {r['train_ids']:5d} | {r['train_images']:8d}",
        f"  query    | {r['query_ids']:5d} | {r['query_images']:8d}",
        f"  gallery  | {r['gallery_ids']:5d} | {r['gallery_images']:8d}"
        f"  (incl. {r['distractor_images']} distractors, pid 0000)",
        f"  junk (pid -1, dropped by loaders): {r['junk_dropped']}; cameras: {r['cameras']}",
        "  SYNTHETIC: procedural renderings of made-up people, not photographs of real people.",
    ]


def register(app: typer.Typer) -> None:
    @app.command("synth")
    def synth(
        out: Annotated[
            Path,
            typer.Argument(
                help="Folder to create (Market-1501 layout).", metavar="OUT", show_default=False
            ),
        ],
        train_ids: Annotated[
            int, typer.Option("--train-ids", help="Identities in bounding_box_train/.")
        ] = DEFAULT_TRAIN_IDS,
        test_ids: Annotated[
            int, typer.Option("--test-ids", help="Identities in query/ and bounding_box_test/.")
        ] = DEFAULT_TEST_IDS,
        cameras: Annotated[int, typer.Option("--cameras", help="Number of cameras (2-9).")] = 6,
        seed: Annotated[int, typer.Option("--seed", help="Same seed, same bytes.")] = 0,
        force: Annotated[
            bool,
            typer.Option("--force", help="Replace a synthetic dataset made with other settings."),
        ] = False,
        check: Annotated[
            bool,
            typer.Option(
                "--check", help="Also report the rank-1 of a plain colour-histogram matcher."
            ),
        ] = False,
        contact_sheet: Annotated[
            Path | None,
            typer.Option(
                "--contact-sheet",
                help="Also write a PNG of sample identities across cameras here.",
                metavar="PNG",
            ),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print one JSON object instead of the table.")
        ] = False,
    ) -> None:
        """Write synthetic pedestrians in the Market-1501 layout (offline default dataset).

        Deterministic for a seed. Interrupted runs resume from OUT.partial/; an OUT that
        already holds the same dataset is left as it is.
        """
        from reidbench.cli.common import err_console, progress
        from reidbench.datasets.synthetic import generate

        if contact_sheet is not None and contact_sheet.is_dir():
            from reidbench.errors import UserError

            raise UserError(
                f"{contact_sheet}: --contact-sheet is a folder; give a file name ending in .png"
            )
        started = time.perf_counter()
        try:
            result = generate(
                out,
                train_ids=train_ids,
                test_ids=test_ids,
                cameras=cameras,
                seed=seed,
                force=force,
                progress=None if as_json else progress("img"),
            )
        except KeyboardInterrupt:
            err_console.print(
                f"interrupted: finished images are kept in {out.name}.partial/; "
                "run the same command again to resume",
                markup=False,
                highlight=False,
            )
            raise typer.Exit(130) from None
        seconds = time.perf_counter() - started
        payload: dict[str, object] = {"out": str(out), **result, "seconds": round(seconds, 3)}
        if check:
            from reidbench.datasets.synthetic.check import histogram_baseline

            payload["colour_histogram"] = histogram_baseline(out)
        if contact_sheet is not None:
            from reidbench.datasets.synthetic.sheet import contact_sheet as make_sheet

            payload["contact_sheet"] = str(make_sheet(out, contact_sheet))
        if as_json:
            typer.echo(json.dumps(payload, indent=2))
            return
        lines = summary_lines(out, result, seconds)
        if check:
            h = payload["colour_histogram"]
            assert isinstance(h, dict)
            lines.append(
                f"  colour-histogram matcher: rank-1 {h['rank1']:.3f}, mAP {h['mAP']:.3f} "
                f"(chance rank-1 {h['chance_rank1']:.3f}, {h['queries']} queries)"
            )
        if contact_sheet is not None:
            lines.append(f"  contact sheet: {payload['contact_sheet']}")
        typer.echo("\n".join(lines))
