"""The naming rule against torchreid's own `process_dir`, written out literally as a reference."""

from __future__ import annotations

import glob
import os.path as osp
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reidbench.datasets import load_dataset
from reidbench.datasets.naming import looks_like_image, parse_name
from tests.dataset_trees import create_files


def torchreid_market_process_dir(dir_path: str) -> list[tuple[str, int, int]]:
    """torchreid.data.datasets.image.market1501.Market1501.process_dir (relabel=False)."""
    img_paths = glob.glob(osp.join(dir_path, "*.jpg"))
    pattern = re.compile(r"([-\d]+)_c(\d)")
    data = []
    for img_path in img_paths:
        pid, camid = map(int, pattern.search(img_path).groups())
        if pid == -1:
            continue  # junk images are just ignored
        assert 0 <= pid <= 1501  # pid == 0 means background
        assert 1 <= camid <= 6
        camid -= 1  # index starts from 0
        data.append((img_path, pid, camid))
    return data


image = st.tuples(st.integers(-1, 1501), st.integers(1, 6))
person = st.tuples(st.integers(1, 1501), st.integers(1, 6))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    train=st.lists(person, min_size=0, max_size=15),
    query=st.lists(person, min_size=1, max_size=10),
    gallery=st.lists(image, min_size=1, max_size=25),
)
def test_market_loader_equals_torchreid(
    tmp_path_factory: pytest.TempPathFactory, train, query, gallery
) -> None:
    root = tmp_path_factory.mktemp("tr")
    folders = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
    for split, items in (("train", train), ("query", query), ("gallery", gallery)):
        (root / folders[split]).mkdir()
        names = [
            f"{'-1' if pid == -1 else f'{pid:04d}'}_c{cam}s1_{i:06d}_01.jpg"
            for i, (pid, cam) in enumerate(items)
        ]
        create_files(root / folders[split] / n for n in names)
    if not any(pid != -1 for pid, _ in gallery):
        return  # an all-junk gallery is an error for us (nothing to evaluate); not compared
    dataset = load_dataset(root, "market1501")
    junk = 0
    for split, folder in folders.items():
        reference = {
            (osp.relpath(p, root).replace(osp.sep, "/"), pid, camid)
            for p, pid, camid in torchreid_market_process_dir(str(root / folder))
        }
        ours = {(r.path, r.pid, r.camid) for r in dataset.split(split)}
        assert ours == reference
        junk += sum(1 for p in (root / folder).iterdir() if p.name.startswith("-1_"))
    assert dataset.junk_dropped == junk


@given(
    pid=st.integers(-1, 99999),
    cam=st.integers(0, 9),
    rest=st.text(alphabet="abcs0123456789_", max_size=20),
    ext=st.sampled_from([".jpg", ".png", ".JPG"]),
)
def test_parse_name_round_trip(pid: int, cam: int, rest: str, ext: str) -> None:
    text = "-1" if pid == -1 else f"{pid:04d}"
    assert parse_name(f"{text}_c{cam}{rest}{ext}") == (pid, cam)


@given(st.text(alphabet="abcxyz_-.", max_size=30))
def test_names_without_camera_are_rejected(name: str) -> None:
    assert parse_name(name) is None


def test_parse_name_examples() -> None:
    assert parse_name("0002_c1s1_000451_03.jpg") == (2, 1)
    assert parse_name("-1_c3s2_012345_00.jpg") == (-1, 3)
    assert parse_name("0005_c2_f0046985.jpg") == (5, 2)
    assert parse_name("0001_c1_1.png") == (1, 1)
    assert parse_name("12-3_c1s1_0.jpg") is None  # the class [-\d] admits it, int() does not
    assert parse_name("Thumbs.db") is None


def test_looks_like_image() -> None:
    assert looks_like_image("0002_c1s1_000451_03.jpg")
    assert looks_like_image("x.PNG")
    assert not looks_like_image("Thumbs.db")
    assert not looks_like_image("._0002_c1s1_000451_03.jpg")
    assert not looks_like_image(".DS_Store")


def test_camera_regex_reads_file_name_not_folders(tmp_path: Path) -> None:
    """torchreid searches the whole path: a folder like `run_c1` would poison every pid."""
    root = tmp_path / "exp_2_c5" / "data"
    for sub, name in (
        ("bounding_box_train", "0002_c1s1_000001_00.jpg"),
        ("query", "0003_c2s1_000001_00.jpg"),
        ("bounding_box_test", "0003_c4s1_000001_00.jpg"),
    ):
        (root / sub).mkdir(parents=True)
        create_files([root / sub / name])
    dataset = load_dataset(root)
    assert [(r.pid, r.camid) for r in dataset.query] == [(3, 1)]
