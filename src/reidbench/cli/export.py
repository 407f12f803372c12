"""Command: `reidbench export NAME --weights W --out model.onnx`.

Exports one of reidbench's torch embedders (PersonViT, OSNet, ...) to ONNX and
prints the parity check (cosine between ONNX Runtime and torch features); the
file is written only when the check passes. See docs/models.md, "ONNX".
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reidbench.cli.common import (
    ModelOptionOption,
    RequirePinnedOption,
    WeightsOption,
    parse_model_options,
)


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        name: Annotated[
            str,
            typer.Argument(
                help="Embedder to export (personvit-s, osnet_x1_0, ...).", show_default=False
            ),
        ],
        out: Annotated[
            Path, typer.Option("--out", "-o", help="ONNX file to write.", show_default=False)
        ],
        weights: WeightsOption = None,
        require_pinned: RequirePinnedOption = False,
        model_option: ModelOptionOption = None,
        opset: Annotated[int, typer.Option("--opset", min=13, help="ONNX opset version.")] = 17,
    ) -> None:
        """Export a torch embedder to ONNX (fp32, CPU) and check it against torch."""
        from reidbench.errors import UserError
        from reidbench.models import load_embedder
        from reidbench.models.onnx_export import PARITY_MIN_COSINE, export_onnx

        if name.startswith("onnx:"):
            raise UserError(f"{name} is already an ONNX model; nothing to export")
        # Export traces the fp32 network (handcrafted has no network and no precision).
        options: dict[str, object] = {} if name == "handcrafted" else {"precision": "fp32"}
        options.update(parse_model_options(model_option))
        embedder = load_embedder(
            name, weights=weights, device="cpu", require_pinned=require_pinned, **options
        )
        result = export_onnx(embedder, out, opset=opset)
        typer.echo(f"wrote {result.path} ({name}, {embedder.dim}-d features, opset {opset})")
        typer.echo(
            f"parity: cosine(onnxruntime, torch) min {result.min_cosine:.6f}, "
            f"mean {result.mean_cosine:.6f} over {result.images} images "
            f"(required >= {PARITY_MIN_COSINE})"
        )
