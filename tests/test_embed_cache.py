"""Feature cache and batched extraction: order, dedup by content, zero recomputation on a
second run, resume after an interruption, errors naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reidbench.errors import UserError
from reidbench.models import FeatureCache, extract_features, load_embedder
from reidbench.models.feature_cache import default_cache_dir
from tests.test_models_fixtures import Counting, identity_image, write_jpegs


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    ims = [identity_image(pid, shot) for pid in range(1, 6) for shot in range(2)]
    return write_jpegs(tmp_path / "imgs", ims, [f"im{i:02d}.jpg" for i in range(len(ims))])


def test_cache_roundtrip_and_persistence(tmp_path: Path):
    rng = np.random.default_rng(0)
    rows = {f"{i:064x}": rng.normal(size=8).astype(np.float32) for i in range(700)}
    with FeatureCache(tmp_path / "c") as cache:
        cache.put_many("fp-1", rows, {"name": "x"})
        assert cache.count("fp-1") == 700 and cache.count() == 700
    with FeatureCache(tmp_path / "c") as cache:  # a new process would see the same
        got = cache.get_many("fp-1", [*rows, "f" * 64], dim=8)
        assert set(got) == set(rows)
        for k, v in rows.items():
            np.testing.assert_array_equal(got[k], v)
        assert cache.get_many("fp-2", rows, dim=8) == {}  # another embedder: nothing
        assert cache.get_many("fp-1", rows, dim=9) == {}  # wrong width is never served
        assert list(cache.fingerprints()) == ["fp-1"]


def test_unwritable_cache_dir_is_a_user_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot open the feature cache"):
        FeatureCache(blocker / "sub")


def test_default_cache_dir_env(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("REIDBENCH_CACHE_DIR", str(tmp_path / "rc"))
    assert default_cache_dir() == tmp_path / "rc"
    monkeypatch.delenv("REIDBENCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "reidbench"


def test_extract_matches_embed_images_in_order(images: list[Path]):
    emb = load_embedder("handcrafted")
    feats = extract_features(emb, images[::-1], batch_size=3)
    want = emb.embed_images([Image.open(p) for p in images[::-1]])
    np.testing.assert_allclose(feats, want, atol=1e-7)
    assert extract_features(emb, [], batch_size=3).shape == (0, emb.dim)


def test_second_run_computes_nothing(images: list[Path], tmp_path: Path):
    counted = Counting(load_embedder("handcrafted"))
    stats: dict[str, int] = {}
    with FeatureCache(tmp_path / "cache") as cache:
        first = extract_features(counted.emb, images, batch_size=4, cache=cache, stats=stats)
        assert counted.prepared == len(images) and counted.calls == 3
        assert counted.batch_sizes == [4, 4, 2]
        assert stats == {"images": 10, "unique": 10, "cached": 0, "computed": 10}
        counted.prepared = counted.calls = 0
        second = extract_features(counted.emb, images, batch_size=4, cache=cache, stats=stats)
    assert counted.prepared == 0 and counted.calls == 0  # zero model calls, zero decodes
    assert stats == {"images": 10, "unique": 10, "cached": 10, "computed": 0}
    np.testing.assert_array_equal(first, second)


def test_identical_bytes_are_embedded_once(images: list[Path], tmp_path: Path):
    copy = tmp_path / "copy_of_first.jpg"
    shutil.copyfile(images[0], copy)
    counted = Counting(load_embedder("handcrafted"))
    feats = extract_features(counted.emb, [images[0], copy, images[1], images[0]], batch_size=8)
    assert counted.prepared == 2
    np.testing.assert_array_equal(feats[0], feats[1])
    np.testing.assert_array_equal(feats[0], feats[3])


def test_interrupted_run_resumes_without_losing_batches(images: list[Path], tmp_path: Path):
    cache_dir = tmp_path / "cache"
    broken = Counting(load_embedder("handcrafted"), fail_on_call=2)
    with FeatureCache(cache_dir) as cache, pytest.raises(KeyboardInterrupt):
        extract_features(broken.emb, images, batch_size=4, cache=cache)
    resumed = Counting(load_embedder("handcrafted"))
    stats: dict[str, int] = {}
    with FeatureCache(cache_dir) as cache:
        feats = extract_features(resumed.emb, images, batch_size=4, cache=cache, stats=stats)
    assert stats["cached"] == 4 and stats["computed"] == 6  # the first batch was kept
    assert resumed.prepared == 6
    np.testing.assert_allclose(feats, extract_features(load_embedder("handcrafted"), images))


def test_changed_image_is_recomputed(images: list[Path], tmp_path: Path):
    emb = load_embedder("handcrafted")
    with FeatureCache(tmp_path / "cache") as cache:
        before = extract_features(emb, images[:2], cache=cache)
        identity_image(99, 1).save(images[0], quality=92)  # same path, new content
        stats: dict[str, int] = {}
        after = extract_features(emb, images[:2], cache=cache, stats=stats)
    assert stats["computed"] == 1 and stats["cached"] == 1
    assert not np.allclose(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_fingerprints_separate_embedders(images: list[Path], tmp_path: Path):
    a = load_embedder("handcrafted")
    b = load_embedder("efficientnet-lite0", precision="fp32")
    assert a.fingerprint != b.fingerprint
    with FeatureCache(tmp_path / "cache") as cache:
        extract_features(a, images[:3], cache=cache)
        stats: dict[str, int] = {}
        fb = extract_features(b, images[:3], cache=cache, stats=stats)
        assert stats["computed"] == 3 and fb.shape == (3, 1280)
        assert sorted(cache.fingerprints()) == sorted([a.fingerprint, b.fingerprint])


def test_broken_and_missing_images_are_named(images: list[Path], tmp_path: Path):
    emb = load_embedder("handcrafted")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(UserError) as info:
        extract_features(emb, [images[0], bad])
    assert str(bad) in str(info.value) and "not a readable image" in str(info.value)
    with pytest.raises(UserError, match="image file not found"):
        extract_features(emb, [tmp_path / "gone.jpg"])


def test_progress_counts_every_image(images: list[Path], tmp_path: Path):
    class Recorder:
        def __init__(self) -> None:
            self.total: int | None = None
            self.done = 0

        def start(self, description: str, total: int | None) -> None:
            self.total = total

        def advance(self, n: int = 1, **fields: object) -> None:
            self.done += n

        def finish(self) -> None:
            pass

    emb = load_embedder("handcrafted")
    with FeatureCache(tmp_path / "cache") as cache:
        for _ in range(2):  # computed, then cached: both count every image once
            rec = Recorder()
            extract_features(emb, images + images[:2], batch_size=3, cache=cache, progress=rec)
            assert rec.total == 12 and rec.done == 12
