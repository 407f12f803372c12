"""What the command modules share: consoles, progress and log sinks, common options.

Options that several commands take (dataset format and loader settings,
weights, device, feature cache) are defined once here as `Annotated` aliases,
so their names and help read the same everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from reidbench.progress import RichProgress

if TYPE_CHECKING:
    from reidbench.datasets import Dataset

console = Console()  # results (stdout)
err_console = Console(stderr=True)  # progress bars and log lines: stdout stays parseable


def progress(unit: str) -> RichProgress:
    """A progress bar on stderr (a `ProgressFactory`)."""
    return RichProgress(unit=unit, console=err_console)


def log(message: str) -> None:
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def print_result(text: str) -> None:
    """Print a Markdown/plain result block to stdout, verbatim."""
    console.print()
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def interrupted(out: Path) -> typer.Exit:
    """Tell the user nothing is lost and how to resume; exit code 130 like a shell."""
    err_console.print(
        f"interrupted: answers so far are saved; run the same command to resume ({out})",
        markup=False,
        highlight=False,
    )
    return typer.Exit(130)


DatasetRoot = Annotated[
    Path,
    typer.Argument(
        help="Dataset folder (or a .csv manifest for the custom format).",
        metavar="ROOT",
        show_default=False,
    ),
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        help="market1501, dukemtmcreid, msmt17, cuhk03np or custom (default: detect).",
    ),
]
Msmt17TrainOnlyOption = Annotated[
    bool,
    typer.Option(
        "--msmt17-train-only",
        help="MSMT17: leave list_val.txt out of train (torchreid's default).",
    ),
]
Cuhk03VariantOption = Annotated[
    str,
    typer.Option("--cuhk03-variant", help="CUHK03-NP: detected or labeled."),
]
WeightsOption = Annotated[
    str | None,
    typer.Option(
        "--weights",
        "-w",
        help="Checkpoint PATH, hf://OWNER/REPO/FILE@COMMIT#sha256=HEX, "
        "https://HOST/FILE#sha256=HEX, or hub:VARIANT.",
    ),
]
DeviceOption = Annotated[str, typer.Option("--device", "-d", help="auto, cpu, cuda or cuda:N.")]
RequirePinnedOption = Annotated[
    bool,
    typer.Option(
        "--require-pinned",
        help="Refuse Hub weights that are not pinned by commit and sha256 (no branch lookups).",
    ),
]
ModelOptionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--model-option",
        "-O",
        help="KEY=VALUE passed to the model loader, repeatable (onnx: input_size=256x128, "
        "mean=0.485,0.456,0.406, std=..., output=NAME; see docs/models.md).",
        show_default=False,
    ),
]


def parse_model_options(items: list[str] | None) -> dict[str, str]:
    """`KEY=VALUE` strings to a dict (values stay strings; loaders parse their own)."""
    from reidbench.errors import UserError

    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--model-option {item!r}: expected KEY=VALUE, e.g. input_size=256x128")
        out[key.strip()] = value.strip()
    return out


CacheOption = Annotated[
    Path | None,
    typer.Option(
        "--cache",
        help="Feature cache folder (default: $REIDBENCH_CACHE_DIR or ~/.cache/reidbench).",
        show_default=False,
    ),
]


def load_dataset_option(
    root: Path,
    format: str | None,
    msmt17_train_only: bool,
    cuhk03_variant: str,
    **options: object,
) -> Dataset:
    """`load_dataset` with the shared command-line dataset options."""
    from reidbench.datasets import load_dataset

    return load_dataset(
        root,
        format,
        msmt17_val_in_train=not msmt17_train_only,
        cuhk03_variant=cuhk03_variant,
        **options,  # type: ignore[arg-type]
    )
