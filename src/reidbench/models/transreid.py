"""TransReID (`transreid-vit-b16`): ViT-B/16 with SIE and JPM, its released test feature.

Follows damo-cv/TransReID's `build_transformer_local` (configs/Market/
vit_transreid_stride.yml): 256x128 input, overlapping patches (stride 12,
21x10 grid; stride 16 and 384x128 checkpoints are recognised from their
position-embedding count), SIE camera embedding added to every token with
coefficient SIE_COE = 3.0, the first 11 blocks shared, then the global branch
`b1` (a copy of the last block + LayerNorm) on all tokens and the JPM branch
`b2` on four groups of shifted (5) and shuffled (2 groups) patch tokens, each
with the CLS token. Test feature (TEST.NECK_FEAT 'before'):
cat[global, local_1/4, ..., local_4/4] (3840-d), L2-normalised here as
TEST.FEAT_NORM does. Preprocessing: bilinear resize, mean = std = 0.5.

Camera ids: the original always passes them at test time. Without them (a
folder of crops, or `sie="off"`) the SIE term is omitted; the features are
then those of the same network without camera information, recorded in the
embedder's identity so they never mix with camera-aware ones in the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reidbench.errors import UserError
from reidbench.files import sha256_file
from reidbench.models.base import TorchEmbedder, resolve_device, resolve_precision
from reidbench.models.hub import resolve_weights
from reidbench.models.preprocess import Preprocess
from reidbench.models.vit import LN_EPS, Block, TransReIDViT, ViTConfig
from reidbench.models.zoo_load import (
    IgnoredKeys,
    check_camids,
    load_strict,
    read_state_dict,
    require,
)

NAME = "transreid-vit-b16"
JPM_PARTS = 4  # DEVIDE_LENGTH; the original's forward hard-codes four local branches
SIE_COE = 3.0  # MODEL.SIE_COE in every released TransReID config
IGNORED = IgnoredKeys(
    ("classifier",),
    "identity classifiers classifier, classifier_1..4 (training loss only)",
)
# Test sizes of the released configs; the stride is read from the checkpoint's pos_embed.
_SIZES = ((256, 128), (384, 128))
_STRIDES = (12, 16)


@dataclass(frozen=True)
class TransReIDArch:
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12  # not stored in a state dict: fixed by the model name
    shift: int = 5  # MODEL.SHIFT_NUM
    groups: int = 2  # MODEL.SHUFFLE_GROUP


VIT_B16 = TransReIDArch()


def shuffle_patches(tokens: torch.Tensor, shift: int, groups: int) -> torch.Tensor:
    """TransReID's `shuffle_unit` (begin=1): rotate the patch tokens left by shift-1 around
    the CLS slot, then interleave `groups` equal groups (the second-to-last token is
    repeated once when the count is odd, as the original does)."""
    b, _, d = tokens.shape
    x = torch.cat([tokens[:, shift:], tokens[:, 1:shift]], dim=1)
    if x.shape[1] % groups:
        x = torch.cat([x, x[:, -2:-1]], dim=1)
    return x.view(b, groups, -1, d).transpose(1, 2).reshape(b, -1, d)


class TransReIDJPM(nn.Module):
    """`build_transformer_local` at test time; module names match its state dict."""

    def __init__(
        self,
        cfg: ViTConfig,
        arch: TransReIDArch,
        *,
        fc_classes: int,
        sie_cameras: int,
        sie_coe: float = SIE_COE,
        neck_feat: str = "before",
    ) -> None:
        super().__init__()
        d = cfg.embed_dim
        self.arch = arch
        self.sie_cameras = sie_cameras
        self.sie_coe = sie_coe
        self.neck_feat = neck_feat
        self.base = TransReIDViT(cfg, num_classes=fc_classes, sie_cameras=sie_cameras)
        self.b1 = nn.Sequential(Block(d, cfg.num_heads, cfg.mlp_ratio), nn.LayerNorm(d, eps=LN_EPS))
        self.b2 = nn.Sequential(Block(d, cfg.num_heads, cfg.mlp_ratio), nn.LayerNorm(d, eps=LN_EPS))
        self.bottleneck = nn.BatchNorm1d(d)
        for i in range(1, JPM_PARTS + 1):
            self.add_module(f"bottleneck_{i}", nn.BatchNorm1d(d))

    def forward(self, x: torch.Tensor, camids: torch.Tensor | None = None) -> torch.Tensor:
        base = self.base
        t = base.patch_embed(x)
        t = torch.cat((base.cls_token.expand(t.shape[0], -1, -1), t), dim=1) + base.pos_embed
        if camids is not None and self.sie_cameras:
            check_camids(camids, self.sie_cameras, NAME)
            t = t + self.sie_coe * base.sie_embed[camids]
        for blk in base.blocks[:-1]:  # local_feature=True: the last block lives on in b1/b2
            t = blk(t)
        feats = [self.b1(t)[:, 0]]
        part = (t.shape[1] - 1) // JPM_PARTS
        cls = t[:, :1]
        patches = shuffle_patches(t, self.arch.shift, self.arch.groups)
        for i in range(JPM_PARTS):
            feats.append(self.b2(torch.cat((cls, patches[:, i * part : (i + 1) * part]), 1))[:, 0])
        if self.neck_feat == "after":
            norms = [self.bottleneck] + [getattr(self, f"bottleneck_{i}") for i in range(1, 5)]
            feats = [bn(f) for bn, f in zip(norms, feats, strict=True)]
        return torch.cat([feats[0]] + [f / JPM_PARTS for f in feats[1:]], dim=1)


def _grid_config(tokens: int, arch: TransReIDArch, path: Path) -> ViTConfig:
    for size in _SIZES:
        for stride in _STRIDES:
            cfg = ViTConfig(
                arch.embed_dim, arch.depth, arch.num_heads, img_size=size, stride=stride
            )
            if cfg.num_tokens == tokens:
                return cfg
    raise UserError(
        f"{path}: {tokens} position embeddings match no released TransReID input size and "
        "stride (256x128 or 384x128, stride 12 or 16); pass a released TransReID checkpoint"
    )


def build_transreid(
    path: Path,
    arch: TransReIDArch = VIT_B16,
    *,
    sie_coe: float = SIE_COE,
    neck_feat: str = "before",
) -> tuple[TransReIDJPM, ViTConfig, list[str]]:
    """Read a `build_transformer_local` checkpoint and load it strictly (eval, CPU)."""
    what = f"{NAME} (TransReID ViT with JPM)"
    sd, dropped = IGNORED.split(read_state_dict(path, what))
    cls = require(sd, "base.cls_token", 3, path, what)
    require(sd, "b1.0.norm1.weight", 1, path, what + "; a checkpoint without b1/b2 has no JPM")
    dim = int(cls.shape[-1])
    depth = len({k.split(".")[2] for k in sd if k.startswith("base.blocks.")})
    if (dim, depth) != (arch.embed_dim, arch.depth):
        raise UserError(
            f"{path}: checkpoint is a ViT with dim {dim} and {depth} blocks, not {what}'s "
            f"{arch.embed_dim} and {arch.depth}; pass the ViT-B/16 TransReID weights"
        )
    cfg = _grid_config(int(require(sd, "base.pos_embed", 3, path, what).shape[1]), arch, path)
    sie = sd.get("base.sie_embed")
    cameras = int(sie.shape[0]) if sie is not None and sie.ndim == 3 else 0
    fc = sd.get("base.fc.weight")
    fc_classes = int(fc.shape[0]) if fc is not None and fc.ndim == 2 else 0
    with torch.device("meta"):
        model = TransReIDJPM(
            cfg,
            arch,
            fc_classes=fc_classes,
            sie_cameras=cameras,
            sie_coe=sie_coe,
            neck_feat=neck_feat,
        )
    load_strict(model, sd, path, what)
    notes = [f"skipped {len(dropped)} keys: {IGNORED.reason}"] if dropped else []
    return model, cfg, notes


def load_transreid(
    weights: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    *,
    precision: str = "auto",
    sie: str = "on",
    sie_coe: float = SIE_COE,
    feature: str = "before-bn",
    arch: TransReIDArch = VIT_B16,
) -> TorchEmbedder:
    """The embedder: strict load, the config's preprocessing, camera ids when given."""
    if sie not in ("on", "off"):
        raise UserError(f"{NAME}: sie must be 'on' or 'off', not {sie!r}")
    necks = {"before-bn": "before", "after-bn": "after"}
    if feature not in necks:
        raise UserError(f"{NAME}: unknown feature {feature!r}; use one of {sorted(necks)}")
    dev = resolve_device(device)
    # bf16 accuracy was not measured for this family (docs/benchmarks.md): auto means fp32.
    prec = resolve_precision(precision, dev, bf16_verified=False)
    path = resolve_weights(NAME, weights)
    model, cfg, notes = build_transreid(path, arch, sie_coe=sie_coe, neck_feat=necks[feature])
    uses = sie == "on" and model.sie_cameras > 0
    digest = sha256_file(path)
    identity: dict[str, Any] = {
        "weights_sha256": digest,
        "feature": feature,
        "grid": list(cfg.grid),
        "stride": cfg.stride,
        "sie": {"cameras": model.sie_cameras, "coe": sie_coe, "used": uses},
    }
    if model.sie_cameras and not uses:
        notes.append("SIE camera embedding loaded but switched off (sie='off')")
    info = {
        "weights": str(path),
        "weights_sha256": digest,
        "feature": feature,
        "notes": notes,
        "trained_for_reid": True,
    }
    return TorchEmbedder(
        name=NAME,
        model=model,
        dim=cfg.embed_dim * (1 + JPM_PARTS),
        preprocess=Preprocess(size=cfg.img_size, mean=(0.5,) * 3, std=(0.5,) * 3),
        device=dev,
        precision=prec,
        identity=identity,
        info=info,
        channels_last=True,
        uses_camids=uses,
    )
