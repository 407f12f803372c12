"""A plain-torch Vision Transformer in the TransReID / PersonViT layout.

The module names mirror TransReID's `vit_pytorch.py` (which PersonViT
builds on) so that released checkpoints load with `load_state_dict(strict=True)`
and no renaming: `cls_token`, `pos_embed`, `patch_embed.proj`, `blocks.N.{norm1,
attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}`, `norm`, `fc`, optional
`sie_embed`; the ReID wrapper adds `bottleneck` (BNNeck) and `classifier`.

Only inference is needed here, so dropout, drop-path, the JPM branch and the
training losses of the original are left out; none of them has parameters.
Attention uses `F.scaled_dot_product_attention` (same maths as the original
`softmax(q k^T * d^-1/2) v`, fused kernels where available).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LN_EPS = 1e-6  # TransReID: norm_layer=partial(nn.LayerNorm, eps=1e-6)


@dataclass(frozen=True)
class ViTConfig:
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0
    img_size: tuple[int, int] = (256, 128)  # (height, width)
    patch_size: int = 16
    stride: int = 16

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, cols) of the patch grid, as TransReID's PatchEmbed computes num_y, num_x."""
        h, w = self.img_size
        return (
            (h - self.patch_size) // self.stride + 1,
            (w - self.patch_size) // self.stride + 1,
        )

    @property
    def num_tokens(self) -> int:
        rows, cols = self.grid
        return rows * cols + 1


VIT_SMALL = ViTConfig(embed_dim=384, depth=12, num_heads=6)
VIT_BASE = ViTConfig(embed_dim=768, depth=12, num_heads=12)


class PatchEmbed(nn.Module):
    """TransReID's PatchEmbed_overlap: one conv with kernel=patch, stride=stride."""

    def __init__(self, cfg: ViTConfig, in_chans: int = 3) -> None:
        super().__init__()
        self.img_size = cfg.img_size
        self.proj = nn.Conv2d(
            in_chans, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.stride
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(
                f"input size {tuple(x.shape[-2:])} does not match the model's {self.img_size}"
            )
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        # Default scale is head_dim ** -0.5, as TransReID's qk_scale=None gives.
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TransReIDViT(nn.Module):
    """The backbone (`base.*` in a fine-tuned checkpoint, `backbone.*` in an SSL one).

    `num_classes` sizes the unused ImageNet head `fc` that TransReID keeps in its
    state dict (0: no `fc`, as in self-supervised backbones). `sie_cameras` > 0 adds
    the SIE camera embedding; it is loaded but never added at inference because a
    pair's camera labels are not an input here (documented in docs/models.md).
    """

    def __init__(self, cfg: ViTConfig, num_classes: int = 0, sie_cameras: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_tokens, d))
        if sie_cameras > 0:
            self.sie_embed = nn.Parameter(torch.zeros(sie_cameras, 1, d))
        self.blocks = nn.ModuleList(
            Block(d, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(d, eps=LN_EPS)
        if num_classes > 0:
            self.fc = nn.Linear(d, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """TransReID's init (trunc-normal 0.02, zero biases, unit LayerNorm); tests and the
        benchmark rely on it to get activations of a realistic scale from random weights."""
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """CLS token after the final LayerNorm: TransReID's `forward_features` with no SIE."""
        x = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 0]


class ReIDViT(nn.Module):
    """TransReID's `build_transformer`: backbone + BNNeck + identity classifier.

    `neck_feat="before"` returns the backbone feature (PersonViT's Market configs:
    TEST.NECK_FEAT 'before'); `"after"` returns it after the BNNeck.
    """

    def __init__(
        self,
        cfg: ViTConfig,
        *,
        fc_classes: int,
        num_ids: int,
        sie_cameras: int = 0,
        neck_feat: str = "before",
    ) -> None:
        super().__init__()
        if neck_feat not in ("before", "after"):
            raise ValueError(f"neck_feat must be 'before' or 'after', not {neck_feat!r}")
        self.neck_feat = neck_feat
        self.base = TransReIDViT(cfg, num_classes=fc_classes, sie_cameras=sie_cameras)
        self.bottleneck = nn.BatchNorm1d(cfg.embed_dim)
        self.classifier = nn.Linear(cfg.embed_dim, num_ids, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.base(x)
        if self.neck_feat == "after":
            # BatchNorm1d in eval mode runs in fp32 under autocast: no precision loss.
            feat = self.bottleneck(feat)
        return feat
