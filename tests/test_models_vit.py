"""The plain-torch TransReID ViT: shapes, attention maths, forward against a hand-written one."""

from __future__ import annotations

import functools

import pytest
import torch

from reidbench.models.vit import VIT_BASE, VIT_SMALL, Attention, ReIDViT, TransReIDViT, ViTConfig
from tests.test_models_fixtures import finetuned_state_dict, reference_forward


def test_configs_match_personvit():
    assert (VIT_SMALL.embed_dim, VIT_SMALL.num_heads, VIT_SMALL.depth) == (384, 6, 12)
    assert (VIT_BASE.embed_dim, VIT_BASE.num_heads, VIT_BASE.depth) == (768, 12, 12)
    for cfg in (VIT_SMALL, VIT_BASE):
        assert cfg.img_size == (256, 128)
        assert cfg.grid == (16, 8)
        assert cfg.num_tokens == 129


@functools.cache
def _small_sd() -> dict[str, torch.Tensor]:
    return finetuned_state_dict(VIT_SMALL, seed=3)


def _loaded(neck_feat: str = "before") -> ReIDViT:
    with torch.device("meta"):
        model = ReIDViT(VIT_SMALL, fc_classes=1000, num_ids=7, neck_feat=neck_feat)
    model.load_state_dict(_small_sd(), strict=True, assign=True)
    return model.eval()


def test_state_dict_keys_are_transreid_layout():
    with torch.device("meta"):
        model = TransReIDViT(VIT_SMALL, num_classes=1000)
        reid_model = ReIDViT(VIT_SMALL, fc_classes=1000, num_ids=751)
    sd = model.state_dict()
    assert sd["cls_token"].shape == (1, 1, 384)
    assert sd["pos_embed"].shape == (1, 129, 384)
    assert sd["patch_embed.proj.weight"].shape == (384, 3, 16, 16)
    assert sd["blocks.11.attn.qkv.bias"].shape == (1152,)
    assert sd["blocks.0.mlp.fc1.weight"].shape == (1536, 384)
    assert sd["fc.weight"].shape == (1000, 384)
    block_keys = {k.split(".", 2)[2] for k in sd if k.startswith("blocks.0.")}
    assert block_keys == {
        f"{m}.{p}"
        for m in ["norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"]
        for p in ["weight", "bias"]
    }
    assert model.norm.eps == 1e-6 and model.blocks[0].norm1.eps == 1e-6
    reid = reid_model.state_dict()
    assert set(reid) - {f"base.{k}" for k in sd} == {
        "bottleneck.weight",
        "bottleneck.bias",
        "bottleneck.running_mean",
        "bottleneck.running_var",
        "bottleneck.num_batches_tracked",
        "classifier.weight",
    }
    assert reid["classifier.weight"].shape == (751, 384)


def test_sdpa_attention_equals_naive_softmax_attention():
    torch.manual_seed(1)
    attn = Attention(48, 6).eval()
    x = torch.randn(3, 11, 48)
    b, n, c = x.shape
    qkv = attn.qkv(x).reshape(b, n, 3, 6, c // 6).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    naive = ((q @ k.transpose(-2, -1)) * (c // 6) ** -0.5).softmax(dim=-1) @ v
    naive = attn.proj(naive.transpose(1, 2).reshape(b, n, c))
    with torch.no_grad():
        torch.testing.assert_close(attn(x), naive, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_forward_matches_hand_written_reference():
    cfg = ViTConfig(embed_dim=384, depth=12, num_heads=6)
    assert cfg == VIT_SMALL
    model = _loaded()
    x = torch.randn(3, 3, 256, 128)
    with torch.no_grad():
        got = model(x)
        alone = model(x[2:])
    # Reference on one image (it is slow); batching must not change a row.
    want = reference_forward(_small_sd(), cfg, x[:1])
    torch.testing.assert_close(got[:1], want, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got[2:], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_after_bn_applies_bnneck_in_eval_mode():
    sd = _small_sd()
    before, after = _loaded("before"), _loaded("after")
    x = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        f = before(x)
        g = after(x)
    bn = (f - sd["bottleneck.running_mean"]) / torch.sqrt(sd["bottleneck.running_var"] + 1e-5)
    torch.testing.assert_close(g, bn * sd["bottleneck.weight"] + sd["bottleneck.bias"])


def test_wrong_input_size_is_refused():
    model = TransReIDViT(ViTConfig(embed_dim=48, depth=1, num_heads=6)).eval()
    try:
        model(torch.zeros(1, 3, 224, 224))
    except ValueError as exc:
        assert "(224, 224)" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected a size error")
