"""Decoding in worker processes gives the thread path's features, and cache writes are batched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reidbench.errors import UserError
from reidbench.models import FeatureCache, extract_features, load_embedder
from reidbench.models import decode as decode_mod
from reidbench.models import extract as extract_mod
from tests.test_models_fixtures import person_images, write_jpegs


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("imgs")
    return write_jpegs(folder, person_images(24, seed=5), [f"{i:03d}.jpg" for i in range(24)])


@pytest.fixture
def processes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Force the process pool for any job size; record which pool each decoder used."""
    monkeypatch.setattr(decode_mod, "PROCESS_MIN_IMAGES", 0)
    monkeypatch.setenv("REIDBENCH_DECODE_WORKERS", "2")
    used: list[bool] = []
    real_init = decode_mod.BatchDecoder.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        used.append(self.processes)

    monkeypatch.setattr(decode_mod.BatchDecoder, "__init__", init)
    return used


@pytest.mark.slow
@pytest.mark.parametrize("model", ["handcrafted", "efficientnet-lite0"])
def test_process_decoding_gives_identical_features(images, processes, model):
    opts = {} if model == "handcrafted" else {"precision": "fp32", "device": "cpu"}
    emb = load_embedder(model, **opts)
    in_processes = extract_features(emb, images, batch_size=8)
    assert processes == [True]
    decode_mod.PROCESS_MIN_IMAGES = 10**9  # the thread path (monkeypatch restores it)
    in_threads = extract_features(emb, images, batch_size=8)
    assert processes == [True, False]
    np.testing.assert_array_equal(in_processes, in_threads)


@pytest.mark.slow
def test_broken_image_in_a_worker_process_is_a_user_error(images, processes, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(UserError, match=r"bad\.jpg: not a readable image"):
        extract_features(load_embedder("handcrafted"), [*images[:5], bad], batch_size=4)
    assert processes == [True]


def test_cache_writes_are_batched_and_flushed_at_the_end(images, tmp_path, monkeypatch):
    monkeypatch.setattr(extract_mod, "WRITE_ROWS", 10)
    sizes: list[int] = []

    class Counted(FeatureCache):
        def put_many(self, fingerprint, rows, description=None):
            sizes.append(len(rows))
            super().put_many(fingerprint, rows, description)

    emb = load_embedder("handcrafted")
    with Counted(tmp_path / "c") as cache:
        extract_features(emb, images, batch_size=4, cache=cache)
        assert cache.count(emb.fingerprint) == len(images)
    assert sizes == [12, 12]  # 3 batches of 4 reach 10 rows; the rest at the end


def test_unpicklable_preparer_stays_in_threads(images, processes):
    emb = load_embedder("handcrafted")
    real = emb.prepare
    emb.prepare = lambda image: real(image)  # type: ignore[method-assign]
    extract_features(emb, images, batch_size=8)
    assert processes == [False]


def test_a_failed_background_cache_write_stops_the_run(images, tmp_path):
    class Full(FeatureCache):
        def put_many(self, fingerprint, rows, description=None):
            raise UserError(f"{self.path}: cannot write the feature cache (disk full)")

    with Full(tmp_path / "c") as cache, pytest.raises(UserError, match="disk full"):
        extract_features(load_embedder("handcrafted"), images, batch_size=4, cache=cache)
