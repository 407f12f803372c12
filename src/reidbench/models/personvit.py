"""PersonViT embedders (`personvit-s`, `personvit-b`): TransReID-style ViTs on 256x128 crops.

The feature is the CLS token after the final LayerNorm, before the BNNeck
(PersonViT's configs: TEST.NECK_FEAT 'before'); `feature="after-bn"` gives the
BNNeck output instead. Test-time preprocessing follows the released configs:
bilinear resize to 256x128, scale to [0, 1], mean 0.5 / std 0.5.
"""

from __future__ import annotations

import os
from typing import Any

from reidbench.errors import UserError
from reidbench.files import sha256_file
from reidbench.models.base import TorchEmbedder, resolve_device, resolve_precision
from reidbench.models.checkpoints import load_vit_checkpoint
from reidbench.models.hub import fetch_weights
from reidbench.models.preprocess import Preprocess
from reidbench.models.vit import VIT_BASE, VIT_SMALL, ViTConfig

PERSONVIT_CONFIGS: dict[str, ViTConfig] = {"personvit-s": VIT_SMALL, "personvit-b": VIT_BASE}
PERSONVIT_PREPROCESS = Preprocess(size=(256, 128), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
FEATURES = {"before-bn": "before", "after-bn": "after"}


def describe_arch(name: str) -> str:
    cfg = PERSONVIT_CONFIGS[name]
    size = "S" if cfg.embed_dim == 384 else "B"
    return (
        f"{name} (ViT-{size}/16: dim {cfg.embed_dim}, {cfg.num_heads} heads, "
        f"{cfg.depth} blocks, {cfg.grid[0]}x{cfg.grid[1]} patches)"
    )


def load_personvit(
    name: str,
    weights: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    *,
    precision: str = "auto",
    feature: str = "before-bn",
    hw_ratio: int | None = None,
    hub_cache_dir: str | os.PathLike[str] | None = None,
    hub_endpoint: str | None = None,
) -> TorchEmbedder:
    """Load a PersonViT checkpoint strictly (fine-tuned, SSL teacher or bare backbone)."""
    cfg = PERSONVIT_CONFIGS[name]
    if feature not in FEATURES:
        raise UserError(f"unknown feature option {feature!r}; use one of {sorted(FEATURES)}")
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev, bf16_verified=True)
    resolved = fetch_weights(name, weights, cache_dir=hub_cache_dir, endpoint=hub_endpoint)
    path = resolved.path
    loaded = load_vit_checkpoint(
        path, cfg, what=describe_arch(name), neck_feat=FEATURES[feature], hw_ratio=hw_ratio
    )
    digest = resolved.sha256 or sha256_file(path)
    identity: dict[str, Any] = {
        "weights_sha256": digest,
        "layout": loaded.layout,
        "feature": feature,
        "arch": {"embed_dim": cfg.embed_dim, "depth": cfg.depth, "heads": cfg.num_heads},
    }
    info = {
        "weights": str(path),
        "weights_sha256": digest,
        "weights_pin": resolved.pin,
        "layout": loaded.layout,
        "feature": feature,
        "notes": loaded.notes,
        "trained_for_reid": loaded.layout == "finetuned",
    }
    return TorchEmbedder(
        name=name,
        model=loaded.model,
        dim=cfg.embed_dim,
        preprocess=PERSONVIT_PREPROCESS,
        device=dev,
        precision=prec,
        identity=identity,
        info=info,
        # NHWC input makes the patch-embedding conv ~2.5x cheaper on CPU; same numbers.
        channels_last=True,
    )
