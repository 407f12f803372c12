"""CLIP-ReID (`clip-reid-vit-b16`): CLIP's ViT-B/16 image encoder with SIE, its test feature.

Follows Syliz517/CLIP-ReID's `make_model_clipreid.build_transformer` and its
modified CLIP `VisionTransformer`: 256x128 input, patch conv without bias at
stride 16 (or 12 for the SIE-OLP release; read from the checkpoint's
position-embedding count), CLS token + `cv_embed[camera] * SIE_COE` (added
to the CLS token only, before the position embedding), `ln_pre`, 12
residual attention blocks with QuickGELU, `ln_post`, projection to 512.
Test feature (configs/person/vit_clipreid.yml, TEST.NECK_FEAT 'before'):
cat[CLS after ln_post (768), its projection (512)] = 1280-d, L2-normalised
(TEST.FEAT_NORM). Preprocessing: bilinear resize, mean = std = 0.5 (the
config's PIXEL_MEAN/STD, not CLIP's own constants).

SIE coefficient: the released ViT-CLIP-ReID-SIE-OLP models were trained with
MODEL.SIE_COE 1.0 (README); checkpoints without `cv_embed` (ViT-CLIP-ReID)
load too and take no camera ids. Without camera ids the camera term is
omitted, exactly as the original's forward does when `cam_label` is None.
"""

from __future__ import annotations

import os
from collections import OrderedDict
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
from reidbench.models.zoo_load import (
    IgnoredKeys,
    check_camids,
    load_strict,
    read_state_dict,
    require,
)

NAME = "clip-reid-vit-b16"
SIE_COE = 1.0  # README: MODEL.SIE_CAMERA True MODEL.SIE_COE 1.0 MODEL.STRIDE_SIZE [12, 12]
PATCH = 16
INPUT_HW = (256, 128)
IGNORED = IgnoredKeys(
    ("classifier", "prompt_learner.", "text_encoder."),
    "identity classifiers (classifier, classifier_proj), the learned prompts and CLIP's "
    "text encoder (training only: the test path runs the image encoder alone)",
)


@dataclass(frozen=True)
class CLIPVisionArch:
    width: int = 768
    layers: int = 12
    heads: int = 12  # not stored in a state dict: fixed by the model name
    output_dim: int = 512


