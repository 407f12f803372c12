"""OSNet family: torchreid checkpoints (written here with random values) load strictly and
give the features of an independent functional reference (fp32 cosine >= 0.9999)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reidbench.errors import UserError
from reidbench.models import EMBEDDERS, load_embedder
from reidbench.models.osnet_loader import OSNET_SKIPPED_KEYS
from tests.osnet_reference import (
    WIDTHS,
    reference_forward,
    torchreid_preprocess,
    torchreid_state_dict,
)

NAMES = list(WIDTHS)


def _images() -> list[Image.Image]:
    """Four crops of different sizes and structure (noise, halves, gradient, a blob)."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (160, 64, 3), dtype=np.uint8)
    halves = np.zeros((128, 50, 3), np.uint8)
    halves[:64] = 255
    ramp = np.tile(np.linspace(0, 255, 128, dtype=np.uint8)[None, :, None], (256, 1, 3))
    ramp[..., 1] = 30
    blob = np.zeros((150, 70, 3), np.uint8)
    blob[..., 2] = 200
    blob[40:90, 20:50, 0] = 255
    return [Image.fromarray(a) for a in (noise, halves, ramp, blob)]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    folder = tmp_path_factory.mktemp("osnet")
    for i, name in enumerate(NAMES):
        path = folder / f"{name}_market.pth"
        # torchreid's save_checkpoint layout: a dict with the state dict and training state.
        sd = {f"module.{k}": v for k, v in torchreid_state_dict(name, seed=i).items()}
        torch.save({"state_dict": sd, "epoch": 150, "rank1": 0.94, "optimizer": {}}, path)
        out[name] = path
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_features_match_the_reference_forward(name: str, checkpoints: dict[str, Path]):
    emb = load_embedder(name, weights=checkpoints[name], precision="fp32")
    assert emb.dim == 512 and EMBEDDERS[name].dim == 512
    images = _images()
    feats = emb.embed_images(images)
    assert feats.shape == (4, 512) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)

    sd = torchreid_state_dict(name, seed=NAMES.index(name))
    with torch.no_grad():
        ref = reference_forward(name, sd, torchreid_preprocess(images))
    ref = torch.nn.functional.normalize(ref, dim=1).numpy()
    cos = (feats * ref).sum(axis=1)
    assert cos.min() >= 0.9999, cos
    # Random weights make every image's feature alike (a shared offset), which would let a
    # wrong network pass the cosine above; the image-dependent parts must agree too.
    assert (ref @ ref.T)[np.triu_indices(4, 1)].min() < 0.999
    fc, rc = feats - feats.mean(0), ref - ref.mean(0)
    centred = (fc * rc).sum(1) / (np.linalg.norm(fc, axis=1) * np.linalg.norm(rc, axis=1))
    assert centred.min() >= 0.999, centred
    assert emb.info["trained_for_reid"] is True
    assert any("classifier.weight" in n for n in emb.info["notes"])
    assert emb.info["weights_pin"] is None  # a local file: nothing to pin


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_damaged_checkpoint_names_the_keys(name: str, checkpoints: dict[str, Path], tmp_path):
    sd = torch.load(checkpoints[name], weights_only=True)["state_dict"]
    sd.pop("module.conv5.conv.weight")
    sd["module.fc.0.weight"] = torch.zeros(512, 7)
    sd["module.extra.weight"] = torch.zeros(3)
    bad = tmp_path / "bad.pth"
    torch.save(sd, bad)
    with pytest.raises(UserError) as info:
        load_embedder(name, weights=bad)
    msg = str(info.value)
    assert "missing keys [conv5.conv.weight]" in msg
    assert "unexpected keys [extra.weight]" in msg
    assert "fc.0.weight [512, 7] vs expected" in msg
    assert "\n" not in msg


@pytest.mark.slow
def test_other_variant_is_refused_with_shapes(checkpoints: dict[str, Path]):
    with pytest.raises(UserError, match="mis-shaped keys"):
        load_embedder("osnet_x0_5", weights=checkpoints["osnet_x1_0"])
    with pytest.raises(UserError, match="missing keys"):
        load_embedder("osnet_ain_x1_0", weights=checkpoints["osnet_x1_0"])


@pytest.mark.slow
def test_only_the_named_classifier_keys_are_skipped(tmp_path: Path):
    assert OSNET_SKIPPED_KEYS == ("classifier.weight", "classifier.bias")
    sd = torchreid_state_dict("osnet_x0_25", num_classes=1000)
    for key in [k for k in sd if k.endswith("num_batches_tracked")]:
        del sd[key]  # as saved by PyTorch < 0.4.1
    path = tmp_path / "osnet_x0_25_imagenet.pth"
    torch.save(sd, path)
    emb = load_embedder("osnet_x0_25", weights=path, precision="fp32")
    notes = " ".join(emb.info["notes"])
    assert "num_batches_tracked" in notes and "ImageNet-pretrained" in notes
    assert emb.info["trained_for_reid"] is False
    # Without a classifier the file still loads (nothing else may be absent).
    del sd["classifier.weight"], sd["classifier.bias"]
    torch.save(sd, path)
    notes = load_embedder("osnet_x0_25", weights=path).info["notes"]
    assert len(notes) == 1 and "num_batches_tracked" in notes[0]


def test_no_weights_explains_google_drive():
    with pytest.raises(UserError) as info:
        load_embedder("osnet_x1_0")
    assert "Google Drive" in str(info.value) and "--weights PATH" in str(info.value)


def test_not_a_state_dict_is_a_user_error(tmp_path: Path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(UserError, match="not a state dict"):
        load_embedder("osnet_x1_0", weights=path)
