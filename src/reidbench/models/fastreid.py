"""fast-reid baselines: `fastreid-bot-r50-ibn`, `fastreid-sbs-r50-ibn`, `fastreid-sbs-r101-ibn`.

Follows JDAI-CV/fast-reid's configs (Base-bagtricks.yml, Base-SBS.yml, and
the Market1501/*.yml that set DEPTH and WITH_IBN) and its eval-mode forward:

- BoT: ResNet50-IBN-a (IBN-a in layers 1-3), last stride 1, global average
  pooling, BNNeck; 256x128 input.
- SBS: the same backbone (R50 or R101) with non-local blocks after the last
  2 blocks of layer2 and the last 3 (R50) or 9 (R101) of layer3, GeM pooling
  with a learned p, BNNeck; 384x128 input.

The eval-mode head returns the BNNeck output in both (`EmbeddingHead.forward`
returns `neck_feat` when not training; NECK_FEAT only picks the training
feature), 2048-d, L2-normalised here. Preprocessing: bicubic resize
(`T.Resize(SIZE_TEST, interpolation=3)`), RGB 0-255 minus PIXEL_MEAN divided
by PIXEL_STD (ImageNet's constants x 255).

Two checkpoint layouts are accepted:
- the released v0.1.1 files (MODEL_ZOO.md, GitHub Releases, July 2020):
  `heads.bnneck.*`, `heads.classifier.weight`, persistent `pixel_mean` /
  `pixel_std`, and that code's stem max-pool (3x3, stride 2, padding 1).
  Today's fast-reid loads these non-strictly and silently leaves the BNNeck
  at its initial values (fast-reid issues #427, #453, #486); here they load
  with the code they were trained with.
- checkpoints of today's code: `heads.bottleneck.0.*`, `heads.weight`, and its
  stem max-pool (3x3, stride 2, no padding, ceil_mode), changed in Aug. 2020.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reidbench.errors import UserError
from reidbench.files import sha256_file
from reidbench.models.base import TorchEmbedder, resolve_device, resolve_precision
from reidbench.models.hub import resolve_weights
from reidbench.models.preprocess import Preprocess
from reidbench.models.zoo_load import IgnoredKeys, load_strict, read_state_dict, require

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORED = IgnoredKeys(
    ("heads.classifier.", "heads.weight"),
    "identity classifier (heads.classifier.weight in v0.1.1, heads.weight today; training only)",
)
GEM_EPS = 1e-6


@dataclass(frozen=True)
class FastReIDArch:
    blocks: tuple[int, int, int, int]  # bottleneck blocks per stage
    non_local: tuple[int, int, int, int]  # non-local blocks per stage (0 without NL)
    pooling: str  # "avg" (GlobalAvgPool) | "gem" (GeneralizedMeanPoolingP)
    input_hw: tuple[int, int]
    width: int = 64  # stem width; 64 in every released model (smaller only in tests)

    @property
    def feat_dim(self) -> int:
        return self.width * 8 * 4


FASTREID_ARCHS: dict[str, FastReIDArch] = {
    "fastreid-bot-r50-ibn": FastReIDArch((3, 4, 6, 3), (0, 0, 0, 0), "avg", (256, 128)),
    "fastreid-sbs-r50-ibn": FastReIDArch((3, 4, 6, 3), (0, 2, 3, 0), "gem", (384, 128)),
    "fastreid-sbs-r101-ibn": FastReIDArch((3, 4, 23, 3), (0, 2, 9, 0), "gem", (384, 128)),
}


class IBN(nn.Module):
    """IBN-a: InstanceNorm on the first half of the channels, BatchNorm on the rest."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.n_in = planes // 2  # channels under InstanceNorm
        self.IN = nn.InstanceNorm2d(self.n_in, affine=True)
        self.BN = nn.BatchNorm2d(planes - self.n_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(x, [self.n_in, x.shape[1] - self.n_in], 1)
        return torch.cat((self.IN(a.contiguous()), self.BN(b.contiguous())), 1)


class Bottleneck(nn.Module):
    def __init__(self, inplanes: int, planes: int, ibn: bool, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1: nn.Module = IBN(planes) if ibn else nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class NonLocal(nn.Module):
    """fast-reid's `Non_local`. Its inter-channel count is `reduc_ratio // reduc_ratio`,
    i.e. 1 (a quirk of the original, kept: the released weights have 1-channel g/theta/phi);
    attention is the dot product divided by the position count (no softmax)."""

    def __init__(self, channels: int, inter: int = 1) -> None:
        super().__init__()
        self.inter = inter
        self.g = nn.Conv2d(channels, inter, 1)
        self.theta = nn.Conv2d(channels, inter, 1)
        self.phi = nn.Conv2d(channels, inter, 1)
        self.W = nn.Sequential(nn.Conv2d(inter, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        g = self.g(x).flatten(2).transpose(1, 2)  # (b, hw, inter)
        theta = self.theta(x).flatten(2).transpose(1, 2)
        phi = self.phi(x).flatten(2)  # (b, inter, hw)
        f = theta @ phi / (h * w)
        y = (f @ g).transpose(1, 2).reshape(b, self.inter, h, w)
        return self.W(y) + x


class ResNetIBN(nn.Module):
    """fast-reid's `ResNet` (Bottleneck, IBN-a in layers 1-3, last stride 1, optional NL)."""

    def __init__(self, arch: FastReIDArch, *, legacy_maxpool: bool) -> None:
        super().__init__()
        w = arch.width
        self.conv1 = nn.Conv2d(3, w, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        # v0.1.1: MaxPool2d(3, 2, padding=1); since Aug. 2020: MaxPool2d(3, 2, ceil_mode=True).
        self.maxpool = (
            nn.MaxPool2d(3, 2, padding=1) if legacy_maxpool else nn.MaxPool2d(3, 2, ceil_mode=True)
        )
        inplanes = w
        for i, (n, stride) in enumerate(zip(arch.blocks, (1, 2, 2, 1), strict=True)):
            planes = w * 2**i
            ibn = i < 3  # layer4 is built without IBN in fast-reid
            layer = [Bottleneck(inplanes, planes, ibn, stride)]
            layer += [Bottleneck(planes * 4, planes, ibn) for _ in range(1, n)]
            inplanes = planes * 4
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
        self.nl_after: list[list[int]] = []
        for i, (n, count) in enumerate(zip(arch.blocks, arch.non_local, strict=True)):
            # NL_k_idx = sorted(blocks - (j + 1)): after each of the last `count` blocks.
            self.nl_after.append(sorted(n - (j + 1) for j in range(count)))
            if count:
                channels = w * 2**i * 4
                self.add_module(
                    f"NL_{i + 1}", nn.ModuleList(NonLocal(channels) for _ in range(count))
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        for i in range(4):
            layer = getattr(self, f"layer{i + 1}")
            after = self.nl_after[i]
            for j, block in enumerate(layer):
                x = block(x)
                if j in after:
                    x = getattr(self, f"NL_{i + 1}")[after.index(j)](x)
        return x


class Head(nn.Module):
    """The eval-mode head: pooling, then the BNNeck (whose output is the test feature)."""

    def __init__(self, arch: FastReIDArch) -> None:
        super().__init__()
        self.gem = arch.pooling == "gem"
        if self.gem:
            self.pool_layer = nn.Module()
            self.pool_layer.register_parameter("p", nn.Parameter(torch.ones(1) * 3))
        self.bnneck = nn.BatchNorm1d(arch.feat_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gem:
            p = self.pool_layer.get_parameter("p")
            x = x.clamp(min=GEM_EPS).pow(p).mean(dim=(2, 3)).pow(1.0 / p)
        else:
            x = x.mean(dim=(2, 3))
        return self.bnneck(x)


class FastReIDBaseline(nn.Module):
    def __init__(self, arch: FastReIDArch, *, legacy_maxpool: bool) -> None:
        super().__init__()
        self.backbone = ResNetIBN(arch, legacy_maxpool=legacy_maxpool)
        self.heads = Head(arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(self.backbone(x))


RGB = tuple[float, float, float]


def build_fastreid(
    path: Path, name: str, arch: FastReIDArch
) -> tuple[FastReIDBaseline, str, tuple[RGB, RGB], list[str]]:
    """Read a fast-reid Baseline checkpoint (either layout) and load it strictly.

    Returns (model, layout, (mean, std) in 0-1 units, notes)."""
    what = f"{name} (fast-reid Baseline)"
    sd, dropped = IGNORED.split(read_state_dict(path, what))
    notes = [f"skipped {len(dropped)} keys: {IGNORED.reason}"] if dropped else []
    if "heads.bnneck.weight" in sd:
        layout = "v0.1.1"
    elif "heads.bottleneck.0.weight" in sd:
        layout = "current"
        for k in [k for k in sd if k.startswith("heads.bottleneck.0.")]:
            sd["heads.bnneck." + k[len("heads.bottleneck.0.") :]] = sd.pop(k)
    else:
        raise UserError(
            f"{path}: not a {what} checkpoint (no heads.bnneck.* nor heads.bottleneck.0.* keys); "
            "pass the released weights of this model (see docs/models.md)"
        )
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if "pixel_mean" in sd or "pixel_std" in sd:
        pm = require(sd, "pixel_mean", 4, path, what).flatten() / 255.0
        ps = require(sd, "pixel_std", 4, path, what).flatten() / 255.0
        del sd["pixel_mean"], sd["pixel_std"]
        if pm.numel() != 3 or ps.numel() != 3:
            raise UserError(
                f"{path}: pixel_mean/pixel_std must hold 3 values; pass a released {what}"
            )
        m, d = [round(float(v), 6) for v in pm], [round(float(v), 6) for v in ps]
        mean, std = (m[0], m[1], m[2]), (d[0], d[1], d[2])
        notes.append("normalisation read from the checkpoint's pixel_mean/pixel_std")
    blocks = tuple(
        len({k.split(".")[2] for k in sd if k.startswith(f"backbone.layer{i}.")})
        for i in range(1, 5)
    )
    if blocks != arch.blocks:
        other = [n for n, a in FASTREID_ARCHS.items() if a.blocks == blocks]
        hint = f"is it {' or '.join(other)}?" if other else "pass one of this model's weights"
        raise UserError(
            f"{path}: checkpoint has {blocks} blocks per stage, {what} has {arch.blocks}; {hint}"
        )
    with torch.device("meta"):
        model = FastReIDBaseline(arch, legacy_maxpool=layout == "v0.1.1")
    load_strict(model, sd, path, what)
    return model, layout, (mean, std), notes


def load_fastreid(
    name: str,
    weights: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    *,
    precision: str = "auto",
    channels_last: bool = True,
    arch: FastReIDArch | None = None,
) -> TorchEmbedder:
    """The embedder for one of FASTREID_ARCHS' names."""
    arch = arch or FASTREID_ARCHS[name]
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev, bf16_verified=False)
    path = resolve_weights(name, weights)
    model, layout, (mean, std), notes = build_fastreid(path, name, arch)
    digest = sha256_file(path)
    identity: dict[str, Any] = {"weights_sha256": digest, "layout": layout, "arch": name}
    info = {
        "weights": str(path),
        "weights_sha256": digest,
        "layout": layout,
        "notes": notes,
        "trained_for_reid": True,
    }
    return TorchEmbedder(
        name=name,
        model=model,
        dim=arch.feat_dim,
        preprocess=Preprocess(size=arch.input_hw, mean=mean, std=std, interpolation="bicubic"),
        device=dev,
        precision=prec,
        identity=identity,
        info=info,
        channels_last=channels_last,
    )
