"""Command: `reidbench pairs ROOT --out FILE --positives N --negatives N [...]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reidbench.cli.common import (
    CacheOption,
    Cuhk03VariantOption,
    DatasetOptionOption,
    DatasetRoot,
    DeviceOption,
    EngineOption,
    FormatOption,
    Msmt17TrainOnlyOption,
    RayAddressOption,
    WeightsOption,
    load_dataset_option,
    open_engine,
    progress,
)
from reidbench.cli.fields import config_option
from reidbench.config import PairsConfig
from reidbench.pairs import PairSet

_PAIRS = PairsConfig()  # the defaults a run config would use


def summary_lines(pairset: PairSet, out: Path) -> list[str]:
    """What was written, how it is spread over camera pairs, and the hash to cite."""
    meta = pairset.meta
    counts, ds = meta["counts"], meta["dataset"]
    kind = "SYNTHETIC " if ds.get("synthetic") else ""
    lines = [
        f"wrote {counts['pairs']} pairs to {out}: {counts['positives']} positive, "
        f"{counts['negatives']} negative",
        f"  dataset   : {kind}{ds['name']} at {ds['root']}",
        f"  split     : {meta['split']}   seed: {meta['seed']}",
        f"  positives : {meta['rules']['positives']}",
        f"  negatives : {meta['rules']['negatives']}",
    ]
    if meta["rules"]["distractor_negatives"]:
        lines.append(f"  distractor negatives: {counts['distractor_negatives']}")
    hard = meta.get("hard_negatives")
    if hard:
        lines.append(f"  hard negatives: {counts['hard_negatives']} mined with {hard['miner']}")
    if meta["triplets"]:
        kinds = ", ".join(f"{v} {k}" for k, v in meta["triplet_kinds"].items())
        lines.append(
            f"  triplets  : {len(meta['triplets'])} ({kinds}); "
            f"{counts['triplet_pairs_added']} pairs added for them"
        )
    cams = meta["camera_pairs"]
    avail = meta["camera_pairs_available"]
    strata = sorted(
        set(cams["positives"]) | set(cams["negatives"]),
        key=lambda s: tuple(int(c) for c in s.split("-")),
    )
    if strata:
        lines.append("  camera pair | positives (of available) | negatives (of available)")
        for s in strata:
            pos = f"{cams['positives'].get(s, 0)} ({avail['positives'].get(s, 0)})"
            neg = f"{cams['negatives'].get(s, 0)} ({avail['negatives'].get(s, 0)})"
            lines.append(f"  {s:>11s} | {pos:>24s} | {neg:>24s}")
    lines.append(f"  content hash: sha256:{pairset.content_hash}")
    return lines


def _refuse_overwrite(out: Path, pairset: PairSet, force: bool) -> None:
    """An existing pairs file is replaced only by the same pairs, or with --force."""
    if force or not out.exists():
        return
    from reidbench.errors import UserError
    from reidbench.pairs import pairset_hash, read_pairs

    try:
        existing = read_pairs(out)
        same = existing.content_hash == pairset_hash(pairset.table)
        what = f"{existing.table.num_rows} other pairs (sha256:{existing.content_hash[:12]})"
    except UserError:
        same, what = False, "something that is not a pairs file of this version"
    if not same:
        raise UserError(
            f"{out}: already holds {what}; pass --force to replace it, or choose another --out"
        )


def register(app: typer.Typer) -> None:
    @app.command("pairs")
    def pairs(
        ctx: typer.Context,
        root: DatasetRoot,
        out: Annotated[
            Path,
            typer.Option(
                "--out", "-o", help="Pairs file to write: .parquet or .csv.", show_default=False
            ),
        ],
        positives: Annotated[
            int, config_option(PairsConfig, "positives", "--positives", show_default=False)
        ],
        negatives: Annotated[
            int, config_option(PairsConfig, "negatives", "--negatives", show_default=False)
        ],
        seed: Annotated[int, config_option(PairsConfig, "seed", "--seed")] = _PAIRS.seed,
        split: Annotated[str, config_option(PairsConfig, "split", "--split")] = _PAIRS.split,
        format: FormatOption = None,
        same_camera: Annotated[
            bool, config_option(PairsConfig, "same_camera_positives", "--same-camera")
        ] = _PAIRS.same_camera_positives,
        distractors: Annotated[
            bool, config_option(PairsConfig, "distractor_negatives", "--distractors")
        ] = _PAIRS.distractor_negatives,
        triplets: Annotated[
            int, config_option(PairsConfig, "triplets", "--triplets")
        ] = _PAIRS.triplets,
        msmt17_train_only: Msmt17TrainOnlyOption = False,
        cuhk03_variant: Cuhk03VariantOption = "detected",
        dataset_option: DatasetOptionOption = None,
        hard_negatives: Annotated[
            str | None,
            config_option(PairsConfig, "hard_negatives", "--hard-negatives", show_default=False),
        ] = _PAIRS.hard_negatives,
        weights: WeightsOption = _PAIRS.weights,
        hard_fraction: Annotated[
            float, config_option(PairsConfig, "hard_fraction", "--hard-fraction")
        ] = _PAIRS.hard_fraction,
        device: DeviceOption = _PAIRS.device,
        cache: CacheOption = None,
        force: Annotated[
            bool,
            typer.Option("--force", help="Replace an existing --out file holding other pairs."),
        ] = False,
        engine: EngineOption = None,
        ray_address: RayAddressOption = None,
    ) -> None:
        """Curate labelled image pairs: balanced over camera pairs, seeded, hashed."""
        from reidbench.pairs import check_pairs_path, curate_pairs, write_pairs

        check_pairs_path(out)  # before loading anything: a bad --out fails in milliseconds
        dataset = load_dataset_option(
            root, format, msmt17_train_only, cuhk03_variant, dataset_option
        )
        open_engine(ctx, engine, ray_address)  # hard-negative mining extracts features on it
        miner, store = None, None
        if hard_negatives is not None:
            from reidbench.models import (
                FeatureCache,
                default_cache_dir,
                embedder_miner,
                load_embedder,
            )

            embedder = load_embedder(hard_negatives, weights=weights, device=device)
            store = FeatureCache(cache or default_cache_dir())
            miner = embedder_miner(
                embedder,
                dataset.root,
                store,
                progress=progress("img"),
            )
        elif weights is not None:
            from reidbench.errors import UserError

            raise UserError("--weights needs --hard-negatives MODEL (the miner it belongs to)")
        try:
            pairset = curate_pairs(
                dataset,
                positives=positives,
                negatives=negatives,
                seed=seed,
                split=split,
                same_camera_positives=same_camera,
                distractor_negatives=distractors,
                triplets=triplets,
                negative_miner=miner,
                hard_fraction=hard_fraction,
            )
        finally:
            if store is not None:
                store.close()
        _refuse_overwrite(out, pairset, force)
        write_pairs(out, pairset)
        typer.echo("\n".join(summary_lines(pairset, out)))
