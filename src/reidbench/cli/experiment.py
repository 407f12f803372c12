"""Commands: `reidbench run`, `reidbench report`, `reidbench demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reidbench.cli.common import (
    EngineOption,
    RayAddressOption,
    cleanup_on_failure,
    console,
    default_run_dir,
    exit_if_stopped,
    interrupted,
    log,
    open_engine,
    print_result,
    progress,
)
from reidbench.errors import UserError


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        ctx: typer.Context,
        config: Annotated[Path, typer.Argument(help="Experiment config (.toml); see configs/.")],
        out: Annotated[
            Path | None,
            typer.Option("--out", "-o", help="Run directory (default: runs/<config name>)."),
        ] = None,
        relink: Annotated[
            Path | None,
            typer.Option(
                "--relink",
                help="Dataset root to use instead of the config's, keeping the run's stored "
                "pairs and paid answers (after moving or repairing the data).",
                metavar="DATA",
            ),
        ] = None,
        engine: EngineOption = None,
        ray_address: RayAddressOption = None,
        set_: Annotated[
            list[str] | None,
            typer.Option(
                "--set",
                help="Override a config value, KEY.PATH=VALUE (repeatable), e.g. "
                "pairs.positives=50 or systems.gpt-4o.max_calls=20.",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        """Run an experiment; re-running the same command resumes it (nothing is paid twice)."""
        from reidbench.config import load_config
        from reidbench.experiment import run_experiment, write_run_outputs

        cfg = load_config(config, set_ or [])
        # --engine / --ray-address override the config's [engine] table (and the manifest
        # records what ran).
        kind, address = engine or cfg.engine.kind, ray_address or cfg.engine.address
        open_engine(ctx, kind, address)
        chosen = cfg.engine.model_copy(update={"kind": kind, "address": address})
        cfg = cfg.model_copy(update={"engine": chosen})
        out = out or default_run_dir(cfg.name or config.stem)
        if relink is not None:
            cfg = cfg.model_copy(
                update={"dataset": cfg.dataset.model_copy(update={"root": relink})}
            )
        try:
            with cleanup_on_failure(out):
                paths = run_experiment(
                    cfg,
                    out,
                    progress=progress,
                    log=log,
                    write_outputs=False,
                    relink=relink is not None,
                )
        except KeyboardInterrupt:
            raise interrupted(out) from None
        print_result(write_run_outputs(paths.out, log=log))
        exit_if_stopped(paths.stopped)

    @app.command("report")
    def report(
        run_dir: Annotated[Path, typer.Argument(help="A run directory made by `run`.")],
        export: Annotated[
            str | None,
            typer.Option(
                "--export",
                help="Also write publication files into DIR/export/: a comma-separated "
                "list of latex, csv, figures (or all). See docs/report.md.",
            ),
        ] = None,
    ) -> None:
        """Write DIR/metrics.json and DIR/report.html from a run directory."""
        from reidbench.experiment import write_run_outputs
        from reidbench.report.export import parse_kinds, write_exports

        kinds = parse_kinds(export) if export is not None else []  # bad kinds: before any work
        if not (run_dir / "scores.parquet").is_file():
            raise UserError(
                f"{run_dir}: no scores.parquet here; pass a run directory made by `reidbench run`"
            )
        print_result(write_run_outputs(run_dir, log=log))
        if kinds:
            import json

            metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
            written = write_exports(run_dir, metrics, kinds)
            log(f"wrote {len(written)} files into {run_dir / 'export'}")

    @app.command("demo")
    def demo(
        ctx: typer.Context,
        out: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")] = Path(
            "runs/demo"
        ),
        personvit_weights: Annotated[
            Path | None,
            typer.Option(
                "--personvit-weights", help="Add PersonViT (ViT-B/16) with these weights."
            ),
        ] = None,
        lvlm: Annotated[
            list[str] | None,
            typer.Option(
                "--lvlm",
                help="Add an LVLM preset (e.g. openai:gpt-4o, vllm:Qwen/Qwen2.5-VL-7B-Instruct). "
                "Presets whose API key is set in the environment are added automatically.",
            ),
        ] = None,
        no_lvlm: Annotated[bool, typer.Option("--no-lvlm", help="Skip every LVLM.")] = False,
        max_cost_usd: Annotated[
            float, typer.Option("--max-cost-usd", help="Spending cap per LVLM system.")
        ] = 0.5,
        engine: EngineOption = None,
        ray_address: RayAddressOption = None,
    ) -> None:
        """Offline end-to-end demo on synthetic pedestrians: data, pairs, scores, report."""
        from reidbench.demo import run_demo

        open_engine(ctx, engine, ray_address)

        try:
            with cleanup_on_failure(out):
                paths = run_demo(
                    out,
                    personvit_weights=personvit_weights,
                    lvlms=[] if no_lvlm else list(lvlm or []),
                    auto_lvlm=not no_lvlm,
                    max_cost_usd=max_cost_usd,
                    progress=progress,
                    log=log,
                )
        except KeyboardInterrupt:
            raise interrupted(out) from None
        from reidbench.experiment import write_run_outputs

        print_result(write_run_outputs(paths.out, log=log))
        console.print(f"\nReport: {paths.out / 'report.html'}")
        exit_if_stopped(paths.stopped)
