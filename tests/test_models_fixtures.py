"""Helpers for the model tests: checkpoints in the released layouts (random values),
a naive reference ViT forward, and small synthetic person-like images.

Imported by tests/test_models_*.py and tests/test_embed_*.py; it holds no tests.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from reidbench.models.base import Embedder
from reidbench.models.vit import ReIDViT, ViTConfig


def finetuned_state_dict(
    cfg: ViTConfig,
    *,
    num_ids: int = 7,
    fc_classes: int = 1000,
    sie_cameras: int = 0,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A `build_transformer` state dict (flat, `base.*`/`bottleneck.*`/`classifier.weight`).

    Random values of realistic scale (weights ~ N(0, 0.02), as TransReID initialises) and
    non-trivial norms and BN statistics, so a mis-wired layer shows in the features.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        model = ReIDViT(cfg, fc_classes=fc_classes, num_ids=num_ids, sie_cameras=sie_cameras)
    out: dict[str, torch.Tensor] = {}
    for name, ref in model.state_dict().items():
        shape = ref.shape
        if name.endswith("num_batches_tracked"):
            out[name] = torch.tensor(1234, dtype=torch.int64)
        elif ("norm" in name and name.endswith("weight")) or name == "bottleneck.weight":
            out[name] = 0.5 + torch.rand(shape, generator=gen)
        elif name.endswith("running_var"):
            out[name] = 0.5 + 1.5 * torch.rand(shape, generator=gen)
        elif name.endswith(("bias", "running_mean")):
            out[name] = 0.1 * torch.randn(shape, generator=gen)
        else:
            out[name] = 0.02 * torch.randn(shape, generator=gen)
    return out


def ssl_checkpoint(cfg: ViTConfig, *, grid: tuple[int, int], seed: int = 0) -> dict:
    """A DINO/iBOT-style checkpoint: teacher/student with `module.backbone.*` and
    `module.head.*`, an iBOT mask token, optimizer state and pickled argparse args."""
    torch.manual_seed(seed)
    backbone = {
        k[len("base.") :]: v
        for k, v in finetuned_state_dict(cfg, fc_classes=0, seed=seed).items()
        if k.startswith("base.")
    }
    backbone["pos_embed"] = torch.randn(1, grid[0] * grid[1] + 1, cfg.embed_dim) * 0.02
    backbone["masked_embed"] = torch.zeros(1, cfg.embed_dim)
    teacher = {f"module.backbone.{k}": v.clone() for k, v in backbone.items()}
    teacher["module.head.mlp.0.weight"] = torch.randn(16, cfg.embed_dim)
    teacher["module.head.last_layer.weight_g"] = torch.ones(32, 1)
    return {
        "student": {k: v + 0.01 for k, v in teacher.items()},
        "teacher": teacher,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
        "epoch": 220,
        "args": argparse.Namespace(arch="vit_small", patch_size=16, global_crops_scale=(0.4, 1)),
    }


def save(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


def person_images(n: int, seed: int = 0, size: tuple[int, int] = (64, 128)) -> list[Image.Image]:
    """Crops with a torso/legs colour layout and noise; different seeds, different people."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        w, h = size
        a = np.empty((h, w, 3), dtype=np.float64)
        a[:] = rng.integers(0, 256, 3)
        a[h // 8 : h // 2, w // 5 : 4 * w // 5] = rng.integers(0, 256, 3)
        a[h // 2 :, w // 4 : 3 * w // 4] = rng.integers(0, 256, 3)
        a += rng.normal(0, 12, a.shape)
        out.append(Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)))
    return out


