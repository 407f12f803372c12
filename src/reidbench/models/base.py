"""The embedder interface and the torch-backed implementation the networks share.

An embedder turns person crops into L2-normalised feature rows. It exposes two
halves so `extract_features` can decode in threads while the model runs:
`prepare(image)` (per image, thread-safe) and `embed_prepared(batch)`.
`embed_images` chains them for callers that already hold PIL images.

Camera ids: models with camera embeddings (SIE: TransReID, CLIP-ReID) take the
0-based camera id of each image at test time. Callers pass `camids` where the
dataset has them; embedders with `uses_camids = False` ignore them. Without
camera ids an SIE model omits its camera term (see docs/models.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from reidbench.errors import UserError
from reidbench.models.preprocess import Preprocess

PRECISIONS = ("auto", "fp32", "bf16")


class Embedder(ABC):
    """Base class: subclasses set `name`, `dim`, `info` and implement the two halves."""

    name: str
    dim: int
    info: dict[str, Any]  # provenance for reports: weights, sha256, notes, precision, device
    # True where features depend on the camera id (SIE): extraction then keys the feature
    # cache by (image content, camera id) and passes camera ids to `embed_prepared`.
    uses_camids: bool = False

    @property
    def fingerprint(self) -> str:
        """Stable id of everything that determines the features (cache key part)."""
        blob = json.dumps(self.describe(), sort_keys=True, separators=(",", ":"))
        return f"{self.name}-{hashlib.sha256(blob.encode()).hexdigest()[:24]}"

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able identity: name, weights hash, preprocessing, feature options."""

    @abstractmethod
    def prepare(self, image: Image.Image) -> np.ndarray:
        """Per-image work that can run in a decode thread (resize, descriptor maths)."""

    @abstractmethod
    def embed_prepared(self, batch: np.ndarray, camids: Sequence[int] | None = None) -> np.ndarray:
        """Stacked `prepare` outputs -> (N, D) float32, rows L2-normalised. `camids`
        (0-based, one per row) matter only where `uses_camids` is True."""

    def embed_images(
        self, images: Sequence[Image.Image], camids: Sequence[int] | None = None
    ) -> np.ndarray:
        """(N, D) float32, rows L2-normalised; N = 0 gives an empty (0, D) array."""
        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if camids is not None and len(camids) != len(images):
            raise ValueError(f"{len(images)} images but {len(camids)} camera ids")
        batch = np.stack([self.prepare(im) for im in images])
        if camids is None:
            return self.embed_prepared(batch)
        return self.embed_prepared(batch, camids)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} dim={self.dim} {self.fingerprint}>"


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without it is a user error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise UserError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"device {device!r} is not supported; use auto, cpu, cuda or cuda:N")
    return dev


def native_bf16(device: torch.device) -> bool:
    """True where bf16 matmuls run in hardware (AMX / AVX512-BF16 CPUs, Ampere+ GPUs)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return bool(
        getattr(cpu, "_is_amx_tile_supported", lambda: False)()
        or getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
    )


def resolve_precision(precision: str, device: torch.device, bf16_verified: bool) -> str:
    """`auto` means bf16 only where the hardware has it and the model family's accuracy
    against fp32 was measured (cosine >= 0.999, docs/benchmarks.md); else fp32."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if bf16_verified and native_bf16(device) else "fp32"
    return precision


class TorchEmbedder(Embedder):
    """A torch module whose output rows are the features, plus its preprocessing."""

    def __init__(
        self,
        *,
        name: str,
        model: nn.Module,
        dim: int,
        preprocess: Preprocess,
        device: torch.device,
        precision: str,
        identity: dict[str, Any],
        info: dict[str, Any] | None = None,
        channels_last: bool = False,
        uses_camids: bool = False,
    ) -> None:
        self.name = name
        # The model's forward then takes (x, camids): a LongTensor, or None without ids.
        self.uses_camids = uses_camids
        self.dim = dim
        self.preprocess = preprocess
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        self._identity = identity  # weights sha256, feature option, ... (no device)
        model = model.eval().to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        for p in model.parameters():
            p.requires_grad_(False)
        if precision == "bf16":
            # Autocast would cast these weights to bf16 on every call (it caches casts only
            # for trainable leaves); casting once gives identical numbers with less work.
            # Norm layers stay fp32, as autocast keeps them.
            for module in model.modules():
                if isinstance(module, (nn.Linear, nn.Conv2d)):
                    module.to(torch.bfloat16)
        self.model = model
        self.info = {
            **(info or {}),
            "model": name,
            "device": str(device),
            "precision": precision,
            "dim": dim,
        }

    def describe(self) -> dict[str, Any]:
        # Precision is part of the identity: bf16 features differ (slightly) from fp32 ones
        # and must not be served from each other's cache. The device is not.
        return {
            "name": self.name,
            **self._identity,
            "preprocess": self.preprocess.describe(),
            "precision": self.precision,
        }

    def prepare(self, image: Image.Image) -> np.ndarray:
        return self.preprocess.prepare(image)

    @torch.inference_mode()
    def embed_prepared(self, batch: np.ndarray, camids: Sequence[int] | None = None) -> np.ndarray:
        x = self.preprocess.to_tensor(batch, self.device, self.channels_last)
        args: tuple[Any, ...] = (x,)
        if self.uses_camids:
            cams = None
            if camids is not None:
                cams = torch.as_tensor(np.asarray(camids, dtype=np.int64), device=self.device)
            args = (x, cams)
        if self.precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                out = self.model(*args)
        else:
            with _ieee_fp32_convs(self.device):
                out = self.model(*args)
        out = F.normalize(out.float(), dim=1)
        return out.cpu().numpy().astype(np.float32, copy=False)


@contextlib.contextmanager
def _ieee_fp32_convs(device: torch.device) -> Iterator[None]:
    """fp32 means fp32: cuDNN runs fp32 convolutions in TF32 by default (10-bit mantissa),
    so switch that off around the call and restore the caller's setting after it."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved
