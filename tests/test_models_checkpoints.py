"""Strict checkpoint loading in the released layouts: fine-tuned flat dicts (with and without
`module.`), wrapped dicts, DINO/iBOT teacher checkpoints on another grid, and the errors."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch

from reidbench.errors import UserError
from reidbench.models import load_embedder
from reidbench.models.checkpoints import (
    infer_grid,
    load_vit_checkpoint,
    resize_pos_embed,
    unwrap_state_dict,
)
from reidbench.models.vit import VIT_BASE, VIT_SMALL
from tests.test_models_fixtures import (
    finetuned_state_dict,
    person_images,
    preprocess_reference,
    reference_forward,
    save,
    ssl_checkpoint,
)


@functools.cache
def small_sd() -> dict[str, torch.Tensor]:
    return finetuned_state_dict(VIT_SMALL, num_ids=11, seed=5)


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ckpts")


@pytest.fixture(scope="module")
def small_ckpt(ckpt_dir: Path) -> Path:
    return save(small_sd(), ckpt_dir / "transformer_120.pth")


@functools.cache
def ref_images() -> tuple:
    return tuple(person_images(1, seed=1, size=(48, 100)))  # not 128x256: exercises resizing


@functools.cache
def small_reference() -> torch.Tensor:
    """Hand-written forward of small_sd() on ref_images(), before the BNNeck (computed once)."""
    return reference_forward(small_sd(), VIT_SMALL, preprocess_reference(list(ref_images())))


@pytest.mark.slow
def test_finetuned_checkpoint_features_match_reference(small_ckpt: Path):
    emb = load_embedder("personvit-s", weights=small_ckpt, precision="fp32")
    assert (emb.name, emb.dim) == ("personvit-s", 384)
    assert emb.info["layout"] == "finetuned" and emb.info["trained_for_reid"]
    feats = emb.embed_images(list(ref_images()))
    assert feats.shape == (1, 384) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    want = torch.nn.functional.normalize(small_reference(), dim=1).numpy()
    np.testing.assert_allclose(feats, want, atol=2e-4)


@pytest.mark.slow
def test_module_prefix_and_wrappers_give_identical_features(small_ckpt: Path, ckpt_dir: Path):
    images = person_images(1, seed=2)
    base = load_embedder("personvit-s", weights=small_ckpt, precision="fp32")
    want = base.embed_images(images)
    dp = {f"module.{k}": v for k, v in small_sd().items()}  # DataParallel-saved
    emb = load_embedder("personvit-s", weights=save(dp, ckpt_dir / "dp.pth"), precision="fp32")
    np.testing.assert_array_equal(emb.embed_images(images), want)
    assert emb.fingerprint != base.fingerprint  # different file bytes, different sha256
    again = load_embedder("personvit-s", weights=small_ckpt, precision="fp32")
    assert again.fingerprint == base.fingerprint  # stable across loads
    for wrapper in ("model", "state_dict", "module"):
        sd, layout, dropped = unwrap_state_dict({wrapper: dp}, Path("x.pth"))
        assert layout == "finetuned" and not dropped
        assert sd.keys() == small_sd().keys()


@pytest.mark.slow
def test_after_bn_feature_option(small_ckpt: Path):
    before = load_embedder("personvit-s", weights=small_ckpt, precision="fp32")
    after = load_embedder("personvit-s", weights=small_ckpt, precision="fp32", feature="after-bn")
    assert before.fingerprint != after.fingerprint
    sd = small_sd()
    raw = small_reference()
    bn = (raw - sd["bottleneck.running_mean"]) / torch.sqrt(sd["bottleneck.running_var"] + 1e-5)
    bn = bn * sd["bottleneck.weight"] + sd["bottleneck.bias"]
    want = torch.nn.functional.normalize(bn, dim=1).numpy()
    np.testing.assert_allclose(after.embed_images(list(ref_images())), want, atol=3e-4)


def _expect_error(path: Path, *fragments: str, name: str = "personvit-s") -> str:
    with pytest.raises(UserError) as info:
        load_embedder(name, weights=path, precision="fp32")
    msg = str(info.value)
    assert "\n" not in msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


@pytest.mark.slow
def test_missing_extra_and_misshaped_keys_are_named(ckpt_dir: Path):
    sd = dict(small_sd())
    del sd["base.blocks.3.attn.qkv.bias"]
    sd["base.blocks.12.norm1.weight"] = torch.ones(384)
    sd["base.pos_embed"] = torch.zeros(1, 197, 384)
    msg = _expect_error(
        save(sd, ckpt_dir / "broken.pth"),
        "missing keys [base.blocks.3.attn.qkv.bias]",
        "unexpected keys [base.blocks.12.norm1.weight]",
        "base.pos_embed [1, 197, 384] vs expected [1, 129, 384]",
        "broken.pth",
    )
    assert "personvit-s" in msg


def test_wrong_size_checkpoint_is_refused(small_ckpt: Path):
    _expect_error(small_ckpt, "mis-shaped keys", "personvit-b", "768", name="personvit-b")


def test_bad_files_are_one_line_errors(tmp_path: Path):
    _expect_error(tmp_path / "nope.pth", "weights file not found")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    _expect_error(junk, "cannot read as a weights-only torch checkpoint")
    # A pickle that would run code on load is refused by weights_only=True.
    evil = tmp_path / "evil.pth"
    torch.save({"x": torch.zeros(1), "obj": _Unsafe()}, evil)
    _expect_error(evil, "weights-only")
    listing = save([torch.zeros(1)], tmp_path / "list.pth")
    _expect_error(listing, "holds a list")
    mixed = save({"base.cls_token": torch.zeros(1, 1, 384), "note": "hello"}, tmp_path / "m.pth")
    _expect_error(mixed, "non-tensor entries [note]")


class _Unsafe:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.slow
def test_sie_embedding_is_loaded_but_not_added(small_ckpt: Path, ckpt_dir: Path):
    sd = dict(small_sd())
    sd["base.sie_embed"] = torch.randn(6, 1, 384)  # large: it would move the features
    emb = load_embedder("personvit-s", weights=save(sd, ckpt_dir / "sie.pth"), precision="fp32")
    assert emb.model.base.sie_embed.shape == (6, 1, 384)
    assert any("SIE camera embedding (6 rows) loaded but not used" in n for n in emb.info["notes"])
    plain = load_embedder("personvit-s", weights=small_ckpt, precision="fp32")
    images = person_images(1, seed=4)
    np.testing.assert_array_equal(emb.embed_images(images), plain.embed_images(images))


def _numpy_bilinear(grid: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Half-pixel-centre bilinear resampling with edge clamping (align_corners=False)."""
    in_h, in_w, _ = grid.shape

    def coords(n_out: int, n_in: int):
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        src = np.clip(src, 0, None)
        lo = np.minimum(np.floor(src).astype(int), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo

    y0, y1, wy = coords(out_h, in_h)
    x0, x1, wx = coords(out_w, in_w)
    top = grid[y0][:, x0] * (1 - wx)[None, :, None] + grid[y0][:, x1] * wx[None, :, None]
    bot = grid[y1][:, x0] * (1 - wx)[None, :, None] + grid[y1][:, x1] * wx[None, :, None]
    return top * (1 - wy)[:, None, None] + bot * wy[:, None, None]


def test_resize_pos_embed_matches_bilinear_reference():
    rng = np.random.default_rng(0)
    pos = torch.from_numpy(rng.normal(size=(1, 197, 8)).astype(np.float32))
    out = resize_pos_embed(pos, (16, 8), (14, 14))
    assert out.shape == (1, 129, 8)
    np.testing.assert_array_equal(out[0, 0].numpy(), pos[0, 0].numpy())  # CLS kept
    want = _numpy_bilinear(pos[0, 1:].numpy().reshape(14, 14, 8), 16, 8)
    np.testing.assert_allclose(out[0, 1:].numpy().reshape(16, 8, 8), want, atol=1e-5)


@pytest.mark.parametrize(
    ("n", "ratio", "grid"), [(196, None, (14, 14)), (128, None, (16, 8)), (128, 2, (16, 8))]
)
def test_infer_grid(n: int, ratio: int | None, grid: tuple[int, int]):
    assert infer_grid(n, ratio) == grid


def test_infer_grid_unknown_shape_is_a_user_error():
    with pytest.raises(UserError, match="hw_ratio"):
        infer_grid(130)


@pytest.mark.slow
def test_ssl_teacher_checkpoint_on_square_grid_loads_and_resizes(ckpt_dir: Path):
    ckpt = ssl_checkpoint(VIT_SMALL, grid=(14, 14), seed=9)
    path = save(ckpt, ckpt_dir / "checkpoint0220.pth")
    emb = load_embedder("personvit-s", weights=path, precision="fp32")
    assert emb.info["layout"] == "ssl" and not emb.info["trained_for_reid"]
    notes = " ".join(emb.info["notes"])
    assert "pos_embed resized from 14x14 to 16x8" in notes
    assert "head.mlp.0.weight" in notes and "masked_embed" in notes
    # Same as a bare backbone holding the teacher (not the student) weights with
    # TransReID's resize applied by hand (and no iBOT mask token).
    teacher = {
        k[len("module.backbone.") :]: v
        for k, v in ckpt["teacher"].items()
        if k.startswith("module.backbone.") and "masked_embed" not in k
    }
    teacher["pos_embed"] = resize_pos_embed(teacher["pos_embed"], (16, 8), (14, 14))
    bare = load_embedder(
        "personvit-s", weights=save(teacher, ckpt_dir / "bare.pth"), precision="fp32"
    )
    assert bare.info["layout"] == "backbone"
    images = person_images(1, seed=5)
    np.testing.assert_array_equal(emb.embed_images(images), bare.embed_images(images))
    with pytest.raises(UserError, match="no BNNeck"):
        load_embedder("personvit-s", weights=path, feature="after-bn")


@pytest.mark.slow
def test_ssl_checkpoint_at_256x128_needs_no_resize(ckpt_dir: Path):
    path = save(ssl_checkpoint(VIT_SMALL, grid=(16, 8)), ckpt_dir / "ssl_native.pth")
    loaded = load_vit_checkpoint(path, VIT_SMALL, what="personvit-s")
    assert not any("resized" in n for n in loaded.notes)


def test_ssl_checkpoint_without_backbone_keys(tmp_path: Path):
    path = save({"teacher": {"head.w": torch.zeros(2)}}, tmp_path / "bad_ssl.pth")
    _expect_error(path, "no 'backbone.*' keys")


@pytest.mark.slow
def test_personvit_b_loads_strictly(tmp_path: Path):
    sd = finetuned_state_dict(VIT_BASE, num_ids=3, fc_classes=10, seed=1)
    emb = load_embedder("personvit-b", weights=save(sd, tmp_path / "b.pth"), precision="fp32")
    feats = emb.embed_images(person_images(1, seed=6))
    assert feats.shape == (1, 768)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_fp16_checkpoint_loads_as_fp32(tmp_path: Path):
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in small_sd().items()}
    emb = load_embedder("personvit-s", weights=save(half, tmp_path / "h.pth"), precision="fp32")
    assert all(p.dtype == torch.float32 for p in emb.model.parameters())
    images = person_images(1, seed=8)
    ref = {k: v.float() for k, v in half.items()}
    full = load_embedder("personvit-s", weights=save(ref, tmp_path / "f.pth"), precision="fp32")
    np.testing.assert_array_equal(emb.embed_images(images), full.embed_images(images))


@pytest.mark.slow
def test_bf16_features_stay_close_to_fp32(small_ckpt: Path):
    images = person_images(2, seed=9)
    fp32 = load_embedder("personvit-s", weights=small_ckpt, precision="fp32").embed_images(images)
    bf16 = load_embedder("personvit-s", weights=small_ckpt, precision="bf16")
    assert bf16.info["precision"] == "bf16"
    cos = (fp32 * bf16.embed_images(images)).sum(axis=1)
    assert cos.min() > 0.995
