"""Trees with the official Market-1501 and DukeMTMC-reID file names and counts."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reidbench.datasets import load_dataset
from tests.dataset_trees import DUKE_COUNTS, MARKET_COUNTS, make_duke_official, make_market_official

JSON_KEYS = (
    "train_ids",
    "train_images",
    "query_ids",
    "query_images",
    "gallery_ids",
    "gallery_images",
    "junk_dropped",
    "distractor_images",
    "cameras",
)


@pytest.fixture(scope="module")
def big_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """RAM-backed when /dev/shm exists: 72k file creations on a busy disk take half a minute."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        folder = Path(tempfile.mkdtemp(prefix="reidbench-test-trees-", dir=shm))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        yield tmp_path_factory.mktemp("trees")


@pytest.fixture(scope="module")
def market_root(big_tmp: Path) -> Path:
    """As unzipped: an outer folder holding Market-1501-v15.09.15/ (zero-byte files)."""
    top = big_tmp / "market"
    make_market_official(top / "Market-1501-v15.09.15")
    (top / "Market-1501-v15.09.15" / "bounding_box_test" / "Thumbs.db").write_bytes(b"\0")
    return top


@pytest.fixture(scope="module")
def duke_root(big_tmp: Path) -> Path:
    top = big_tmp / "duke"
    make_duke_official(top / "DukeMTMC-reID")
    return top


@pytest.mark.slow
def test_market_official_counts(market_root: Path) -> None:
    dataset = load_dataset(market_root)
    info = dataset.info()
    assert dataset.name == "market1501"
    assert dataset.root == market_root / "Market-1501-v15.09.15"
    assert {k: info[k] for k in JSON_KEYS} == MARKET_COUNTS
    assert dataset.synthetic is False
    # torchreid's protocol: junk gone everywhere, distractors only in the gallery, 0-based cams.
    assert all(r.pid > 0 for r in dataset.train + dataset.query)
    assert {r.camid for r in dataset.gallery} == set(range(6))
    assert dataset.extra["skipped"] == {
        "count": 1,
        "examples": ["bounding_box_test/Thumbs.db"],
    }
    first = dataset.query[0]
    assert (dataset.root / first.path).is_file()
    assert "/" in first.path and not first.path.startswith("/")


@pytest.mark.slow
def test_market_official_records_match_names(market_root: Path) -> None:
    dataset = load_dataset(market_root / "Market-1501-v15.09.15", "market1501")
    for record in dataset.gallery[::97]:
        name = record.path.split("/")[-1]
        assert int(name.split("_")[0]) == record.pid
        assert int(name.split("_c")[1][0]) == record.camid + 1
    # Paths are sorted: independent of the order the filesystem lists them in.
    assert [r.path for r in dataset.train] == sorted(r.path for r in dataset.train)


@pytest.mark.slow
def test_duke_official_counts(duke_root: Path) -> None:
    dataset = load_dataset(duke_root)
    info = dataset.info()
    assert dataset.name == "dukemtmcreid"
    assert {k: info[k] for k in JSON_KEYS} == DUKE_COUNTS
    assert {r.camid for r in dataset.train} == set(range(8))
    assert dataset.extra["detected_by"] == "file names in dukemtmcreid style"


@pytest.mark.slow
def test_duke_read_as_market_names_the_camera(duke_root: Path) -> None:
    from reidbench.errors import UserError

    with pytest.raises(UserError) as excinfo:
        load_dataset(duke_root / "DukeMTMC-reID", "market1501")
    message = str(excinfo.value)
    # Duke pids go past Market's 1501 and its cameras past 6: both are reported, one line.
    assert "out of range" in message and "for market1501" in message
    assert "more)" in message
    assert "--format" in message and "\n" not in message


@pytest.mark.slow
def test_cli_info_table_market(run_cli, market_root: Path) -> None:
    result = run_cli("dataset", "info", market_root)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "=> Loaded Market1501"
    assert "  train    |   751 |    12936 |         6" in lines
    assert "  query    |   750 |     3368 |         6" in lines
    assert "  gallery  |   751 |    15913 |         6" in lines
    assert any(line.endswith(": 3819") and "junk" in line for line in lines)
    assert any(line.endswith(": 2793") and "distractor" in line for line in lines)
    assert any("real images" in line for line in lines)


@pytest.mark.slow
def test_cli_info_json_duke(run_cli, duke_root: Path) -> None:
    result = run_cli("dataset", "info", duke_root, "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert {k: data[k] for k in JSON_KEYS} == DUKE_COUNTS
    assert data["subset_cameras"] == {"train": 8, "query": 8, "gallery": 8}
    assert data["dataset"] == "dukemtmcreid"
