"""What the command modules share: consoles, progress and log sinks, common options.

Options that several commands take (dataset format and loader settings,
weights, device, feature cache) are defined once here as `Annotated` aliases,
so their names and help read the same everywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from reidbench.errors import UserError
from reidbench.progress import LineProgress, RichProgress

if TYPE_CHECKING:
    from reidbench.datasets import Dataset

console = Console()  # results (stdout)
err_console = Console(stderr=True)  # progress bars and log lines: stdout stays parseable


def progress(unit: str) -> RichProgress | LineProgress:
    """A progress bar on stderr (a `ProgressFactory`); whole lines when it is not a terminal."""
    if not err_console.is_terminal:
        return LineProgress(unit, log)
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
DatasetOptionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--dataset-option",
        help="KEY=VALUE option of the dataset format (repeatable; docs/datasets.md).",
        show_default=False,
    ),
]
WeightsOption = Annotated[
    str | None,
    typer.Option(
        "--weights",
        "-w",
        help="Checkpoint PATH, hf://OWNER/REPO/FILE@COMMIT#sha256=HEX, or hub:VARIANT.",
    ),
]
DeviceOption = Annotated[str, typer.Option("--device", "-d", help="auto, cpu, cuda or cuda:N.")]
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
    dataset_options: list[str] | None = None,
    **options: object,
) -> Dataset:
    """`load_dataset` with the shared command-line dataset options."""
    from reidbench.datasets import load_dataset
    from reidbench.datasets.registry import parse_option_pairs

    return load_dataset(
        root,
        format,
        options=parse_option_pairs(dataset_options),
        msmt17_val_in_train=not msmt17_train_only,
        cuhk03_variant=cuhk03_variant,
        **options,  # type: ignore[arg-type]
    )


RUNS = Path("runs")


def default_run_dir(name: str) -> Path:
    """runs/NAME for a config's name; a name that would leave runs/ is refused."""
    base = RUNS.resolve()
    target = (RUNS / name).resolve()
    if not name.strip() or target == base or not target.is_relative_to(base):
        raise UserError(
            f"run name {name!r} would write outside {RUNS}/; use a plain name "
            "(letters, digits, -_.) or pass --out DIR"
        )
    return RUNS / name


def remove_empty_dirs(path: Path) -> None:
    """Remove `path` and its sub-folders if they hold no file (a run that failed at once)."""
    if not path.is_dir():
        return
    for sub in sorted((p for p in path.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


@contextlib.contextmanager
def cleanup_on_failure(out: Path) -> Iterator[None]:
    """A command that fails before writing anything leaves no empty `out` behind."""
    existed = out.exists()
    try:
        yield
    except BaseException:
        if not existed:
            remove_empty_dirs(out)
        raise


def exit_if_stopped(reasons: list[str] | None) -> None:
    """Exit code 3 (docs/errors.md): the command finished, but a system was stopped."""
    if not reasons:
        return
    for reason in reasons:
        err_console.print(f"stopped: {reason}", markup=False, highlight=False, soft_wrap=True)
    err_console.print(
        "finished with stopped systems (exit code 3): answers received are kept; fix the "
        "cause and run the same command again to ask the rest",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(3)
