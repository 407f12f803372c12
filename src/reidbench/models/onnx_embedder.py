"""`onnx:PATH` embedders: any ReID network exported to ONNX, run with ONNX Runtime.

This is how a torchreid or fast-reid user evaluates their own model without code:
export it to ONNX in their project, then `reidbench retrieval DATA --model onnx:m.onnx`.

What the loader needs, and where it comes from (first found wins):

- input size (H, W): option `input_size` ("256x128"), else metadata
  `reidbench.input_size`, else the input's static shape;
- mean / std (RGB, on the [0, 1] scale): options `mean`, `std` ("0.485,0.456,0.406"),
  else metadata `reidbench.mean` / `reidbench.std`, else an error (no silent
  ImageNet default: a wrong normalisation still "works" and quietly loses accuracy);
- feature output: option `output` (a name), else metadata `reidbench.output`, else
  the model's only output;
- resize filter: option `interpolation`, else metadata, else bilinear.

`reidbench export` writes these keys, so its files need no options. The model
must take one float NCHW RGB input; the chosen output's trailing size-1 axes are
flattened (N, D, 1, 1 -> N, D) and rows are L2-normalised here. A model with a
fixed batch size is fed in chunks of that size (the last chunk padded).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from reidbench.errors import UserError
from reidbench.files import sha256_file
from reidbench.models.base import Embedder
from reidbench.models.preprocess import Preprocess

META_PREFIX = "reidbench."
_INTERPOLATIONS = ("bilinear", "bicubic")


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise UserError(
            "onnx:PATH needs ONNX Runtime; install the extra: pip install 'reidbench[onnx]'"
        ) from exc
    return onnxruntime


def _floats(value: Any, what: str, where: str) -> tuple[float, float, float]:
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        out = [float(v) for v in items]
    except (TypeError, ValueError) as exc:
        raise UserError(f"{where}: {what} must be 3 numbers like 0.485,0.456,0.406") from exc
    if len(out) != 3 or (what == "std" and min(out) <= 0):
        raise UserError(f"{where}: {what} must be 3 numbers (std > 0), got {value!r}")
    return out[0], out[1], out[2]


def _size(value: Any, where: str) -> tuple[int, int]:
    items = value.lower().replace(",", "x").split("x") if isinstance(value, str) else list(value)
    try:
        h, w = (int(v) for v in items)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{where}: input_size must be HEIGHTxWIDTH, e.g. 256x128") from exc
    if h <= 0 or w <= 0:
        raise UserError(f"{where}: input_size must be positive, got {value!r}")
    return h, w


class OnnxEmbedder(Embedder):
    """An ONNX Runtime session plus the preprocessing its metadata or options name."""

    def __init__(
        self,
        path: Path,
        session: Any,
        preprocess: Preprocess,
        output: str,
        batch: int | None,
        digest: str,
        sources: Mapping[str, str],
    ) -> None:
        self.path = path
        self.session = session
        self.preprocess = preprocess
        self.output = output
        self.fixed_batch = batch
        self.input_name = session.get_inputs()[0].name
        self.name = f"onnx:{path.name}"
        self._digest = digest
        self.dim = int(self._run(np.zeros((1, *preprocess.size, 3), np.uint8)).shape[1])
        self.info = {
            "model": self.name,
            "weights": str(path),
            "weights_sha256": digest,
            "weights_pin": None,
            "layout": "onnx",
            "feature": output,
            "device": ",".join(session.get_providers()),
            "precision": "fp32",
            "dim": self.dim,
            "settings_from": dict(sources),
            "notes": [],
        }

    def describe(self) -> dict[str, Any]:
        return {
            "name": "onnx",
            "weights_sha256": self._digest,
            "output": self.output,
            "preprocess": self.preprocess.describe(),
        }

    def prepare(self, image: Image.Image) -> np.ndarray:
        return self.preprocess.prepare(image)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        x = self.preprocess.to_tensor(batch, torch.device("cpu")).numpy()
        n = len(x)
        chunks = []
        step = self.fixed_batch or n
        for start in range(0, n, step):
            part = x[start : start + step]
            if self.fixed_batch and len(part) < step:
                pad = np.zeros((step - len(part), *part.shape[1:]), part.dtype)
                part = np.concatenate([part, pad])
            out = self.session.run([self.output], {self.input_name: part})[0]
            chunks.append(np.asarray(out)[: min(step, n - start)])
        feats = np.concatenate(chunks).astype(np.float32, copy=False)
        while feats.ndim > 2 and feats.shape[-1] == 1:
            feats = feats[..., 0]
        if feats.ndim != 2:
            raise UserError(
                f"{self.path}: output {self.output!r} has shape {list(feats.shape)}, not "
                "(N, D); pick the feature output with --model-option output=NAME"
            )
        return feats

    def embed_prepared(self, batch: np.ndarray, camids: Sequence[int] | None = None) -> np.ndarray:
        feats = self._run(batch)  # exported graphs take no camera ids
        norms = np.linalg.norm(feats, axis=1, keepdims=True)
        return (feats / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _providers(ort: Any, device: str) -> list[str]:
    available = ort.get_available_providers()
    if device in ("cpu",):
        return ["CPUExecutionProvider"]
    if device == "auto":
        gpu = "CUDAExecutionProvider" in available
        return (
            ["CUDAExecutionProvider", "CPUExecutionProvider"] if gpu else ["CPUExecutionProvider"]
        )
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise UserError(
                f"device {device!r}: this ONNX Runtime has no CUDA provider "
                "(install onnxruntime-gpu); use --device cpu"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise UserError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")


def load_onnx(
    path: str | os.PathLike[str],
    device: str = "cpu",
    *,
    input_size: str | Sequence[int] | None = None,
    mean: str | Sequence[float] | None = None,
    std: str | Sequence[float] | None = None,
    output: str | None = None,
    interpolation: str | None = None,
) -> OnnxEmbedder:
    """An embedder over an ONNX file; settings from the arguments, else its metadata."""
    file = Path(path).expanduser()
    where = f"onnx:{file}"
    if not file.is_file():
        raise UserError(f"{file}: ONNX file not found; pass --model onnx:PATH to a .onnx file")
    ort = _import_ort()
    try:
        session = ort.InferenceSession(str(file), providers=_providers(ort, device))
    except UserError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{file}: ONNX Runtime cannot load it ({first})") from exc
    meta = dict(session.get_modelmeta().custom_metadata_map)
    sources: dict[str, str] = {}

    def pick(key: str, given: Any) -> Any:
        if given is not None:
            sources[key] = "option"
            return given
        if META_PREFIX + key in meta:
            sources[key] = "metadata"
            return meta[META_PREFIX + key]
        return None

    inputs = session.get_inputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        shapes = [(i.name, i.shape) for i in inputs]
        raise UserError(f"{where}: expected one NCHW image input, the model has {shapes}")
    shape = inputs[0].shape
    if isinstance(shape[1], int) and shape[1] != 3:
        raise UserError(
            f"{where}: input has {shape[1]} channels; an RGB (3-channel) input is needed"
        )
    size_value = pick("input_size", input_size)
    if size_value is None and isinstance(shape[2], int) and isinstance(shape[3], int):
        size_value, sources["input_size"] = (shape[2], shape[3]), "input shape"
    if size_value is None:
        raise UserError(
            f"{where}: the input size is dynamic and not in the model's metadata; "
            "pass --model-option input_size=HEIGHTxWIDTH (e.g. 256x128)"
        )
    size = _size(size_value, where)
    mean_value, std_value = pick("mean", mean), pick("std", std)
    if mean_value is None or std_value is None:
        raise UserError(
            f"{where}: normalisation is not in the model's metadata; pass --model-option "
            "mean=R,G,B and std=R,G,B (torchreid/fast-reid: 0.485,0.456,0.406 and "
            "0.229,0.224,0.225)"
        )
    names = [o.name for o in session.get_outputs()]
    out_name = pick("output", output)
    if out_name is None:
        if len(names) != 1:
            raise UserError(
                f"{where}: the model has outputs {names}; choose the feature with "
                "--model-option output=NAME"
            )
        out_name, sources["output"] = names[0], "only output"
    if out_name not in names:
        raise UserError(f"{where}: no output {out_name!r}; the model has {names}")
    interp = str(pick("interpolation", interpolation) or "bilinear")
    if interp not in _INTERPOLATIONS:
        raise UserError(f"{where}: interpolation must be one of {_INTERPOLATIONS}")
    preprocess = Preprocess(
        size=size,
        mean=_floats(mean_value, "mean", where),
        std=_floats(std_value, "std", where),
        interpolation=interp,
    )
    batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    return OnnxEmbedder(file, session, preprocess, out_name, batch, sha256_file(file), sources)
