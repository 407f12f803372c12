"""Helpers for the model-zoo tests: state dicts in each original project's saved layout
(random values), written key by key from the originals' module structure (not from our
modules), and naive reference forwards that follow the original code line by line.

Originals read: damo-cv/TransReID model/make_model.py (build_transformer_local,
shuffle_unit) and model/backbones/vit_pytorch.py; Syliz517/CLIP-ReID
model/make_model_clipreid.py and model/clip/model.py; JDAI-CV/fast-reid at the v0.1.1
model release (fastreid/modeling/backbones/resnet.py, layers/non_local.py,
layers/pooling.py, heads/bnneck_head.py, meta_arch/baseline.py). Holds no tests.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

Sd = dict[str, torch.Tensor]


class Rand:
    """Random tensors of realistic scale so a mis-wired layer shows in the features."""

    def __init__(self, seed: int, dtype: torch.dtype = torch.float32) -> None:
        self.gen = torch.Generator().manual_seed(seed)
        self.dtype = dtype

    def w(self, *shape: int, std: float = 0.02) -> torch.Tensor:
        return (std * torch.randn(shape, generator=self.gen)).to(self.dtype)

    def norm(self, sd: Sd, prefix: str, n: int) -> None:
        sd[prefix + "weight"] = (0.5 + torch.rand(n, generator=self.gen)).to(self.dtype)
        sd[prefix + "bias"] = self.w(n, std=0.1)

    def bn(self, sd: Sd, prefix: str, n: int) -> None:
        self.norm(sd, prefix, n)
        sd[prefix + "running_mean"] = self.w(n, std=0.1)
        sd[prefix + "running_var"] = (0.5 + 1.5 * torch.rand(n, generator=self.gen)).to(self.dtype)
        sd[prefix + "num_batches_tracked"] = torch.tensor(777, dtype=torch.int64)

    def linear(self, sd: Sd, prefix: str, n_in: int, n_out: int, bias: bool = True) -> None:
        sd[prefix + "weight"] = self.w(n_out, n_in)
        if bias:
            sd[prefix + "bias"] = self.w(n_out, std=0.02)


def images(n: int = 3, seed: int = 0, size: tuple[int, int] = (64, 160)) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = rng.integers(0, 255, (8, 4, 3), dtype=np.uint8)
        im = Image.fromarray(base).resize(size, Image.Resampling.NEAREST)
        noise = rng.integers(-20, 20, (size[1], size[0], 3))
        out.append(Image.fromarray(np.clip(np.asarray(im) + noise, 0, 255).astype(np.uint8)))
    return out


def to_input(ims: list[Image.Image], hw: tuple[int, int], mean, std, resample) -> torch.Tensor:
    """torchvision's test transform by hand: T.Resize on PIL, ToTensor, Normalize."""
    h, w = hw
    arr = np.stack([np.asarray(im.convert("RGB").resize((w, h), resample)) for im in ims])
    x = torch.from_numpy(arr).permute(0, 3, 1, 2).double() / 255.0
    m = torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1)
    return (x - m) / s


