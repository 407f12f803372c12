"""Command: `reidbench dataset info ROOT [--format F] [--json] [--verify]`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from reidbench.cli.common import (
    Cuhk03VariantOption,
    DatasetOptionOption,
    DatasetRoot,
    FormatOption,
    Msmt17TrainOnlyOption,
    load_dataset_option,
    progress,
)
from reidbench.datasets.base import SPLITS, Dataset

RULE = "  ----------------------------------------"


def summary_lines(dataset: Dataset) -> list[str]:
    """torchreid's `show_summary` table, then what torchreid does not print but we record."""
    from reidbench.datasets.detect import TITLES

    info = dataset.info()
    title = TITLES.get(dataset.name, dataset.name)
    if "variant" in dataset.extra:
        title += f" ({dataset.extra['variant']})"
    lines = [f"=> Loaded {title}", RULE, "  subset   | # ids | # images | # cameras", RULE]
    for split in SPLITS:
        records = dataset.split(split)
        cams = len({r.camid for r in records})
        lines.append(
            f"  {split:<8s} | {info[f'{split}_ids']:5d} | {info[f'{split}_images']:8d} | {cams:9d}"
        )
    lines.append(RULE)
    skipped = dataset.extra.get("skipped")
    details = [
        ("root", str(dataset.root)),
        ("detected by", str(dataset.extra.get("detected_by", ""))),
        ("junk dropped (pid -1)", str(info["junk_dropped"])),
        ("distractor images (pid 0)", str(info["distractor_images"])),
        ("cameras", str(info["cameras"])),
    ]
    if isinstance(skipped, dict) and skipped.get("count"):
        examples = ", ".join(str(e) for e in skipped.get("examples", []))
        details.append(("skipped non-image files", f"{skipped['count']} (e.g. {examples})"))
    if dataset.name == "msmt17":
        details.append(("val in train", str(dataset.extra.get("val_in_train"))))
        details.append(
            ("pid offset", f"+{dataset.extra.get('pid_offset')} (MSMT17 pids start at 0)")
        )
    if "verified_images" in dataset.extra:
        details.append(("verified", f"{dataset.extra['verified_images']} images decode"))
    data = (
        "SYNTHETIC (reidbench synth): procedural renderings, not real people"
        if dataset.synthetic
        else "real images"
    )
    details.append(("data", data))
    width = max(len(k) for k, _ in details)
    lines += [f"  {k:<{width}s} : {v}" for k, v in details]
    return lines


def info_json(dataset: Dataset) -> dict[str, object]:
    """`Dataset.info()` plus per-subset cameras and the loader's recorded options."""
    out: dict[str, object] = dict(dataset.info())
    out["subset_cameras"] = {s: len({r.camid for r in dataset.split(s)}) for s in SPLITS}
    out["extra"] = dataset.extra
    return out


def register(app: typer.Typer) -> None:
    dataset_app = typer.Typer(
        help="Inspect ReID datasets (Market-1501, DukeMTMC-reID, MSMT17, CUHK03-NP, custom).",
        no_args_is_help=True,
    )
    app.add_typer(dataset_app, name="dataset")

    @dataset_app.command("info")
    def info(
        root: DatasetRoot,
        format: FormatOption = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print one JSON object instead of the table.")
        ] = False,
        verify: Annotated[
            bool,
            typer.Option("--verify", help="Decode every image; exit 2 naming unreadable ones."),
        ] = False,
        msmt17_train_only: Msmt17TrainOnlyOption = False,
        cuhk03_variant: Cuhk03VariantOption = "detected",
        dataset_option: DatasetOptionOption = None,
    ) -> None:
        """Counts per split as torchreid prints them, junk and distractors, cameras."""
        dataset = load_dataset_option(
            root,
            format,
            msmt17_train_only,
            cuhk03_variant,
            dataset_option,
            verify=verify,
            progress=progress("img") if verify else None,
        )
        if as_json:
            typer.echo(json.dumps(info_json(dataset), indent=2, default=str))
        else:
            typer.echo("\n".join(summary_lines(dataset)))
