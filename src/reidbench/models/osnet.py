"""OSNet (Zhou et al., ICCV 2019 / TPAMI 2021) in plain torch, in torchreid's layout.

Module and parameter names follow torchreid's `models/osnet.py` (x1_0, x0_75,
x0_5, x0_25) and `models/osnet_ain.py` (ain_x1_0), so the model-zoo checkpoints
load without renaming. Written here rather than imported: torchreid is not on
PyPI in a usable form and pulls its training stack; these networks are small.

Eval-mode output, as torchreid's `OSNet.forward` when `not self.training`:
global average pooling of the last feature map, then `fc` (Linear 512 ->
BatchNorm1d -> ReLU); the identity classifier is not used at test time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class OSNetArch:
    channels: tuple[int, int, int, int]  # stem, conv2, conv3, conv4 widths
    ain: bool = False  # OSNet-AIN: instance norm in the stem and in chosen blocks
    feature_dim: int = 512


OSNET_ARCHS: dict[str, OSNetArch] = {
    "osnet_x1_0": OSNetArch((64, 256, 384, 512)),
    "osnet_x0_75": OSNetArch((48, 192, 288, 384)),
    "osnet_x0_5": OSNetArch((32, 128, 192, 256)),
    "osnet_x0_25": OSNetArch((16, 64, 96, 128)),
    "osnet_ain_x1_0": OSNetArch((64, 256, 384, 512), ain=True),
}
# osnet_ain_x1_0's blocks per stage: True = block with instance norm inside the residual.
_AIN_BLOCKS = ((True, True), (False, True), (True, False))


class ConvNorm(nn.Module):
    """conv -> norm (BatchNorm2d, affine InstanceNorm2d, or none) -> optional ReLU.

    Attribute names `conv` / `bn` are torchreid's ConvLayer, Conv1x1 and Conv1x1Linear."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 1,
        stride: int = 1,
        padding: int = 0,
        *,
        norm: str | None = "bn",
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn: nn.Module | None
        if norm == "bn":
            self.bn = nn.BatchNorm2d(cout)
        elif norm == "in":
            self.bn = nn.InstanceNorm2d(cout, affine=True)
        else:
            self.bn = None
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class LightConv3x3(nn.Module):
    """Pointwise conv (linear) then depthwise 3x3, BN, ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False, groups=cout)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv2(self.conv1(x))))


class LightConvStream(nn.Module):
    """`depth` LightConv3x3 in a row (osnet_ain's name for one stream: `layers`)."""

    def __init__(self, channels: int, depth: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[LightConv3x3(channels, channels) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ChannelGate(nn.Module):
    """Shared aggregation gate: sigmoid(fc2(relu(fc1(avgpool(x))))) * x."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = F.adaptive_avg_pool2d(x, 1)
        g = torch.sigmoid(self.fc2(F.relu(self.fc1(g))))
        return x * g


class OSBlock(nn.Module):
    """Omni-scale residual block, osnet.py names: streams `conv2a`..`conv2d` (1-4 convs)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = cout // 4
        self.conv1 = ConvNorm(cin, mid)
        self.conv2a = LightConv3x3(mid, mid)
        self.conv2b = nn.Sequential(*[LightConv3x3(mid, mid) for _ in range(2)])
        self.conv2c = nn.Sequential(*[LightConv3x3(mid, mid) for _ in range(3)])
        self.conv2d = nn.Sequential(*[LightConv3x3(mid, mid) for _ in range(4)])
        self.gate = ChannelGate(mid)
        self.conv3 = ConvNorm(mid, cout, relu=False)
        self.downsample = ConvNorm(cin, cout, relu=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        streams = (self.conv2a, self.conv2b, self.conv2c, self.conv2d)
        x2 = sum(self.gate(s(x1)) for s in streams)
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv3(x2) + identity)


class OSBlockAIN(nn.Module):
    """Omni-scale block, osnet_ain.py names: `conv2` a ModuleList of 1-4 conv streams.

    With `instance_norm` (torchreid's OSBlockINin) conv3 has no BN and an affine
    InstanceNorm2d (`IN`) is applied to the residual branch before the sum."""

    def __init__(self, cin: int, cout: int, instance_norm: bool) -> None:
        super().__init__()
        mid = cout // 4
        self.conv1 = ConvNorm(cin, mid)
        self.conv2 = nn.ModuleList([LightConvStream(mid, t) for t in range(1, 5)])
        self.gate = ChannelGate(mid)
        self.conv3 = ConvNorm(mid, cout, norm=None if instance_norm else "bn", relu=False)
        self.downsample = ConvNorm(cin, cout, relu=False) if cin != cout else None
        self.IN = nn.InstanceNorm2d(cout, affine=True) if instance_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = sum(self.gate(stream(x1)) for stream in self.conv2)
        x3 = self.conv3(x2)
        if self.IN is not None:
            x3 = self.IN(x3)
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(x3 + identity)


def _transition(channels: int) -> nn.Sequential:
    """1x1 conv-BN-ReLU then 2x2 average pooling (halves the feature map)."""
    return nn.Sequential(ConvNorm(channels, channels), nn.AvgPool2d(2, stride=2))


class OSNet(nn.Module):
    """OSNet / OSNet-AIN; `forward` returns the eval-mode feature (fc output, 512-d)."""

    def __init__(self, arch: OSNetArch) -> None:
        super().__init__()
        c0, c1, c2, c3 = arch.channels
        self.ain = arch.ain
        self.conv1 = ConvNorm(3, c0, 7, stride=2, padding=3, norm="in" if arch.ain else "bn")
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        if arch.ain:
            # osnet_ain.py: transitions are separate modules pool2 / pool3.
            self.conv2 = self._ain_stage(c0, c1, _AIN_BLOCKS[0])
            self.pool2 = _transition(c1)
            self.conv3 = self._ain_stage(c1, c2, _AIN_BLOCKS[1])
            self.pool3 = _transition(c2)
            self.conv4 = self._ain_stage(c2, c3, _AIN_BLOCKS[2])
        else:
            # osnet.py: the transition is the last entry of conv2 / conv3.
            self.conv2 = nn.Sequential(OSBlock(c0, c1), OSBlock(c1, c1), _transition(c1))
            self.conv3 = nn.Sequential(OSBlock(c1, c2), OSBlock(c2, c2), _transition(c2))
            self.conv4 = nn.Sequential(OSBlock(c2, c3), OSBlock(c3, c3))
        self.conv5 = ConvNorm(c3, c3)
        self.fc = nn.Sequential(
            nn.Linear(c3, arch.feature_dim),
            nn.BatchNorm1d(arch.feature_dim),
            nn.ReLU(),
        )

    @staticmethod
    def _ain_stage(cin: int, cout: int, kinds: tuple[bool, bool]) -> nn.Sequential:
        first, second = kinds
        return nn.Sequential(OSBlockAIN(cin, cout, first), OSBlockAIN(cout, cout, second))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.conv2(x)
        if self.ain:
            x = self.pool2(x)
        x = self.conv3(x)
        if self.ain:
            x = self.pool3(x)
        x = self.conv5(self.conv4(x))
        v = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(v)


def fold_batchnorm(model: OSNet) -> OSNet:
    """Fold each eval-mode BatchNorm2d into the conv before it (in place).

    The same function with one op fewer per conv: ~25% more images per CPU-second
    on OSNet x1.0 (docs/benchmarks.md), outputs equal to ~1e-7. Uses torch's own
    `fuse_conv_bn_eval`. Instance norms (OSNet-AIN) are per-image and stay as they are.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in list(model.modules()):
        if isinstance(module, ConvNorm) and isinstance(module.bn, nn.BatchNorm2d):
            module.conv = fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = None
        elif isinstance(module, LightConv3x3) and isinstance(module.bn, nn.BatchNorm2d):
            module.conv2 = fuse_conv_bn_eval(module.conv2, module.bn)
            module.bn = nn.Identity()  # type: ignore[assignment]
    return model
