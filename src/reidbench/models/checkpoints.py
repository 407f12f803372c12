"""Strict loading of PersonViT / TransReID checkpoints.

The original `load_param` copies what fits and prints (or silently skips) the
rest, so a wrong or truncated checkpoint still "loads" and produces features
from random weights. Here every key must match: a missing, unexpected or
mis-shaped key is a `UserError` that names the keys.

Layouts understood (after unwrapping `model` / `state_dict` / `module`
containers and stripping `module.` prefixes):

- fine-tuned (`build_transformer` state dict): `base.*`, `bottleneck.*`,
  `classifier.weight`; the model is sized from the checkpoint's own
  `classifier.weight`, `base.fc.weight` and `base.sie_embed` rows.
- self-supervised (DINO / iBOT, what lakeAGI/PersonViT publishes):
  `{"teacher": {"backbone.*": ..., "head.*": ...}, "student": ..., "args": ...}`;
  the teacher backbone is used, its projection head is dropped (by name, and
  reported), and `pos_embed` is resized when the pre-training grid differs.
- a bare backbone state dict (`cls_token`, `pos_embed`, `blocks.*`, ...).

Files are read with `torch.load(weights_only=True)`. DINO/iBOT checkpoints
pickle their `argparse.Namespace` of training arguments, so that one class is
allow-listed; nothing else that runs code on load is accepted.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reidbench.errors import UserError
from reidbench.models.vit import ReIDViT, TransReIDViT, ViTConfig

# Keys an SSL backbone may carry that the ReID backbone has no place for: iBOT's
# mask token and classification/projection heads. TransReID skips 'head', 'dist'
# and 'pre_logits' keys too; we drop only these and say so.
_SSL_DROPPABLE_PREFIXES = ("head.", "pre_logits.", "masked_embed")


@dataclass
class LoadedViT:
    model: nn.Module  # ReIDViT (fine-tuned) or TransReIDViT (SSL / bare backbone)
    layout: str  # "finetuned" | "ssl" | "backbone"
    sie_cameras: int = 0
    notes: list[str] = field(default_factory=list)


def read_checkpoint(path: Path) -> Any:
    """`torch.load(weights_only=True)` with errors turned into one-line UserErrors."""
    if not path.is_file():
        raise UserError(f"{path}: weights file not found; pass --weights PATH to a .pth checkpoint")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"{path}: cannot read as a weights-only torch checkpoint ({first[:200]}); "
            "re-save it with torch.save(model.state_dict(), PATH)"
        ) from exc


def _strip_module(sd: Mapping[str, Any]) -> dict[str, Any]:
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()}


def unwrap_state_dict(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], str, list[str]]:
    """Return (flat tensor dict, layout, dropped keys) from whatever `torch.load` gave."""
    if not isinstance(obj, Mapping):
        raise UserError(
            f"{path}: checkpoint holds a {type(obj).__name__}, not a state dict; "
            "pass a PersonViT/TransReID .pth state dict"
        )
    dropped: list[str] = []
    if "teacher" in obj and isinstance(obj["teacher"], Mapping):
        teacher = _strip_module(obj["teacher"])
        sd = {k[len("backbone.") :]: v for k, v in teacher.items() if k.startswith("backbone.")}
        dropped = sorted(k for k in teacher if not k.startswith("backbone."))
        if not sd:
            raise UserError(
                f"{path}: SSL checkpoint's 'teacher' has no 'backbone.*' keys; "
                "expected a DINO/iBOT layout (teacher -> backbone.*)"
            )
        layout = "ssl"
    else:
        for key in ("model", "state_dict", "module"):  # TransReID load_param's order
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
        sd = _strip_module(obj)
        layout = "finetuned" if any(k.startswith("base.") for k in sd) else "backbone"
    bad = [k for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise UserError(
            f"{path}: state dict has non-tensor entries {_fmt_keys(bad)}; "
            "pass a checkpoint that holds only model weights"
        )
    if layout != "finetuned":
        extra = sorted(k for k in sd if k.startswith(_SSL_DROPPABLE_PREFIXES))
        for k in extra:
            del sd[k]
        dropped += extra
    return sd, layout, dropped


def infer_grid(num_patches: int, hw_ratio: int | None = None) -> tuple[int, int]:
    """(rows, cols) of a stored pos-embed grid, TransReID's rule: rows = isqrt(n * r),
    cols = rows // r for height/width ratio r (1: square ImageNet grids, 2: 256x128)."""
    ratios = [hw_ratio] if hw_ratio else [1, 2, 3, 4]
    for r in ratios:
        rows = math.isqrt(num_patches * r)
        if rows * (rows // r) == num_patches and rows % r == 0:
            return rows, rows // r
    raise UserError(
        f"cannot infer the pre-training patch grid from {num_patches} position embeddings; "
        "pass the pre-training height/width ratio (hw_ratio option)"
    )


def resize_pos_embed(
    posemb: torch.Tensor, new_grid: tuple[int, int], old_grid: tuple[int, int]
) -> torch.Tensor:
    """TransReID's `resize_pos_embed`: keep the CLS embedding, bilinearly resample the grid
    (F.interpolate, align_corners=False)."""
    token, grid = posemb[:, :1], posemb[0, 1:]
    rows, cols = old_grid
    grid = grid.reshape(1, rows, cols, -1).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=new_grid, mode="bilinear", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], -1)
    return torch.cat([token.float(), grid], dim=1).to(posemb.dtype)


