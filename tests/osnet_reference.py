"""An independent OSNet for the tests: torchreid's checkpoint key layout written out by
hand (from torchreid/models/osnet.py and osnet_ain.py) and a functional forward over
such a state dict (no nn.Module, no code shared with reidbench.models.osnet)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

WIDTHS = {
    "osnet_x1_0": (64, 256, 384, 512),
    "osnet_x0_75": (48, 192, 288, 384),
    "osnet_x0_5": (32, 128, 192, 256),
    "osnet_x0_25": (16, 64, 96, 128),
    "osnet_ain_x1_0": (64, 256, 384, 512),
}
# osnet_ain_x1_0: [[OSBlockINin, OSBlockINin], [OSBlock, OSBlockINin], [OSBlockINin, OSBlock]]
AIN_IN = [[True, True], [False, True], [True, False]]


class _Maker:
    """Fills a dict with torchreid-named tensors of plausible scale (so features stay finite
    and non-degenerate through ~100 layers)."""

    def __init__(self, seed: int) -> None:
        self.g = torch.Generator().manual_seed(seed)
        self.sd: dict[str, torch.Tensor] = {}

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=self.g)

    def conv(self, key: str, cout: int, cin: int, k: int, bias: bool = False) -> None:
        self.sd[key + ".weight"] = self._rand(cout, cin, k, k) * (2.0 / (cin * k * k)) ** 0.5
        if bias:
            self.sd[key + ".bias"] = self._rand(cout) * 0.1

    def bn(self, key: str, c: int) -> None:
        self.sd[key + ".weight"] = 0.5 + torch.rand(c, generator=self.g)
        self.sd[key + ".bias"] = self._rand(c) * 0.1
        self.sd[key + ".running_mean"] = self._rand(c) * 0.1
        self.sd[key + ".running_var"] = 0.5 + torch.rand(c, generator=self.g)
        self.sd[key + ".num_batches_tracked"] = torch.tensor(1234)

    def inorm(self, key: str, c: int) -> None:
        self.sd[key + ".weight"] = 0.5 + torch.rand(c, generator=self.g)
        self.sd[key + ".bias"] = self._rand(c) * 0.1

    def conv_bn(self, key: str, cout: int, cin: int, k: int = 1) -> None:
        self.conv(key + ".conv", cout, cin, k)
        self.bn(key + ".bn", cout)

    def light(self, key: str, cin: int, cout: int) -> None:
        self.conv(key + ".conv1", cout, cin, 1)
        self.sd[key + ".conv2.weight"] = self._rand(cout, 1, 3, 3) * (2.0 / 9) ** 0.5
        self.bn(key + ".bn", cout)

    def gate(self, key: str, c: int) -> None:
        self.conv(key + ".fc1", c // 16, c, 1, bias=True)
        self.conv(key + ".fc2", c, c // 16, 1, bias=True)


def torchreid_state_dict(name: str, num_classes: int = 751, seed: int = 0) -> dict:
    """The state dict torchreid's `osnet_*(num_classes)` has, with random values."""
    c0, c1, c2, c3 = WIDTHS[name]
    ain = "ain" in name
    m = _Maker(seed)
    m.conv("conv1.conv", c0, 3, 7)
    (m.inorm if ain else m.bn)("conv1.bn", c0)

    def block(key: str, cin: int, cout: int, instance_norm: bool) -> None:
        mid = cout // 4
        m.conv_bn(key + ".conv1", mid, cin)
        if ain:
            for t in range(1, 5):
                for j in range(t):
                    m.light(f"{key}.conv2.{t - 1}.layers.{j}", mid, mid)
        else:
            m.light(key + ".conv2a", mid, mid)
            for stream, depth in (("conv2b", 2), ("conv2c", 3), ("conv2d", 4)):
                for j in range(depth):
                    m.light(f"{key}.{stream}.{j}", mid, mid)
        m.gate(key + ".gate", mid)
        if instance_norm:
            m.conv(key + ".conv3.conv", cout, mid, 1)
            m.inorm(key + ".IN", cout)
        else:
            m.conv_bn(key + ".conv3", cout, mid)
        if cin != cout:
            m.conv_bn(key + ".downsample", cout, cin)

    stages = [("conv2", c0, c1), ("conv3", c1, c2), ("conv4", c2, c3)]
    for i, (stage, cin, cout) in enumerate(stages):
        kinds = AIN_IN[i] if ain else [False, False]
        block(f"{stage}.0", cin, cout, kinds[0])
        block(f"{stage}.1", cout, cout, kinds[1])
        if i < 2:
            m.conv_bn(f"pool{i + 2}.0" if ain else f"{stage}.2.0", cout, cout)
    m.conv_bn("conv5", c3, c3)
    m.sd["fc.0.weight"] = m._rand(512, c3) * (1.0 / c3) ** 0.5
    m.sd["fc.0.bias"] = m._rand(512) * 0.1
    m.bn("fc.1", 512)
    m.sd["classifier.weight"] = m._rand(num_classes, 512) * 0.01
    m.sd["classifier.bias"] = torch.zeros(num_classes)
    return m.sd