VIT_B16 = CLIPVisionArch()


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    """CLIP's block; nn.MultiheadAttention gives its exact `in_proj_*` / `out_proj` keys."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(width, width * 4)),
                    ("gelu", QuickGELU()),
                    ("c_proj", nn.Linear(width * 4, width)),
                ]
            )
        )
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.Sequential(
            *[ResidualAttentionBlock(width, heads) for _ in range(layers)]
        )


class VisionTransformer(nn.Module):
    """CLIP-ReID's `VisionTransformer` (overlapping-patch stride, camera embedding on CLS)."""

    def __init__(self, arch: CLIPVisionArch, grid: tuple[int, int], stride: int) -> None:
        super().__init__()
        w = arch.width
        self.grid = grid
        self.conv1 = nn.Conv2d(3, w, kernel_size=PATCH, stride=stride, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(w))
        self.positional_embedding = nn.Parameter(torch.zeros(grid[0] * grid[1] + 1, w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = Transformer(w, arch.layers, arch.heads)
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Parameter(torch.zeros(w, arch.output_dim))

    def forward(self, x: torch.Tensor, cv_emb: torch.Tensor | None) -> torch.Tensor:
        """Test feature cat[CLS after ln_post, CLS @ proj]."""
        x = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        if cv_emb is not None:
            cls = cls + cv_emb.to(x.dtype).unsqueeze(1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer.resblocks(self.ln_pre(x))
        feat = self.ln_post(x[:, 0])  # LayerNorm is per token: only the CLS row is needed
        return torch.cat([feat, feat @ self.proj.to(feat.dtype)], dim=1)


class CLIPReID(nn.Module):
    """`build_transformer` (ViT-B-16) at test time; names match its state dict."""

    def __init__(
        self,
        arch: CLIPVisionArch,
        grid: tuple[int, int],
        stride: int,
        *,
        sie_cameras: int,
        sie_coe: float = SIE_COE,
    ) -> None:
        super().__init__()
        self.sie_cameras = sie_cameras
        self.sie_coe = sie_coe
        self.image_encoder = VisionTransformer(arch, grid, stride)
        if sie_cameras:
            self.cv_embed = nn.Parameter(torch.zeros(sie_cameras, arch.width))
        # BNNecks: loaded (strict) but unused by the 'before' test feature.
        self.bottleneck = nn.BatchNorm1d(arch.width)
        self.bottleneck_proj = nn.BatchNorm1d(arch.output_dim)

    def forward(self, x: torch.Tensor, camids: torch.Tensor | None = None) -> torch.Tensor:
        cv = None
        if camids is not None and self.sie_cameras:
            check_camids(camids, self.sie_cameras, NAME)
            cv = self.sie_coe * self.cv_embed[camids]
        return self.image_encoder(x, cv)


def build_clipreid(
    path: Path, arch: CLIPVisionArch = VIT_B16, *, sie_coe: float = SIE_COE
) -> tuple[CLIPReID, tuple[int, int], int, list[str]]:
    """Read a CLIP-ReID checkpoint and load it strictly (eval, CPU)."""
    what = f"{NAME} (CLIP-ReID ViT-B-16)"
    sd, dropped = IGNORED.split(read_state_dict(path, what))
    conv = require(sd, "image_encoder.conv1.weight", 4, path, what)
    layers = len(
        {k.split(".")[3] for k in sd if k.startswith("image_encoder.transformer.resblocks.")}
    )
    if (int(conv.shape[0]), layers) != (arch.width, arch.layers):
        raise UserError(
            f"{path}: image encoder has width {int(conv.shape[0])} and {layers} blocks, not "
            f"{what}'s {arch.width} and {arch.layers}; pass the ViT-B-16 CLIP-ReID weights"
        )
    tokens = int(require(sd, "image_encoder.positional_embedding", 2, path, what).shape[0])
    for stride in (16, 12):
        grid = ((INPUT_HW[0] - PATCH) // stride + 1, (INPUT_HW[1] - PATCH) // stride + 1)
        if grid[0] * grid[1] + 1 == tokens:
            break
    else:
        raise UserError(
            f"{path}: {tokens} position embeddings match neither stride 16 nor 12 at 256x128; "
            "pass a released CLIP-ReID ViT-B-16 checkpoint"
        )
    cv = sd.get("cv_embed")
    cameras = int(cv.shape[0]) if cv is not None and cv.ndim == 2 else 0
    with torch.device("meta"):
        model = CLIPReID(arch, grid, stride, sie_cameras=cameras, sie_coe=sie_coe)
    load_strict(model, sd, path, what)
    notes = [f"skipped {len(dropped)} keys: {IGNORED.reason}"] if dropped else []
    return model, grid, stride, notes


def load_clipreid(
    weights: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    *,
    precision: str = "auto",
    sie: str = "on",
    sie_coe: float = SIE_COE,
    arch: CLIPVisionArch = VIT_B16,
) -> TorchEmbedder:
    """The embedder: strict load, the config's preprocessing, camera ids when given."""
    if sie not in ("on", "off"):
        raise UserError(f"{NAME}: sie must be 'on' or 'off', not {sie!r}")
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev, bf16_verified=False)
    path = resolve_weights(NAME, weights)
    model, grid, stride, notes = build_clipreid(path, arch, sie_coe=sie_coe)
    uses = sie == "on" and model.sie_cameras > 0
    if model.sie_cameras and not uses:
        notes.append("SIE camera embedding loaded but switched off (sie='off')")
    digest = sha256_file(path)
    identity: dict[str, Any] = {
        "weights_sha256": digest,
        "grid": list(grid),
        "stride": stride,
        "sie": {"cameras": model.sie_cameras, "coe": sie_coe, "used": uses},
    }
    info = {
        "weights": str(path),
        "weights_sha256": digest,
        "notes": notes,
        "trained_for_reid": True,
    }
    return TorchEmbedder(
        name=NAME,
        model=model,
        dim=arch.width + arch.output_dim,
        preprocess=Preprocess(size=INPUT_HW, mean=(0.5,) * 3, std=(0.5,) * 3),
        device=dev,
        precision=prec,
        identity=identity,
        info=info,
        channels_last=True,
        uses_camids=uses,
    )
