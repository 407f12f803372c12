"""Image decoding and the resize/normalise step shared by the network embedders.

Work is split in two so extraction can overlap decoding with inference:
`Preprocess.prepare` (PIL decode + resize to uint8, thread-safe, runs in the
decode threads) and `Preprocess.to_tensor` (scale and normalise on the target
device, inside the model call). Sending uint8 keeps host-to-GPU copies 4x
smaller than float32.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from reidbench.errors import UserError

_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


@dataclass(frozen=True)
class Preprocess:
    """Resize to (height, width), scale to [0, 1], subtract mean, divide by std (RGB)."""

    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    def describe(self) -> dict[str, object]:
        """Everything that changes the pixels the model sees (part of the fingerprint)."""
        return {
            "size_hw": list(self.size),
            "interpolation": self.interpolation,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def prepare(self, image: Image.Image) -> np.ndarray:
        """RGB uint8 array (H, W, 3) at the model's input size.

        PIL's bilinear resize is what torchvision's `T.Resize` does on PIL images,
        the test-time transform of TransReID/PersonViT.
        """
        h, w = self.size
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        if rgb.size != (w, h):
            rgb = rgb.resize((w, h), _RESAMPLE[self.interpolation])
        return np.asarray(rgb, dtype=np.uint8)

    def to_tensor(
        self, batch: np.ndarray, device: torch.device, channels_last: bool = False
    ) -> torch.Tensor:
        """(N, H, W, 3) uint8 -> normalised float32 (N, 3, H, W) on `device`.

        (x / 255 - mean) / std is applied as x * (1 / (255 std)) - mean / std in place on
        the HWC-ordered float copy; with `channels_last` that memory order is kept (no
        transpose copy), which is also what the oneDNN convolutions prefer on CPU.
        """
        x = torch.from_numpy(np.ascontiguousarray(batch))
        if device.type == "cuda":
            x = x.pin_memory()  # page-locked, so the copy below really runs asynchronously
        x = x.to(device, non_blocking=True)
        scale = torch.tensor([1.0 / (255.0 * s) for s in self.std], device=device)
        offset = torch.tensor([m / s for m, s in zip(self.mean, self.std, strict=True)])
        x = x.permute(0, 3, 1, 2).float()  # keeps the NHWC memory order
        x.mul_(scale.view(1, 3, 1, 1)).sub_(offset.to(device).view(1, 3, 1, 1))
        if channels_last:
            return x.contiguous(memory_format=torch.channels_last)
        return x.contiguous()


def decode_image(data: bytes, where: str | Path) -> Image.Image:
    """Decode image bytes to an RGB PIL image; a broken file is a UserError naming it."""
    from reidbench.imagelimits import check_header, max_pixels, too_large

    if not data:
        raise UserError(f"{where}: empty file (0 bytes), not an image; remove or replace it")
    max_pixels()  # Pillow's own bomb check follows our one limit
    try:
        with Image.open(io.BytesIO(data)) as im:
            check_header(im, where)
            im.load()
            return im.convert("RGB")
    except Image.DecompressionBombError as exc:
        raise too_large(where) from exc
    except UnidentifiedImageError as exc:
        raise UserError(
            f"{where}: not a readable image (unknown or corrupt format); remove or replace it"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserError(
            f"{where}: not a readable image ({exc}); remove or replace the file"
        ) from exc


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise UserError(f"{path}: image file not found; check the dataset root") from exc
    except OSError as exc:
        raise UserError(f"{path}: cannot read image ({exc.strerror}); check permissions") from exc