def reference_forward(name: str, sd: dict, x: torch.Tensor) -> torch.Tensor:
    """torchreid's eval-mode OSNet forward, written functionally over the state dict."""
    ain = "ain" in name

    def bn(y: torch.Tensor, key: str) -> torch.Tensor:
        return F.batch_norm(
            y,
            sd[key + ".running_mean"],
            sd[key + ".running_var"],
            sd[key + ".weight"],
            sd[key + ".bias"],
            training=False,
            eps=1e-5,
        )

    def inorm(y: torch.Tensor, key: str) -> torch.Tensor:
        return F.instance_norm(y, weight=sd[key + ".weight"], bias=sd[key + ".bias"], eps=1e-5)

    def conv1x1(y: torch.Tensor, key: str, relu: bool = True) -> torch.Tensor:
        y = bn(F.conv2d(y, sd[key + ".conv.weight"]), key + ".bn")
        return F.relu(y) if relu else y

    def light(y: torch.Tensor, key: str) -> torch.Tensor:
        y = F.conv2d(y, sd[key + ".conv1.weight"])
        y = F.conv2d(y, sd[key + ".conv2.weight"], padding=1, groups=y.shape[1])
        return F.relu(bn(y, key + ".bn"))

    def gate(y: torch.Tensor, key: str) -> torch.Tensor:
        g = y.mean(dim=(2, 3), keepdim=True)
        g = F.relu(F.conv2d(g, sd[key + ".fc1.weight"], sd[key + ".fc1.bias"]))
        g = torch.sigmoid(F.conv2d(g, sd[key + ".fc2.weight"], sd[key + ".fc2.bias"]))
        return y * g

    def block(y: torch.Tensor, key: str) -> torch.Tensor:
        x1 = conv1x1(y, key + ".conv1")
        x2 = torch.zeros(())
        for t in range(1, 5):
            z = x1
            for j in range(t):
                if ain:
                    z = light(z, f"{key}.conv2.{t - 1}.layers.{j}")
                else:
                    stream = "conv2" + "abcd"[t - 1]
                    z = light(z, f"{key}.{stream}" if t == 1 else f"{key}.{stream}.{j}")
            x2 = x2 + gate(z, key + ".gate")
        if key + ".IN.weight" in sd:
            x3 = inorm(F.conv2d(x2, sd[key + ".conv3.conv.weight"]), key + ".IN")
        else:
            x3 = conv1x1(x2, key + ".conv3", relu=False)
        identity = y
        if key + ".downsample.conv.weight" in sd:
            identity = conv1x1(y, key + ".downsample", relu=False)
        return F.relu(x3 + identity)

    y = F.conv2d(x, sd["conv1.conv.weight"], stride=2, padding=3)
    y = F.relu(inorm(y, "conv1.bn") if ain else bn(y, "conv1.bn"))
    y = F.max_pool2d(y, 3, stride=2, padding=1)
    for i, stage in enumerate(("conv2", "conv3", "conv4")):
        y = block(block(y, f"{stage}.0"), f"{stage}.1")
        if i < 2:
            y = conv1x1(y, f"pool{i + 2}.0" if ain else f"{stage}.2.0")
            y = F.avg_pool2d(y, 2, stride=2)
    y = conv1x1(y, "conv5")
    v = y.mean(dim=(2, 3))
    v = F.linear(v, sd["fc.0.weight"], sd["fc.0.bias"])
    return F.relu(bn(v, "fc.1"))


def torchreid_preprocess(images: list[Image.Image]) -> torch.Tensor:
    """torchreid's test transform: Resize((256, 128)) bilinear, ToTensor, ImageNet mean/std."""
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    arrs = [
        (np.asarray(im.convert("RGB").resize((128, 256), Image.BILINEAR), np.float32) / 255 - mean)
        / std
        for im in images
    ]
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()
