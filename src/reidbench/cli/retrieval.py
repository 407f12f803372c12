"""Command: `reidbench retrieval ROOT --model NAME [--weights PATH] [--rerank] [--json]`.

Query-versus-gallery retrieval with an embedder: extracts (and caches) the
features, then evaluates CMC / mAP / mINP by the torchreid protocol
(`reidbench.metrics.evaluate_features`: same-identity same-camera gallery
images are ignored for each query).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reidbench.cli.common import (
    CacheOption,
    Cuhk03VariantOption,
    DatasetOptionOption,
    DatasetRoot,
    DeviceOption,
    EngineOption,
    FormatOption,
    ModelOptionOption,
    Msmt17TrainOnlyOption,
    RayAddressOption,
    RequirePinnedOption,
    WeightsOption,
    err_console,
    load_dataset_option,
    open_engine,
    parse_model_options,
    progress,
)

if TYPE_CHECKING:
    from reidbench.metrics.retrieval import RetrievalResult


def retrieval_summary(
    *,
    model: str,
    fingerprint: str,
    dataset: Any,
    result: RetrievalResult,
    rerank: bool,
    info: Mapping[str, Any],
    stats: Mapping[str, int],
) -> dict[str, Any]:
    """The JSON object `--json` prints (fractions in [0, 1], not percentages)."""
    return {
        "model": model,
        "fingerprint": fingerprint,
        "dataset": {
            "name": dataset.name,
            "root": str(dataset.root),
            "synthetic": bool(dataset.synthetic),
        },
        "query_images": len(dataset.query),
        "gallery_images": len(dataset.gallery),
        "rerank": rerank,
        **result.to_dict(),  # rank1/5/10, mAP, mINP, cmc, query counts
        "features": dict(stats),
        "embedder": dict(info),
    }


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    ds = summary["dataset"]
    kind = "SYNTHETIC " if ds["synthetic"] else ""
    emb = summary["embedder"]
    feats = summary["features"]
    trained = "" if emb.get("trained_for_reid", True) else " (baseline, not ReID-trained)"
    lines = [
        f"retrieval: {summary['model']}{trained} on {kind}{ds['name']} at {ds['root']}",
        f"  query {summary['query_images']} images, gallery {summary['gallery_images']} images; "
        f"{emb.get('dim')}-d features, {emb.get('precision')} on {emb.get('device')}",
        f"  features: {feats.get('computed', 0)} computed, {feats.get('cached', 0)} from cache",
        f"  re-ranking: {'k-reciprocal' if summary['rerank'] else 'off'}",
    ]
    for label, key in [
        ("rank-1", "rank1"),
        ("rank-5", "rank5"),
        ("rank-10", "rank10"),
        ("mAP", "mAP"),
        ("mINP", "mINP"),
    ]:
        lines.append(f"  {label:<8s}: {100 * summary[key]:6.2f}%")
    if emb.get("weights_pin"):
        lines.append(f"  weights: {emb['weights_pin']}")
    lines.append(f"  fingerprint: {summary['fingerprint']}")
    return lines


def register(app: typer.Typer) -> None:
    @app.command("retrieval")
    def retrieval(
        ctx: typer.Context,
        root: DatasetRoot,
        model: Annotated[
            str,
            typer.Option(
                "--model",
                "-m",
                help="A name from `reidbench.models.list_embedders()` (personvit-s/-b, "
                "osnet_x1_0, ..., handcrafted, efficientnet-lite0, mobilenetv2) or onnx:PATH.",
                show_default=False,
            ),
        ],
        weights: WeightsOption = None,
        require_pinned: RequirePinnedOption = False,
        model_option: ModelOptionOption = None,
        rerank: Annotated[
            bool, typer.Option("--rerank", help="k-reciprocal re-ranking (Zhong et al. 2017).")
        ] = False,
        device: DeviceOption = "auto",
        precision: Annotated[
            str,
            typer.Option(
                "--precision",
                help="auto (bf16 where the hardware has it and it was verified), fp32 or bf16.",
            ),
        ] = "auto",
        feature: Annotated[
            str | None,
            typer.Option("--feature", help="personvit-*: before-bn (default) or after-bn."),
        ] = None,
        batch_size: Annotated[
            int, typer.Option("--batch-size", "-b", min=1, help="Images per model call.")
        ] = 64,
        cache: CacheOption = None,
        no_cache: Annotated[
            bool, typer.Option("--no-cache", help="Neither read nor write the feature cache.")
        ] = False,
        format: FormatOption = None,
        msmt17_train_only: Msmt17TrainOnlyOption = False,
        cuhk03_variant: Cuhk03VariantOption = "detected",
        dataset_option: DatasetOptionOption = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print one JSON object instead of the summary.")
        ] = False,
        engine: EngineOption = None,
        ray_address: RayAddressOption = None,
    ) -> None:
        """Query-vs-gallery retrieval with an embedder: rank-1/5/10, mAP, mINP."""
        from reidbench.errors import UserError
        from reidbench.models import FeatureCache, default_cache_dir, load_embedder
        from reidbench.retrieval_run import evaluate_embedder

        if model == "handcrafted" and (precision != "auto" or device not in ("auto", "cpu")):
            raise UserError(
                "--precision and --device do not apply to handcrafted (a CPU descriptor "
                "without a network); drop them"
            )
        dataset = load_dataset_option(
            root, format, msmt17_train_only, cuhk03_variant, dataset_option
        )
        open_engine(ctx, engine, ray_address)
        options: dict[str, Any] = {}
        if model.startswith("personvit"):
            options["precision"] = precision
            if feature is not None:
                options["feature"] = feature
        elif model != "handcrafted" and not model.startswith("onnx:"):
            options["precision"] = precision
        if feature is not None and "feature" not in options:
            raise UserError(f"--feature applies to personvit-s/-b only, not {model}")
        options.update(parse_model_options(model_option))
        embedder = load_embedder(
            model, weights=weights, device=device, require_pinned=require_pinned, **options
        )
        store = None if no_cache else FeatureCache(cache or default_cache_dir())
        try:
            run = evaluate_embedder(
                embedder,
                dataset,
                cache=store,
                batch_size=batch_size,
                rerank=rerank,
                progress=progress,
            )
        except KeyboardInterrupt:
            where = (
                "nothing kept (--no-cache)"
                if store is None
                else (
                    f"features so far are kept in {cache or default_cache_dir()}; "
                    "run the same command to resume"
                )
            )
            err_console.print(f"interrupted: {where}", markup=False, highlight=False)
            raise typer.Exit(130) from None
        finally:
            if store is not None:
                store.close()
        result, stats = run.result, run.stats
        summary = retrieval_summary(
            model=model,
            fingerprint=embedder.fingerprint,
            dataset=dataset,
            result=result,
            rerank=rerank,
            info=embedder.info,
            stats=stats,
        )
        if as_json:
            typer.echo(json.dumps(summary, indent=2, default=str))
        else:
            typer.echo("\n".join(summary_lines(summary)))
