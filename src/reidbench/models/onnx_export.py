"""Export a reidbench torch embedder to ONNX, with a parity check before the file lands.

`torch.onnx.export(dynamo=False)` (the TorchScript-based exporter) is used: it
runs offline with only the `onnx` package, whereas the dynamo exporter needs
`onnxscript`. The batch axis is dynamic; the input is the normalised NCHW
float32 image at the embedder's size; the output `features` is the embedder's
feature before L2 normalisation. The preprocessing goes into the file's
`metadata_props` (`reidbench.input_size`, `.mean`, `.std`, `.interpolation`,
`.output`, plus the source model and weights sha256), so `onnx:PATH` loads it
with no options.

The file is written to a temporary name, loaded back with ONNX Runtime, and
its features compared (cosine) with the torch embedder's on the same images;
only a file that passes is renamed into place.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from reidbench.errors import UserError
from reidbench.files import atomic_path
from reidbench.models.base import Embedder, TorchEmbedder
from reidbench.models.onnx_embedder import META_PREFIX, load_onnx

OPSET = 17
PARITY_MIN_COSINE = 0.999  # fp32 on both sides: anything lower means a wrong export


@dataclass(frozen=True)
class ExportResult:
    path: Path
    images: int
    min_cosine: float
    mean_cosine: float


def parity_images(n: int = 8, seed: int = 0) -> list[Image.Image]:
    """Deterministic test crops of varied size and structure (noise, bands, blocks)."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(n):
        h, w = int(rng.integers(96, 320)), int(rng.integers(40, 160))
        base = rng.integers(0, 256, (1, 1, 3)) * np.ones((h, w, 3))
        rows = np.linspace(0, 1, h)[:, None, None] * rng.integers(-128, 128, (1, 1, 3))
        img = base + rows + rng.normal(0, 8 + 6 * i, (h, w, 3))
        y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        img[y0 : y0 + h // 3, x0 : x0 + w // 3] = rng.integers(0, 256, 3)
        images.append(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)))
    return images


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def export_onnx(
    embedder: Embedder,
    out: str | os.PathLike[str],
    *,
    opset: int = OPSET,
    images: list[Image.Image] | None = None,
) -> ExportResult:
    """Write `embedder` as ONNX to `out` if its features match the torch ones."""
    if not isinstance(embedder, TorchEmbedder):
        raise UserError(f"{embedder.name} is not a torch network; only those can be exported")
    if embedder.precision != "fp32" or embedder.device.type != "cpu":
        raise UserError("export runs in fp32 on the CPU; load the model with those settings")
    try:
        import onnx
    except ImportError as exc:
        raise UserError("export needs onnx: pip install 'reidbench[onnx]'") from exc
    pre = embedder.preprocess
    model = embedder.model.to(memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]
    dummy = torch.zeros(2, 3, *pre.size)
    target = Path(out)
    with atomic_path(target) as tmp:
        with warnings.catch_warnings():
            # The TorchScript exporter warns that it is deprecated in favour of dynamo
            # (which would need onnxscript); its output is checked below either way.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (dummy,),
                str(tmp),
                dynamo=False,
                input_names=["images"],
                output_names=["features"],
                dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
                opset_version=opset,
            )
        proto = onnx.load(str(tmp))
        meta = {
            "input_size": f"{pre.size[0]}x{pre.size[1]}",
            "mean": ",".join(repr(float(v)) for v in pre.mean),
            "std": ",".join(repr(float(v)) for v in pre.std),
            "interpolation": pre.interpolation,
            "output": "features",
            "source_model": embedder.name,
            "source_weights_sha256": str(embedder.info.get("weights_sha256", "")),
        }
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = META_PREFIX + key, value
        onnx.save(proto, str(tmp))
        crops = images if images is not None else parity_images()
        torch_feats = embedder.embed_images(crops)
        onnx_feats = load_onnx(tmp, "cpu").embed_images(crops)
        cos = _cosines(torch_feats, onnx_feats)
        if float(cos.min()) < PARITY_MIN_COSINE:
            raise UserError(
                f"{target}: ONNX features differ from torch (min cosine {cos.min():.6f} < "
                f"{PARITY_MIN_COSINE}); the file was not written; please report this"
            )
    return ExportResult(target, len(crops), float(cos.min()), float(cos.mean()))