def write_jpegs(folder: Path, images: list[Image.Image], names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for im, name in zip(images, names, strict=True):
        p = folder / name
        im.save(p, format="JPEG", quality=92)
        paths.append(p)
    return paths


def _layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def reference_forward(
    sd: dict[str, torch.Tensor],
    cfg: ViTConfig,
    x: torch.Tensor,
    prefix: str = "base.",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """TransReID's ViT forward written out by hand from the state dict: patch conv as
    unfold+matmul, explicit softmax attention, erf GELU, LayerNorm eps 1e-6."""
    g = {k[len(prefix) :]: v.to(dtype) for k, v in sd.items() if k.startswith(prefix)}
    x = x.to(dtype)
    b = x.shape[0]
    p, s = cfg.patch_size, cfg.stride
    cols = torch.nn.functional.unfold(x, kernel_size=p, stride=s)  # (B, 3*p*p, L)
    w = g["patch_embed.proj.weight"].reshape(cfg.embed_dim, -1)
    tokens = (w @ cols).transpose(1, 2) + g["patch_embed.proj.bias"]
    t = torch.cat([g["cls_token"].expand(b, -1, -1), tokens], dim=1) + g["pos_embed"]
    heads, d = cfg.num_heads, cfg.embed_dim
    hd = d // heads
    for i in range(cfg.depth):
        k = f"blocks.{i}."
        h = _layer_norm(t, g[k + "norm1.weight"], g[k + "norm1.bias"], 1e-6)
        qkv = h @ g[k + "attn.qkv.weight"].T + g[k + "attn.qkv.bias"]
        q, kk, v = qkv.split(d, dim=-1)
        q = q.reshape(b, -1, heads, hd).transpose(1, 2)
        kk = kk.reshape(b, -1, heads, hd).transpose(1, 2)
        v = v.reshape(b, -1, heads, hd).transpose(1, 2)
        att = torch.softmax(q @ kk.transpose(-1, -2) * hd**-0.5, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(b, -1, d)
        t = t + o @ g[k + "attn.proj.weight"].T + g[k + "attn.proj.bias"]
        h = _layer_norm(t, g[k + "norm2.weight"], g[k + "norm2.bias"], 1e-6)
        h = _gelu(h @ g[k + "mlp.fc1.weight"].T + g[k + "mlp.fc1.bias"])
        t = t + h @ g[k + "mlp.fc2.weight"].T + g[k + "mlp.fc2.bias"]
    t = _layer_norm(t, g["norm.weight"], g["norm.bias"], 1e-6)
    return t[:, 0]


def preprocess_reference(images: list[Image.Image]) -> torch.Tensor:
    """PersonViT test transform by hand: PIL bilinear 128x256, /255, (x - 0.5) / 0.5."""
    arrs = [
        np.asarray(im.convert("RGB").resize((128, 256), Image.Resampling.BILINEAR), np.float64)
        for im in images
    ]
    x = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2) / 255.0
    return (x - 0.5) / 0.5


def identity_image(
    pid: int, shot: int, size: tuple[int, int] = (64, 128), cam: int = 0
) -> Image.Image:
    """A crop of identity `pid` seen by camera `cam`: the background comes from the camera,
    the clothing colours per pid from a small palette (so identities collide and retrieval
    is not trivial), with fresh noise, brightness and a small shift per shot."""
    palette = np.array([[200, 40, 40], [40, 60, 180], [190, 190, 190]])
    pick = np.random.default_rng(pid).integers(0, len(palette), size=2)
    colours = np.concatenate(
        [np.random.default_rng(1000 + cam).integers(60, 200, (1, 3)), palette[pick]]
    ) + np.random.default_rng(pid).normal(0, 15, (3, 3))
    rng = np.random.default_rng(10_000 * pid + shot)
    w, h = size
    dy, dx = rng.integers(-h // 16, h // 16 + 1), rng.integers(-w // 10, w // 10 + 1)
    a = np.empty((h, w, 3), dtype=np.float64)
    a[:] = colours[0]
    a[max(0, h // 8 + dy) : h // 2 + dy, max(0, w // 5 + dx) : 4 * w // 5 + dx] = colours[1]
    a[h // 2 + dy :, max(0, w // 4 + dx) : 3 * w // 4 + dx] = colours[2]
    a = a * rng.uniform(0.7, 1.3) + rng.normal(0, 25, a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def market_tree(root: Path, test_ids: int = 6, cameras: int = 3, train_ids: int = 3) -> Path:
    """A tiny Market-1501 layout: per test pid one query per camera 1..2 and two gallery
    crops per camera; a few train ids. File names follow Market's pattern."""

    def name(pid: int, cam: int, frame: int) -> str:
        return f"{pid:04d}_c{cam}s1_{frame:06d}_00.jpg"

    for folder in ("query", "bounding_box_test", "bounding_box_train"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    shot = 0
    for pid in range(1, test_ids + 1):
        for cam in range(1, cameras + 1):
            if cam <= 2:
                shot += 1
                identity_image(pid, shot, cam=cam).save(
                    root / "query" / name(pid, cam, shot), quality=92
                )
            for _ in range(2):
                shot += 1
                identity_image(pid, shot, cam=cam).save(
                    root / "bounding_box_test" / name(pid, cam, shot), quality=92
                )
    for pid in range(test_ids + 1, test_ids + train_ids + 1):
        for cam in (1, 2):
            shot += 1
            identity_image(pid, shot, cam=cam).save(
                root / "bounding_box_train" / name(pid, cam, shot), quality=92
            )
    return root


class Counting:
    """Wraps an embedder's two halves and counts the calls (images prepared, model calls)."""

    def __init__(self, emb: Embedder, fail_on_call: int | None = None) -> None:
        self.emb = emb
        self.prepared = 0
        self.calls = 0
        self.batch_sizes: list[int] = []
        self.fail_on_call = fail_on_call
        real_prepare, real_embed = emb.prepare, emb.embed_prepared

        def prepare(image: Image.Image) -> np.ndarray:
            self.prepared += 1
            return real_prepare(image)

        def embed_prepared(batch: np.ndarray) -> np.ndarray:
            self.calls += 1
            if self.fail_on_call is not None and self.calls == self.fail_on_call:
                raise KeyboardInterrupt  # the user pressed Ctrl-C mid-run
            self.batch_sizes.append(len(batch))
            return real_embed(batch)

        emb.prepare = prepare  # type: ignore[method-assign]
        emb.embed_prepared = embed_prepared  # type: ignore[method-assign]
