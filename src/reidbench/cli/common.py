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

EngineOption = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="Where features and retrieval run: local (default) or ray (docs/scale.md).",
        show_default=False,
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster: auto, HOST:6379 or ray://HOST:10001 (default: a new local instance).",
        show_default=False,
    ),
]


def open_engine(ctx: typer.Context, kind: str | None, address: str | None) -> None:
    """Run the rest of the command on the chosen engine; it is closed when the command ends."""
    from reidbench.engine import session

    ctx.with_resource(session(kind or "local", address))


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
            # The run lock's file (rundir_lock) is all a refused run leaves in a folder it
            # created; its lock was released, so the folder goes too.
            lock = out / "run.lock"
            if out.is_dir() and [p.name for p in out.iterdir()] == ["run.lock"]:
                lock.unlink(missing_ok=True)
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