def cosine(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


# ----------------------------------------------------------------------------- TransReID
def transreid_block_sd(r: Rand, sd: Sd, p: str, d: int) -> None:
    r.norm(sd, p + "norm1.", d)
    r.linear(sd, p + "attn.qkv.", d, 3 * d)
    r.linear(sd, p + "attn.proj.", d, d)
    r.norm(sd, p + "norm2.", d)
    r.linear(sd, p + "mlp.fc1.", d, 4 * d)
    r.linear(sd, p + "mlp.fc2.", 4 * d, d)


def transreid_sd(
    *,
    dim: int,
    depth: int,
    tokens: int,
    cameras: int,
    ids: int = 11,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Sd:
    """`build_transformer_local(...).state_dict()` (ID_LOSS_TYPE softmax, SIE_CAMERA on)."""
    r = Rand(seed, dtype)
    sd: Sd = {"base.cls_token": r.w(1, 1, dim), "base.pos_embed": r.w(1, tokens, dim)}
    if cameras:
        sd["base.sie_embed"] = r.w(cameras, 1, dim, std=0.2)
    sd["base.patch_embed.proj.weight"] = r.w(dim, 3, 16, 16)
    sd["base.patch_embed.proj.bias"] = r.w(dim)
    for i in range(depth):
        transreid_block_sd(r, sd, f"base.blocks.{i}.", dim)
    r.norm(sd, "base.norm.", dim)
    r.linear(sd, "base.fc.", dim, 1000)  # TransReID keeps its ImageNet head (num_classes=1000)
    for b in ("b1", "b2"):
        transreid_block_sd(r, sd, f"{b}.0.", dim)
        r.norm(sd, f"{b}.1.", dim)
    for s in ("", "_1", "_2", "_3", "_4"):
        sd[f"classifier{s}.weight"] = r.w(ids, dim, std=0.001)
        r.bn(sd, f"bottleneck{s}.", dim)
    return sd


def _vit_block_ref(sd: Sd, p: str, x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, c = x.shape
    h = F.layer_norm(x, (c,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], 1e-6)
    qkv = F.linear(h, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"])
    qkv = qkv.reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    attn = ((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5).softmax(dim=-1)
    h = (attn @ v).transpose(1, 2).reshape(b, n, c)
    x = x + F.linear(h, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
    h = F.layer_norm(x, (c,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], 1e-6)
    h = F.gelu(F.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"]))
    return x + F.linear(h, sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])


def _shuffle_unit_ref(features: torch.Tensor, shift: int, group: int, begin: int = 1):
    batchsize, dim = features.size(0), features.size(-1)
    x = torch.cat([features[:, begin - 1 + shift :], features[:, begin : begin - 1 + shift]], 1)
    try:
        x = x.view(batchsize, group, -1, dim)
    except RuntimeError:
        x = torch.cat([x, x[:, -2:-1, :]], dim=1)
        x = x.view(batchsize, group, -1, dim)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, -1, dim)


def transreid_ref(
    sd: Sd,
    x: torch.Tensor,
    camids,
    *,
    heads: int,
    stride: int,
    sie_coe: float = 3.0,
    neck_feat: str = "before",
) -> torch.Tensor:
    """build_transformer_local.forward in eval mode (float64)."""
    sd = {k: v.double() if v.is_floating_point() else v for k, v in sd.items()}
    dim = sd["base.cls_token"].shape[-1]
    depth = len({k.split(".")[2] for k in sd if k.startswith("base.blocks.")})
    t = F.conv2d(x, sd["base.patch_embed.proj.weight"], sd["base.patch_embed.proj.bias"], stride)
    t = t.flatten(2).transpose(1, 2)
    t = torch.cat((sd["base.cls_token"].expand(x.shape[0], -1, -1), t), dim=1)
    if camids is not None:
        t = t + sd["base.pos_embed"] + sie_coe * sd["base.sie_embed"][camids]
    else:
        t = t + sd["base.pos_embed"]
    for i in range(depth - 1):
        t = _vit_block_ref(sd, f"base.blocks.{i}.", t, heads)

    def branch(name: str, z: torch.Tensor) -> torch.Tensor:
        z = _vit_block_ref(sd, f"{name}.0.", z, heads)
        return F.layer_norm(z, (dim,), sd[f"{name}.1.weight"], sd[f"{name}.1.bias"], 1e-6)

    global_feat = branch("b1", t)[:, 0]
    patch_length = (t.size(1) - 1) // 4
    token = t[:, 0:1]
    z = _shuffle_unit_ref(t, 5, 2)
    locs = [
        branch("b2", torch.cat((token, z[:, patch_length * i : patch_length * (i + 1)]), 1))[:, 0]
        for i in range(4)
    ]
    if neck_feat == "after":

        def bn(p, f):
            return F.batch_norm(
                f,
                sd[p + "running_mean"],
                sd[p + "running_var"],
                sd[p + "weight"],
                sd[p + "bias"],
                False,
                0.0,
                1e-5,
            )

        global_feat = bn("bottleneck.", global_feat)
        locs = [bn(f"bottleneck_{i + 1}.", f) for i, f in enumerate(locs)]
    return torch.cat([global_feat] + [f / 4 for f in locs], dim=1)


# ----------------------------------------------------------------------------- CLIP-ReID
def clipreid_sd(
    *,
    width: int,
    layers: int,
    tokens: int,
    out_dim: int,
    cameras: int,
    ids: int = 11,
    text_width: int = 32,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Sd:
    """`make_model_clipreid.build_transformer(...).state_dict()` (ViT-B-16, SIE_CAMERA)."""
    r = Rand(seed, dtype)
    sd: Sd = {
        "classifier.weight": r.w(ids, width, std=0.001),
        "classifier_proj.weight": r.w(ids, out_dim, std=0.001),
    }
    r.bn(sd, "bottleneck.", width)
    r.bn(sd, "bottleneck_proj.", out_dim)
    p = "image_encoder."
    sd[p + "class_embedding"] = r.w(width, std=width**-0.5)
    sd[p + "positional_embedding"] = r.w(tokens, width, std=width**-0.5)
    sd[p + "proj"] = r.w(width, out_dim, std=width**-0.5)
    sd[p + "conv1.weight"] = r.w(width, 3, 16, 16)
    r.norm(sd, p + "ln_pre.", width)
    for i in range(layers):
        q = f"{p}transformer.resblocks.{i}."
        sd[q + "attn.in_proj_weight"] = r.w(3 * width, width)
        sd[q + "attn.in_proj_bias"] = r.w(3 * width)
        r.linear(sd, q + "attn.out_proj.", width, width)
        r.norm(sd, q + "ln_1.", width)
        r.linear(sd, q + "mlp.c_fc.", width, 4 * width)
        r.linear(sd, q + "mlp.c_proj.", 4 * width, width)
        r.norm(sd, q + "ln_2.", width)
    r.norm(sd, p + "ln_post.", width)
    if cameras:
        sd["cv_embed"] = r.w(cameras, width, std=0.5)
    sd["prompt_learner.cls_ctx"] = r.w(ids, 4, text_width)
    sd["prompt_learner.token_prefix"] = r.w(1, 5, text_width)
    sd["prompt_learner.token_suffix"] = r.w(1, 68, text_width)
    q = "text_encoder."
    sd[q + "positional_embedding"] = r.w(77, text_width)
    sd[q + "text_projection"] = r.w(text_width, out_dim)
    r.norm(sd, q + "ln_final.", text_width)
    sd[q + "transformer.resblocks.0.attn.in_proj_weight"] = r.w(3 * text_width, text_width)
    return sd


def clipreid_ref(
    sd: Sd, x: torch.Tensor, camids, *, heads: int, stride: int, sie_coe: float = 1.0
) -> torch.Tensor:
    """build_transformer.forward (ViT-B-16, eval, NECK_FEAT before) in float64, LND layout
    and nn.MultiheadAttention's maths written out."""
    sd = {k: v.double() if v.is_floating_point() else v for k, v in sd.items()}
    p = "image_encoder."
    width = sd[p + "class_embedding"].shape[0]
    layers = len({k.split(".")[3] for k in sd if k.startswith(p + "transformer.resblocks.")})
    cv = sie_coe * sd["cv_embed"][camids] if camids is not None else None
    z = F.conv2d(x, sd[p + "conv1.weight"], None, stride)
    z = z.reshape(z.shape[0], z.shape[1], -1).permute(0, 2, 1)
    cls = sd[p + "class_embedding"] + torch.zeros(z.shape[0], 1, width, dtype=z.dtype)
    z = torch.cat([cls, z], dim=1)
    if cv is not None:
        z[:, 0] = z[:, 0] + cv
    z = z + sd[p + "positional_embedding"]
    z = F.layer_norm(z, (width,), sd[p + "ln_pre.weight"], sd[p + "ln_pre.bias"])
    z = z.permute(1, 0, 2)  # LND
    for i in range(layers):
        q = f"{p}transformer.resblocks.{i}."
        h = F.layer_norm(z, (width,), sd[q + "ln_1.weight"], sd[q + "ln_1.bias"])
        n, b, c = h.shape
        qkv = F.linear(h, sd[q + "attn.in_proj_weight"], sd[q + "attn.in_proj_bias"])
        qq, kk, vv = qkv.chunk(3, dim=-1)

        def split(t, n=n, b=b, c=c):
            return t.reshape(n, b * heads, c // heads).transpose(0, 1)

        qq, kk, vv = split(qq) * (c // heads) ** -0.5, split(kk), split(vv)
        a = (qq @ kk.transpose(1, 2)).softmax(-1) @ vv
        a = a.transpose(0, 1).reshape(n, b, c)
        z = z + F.linear(a, sd[q + "attn.out_proj.weight"], sd[q + "attn.out_proj.bias"])
        h = F.layer_norm(z, (width,), sd[q + "ln_2.weight"], sd[q + "ln_2.bias"])
        h = F.linear(h, sd[q + "mlp.c_fc.weight"], sd[q + "mlp.c_fc.bias"])
        h = h * torch.sigmoid(1.702 * h)
        z = z + F.linear(h, sd[q + "mlp.c_proj.weight"], sd[q + "mlp.c_proj.bias"])
    x12 = F.layer_norm(
        z.permute(1, 0, 2), (width,), sd[p + "ln_post.weight"], sd[p + "ln_post.bias"]
    )
    xproj = x12 @ sd[p + "proj"]
    return torch.cat([x12[:, 0], xproj[:, 0]], dim=1)


# ----------------------------------------------------------------------------- fast-reid
def fastreid_sd(
    *,
    width: int,
    blocks,
    non_local,
    gem: bool,
    ids: int = 11,
    layout: str = "v0.1.1",
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Sd:
    """`Baseline(cfg).state_dict()` as saved by fast-reid's Checkpointer["model"] (v0.1.1:
    BNneckHead; "current": EmbeddingHead) for ResNet-IBN-a (+ non-local)."""
    r = Rand(seed, dtype)
    sd: Sd = {}
    if layout == "v0.1.1":
        sd["pixel_mean"] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
        sd["pixel_std"] = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    b = "backbone."

    def conv(name, cin, cout, k, bias=False):
        sd[name + ".weight"] = r.w(cout, cin, k, k, std=math.sqrt(2.0 / (k * k * cout)))
        if bias:
            sd[name + ".bias"] = r.w(cout, std=0.02)

    conv(b + "conv1", 3, width, 7)
    r.bn(sd, b + "bn1.", width)
    inplanes = width
    for i, n in enumerate(blocks):
        planes = width * 2**i
        for j in range(n):
            p = f"{b}layer{i + 1}.{j}."
            cin = inplanes if j == 0 else planes * 4
            conv(p + "conv1", cin, planes, 1)
            if i < 3:
                sd[p + "bn1.IN.weight"] = (0.5 + torch.rand(planes // 2, generator=r.gen)).to(dtype)
                sd[p + "bn1.IN.bias"] = r.w(planes // 2, std=0.1)
                r.bn(sd, p + "bn1.BN.", planes - planes // 2)
            else:
                r.bn(sd, p + "bn1.", planes)
            conv(p + "conv2", planes, planes, 3)
            r.bn(sd, p + "bn2.", planes)
            conv(p + "conv3", planes, planes * 4, 1)
            r.bn(sd, p + "bn3.", planes * 4)
            if j == 0:
                conv(p + "downsample.0", cin, planes * 4, 1)
                r.bn(sd, p + "downsample.1.", planes * 4)
        inplanes = planes * 4
    for i, count in enumerate(non_local):
        ch = width * 2**i * 4
        for j in range(count):
            p = f"{b}NL_{i + 1}.{j}."
            for name in ("g", "theta", "phi"):  # small: the NL term is cubic in x
                sd[p + name + ".weight"] = r.w(1, ch, 1, 1, std=0.3 / math.sqrt(ch))
                sd[p + name + ".bias"] = r.w(1, std=0.1)
            sd[p + "W.0.weight"] = r.w(ch, 1, 1, 1, std=0.5)
            sd[p + "W.0.bias"] = r.w(ch)
            r.bn(sd, p + "W.1.", ch)
    feat = width * 32
    if gem:
        sd["heads.pool_layer.p"] = torch.tensor([3.2]).to(dtype)
    if layout == "v0.1.1":
        r.bn(sd, "heads.bnneck.", feat)
        sd["heads.classifier.weight"] = r.w(ids, feat, std=0.01)
    else:
        r.bn(sd, "heads.bottleneck.0.", feat)  # bias frozen in training, still saved
        sd["heads.weight"] = r.w(ids, feat, std=0.01)
    return sd


def _bn(sd: Sd, p: str, x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(
        x,
        sd[p + "running_mean"],
        sd[p + "running_var"],
        sd[p + "weight"],
        sd[p + "bias"],
        False,
        0.0,
        1e-5,
    )


def fastreid_ref(sd: Sd, x: torch.Tensor, *, blocks, non_local, gem: bool, legacy: bool):
    """Baseline.forward in eval mode (float64); images already normalised."""
    sd = {k: v.double() if v.is_floating_point() else v for k, v in sd.items()}
    b = "backbone."
    x = F.relu(_bn(sd, b + "bn1.", F.conv2d(x, sd[b + "conv1.weight"], stride=2, padding=3)))
    # v0.1.1: MaxPool2d(3, 2, padding=1); from Aug. 2020: MaxPool2d(3, 2, ceil_mode=True)
    x = F.max_pool2d(x, 3, 2, padding=1) if legacy else F.max_pool2d(x, 3, 2, ceil_mode=True)
    for i, n in enumerate(blocks):
        nl_idx = sorted([n - (k + 1) for k in range(non_local[i])]) or [-1]
        counter = 0
        for j in range(n):
            p = f"{b}layer{i + 1}.{j}."
            stride = (1, 2, 2, 1)[i] if j == 0 else 1
            out = F.conv2d(x, sd[p + "conv1.weight"])
            if i < 3:
                half = int(out.shape[1] / 2)
                s1, s2 = torch.split(out, half, 1)
                s1 = F.instance_norm(s1, weight=sd[p + "bn1.IN.weight"], bias=sd[p + "bn1.IN.bias"])
                out = torch.cat((s1, _bn(sd, p + "bn1.BN.", s2)), 1)
            else:
                out = _bn(sd, p + "bn1.", out)
            out = F.relu(out)
            out = F.relu(
                _bn(sd, p + "bn2.", F.conv2d(out, sd[p + "conv2.weight"], None, stride, 1))
            )
            out = _bn(sd, p + "bn3.", F.conv2d(out, sd[p + "conv3.weight"]))
            if j == 0:
                res = _bn(
                    sd,
                    p + "downsample.1.",
                    F.conv2d(x, sd[p + "downsample.0.weight"], None, stride),
                )
            else:
                res = x
            x = F.relu(out + res)
            if j == nl_idx[counter]:
                q = f"{b}NL_{i + 1}.{counter}."
                bs = x.size(0)
                g_x = (
                    F.conv2d(x, sd[q + "g.weight"], sd[q + "g.bias"])
                    .view(bs, 1, -1)
                    .permute(0, 2, 1)
                )
                th = F.conv2d(x, sd[q + "theta.weight"], sd[q + "theta.bias"]).view(bs, 1, -1)
                th = th.permute(0, 2, 1)
                ph = F.conv2d(x, sd[q + "phi.weight"], sd[q + "phi.bias"]).view(bs, 1, -1)
                f = torch.matmul(th, ph)
                y = torch.matmul(f / f.size(-1), g_x).permute(0, 2, 1).contiguous()
                y = y.view(bs, 1, *x.size()[2:])
                w_y = _bn(sd, q + "W.1.", F.conv2d(y, sd[q + "W.0.weight"], sd[q + "W.0.bias"]))
                x = w_y + x
                counter += 1
    if gem:
        p = sd["heads.pool_layer.p"]
        pooled = F.adaptive_avg_pool2d(x.clamp(min=1e-6).pow(p), 1).pow(1.0 / p)
    else:
        pooled = F.adaptive_avg_pool2d(x, 1)
    head = "heads.bnneck." if "heads.bnneck.weight" in sd else "heads.bottleneck.0."
    return _bn(sd, head, pooled)[..., 0, 0]