def _fmt_keys(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    more = f", ... ({len(keys)} in all)" if len(keys) > limit else ""
    return f"[{shown}{more}]"


def check_state_dict(
    model: nn.Module,
    sd: Mapping[str, torch.Tensor],
    path: Path,
    what: str,
    hint: str = "pass a checkpoint of this architecture (see docs/models.md)",
) -> None:
    """Strict key and shape comparison with a message that names every kind of mismatch."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in sd.items()}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    misshaped = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
    if not (missing or unexpected or misshaped):
        return
    parts = []
    if missing:
        parts.append(f"missing keys {_fmt_keys(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {_fmt_keys(unexpected)}")
    if misshaped:
        shapes = [f"{k} {list(got[k])} vs expected {list(expected[k])}" for k in misshaped]
        parts.append(f"mis-shaped keys {_fmt_keys(shapes, limit=3)}")
    raise UserError(f"{path}: checkpoint does not match {what}: {'; '.join(parts)}; {hint}")


def load_vit_checkpoint(
    path: Path,
    cfg: ViTConfig,
    *,
    what: str,
    neck_feat: str = "before",
    hw_ratio: int | None = None,
) -> LoadedViT:
    """Build the model the checkpoint describes and load it strictly (eval mode, CPU)."""
    sd, layout, dropped = unwrap_state_dict(read_checkpoint(path), path)
    notes = [f"dropped non-backbone keys {_fmt_keys(dropped)}"] if dropped else []
    prefix = "base." if layout == "finetuned" else ""
    sie = sd.get(f"{prefix}sie_embed")
    sie_cameras = int(sie.shape[0]) if sie is not None and sie.ndim == 3 else 0
    if sie_cameras:
        notes.append(f"SIE camera embedding ({sie_cameras} rows) loaded but not used")
    fc = sd.get(f"{prefix}fc.weight")
    fc_classes = int(fc.shape[0]) if fc is not None and fc.ndim == 2 else 0

    model: nn.Module
    # Built on the meta device (no memory, no random init: ViT-B's init alone takes
    # seconds), then the checkpoint tensors are assigned in after the strict check.
    with torch.device("meta"):
        if layout == "finetuned":
            cls = sd.get("classifier.weight")
            num_ids = int(cls.shape[0]) if cls is not None and cls.ndim == 2 else 1
            model = ReIDViT(
                cfg,
                fc_classes=fc_classes,
                num_ids=num_ids,
                sie_cameras=sie_cameras,
                neck_feat=neck_feat,
            )
        else:
            if neck_feat != "before":
                raise UserError(
                    f"{path}: a self-supervised backbone has no BNNeck; "
                    "use the feature before the BNNeck (drop the after-BN option)"
                )
            model = TransReIDViT(cfg, num_classes=fc_classes, sie_cameras=sie_cameras)
        pos = sd.get("pos_embed")
        if pos is not None and pos.ndim == 3 and pos.shape[1] != cfg.num_tokens:
            if pos.shape[2] != cfg.embed_dim:
                check_state_dict(model, sd, path, what, _size_hint(sd.get("cls_token"), cfg))
            old = infer_grid(pos.shape[1] - 1, hw_ratio)
            sd["pos_embed"] = resize_pos_embed(pos, cfg.grid, old)
            notes.append(f"pos_embed resized from {old[0]}x{old[1]} to {cfg.grid[0]}x{cfg.grid[1]}")
    check_state_dict(model, sd, path, what, _size_hint(sd.get(f"{prefix}cls_token"), cfg))
    assign_state_dict(model, sd)
    return LoadedViT(model=model, layout=layout, sie_cameras=sie_cameras, notes=notes)


def _size_hint(cls_token: torch.Tensor | None, cfg: ViTConfig) -> str:
    """Name the right model when the checkpoint is simply the other PersonViT size."""
    dims = {384: "personvit-s", 768: "personvit-b"}
    if cls_token is not None and cls_token.ndim == 3:
        dim = int(cls_token.shape[-1])
        if dim != cfg.embed_dim:
            other = dims.get(dim)
            use = f"use --model {other}" if other else "no PersonViT size matches it"
            return f"the checkpoint's embedding dim is {dim}: {use}"
    return "pass a checkpoint of this architecture (see docs/models.md)"


def assign_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> None:
    """Strict `load_state_dict(assign=True)` into a meta-device model, keeping each
    entry's reference dtype (fp16 checkpoints become fp32 params; counters stay int64)."""
    ref = model.state_dict()
    cast = {k: v.to(ref[k].dtype).contiguous() for k, v in sd.items()}
    model.load_state_dict(cast, strict=True, assign=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
