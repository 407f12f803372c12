"""OSNet embedders (`osnet_x1_0` ... `osnet_ain_x1_0`): torchreid model-zoo checkpoints,
loaded strictly, with torchreid's test-time preprocessing.

Checkpoint layout: what torchreid's `save_checkpoint` writes
(`{"state_dict": ..., "epoch": ..., ...}`) or a bare `model.state_dict()`, keys
possibly prefixed `module.` (DataParallel); this is what
`torchreid.utils.load_pretrained_weights` accepts. Unlike that function, which
keeps whatever matches and silently drops the rest, every key must fit; the only
exceptions are named in `OSNET_SKIPPED_KEYS` (the identity classifier, which
torchreid's eval-mode forward never uses) and BatchNorm `num_batches_tracked`
counters absent from checkpoints saved by PyTorch < 0.4.1 (they do not affect
eval-mode outputs).

Preprocessing is torchreid's `build_transforms` test transform: `Resize((256,
128))` (bilinear on PIL images), `ToTensor`, ImageNet mean/std.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from reidbench.errors import UserError
from reidbench.files import sha256_file
from reidbench.models.base import TorchEmbedder, resolve_device, resolve_precision
from reidbench.models.checkpoints import assign_state_dict, check_state_dict, read_checkpoint
from reidbench.models.hub import fetch_weights
from reidbench.models.osnet import OSNET_ARCHS, OSNet, fold_batchnorm
from reidbench.models.preprocess import Preprocess

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TORCHREID_PREPROCESS = Preprocess(size=(256, 128), mean=IMAGENET_MEAN, std=IMAGENET_STD)

# Keys of torchreid's OSNet that its test path (eval-mode forward) never reads.
OSNET_SKIPPED_KEYS = ("classifier.weight", "classifier.bias")
_TORCHREID_ZOO = "https://kaiyangzhou.github.io/deep-person-reid/MODEL_ZOO"


def osnet_state_dict(
    obj: Any, path: Path
) -> tuple[dict[str, torch.Tensor], dict[str, tuple[int, ...]]]:
    """Flat tensor dict from a torchreid checkpoint, and the keys skipped by name (shapes)."""
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise UserError(
            f"{path}: checkpoint holds a {type(obj).__name__}, not a state dict; "
            "pass a torchreid OSNet checkpoint (model zoo .pth or model.pth.tar-N)"
        )
    sd = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}
    bad = sorted(str(k) for k, v in sd.items() if not isinstance(v, torch.Tensor))
    if bad:
        raise UserError(
            f"{path}: state dict has non-tensor entries {bad[:6]}; "
            "pass a checkpoint that holds only model weights"
        )
    skipped = {k: tuple(sd.pop(k).shape) for k in OSNET_SKIPPED_KEYS if k in sd}
    return sd, skipped


def _fill_bn_counters(model: torch.nn.Module, sd: dict[str, torch.Tensor]) -> int:
    """Add the `num_batches_tracked` counters pre-0.4.1 checkpoints lack (value 0)."""
    added = 0
    for key, ref in model.state_dict().items():
        if key.endswith(".num_batches_tracked") and key not in sd:
            stem = key[: -len("num_batches_tracked")]
            if f"{stem}running_mean" in sd:
                sd[key] = torch.zeros((), dtype=ref.dtype)
                added += 1
    return added


def build_osnet(name: str, path: Path) -> tuple[OSNet, list[str], int | None]:
    """The architecture `name` with the checkpoint at `path` loaded strictly (eval, CPU),
    notes for the report, and the classifier's class count (None without one)."""
    arch = OSNET_ARCHS[name]
    sd, skipped = osnet_state_dict(read_checkpoint(path), path)
    notes = [f"skipped by name: {', '.join(skipped)} (not used at test time)"] if skipped else []
    classes = skipped["classifier.weight"][0] if "classifier.weight" in skipped else None
    with torch.device("meta"):
        model = OSNet(arch)
    added = _fill_bn_counters(model, sd)
    if added:
        notes.append(f"{added} BatchNorm num_batches_tracked counters absent (old checkpoint)")
    what = f"{name} (torchreid OSNet{'-AIN' if arch.ain else ''}, widths {list(arch.channels)})"
    check_state_dict(
        model,
        sd,
        path,
        what,
        "pass a torchreid checkpoint of this OSNet variant (see docs/models.md)",
    )
    assign_state_dict(model, sd)
    return model, notes, classes


def load_osnet(
    name: str,
    weights: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    *,
    precision: str = "auto",
    channels_last: bool | None = None,
) -> TorchEmbedder:
    """An OSNet embedder from a torchreid checkpoint (local file or pinned URL)."""
    if name not in OSNET_ARCHS:
        raise UserError(f"unknown OSNet variant {name!r}; choose one of {', '.join(OSNET_ARCHS)}")
    if weights is None:
        raise UserError(
            f"{name} needs weights: torchreid's model zoo ({_TORCHREID_ZOO}) hosts them on "
            "Google Drive, which reidbench does not download; fetch the file in a browser "
            "and pass --weights PATH"
        )
    dev = resolve_device(device)
    # bf16 accuracy was not measured for OSNet, so `auto` stays fp32.
    prec = resolve_precision(precision, dev, bf16_verified=False)
    resolved = fetch_weights(name, weights)
    model, notes, classes = build_osnet(name, resolved.path)
    # torchreid's ImageNet-pretrained files (`*_imagenet.pth`) carry a 1000-way classifier.
    imagenet = classes == 1000
    if imagenet:
        notes.append("1000-class classifier: an ImageNet-pretrained file, not ReID-trained")
    digest = resolved.sha256 or sha256_file(resolved.path)
    arch = OSNET_ARCHS[name]
    identity: dict[str, Any] = {
        "weights_sha256": digest,
        "arch": {"channels": list(arch.channels), "ain": arch.ain, "dim": arch.feature_dim},
        "feature": "fc (eval-mode output)",
    }
    info = {
        "weights": str(resolved.path),
        "weights_sha256": digest,
        "weights_pin": resolved.pin,
        "layout": "torchreid",
        "feature": "fc (eval-mode output)",
        "notes": notes,
        "trained_for_reid": not imagenet,
    }
    return TorchEmbedder(
        name=name,
        model=fold_batchnorm(model),  # after the strict load, which sees the original layout
        dim=arch.feature_dim,
        preprocess=TORCHREID_PREPROCESS,
        device=dev,
        precision=prec,
        identity=identity,
        info=info,
        channels_last=dev.type == "cpu" if channels_last is None else channels_last,
    )
