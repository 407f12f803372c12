"""The model zoo (TransReID, CLIP-ReID, fast-reid): strict loading of the released layouts,
features against hand-written reference forwards of the original code, camera ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reidbench.errors import UserError
from reidbench.models import FeatureCache, extract_features, load_embedder
from reidbench.models.clipreid import CLIPVisionArch, load_clipreid
from reidbench.models.fastreid import FASTREID_ARCHS, FastReIDArch, load_fastreid
from reidbench.models.transreid import TransReIDArch, load_transreid
from tests.zoo_fixtures import (
    clipreid_ref,
    clipreid_sd,
    cosine,
    fastreid_ref,
    fastreid_sd,
    images,
    to_input,
    transreid_ref,
    transreid_sd,
)

BILINEAR = Image.Resampling.BILINEAR
BICUBIC = Image.Resampling.BICUBIC
HALF = (0.5, 0.5, 0.5)
TR_SMALL = TransReIDArch(embed_dim=64, depth=3, num_heads=4)
CLIP_SMALL = CLIPVisionArch(width=64, layers=3, heads=4, output_dim=32)
FR_SMALL = FastReIDArch((1, 2, 3, 1), (0, 2, 3, 0), "gem", (96, 48), width=8)
FR_SMALL_BOT = FastReIDArch((1, 2, 3, 1), (0, 0, 0, 0), "avg", (64, 32), width=8)


def _save(tmp_path: Path, name: str, obj) -> Path:
    path = tmp_path / name
    torch.save(obj, path)
    return path


def _error(fn, *fragments: str) -> str:
    with pytest.raises(UserError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


# ----------------------------------------------------------------------------- TransReID
@pytest.fixture(scope="module")
def tr_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    sd = transreid_sd(dim=64, depth=3, tokens=211, cameras=6, seed=1)  # 256x128, stride 12
    path = _save(tmp_path_factory.mktemp("tr"), "transformer_120.pth", sd)
    return path, sd


def test_transreid_features_match_reference(tr_ckpt):
    path, sd = tr_ckpt
    emb = load_transreid(path, precision="fp32", arch=TR_SMALL)
    ims, cams = images(3, seed=2), [0, 3, 5]
    got = emb.embed_images(ims, camids=cams)
    assert got.shape == (3, 5 * 64) and emb.dim == 320 and emb.uses_camids
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    x = to_input(ims, (256, 128), HALF, HALF, BILINEAR)
    ref = transreid_ref(sd, x, torch.tensor(cams), heads=4, stride=12)
    assert cosine(got, ref).min() >= 0.9999
    # Without camera ids the SIE term is omitted (documented), matching that reference.
    ref0 = transreid_ref(sd, x, None, heads=4, stride=12)
    assert cosine(emb.embed_images(ims), ref0).min() >= 0.9999
    # The BNNeck option follows NECK_FEAT 'after'.
    after = load_transreid(path, precision="fp32", arch=TR_SMALL, feature="after-bn")
    ref_a = transreid_ref(sd, x, torch.tensor(cams), heads=4, stride=12, neck_feat="after")
    assert cosine(after.embed_images(ims, cams), ref_a).min() >= 0.9999


def test_transreid_camera_ids_change_features_and_are_checked(tr_ckpt):
    path, _ = tr_ckpt
    emb = load_transreid(path, precision="fp32", arch=TR_SMALL)
    ims = images(2, seed=3)
    a = emb.embed_images(ims, camids=[0, 0])
    b = emb.embed_images(ims, camids=[1, 1])
    none = emb.embed_images(ims)
    assert cosine(a, b).max() < 0.999 and cosine(a, none).max() < 0.999
    _error(lambda: emb.embed_images(ims, camids=[0, 6]), "camera id 6", "6 SIE cameras")
    off = load_transreid(path, precision="fp32", arch=TR_SMALL, sie="off")
    assert not off.uses_camids and off.fingerprint != emb.fingerprint
    np.testing.assert_allclose(off.embed_images(ims, camids=[1, 1]), none, atol=1e-6)


def test_transreid_damaged_and_mismatched_checkpoints(tr_ckpt, tmp_path: Path):
    path, sd = tr_ckpt
    bad = tmp_path / "cut.pth"
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _error(lambda: load_transreid(bad, arch=TR_SMALL), "cut.pth", "cannot read")
    broken = dict(sd)
    del broken["b2.0.mlp.fc1.bias"]
    broken["base.extra"] = torch.zeros(2)
    broken["bottleneck_3.weight"] = torch.zeros(7)
    p = _save(tmp_path, "broken.pth", {"model": broken})
    _error(
        lambda: load_transreid(p, arch=TR_SMALL),
        "missing keys [b2.0.mlp.fc1.bias]",
        "unexpected keys [base.extra]",
        "bottleneck_3.weight [7]",
    )
    no_jpm = {k: v for k, v in sd.items() if not k.startswith(("b1.", "b2."))}
    _error(lambda: load_transreid(_save(tmp_path, "nojpm.pth", no_jpm), arch=TR_SMALL), "no JPM")
    # The full-size model refuses the small file by name.
    _error(lambda: load_embedder("transreid-vit-b16", weights=path), "dim 64 and 3 blocks")
    _error(lambda: load_embedder("transreid-vit-b16"), "pass --weights")


@pytest.mark.slow
def test_transreid_full_size_layout_loads_strictly(tmp_path: Path):
    sd = transreid_sd(dim=768, depth=12, tokens=211, cameras=15, dtype=torch.float16)
    path = _save(tmp_path, "msmt_transreid.pth", {f"module.{k}": v for k, v in sd.items()})
    emb = load_embedder("transreid-vit-b16", weights=path, precision="fp32")
    assert emb.dim == 3840 and emb.info["notes"][0].startswith("skipped 5 keys")
    assert emb.describe()["sie"] == {"cameras": 15, "coe": 3.0, "used": True}
    assert emb.describe()["grid"] == [21, 10]
    assert emb.embed_images(images(1), camids=[14]).shape == (1, 3840)


# ----------------------------------------------------------------------------- CLIP-ReID
@pytest.fixture(scope="module")
def clip_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    sd = clipreid_sd(width=64, layers=3, tokens=211, out_dim=32, cameras=6, seed=4)
    return _save(tmp_path_factory.mktemp("clip"), "ViT-B-16_60.pth", sd), sd


def test_clipreid_features_match_reference(clip_ckpt):
    path, sd = clip_ckpt
    emb = load_clipreid(path, precision="fp32", arch=CLIP_SMALL)
    ims, cams = images(3, seed=5), [2, 0, 5]
    got = emb.embed_images(ims, camids=cams)
    assert got.shape == (3, 96) and emb.uses_camids
    x = to_input(ims, (256, 128), HALF, HALF, BILINEAR)
    ref = clipreid_ref(sd, x, torch.tensor(cams), heads=4, stride=12)
    assert cosine(got, ref).min() >= 0.9999
    ref0 = clipreid_ref(sd, x, None, heads=4, stride=12)
    assert cosine(emb.embed_images(ims), ref0).min() >= 0.9999
    assert cosine(got, emb.embed_images(ims, camids=[1, 1, 1])).min() < 0.999
    _error(lambda: emb.embed_images(ims, camids=[0, 0, 9]), "camera id 9")


def test_clipreid_without_sie_and_stride_16(tmp_path: Path):
    sd = clipreid_sd(width=64, layers=3, tokens=129, out_dim=32, cameras=0, seed=6)
    emb = load_clipreid(_save(tmp_path, "plain.pth", sd), precision="fp32", arch=CLIP_SMALL)
    assert not emb.uses_camids and emb.describe()["stride"] == 16
    ims = images(2, seed=7)
    ref = clipreid_ref(
        sd, to_input(ims, (256, 128), HALF, HALF, BILINEAR), None, heads=4, stride=16
    )
    assert cosine(emb.embed_images(ims, camids=[0, 1]), ref).min() >= 0.9999


def test_clipreid_damaged_and_mismatched_checkpoints(clip_ckpt, tmp_path: Path):
    path, sd = clip_ckpt
    bad = tmp_path / "cut.pth"
    bad.write_bytes(path.read_bytes()[:1000])
    _error(lambda: load_clipreid(bad, arch=CLIP_SMALL), "cannot read")
    broken = {k: v for k, v in sd.items() if k != "image_encoder.ln_post.bias"}
    broken["image_encoder.proj"] = torch.zeros(64, 31)
    broken["something.else"] = torch.zeros(1)
    _error(
        lambda: load_clipreid(_save(tmp_path, "b.pth", broken), arch=CLIP_SMALL),
        "missing keys [image_encoder.ln_post.bias]",
        "unexpected keys [something.else]",
        "image_encoder.proj [64, 31]",
    )
    _error(lambda: load_embedder("clip-reid-vit-b16", weights=path), "width 64 and 3 blocks")


@pytest.mark.slow
def test_clipreid_full_size_layout_loads_strictly(tmp_path: Path):
    sd = clipreid_sd(
        width=768,
        layers=12,
        tokens=211,
        out_dim=512,
        cameras=6,
        text_width=512,
        dtype=torch.float16,
    )
    emb = load_embedder("clip-reid-vit-b16", weights=_save(tmp_path, "m.pth", sd))
    assert emb.dim == 1280 and emb.describe()["sie"]["cameras"] == 6
    assert "text encoder" in emb.info["notes"][0]
    assert emb.embed_images(images(1), camids=[3]).shape == (1, 1280)


# ----------------------------------------------------------------------------- fast-reid
@pytest.mark.parametrize(
    ("arch", "layout"),
    [(FR_SMALL, "v0.1.1"), (FR_SMALL, "current"), (FR_SMALL_BOT, "v0.1.1")],
)
def test_fastreid_features_match_reference(arch: FastReIDArch, layout: str, tmp_path: Path):
    sd = fastreid_sd(
        width=8,
        blocks=arch.blocks,
        non_local=arch.non_local,
        gem=arch.pooling == "gem",
        layout=layout,
        seed=8,
    )
    path = _save(tmp_path, "market_sbs.pth", {"model": sd, "iteration": torch.tensor(3)})
    emb = load_fastreid("fastreid-sbs-r50-ibn", path, precision="fp32", arch=arch)
    assert emb.describe()["layout"] == layout and not emb.uses_camids
    ims = images(3, seed=9)
    got = emb.embed_images(ims, camids=[0, 1, 2])  # no SIE: ignored
    x = to_input(ims, arch.input_hw, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), BICUBIC)
    ref = fastreid_ref(
        sd,
        x,
        blocks=arch.blocks,
        non_local=arch.non_local,
        gem=arch.pooling == "gem",
        legacy=layout == "v0.1.1",
    )
    assert got.shape == (3, 256)
    assert cosine(got, ref).min() >= 0.9999
    if layout == "v0.1.1":
        # The other stem max-pool would give different features: the layout matters.
        other = fastreid_ref(
            sd,
            x,
            blocks=arch.blocks,
            non_local=arch.non_local,
            gem=arch.pooling == "gem",
            legacy=False,
        )
        assert cosine(got, other).min() < 0.9999


def test_fastreid_damaged_and_mismatched_checkpoints(tmp_path: Path):
    sd = fastreid_sd(width=8, blocks=FR_SMALL.blocks, non_local=FR_SMALL.non_local, gem=True)
    good = _save(tmp_path, "ok.pth", {"model": sd})
    bad = tmp_path / "cut.pth"
    bad.write_bytes(good.read_bytes()[:5000])
    _error(lambda: load_fastreid("fastreid-sbs-r50-ibn", bad, arch=FR_SMALL), "cannot read")
    broken = dict(sd)
    del broken["backbone.NL_3.2.W.1.running_var"]
    broken["heads.pool_layer.q"] = torch.ones(1)
    _error(
        lambda: load_fastreid(
            "fastreid-sbs-r50-ibn", _save(tmp_path, "b.pth", broken), arch=FR_SMALL
        ),
        "missing keys [backbone.NL_3.2.W.1.running_var]",
        "unexpected keys [heads.pool_layer.q]",
    )
    no_head = {k: v for k, v in sd.items() if not k.startswith("heads.bnneck")}
    _error(
        lambda: load_fastreid(
            "fastreid-sbs-r50-ibn", _save(tmp_path, "h.pth", no_head), arch=FR_SMALL
        ),
        "no heads.bnneck",
    )
    _error(lambda: load_embedder("fastreid-sbs-r50-ibn", weights=good), "(1, 2, 3, 1) blocks")


@pytest.mark.parametrize(
    "name", ["fastreid-bot-r50-ibn", "fastreid-sbs-r50-ibn", "fastreid-sbs-r101-ibn"]
)
@pytest.mark.slow
def test_fastreid_full_size_layouts_load_strictly(name: str, tmp_path: Path):
    arch = FASTREID_ARCHS[name]
    sd = fastreid_sd(
        width=64,
        blocks=arch.blocks,
        non_local=arch.non_local,
        gem=arch.pooling == "gem",
        ids=751,
        dtype=torch.float16,
    )
    emb = load_embedder(name, weights=_save(tmp_path, f"{name}.pth", {"model": sd}))
    assert emb.dim == 2048 and emb.preprocess.size == arch.input_hw
    assert emb.preprocess.interpolation == "bicubic"
    np.testing.assert_allclose(emb.preprocess.mean, (0.485, 0.456, 0.406), atol=1e-6)
    if name == "fastreid-sbs-r101-ibn":
        other = "fastreid-sbs-r50-ibn"
        _error(lambda: load_embedder(other, weights=tmp_path / f"{name}.pth"), f"is it {name}?")
    else:
        feats = emb.embed_images(images(1))
        assert feats.shape == (1, 2048) and np.isfinite(feats).all()


# ----------------------------------------------------------------------------- extraction
def test_extraction_keys_the_cache_by_camera_for_sie_models(tr_ckpt, tmp_path: Path):
    path, _ = tr_ckpt
    emb = load_transreid(path, precision="fp32", arch=TR_SMALL)
    files = []
    for i, im in enumerate(images(2, seed=11)):
        files.append(tmp_path / f"{i}.png")
        im.save(files[-1])
    paths = [files[0], files[0], files[1]]  # the same image seen by two cameras
    stats: dict[str, int] = {}
    with FeatureCache(tmp_path / "cache") as cache:
        got = extract_features(emb, paths, cache=cache, camids=[0, 4, 4], stats=stats)
        assert stats["unique"] == 3 and stats["computed"] == 3
        direct = emb.embed_images([Image.open(p) for p in paths], camids=[0, 4, 4])
        np.testing.assert_allclose(got, direct, atol=1e-5)
        assert cosine(got[:1], got[1:2])[0] < 0.999
        again = extract_features(emb, paths, cache=cache, camids=[0, 4, 4], stats=stats)
        assert stats["cached"] == 3
        np.testing.assert_array_equal(got, again)
        plain = extract_features(emb, paths, cache=cache, stats=stats)
        assert stats["computed"] == 2  # no camera ids: other keys, SIE omitted
        assert cosine(plain[:1], got[:1])[0] < 0.999


def test_zoo_is_registered_with_its_dims():
    from reidbench.models import EMBEDDERS

    zoo = {
        "transreid-vit-b16": 3840,
        "clip-reid-vit-b16": 1280,
        "fastreid-bot-r50-ibn": 2048,
        "fastreid-sbs-r50-ibn": 2048,
        "fastreid-sbs-r101-ibn": 2048,
    }
    assert {n: EMBEDDERS[n].dim for n in zoo} == zoo
    assert all(EMBEDDERS[n].kind == "reid" for n in zoo)
    _error(lambda: load_embedder("fastreid-bot-r50-ibn", weights="x.pth", sie="on"), "sie")


def test_evaluation_paths_pass_camera_ids(tr_ckpt, tmp_path: Path):
    from reidbench.datasets import load_dataset
    from reidbench.models import pair_scores
    from reidbench.retrieval_run import evaluate_embedder
    from tests.test_models_fixtures import market_tree

    path, _ = tr_ckpt
    emb = load_transreid(path, precision="fp32", arch=TR_SMALL)
    seen: list[int] = []
    inner = emb.embed_prepared

    def spy(batch, camids=None):
        assert camids is not None and len(camids) == len(batch)
        seen.extend(int(c) for c in camids)
        return inner(batch, camids)

    emb.embed_prepared = spy  # type: ignore[method-assign]
    ds = load_dataset(market_tree(tmp_path / "market", test_ids=2, train_ids=1))
    evaluate_embedder(emb, ds)
    records = ds.query + ds.gallery
    assert sorted(seen) == sorted(r.camid for r in records)

    a, b = ds.query[0], ds.gallery[-1]
    cos = pair_scores(emb, ds.root, [a.path], [b.path], camids_a=[a.camid], camids_b=[b.camid])
    ims = [Image.open(ds.abspath(a)), Image.open(ds.abspath(b))]
    f = inner(np.stack([emb.prepare(im) for im in ims]), [a.camid, b.camid])
    assert cos[0] == pytest.approx(float(f[0] @ f[1]), abs=1e-5)


def test_zoo_config_names_the_whole_zoo():
    from reidbench.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "zoo-market1501.toml")
    models = {s.model for s in cfg.systems}
    assert models == {
        "personvit-b",
        "osnet_x1_0",
        "osnet_ain_x1_0",
        "transreid-vit-b16",
        "clip-reid-vit-b16",
        "fastreid-bot-r50-ibn",
        "fastreid-sbs-r50-ibn",
        "fastreid-sbs-r101-ibn",
    }
    assert cfg.retrieval and all(s.weights for s in cfg.systems)


@pytest.mark.slow
def test_retrieval_cli_with_a_released_fastreid_layout(run_cli, tmp_path: Path):
    import json

    from tests.test_models_fixtures import market_tree

    arch = FASTREID_ARCHS["fastreid-bot-r50-ibn"]
    sd = fastreid_sd(width=64, blocks=arch.blocks, non_local=arch.non_local, gem=False, seed=3)
    weights = _save(tmp_path, "market_bot_R50-ibn.pth", {"model": sd})
    root = market_tree(tmp_path / "market", test_ids=3, train_ids=1)
    res = run_cli(
        "retrieval",
        root,
        "--model",
        "fastreid-bot-r50-ibn",
        "--weights",
        weights,
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--no-cache",
        "--json",
    )
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert out["embedder"]["dim"] == 2048 and out["embedder"]["layout"] == "v0.1.1"
    assert 0.0 <= out["mINP"] <= out["mAP"] <= 1.0
    bad = run_cli("retrieval", root, "--model", "transreid-vit-b16", "--weights", weights)
    assert bad.code == 2 and "not a transreid-vit-b16" in bad.err
