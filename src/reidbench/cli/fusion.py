"""Commands: `reidbench fuse DIR --systems A,B [--method ...]` and `reidbench rerank CONFIG`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reidbench.cli.common import (
    cleanup_on_failure,
    default_run_dir,
    exit_if_stopped,
    interrupted,
    log,
    print_result,
    progress,
)
from reidbench.cli.fields import config_default, config_option
from reidbench.config import CascadeConfig, FusionConfig
from reidbench.errors import UserError


def _systems(value: str | None) -> list[str]:
    names = [s.strip() for s in (value or "").split(",") if s.strip()]
    if len(names) < 2:
        raise UserError(
            f"--systems {value or ''!r}: name at least two systems of the run, comma-separated "
            "(e.g. --systems handcrafted,efficientnet-lite0)"
        )
    if len(set(names)) != len(names):
        raise UserError(f"--systems {value!r}: a system is listed twice; list each once")
    return names


def _fractions(value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        out = [float(x) for x in value.split(",") if x.strip()]
    except ValueError:
        out = []
    if not out or any(not 0.0 <= f <= 1.0 for f in out):
        raise UserError(
            f"--fractions {value!r}: give comma-separated fractions in [0, 1], e.g. 0,0.1,0.2"
        )
    return out


def _cs(value: str | None) -> int | list[float] | None:
    """`--cs 10` (a grid size) or `--cs 0.01,0.1,1` (C values), as `[fusion] cs`."""
    if value is None:
        return None
    try:
        if "," not in value and "." not in value and "e" not in value.lower():
            size = int(value)
            if size >= 1:
                return size
        else:
            grid = [float(x) for x in value.split(",") if x.strip()]
            if grid and all(c > 0 for c in grid):
                return grid
    except ValueError:
        pass
    raise UserError(
        f"--cs {value!r}: give a grid size (e.g. 10) or comma-separated positive C values "
        "(e.g. 0.01,0.1,1)"
    )


def register(app: typer.Typer) -> None:
    @app.command("fuse")
    def fuse(
        run_dir: Annotated[Path, typer.Argument(help="A run directory made by `reidbench run`.")],
        systems: Annotated[
            str | None,
            typer.Option(
                "--systems",
                "-s",
                help="Systems to fuse, comma-separated. cascade: REID,LVLM.",
                show_default=False,
            ),
        ] = None,
        method: Annotated[
            str, typer.Option("--method", "-m", help="logistic or cascade.")
        ] = "logistic",
        name: Annotated[str | None, config_option(FusionConfig, "name", "--name")] = None,
        cv_folds: Annotated[
            int, config_option(FusionConfig, "cv_folds", "--cv-folds")
        ] = config_default(FusionConfig, "cv_folds"),
        fraction: Annotated[
            float | None, config_option(CascadeConfig, "fraction", "--fraction")
        ] = None,
        budget: Annotated[
            float | None,
            config_option(CascadeConfig, "budget_usd_per_1k", "--budget-usd-per-1k"),
        ] = None,
        # Lists and tri-state flags arrive as text / None, so the command can tell "not given"
        # (use the config default) from a value.
        fractions: Annotated[
            str | None, config_option(CascadeConfig, "fractions", "--fractions")
        ] = None,
        cs: Annotated[
            str | None, config_option(FusionConfig, "cs", "--cs", show_default=False)
        ] = None,
        select: Annotated[
            bool | None,
            config_option(
                FusionConfig, "select_inputs", "--select/--no-select", show_default=False
            ),
        ] = None,
        force: Annotated[
            bool,
            typer.Option(
                "--force", help="Replace a fused system of the same name fitted otherwise."
            ),
        ] = False,
        remove: Annotated[
            str | None,
            typer.Option(
                "--remove", help="Remove the fused system NAME from the run.", metavar="NAME"
            ),
        ] = None,
    ) -> None:
        """Fuse systems of a run: fit on calibration pairs, report on held-out pairs.

        Writes DIR/fusion/ and re-writes metrics.json and report.html.
        """
        from reidbench.config import CASCADE_FRACTIONS
        from reidbench.experiment import write_run_outputs
        from reidbench.fusion.records import fuse_run

        if not (run_dir / "scores.parquet").is_file():
            raise UserError(
                f"{run_dir}: no scores.parquet here; pass a run directory made by `reidbench run`"
            )
        if remove is not None:
            from reidbench.fusion.records import remove_record

            if systems is not None:
                raise UserError("--remove NAME takes no --systems; run it on its own")
            for path in remove_record(run_dir, remove):
                log(f"removed {path}")
            print_result(write_run_outputs(run_dir, log=log))
            return
        if method not in ("logistic", "cascade"):
            raise UserError(f"--method {method!r}: use logistic or cascade")
        names = _systems(systems)
        from reidbench.preflight import Preflight, run_preflight

        run_preflight(Preflight([], {}, out=run_dir, endpoints=False), log=log)
        if method == "logistic" and (fraction is not None or budget is not None or fractions):
            raise UserError(
                "--fraction, --budget-usd-per-1k and --fractions apply to --method cascade only"
            )
        if method == "cascade" and (select is not None or cs is not None):
            raise UserError("--select / --no-select and --cs apply to --method logistic only")
        grid = _cs(cs)
        fuse_run(
            run_dir,
            names,
            method=method,
            name=name,
            cv_folds=cv_folds,
            cs=config_default(FusionConfig, "cs") if grid is None else grid,
            fraction=fraction,
            budget_usd_per_1k=budget,
            fractions=_fractions(fractions) or CASCADE_FRACTIONS,
            select_inputs=select is not False,
            log=log,
            force=force,
        )
        print_result(write_run_outputs(run_dir, log=log))

    @app.command("rerank")
    def rerank(
        config: Annotated[
            Path,
            typer.Argument(
                help="Re-ranking config (.toml) with tables dataset, reid, lvlm and rerank."
            ),
        ],
        out: Annotated[
            Path | None,
            typer.Option("--out", "-o", help="Output folder (default: runs/<config name>)."),
        ] = None,
    ) -> None:
        """Re-order a ReID model's top-k retrieval lists with LVLM judgements.

        Reports CMC, mAP and mINP before and after. Re-running the same command resumes
        (nothing is paid twice).
        """
        from reidbench.config import load_rerank_config
        from reidbench.fusion.rerank_run import rerank_markdown, run_rerank

        cfg = load_rerank_config(config)
        out = out or default_run_dir(cfg.name or config.stem)
        try:
            with cleanup_on_failure(out):
                result = run_rerank(cfg, out, progress=progress, log=log)
        except KeyboardInterrupt:
            raise interrupted(out) from None
        print_result(rerank_markdown(result))
        log(f"wrote {out / 'rerank.json'}")
        exit_if_stopped(result.get("stopped"))
