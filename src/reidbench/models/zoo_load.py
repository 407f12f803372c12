"""Strict loading shared by the model-zoo embedders (TransReID, CLIP-ReID, fast-reid).

Each original project saves its whole training model: next to what its test
path uses sit identity classifiers, CLIP's text encoder and prompt learner,
and (fast-reid v0.1.1) the normalisation constants. Those keys are skipped
only through a named list per model (`IgnoredKeys`), reported in the
embedder's notes; everything else must match the model exactly (missing,
unexpected and mis-shaped keys are named in one `UserError`), so a wrong or
truncated file never yields features from random weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reidbench.errors import UserError
from reidbench.models.checkpoints import assign_state_dict, check_state_dict, read_checkpoint


@dataclass(frozen=True)
class IgnoredKeys:
    """Key prefixes the original's test path never reads, with the reason (documented)."""

    prefixes: tuple[str, ...]
    reason: str

    def split(self, sd: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
        kept = {k: v for k, v in sd.items() if not k.startswith(self.prefixes)}
        return kept, sorted(k for k in sd if k.startswith(self.prefixes))


def read_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    """`torch.load(weights_only=True)`, unwrap `model` / `state_dict` containers (fast-reid's
    Checkpointer saves {"model": ..., "optimizer": ...}), strip DataParallel `module.`."""
    obj: Any = read_checkpoint(path)
    for key in ("model", "state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise UserError(
            f"{path}: checkpoint holds a {type(obj).__name__}, not a state dict; "
            f"pass a released {what} .pth file"
        )
    sd = {
        (k[7:] if isinstance(k, str) and k.startswith("module.") else k): v for k, v in obj.items()
    }
    bad = [
        str(k) for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)
    ]
    if bad:
        raise UserError(
            f"{path}: state dict has non-tensor entries {bad[:6]}; "
            f"pass a released {what} checkpoint"
        )
    return sd


def require(
    sd: Mapping[str, torch.Tensor], key: str, ndim: int, path: Path, what: str
) -> torch.Tensor:
    """A key the architecture is sized from; its absence means another model's file."""
    value = sd.get(key)
    if value is None or value.ndim != ndim:
        found = "missing" if value is None else f"shaped {list(value.shape)}"
        raise UserError(
            f"{path}: not a {what} checkpoint (key {key!r} is {found}); "
            "pass the released weights of this model (see docs/models.md)"
        )
    return value


def load_strict(model: nn.Module, sd: Mapping[str, torch.Tensor], path: Path, what: str) -> None:
    """Strict key/shape check (names every mismatch), then assign into a meta-device model."""
    check_state_dict(
        model, sd, path, what, "pass the released weights of this model (see docs/models.md)"
    )
    assign_state_dict(model, sd)


def check_camids(camids: torch.Tensor | None, cameras: int, name: str) -> None:
    """Camera ids outside the SIE table would index another camera's row or crash."""
    if camids is None or camids.numel() == 0:
        return
    lo, hi = int(camids.min()), int(camids.max())
    if lo < 0 or hi >= cameras:
        raise UserError(
            f"{name}: camera id {hi if hi >= cameras else lo} is outside the checkpoint's "
            f"{cameras} SIE cameras (0..{cameras - 1}); use weights trained on this dataset "
            "or evaluate without camera ids (sie='off')"
        )
