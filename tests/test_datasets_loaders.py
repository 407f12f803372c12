"""Every loader on real-pattern trees, auto-detection, and the errors users will hit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reidbench.datasets import FORMATS, detect_format, load_dataset
from reidbench.datasets.base import ImageRecord
from reidbench.errors import UserError
from tests.dataset_trees import create_files, make_cuhk03np, make_market_small, make_msmt17


def one_line_error(excinfo: pytest.ExceptionInfo[UserError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_formats_tuple() -> None:
    assert FORMATS == ("market1501", "dukemtmcreid", "msmt17", "cuhk03np", "custom")


# --- Market-1501 layout ---------------------------------------------------------------------


def test_market_small_protocol(tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "m", train_ids=2, test_ids=3, per_id=2, junk=4)
    dataset = load_dataset(root)
    assert dataset.junk_dropped == 4
    assert [r.pid for r in dataset.train] == [1, 1, 2, 2]
    assert sorted({r.pid for r in dataset.gallery}) == [0, 3, 4, 5]
    assert len(dataset.query) == 3
    name = dataset.query[0].path
    assert name.startswith("query/0003_c4s")
    assert dataset.query[0].camid == 3  # c4 -> 3


@pytest.mark.parametrize(
    "subdir", ["Market-1501-v15.09.15", "market1501", "market1501/Market-1501-v15.09.15"]
)
def test_market_accepts_parent_folders(tmp_path: Path, subdir: str) -> None:
    make_market_small(tmp_path / subdir)
    dataset = load_dataset(tmp_path, "market1501")
    assert dataset.root == tmp_path / subdir
    assert len(dataset.query) == 3


def test_market_pid_and_camera_ranges(tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "Market-1501-v15.09.15")
    create_files([root / "query" / "1502_c1s1_000001_00.jpg"])
    with pytest.raises(UserError) as excinfo:
        load_dataset(root)
    message = one_line_error(excinfo)
    assert "pid 1502 out of range 0..1501 for market1501" in message
    assert str(root / "query" / "1502_c1s1_000001_00.jpg") in message

    (root / "query" / "1502_c1s1_000001_00.jpg").unlink()
    create_files([root / "query" / "0007_c7s1_000001_00.jpg"])
    with pytest.raises(UserError) as excinfo:
        load_dataset(root)
    assert "camera 7 out of range 1..6 for market1501" in one_line_error(excinfo)


def test_malformed_name_is_an_error_with_path(tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "market1501")
    bad = root / "bounding_box_test" / "IMG_2031.jpg"
    create_files([bad, root / "query" / "12-3_c1s1_000001_00.jpg"])
    with pytest.raises(UserError) as excinfo:
        load_dataset(root)
    message = one_line_error(excinfo)
    assert str(bad) in message
    assert "12-3_c1s1" in message
    assert "does not match the pattern" in message


def test_non_images_and_hidden_files_are_skipped_and_counted(tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "market1501")
    (root / "query" / "Thumbs.db").write_bytes(b"x")
    (root / "query" / "._0003_c1s1_000001_00.jpg").write_bytes(b"x")  # macOS fork
    (root / "query" / "notes").mkdir()
    dataset = load_dataset(root)
    assert len(dataset.query) == 3
    assert dataset.extra["skipped"]["count"] == 3


def test_distractor_outside_gallery_is_an_error(tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "market1501")
    create_files([root / "query" / "0000_c1s1_000001_00.jpg"])
    with pytest.raises(UserError) as excinfo:
        load_dataset(root)
    assert "distractor pid 0 outside the gallery (query)" in one_line_error(excinfo)


def test_missing_split_folder(tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "market1501")
    for f in (root / "bounding_box_test").iterdir():
        f.unlink()
    (root / "bounding_box_test").rmdir()
    with pytest.raises(UserError) as excinfo:
        load_dataset(root, "market1501")
    message = one_line_error(excinfo)
    assert "missing bounding_box_test" in message


def test_empty_tree_has_no_images(tmp_path: Path) -> None:
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        (tmp_path / sub).mkdir()
    with pytest.raises(UserError) as excinfo:
        load_dataset(tmp_path)
    assert f"no images found in {tmp_path}" in one_line_error(excinfo)


def test_empty_gallery_is_an_error(tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "market1501")
    for f in (root / "bounding_box_test").iterdir():
        f.unlink()
    with pytest.raises(UserError) as excinfo:
        load_dataset(root)
    assert "gallery split" in one_line_error(excinfo)


def test_generic_market_layout_counts_cameras(tmp_path: Path) -> None:
    """Names in no known style, no telling folder name: relaxed ranges, cameras from the data."""
    root = tmp_path / "mydata"
    for sub, names in {
        "bounding_box_train": ["2001_c8_a.jpg"],
        "query": ["2002_c7_b.jpg"],
        "bounding_box_test": ["2002_c3_c.jpg", "0000_c1_d.jpg", "-1_c1_e.jpg"],
    }.items():
        (root / sub).mkdir(parents=True)
        create_files(root / sub / n for n in names)
    fmt, reason, generic = detect_format(root)
    assert (fmt, generic) == ("market1501", True)
    assert "unknown origin" in reason
    dataset = load_dataset(root)
    assert dataset.num_cameras == 8
    assert dataset.junk_dropped == 1
    assert dataset.info()["distractor_images"] == 1
    # Saying --format market1501 means "check it as Market-1501".
    with pytest.raises(UserError):
        load_dataset(root, "market1501")


def test_folder_name_hint(tmp_path: Path) -> None:
    root = tmp_path / "my-duke-copy"
    for sub, name in (("bounding_box_train", "7001_c8_x.jpg"), ("query", "7002_c7_y.jpg")):
        (root / sub).mkdir(parents=True)
        create_files([root / sub / name])
    (root / "bounding_box_test").mkdir()
    create_files([root / "bounding_box_test" / "7002_c1_z.jpg"])
    assert detect_format(root)[:2] == ("dukemtmcreid", "folder name (dukemtmcreid)")
    assert load_dataset(root).num_cameras == 8


# --- synthetic marker -----------------------------------------------------------------------


def test_synthetic_marker(tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "synth", first_pid=1600, cameras=8)
    marker = {"generator": "reidbench.synth", "seed": 3, "note": "synthetic renderings"}
    (root / "reidbench-synthetic.json").write_text(json.dumps(marker))
    dataset = load_dataset(root)
    assert dataset.synthetic is True
    assert dataset.extra["synthetic"] == marker
    assert dataset.name == "market1501"
    assert dataset.num_cameras == 8  # from the data, not Market's 6
    assert max(r.pid for r in dataset.train) > 1501  # Market's pid bound does not apply


def test_broken_synthetic_marker(tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "synth")
    (root / "reidbench-synthetic.json").write_text("{not json")
    with pytest.raises(UserError) as excinfo:
        load_dataset(root)
    assert "reidbench synth" in one_line_error(excinfo)


@pytest.mark.slow
def test_real_synth_output_if_available(tmp_path: Path) -> None:
    synthetic = pytest.importorskip("reidbench.datasets.synthetic")
    if not hasattr(synthetic, "generate"):
        pytest.skip("synthetic generator not there yet")
    counts = synthetic.generate(tmp_path / "s", train_ids=4, test_ids=4, seed=1)
    dataset = load_dataset(tmp_path / "s")
    assert dataset.synthetic is True
    assert isinstance(counts, dict)
    assert dataset.info()["query_ids"] == 4


# --- MSMT17 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["V1", "V2"])
def test_msmt17_lists(tmp_path: Path, version: str) -> None:
    expected = make_msmt17(tmp_path, version=version)
    dataset = load_dataset(tmp_path)
    info = dataset.info()
    assert dataset.name == "msmt17"
    assert dataset.extra["version"] == version
    for key in ("train_ids", "train_images", "query_ids", "query_images", "gallery_images"):
        assert info[key] == expected[key], key
    assert info["cameras"] == 15
    assert info["distractor_images"] == 0  # list pid 0 is a person, shifted to 1
    assert dataset.extra["pid_offset"] == 1
    test_dir = "test" if version == "V1" else "mask_test_v2"
    assert dataset.query[0] == ImageRecord(
        f"{test_dir}/0000/0000_000_01_0303morning_0010_0.jpg", 1, 0
    )
    assert all((dataset.root / r.path).is_file() for r in dataset.train)


def test_msmt17_val_setting(tmp_path: Path) -> None:
    expected = make_msmt17(tmp_path)
    dataset = load_dataset(tmp_path / "MSMT17_V1", msmt17_val_in_train=False)
    assert len(dataset.train) == expected["train_only_images"]
    assert len({r.pid for r in dataset.train}) == expected["train_only_ids"]
    assert dataset.extra["val_in_train"] is False
    camera_15 = [r for r in load_dataset(tmp_path).train if r.camid == 14]
    assert [r.pid for r in camera_15] == [5]  # pid 4 from list_val.txt, camera 15


def test_msmt17_bad_list_lines(tmp_path: Path) -> None:
    make_msmt17(tmp_path)
    main = tmp_path / "MSMT17_V1"
    with (main / "list_query.txt").open("a") as fh:
        fh.write("0003/0003_000_16_0303morning_0001_0.jpg 3\n")
        fh.write("0003/0003_000_01_0303morning_0001_0.jpg\n")
        fh.write("0009/0009_000_02_0303morning_0001_0.jpg 9\n")
    with pytest.raises(UserError) as excinfo:
        load_dataset(tmp_path)
    message = one_line_error(excinfo)
    assert f"camera 16 out of range 1..15 for msmt17: {main / 'list_query.txt'} line 4" in message
    assert "expected 'PATH PID'" in message and "line 5" in message
    assert "is missing" in message and "line 6" in message


def test_msmt17_missing_val_list(tmp_path: Path) -> None:
    make_msmt17(tmp_path)
    (tmp_path / "MSMT17_V1" / "list_val.txt").unlink()
    with pytest.raises(UserError) as excinfo:
        load_dataset(tmp_path)
    assert "--msmt17-train-only" in one_line_error(excinfo)
    assert len(load_dataset(tmp_path, msmt17_val_in_train=False).train) == 8


# --- CUHK03-NP ------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["", "cuhk03-np"])
def test_cuhk03np_variants(tmp_path: Path, where: str) -> None:
    make_cuhk03np(tmp_path)
    root = tmp_path / where if where else tmp_path
    detected = load_dataset(root)
    assert detected.name == "cuhk03np"
    assert detected.extra["variant"] == "detected"
    assert [len(detected.split(s)) for s in ("train", "query", "gallery")] == [4, 2, 4]
    labeled = load_dataset(root, cuhk03_variant="labeled")
    assert labeled.extra["variant"] == "labeled"
    assert [len(labeled.split(s)) for s in ("train", "query", "gallery")] == [5, 2, 3]
    assert labeled.num_cameras == 2
    assert labeled.query[0] == ImageRecord("query/0003_c1_6.png", 3, 0)


def test_cuhk03np_variant_folder_as_root(tmp_path: Path) -> None:
    top = make_cuhk03np(tmp_path)
    dataset = load_dataset(top / "labeled")
    assert dataset.name == "cuhk03np"
    assert dataset.extra["variant"] == "labeled"
    assert dataset.extra["detected_by"] == "file names in cuhk03np style"


def test_cuhk03np_camera_range_and_missing_variant(tmp_path: Path) -> None:
    top = make_cuhk03np(tmp_path)
    create_files([top / "detected" / "query" / "0003_c3_99.png"])
    with pytest.raises(UserError) as excinfo:
        load_dataset(tmp_path)
    assert "camera 3 out of range 1..2 for cuhk03np" in one_line_error(excinfo)
    with pytest.raises(UserError) as excinfo:
        load_dataset(tmp_path, cuhk03_variant="raw")
    assert "detected, labeled" in one_line_error(excinfo)
    for split_dir in (top / "labeled").iterdir():
        for f in split_dir.iterdir():
            f.unlink()
        split_dir.rmdir()
    (top / "labeled").rmdir()
    with pytest.raises(UserError) as excinfo:
        load_dataset(tmp_path, cuhk03_variant="labeled")
    assert "--cuhk03-variant detected" in one_line_error(excinfo)


# --- custom manifest ------------------------------------------------------------------------


def write_manifest(root: Path, rows: list[str], name: str = "manifest.csv") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text("path,pid,camid,split\n" + "\n".join(rows) + "\n")
    return path


def test_custom_manifest(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    create_files(tmp_path / "imgs" / f"{i}.png" for i in range(7))
    write_manifest(
        tmp_path,
        [
            "imgs/0.png,10,0,train",
            "imgs/1.png,10,3,train",
            "imgs/2.png,11,0,query",
            "imgs/3.png,11,1,gallery",
            "imgs/4.png,0,2,gallery",
            "imgs/5.png,-1,2,gallery",
            r"imgs\6.png,12,4,gallery",
        ],
    )
    dataset = load_dataset(tmp_path)
    assert dataset.name == "custom"
    assert dataset.extra["detected_by"] == "manifest.csv manifest"
    assert dataset.num_cameras == 5
    assert dataset.junk_dropped == 1
    assert dataset.train == [ImageRecord("imgs/0.png", 10, 0), ImageRecord("imgs/1.png", 10, 3)]
    assert dataset.gallery[-1] == ImageRecord("imgs/6.png", 12, 4)
    assert dataset.info()["distractor_images"] == 1
    assert len(dataset.extra["manifest_sha256"]) == 64


def test_custom_manifest_given_as_csv_path(tmp_path: Path) -> None:
    create_files([tmp_path / "a.jpg", tmp_path / "b.jpg"])
    csv_path = write_manifest(tmp_path, ["a.jpg,1,0,query", "b.jpg,1,1,gallery"], "mine.csv")
    dataset = load_dataset(csv_path)
    assert dataset.root == tmp_path
    assert dataset.extra["manifest"] == "mine.csv"
    assert load_dataset(csv_path, "custom").query == dataset.query


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("a.jpg,x,0,query", "pid 'x' is not an integer"),
        ("a.jpg,1,-2,query", "camid '-2' is not a 0-based integer"),
        ("a.jpg,1,0,test", "split 'test' is not one of train, query, gallery"),
        ("a.jpg,-5,0,query", "pid -5 is not allowed"),
        ("a.jpg,0,0,query", "distractor pid 0 outside the gallery"),
        ("/abs/a.jpg,1,0,query", "must be relative"),
        (",1,0,query", "empty path"),
        ("nothere.jpg,1,0,query", "is missing"),
        ("b.jpg,1,0,gallery", "listed twice (first at row 2)"),
    ],
)
def test_custom_manifest_row_errors(tmp_path: Path, row: str, expected: str) -> None:
    create_files([tmp_path / "a.jpg", tmp_path / "b.jpg"])
    manifest = write_manifest(tmp_path, ["b.jpg,1,1,gallery", row, "a.jpg,2,1,gallery"])
    with pytest.raises(UserError) as excinfo:
        load_dataset(tmp_path)
    message = one_line_error(excinfo)
    assert expected in message
    assert f"{manifest} row 3" in message


def test_custom_manifest_bad_header(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_text("file,id,cam\na.jpg,1,0\n")
    with pytest.raises(UserError) as excinfo:
        load_dataset(tmp_path)
    assert "lacks column(s) path, pid, camid, split" in one_line_error(excinfo)


# --- detection and generic errors -----------------------------------------------------------


def test_detection_table(tmp_path: Path) -> None:
    make_market_small(tmp_path / "a" / "Market-1501-v15.09.15")
    make_msmt17(tmp_path / "b")
    make_cuhk03np(tmp_path / "c")
    create_files([tmp_path / "d.jpg"])
    write_manifest(tmp_path / "d", ["../d.jpg,1,0,query"])
    assert detect_format(tmp_path / "a")[0] == "market1501"
    assert detect_format(tmp_path / "b")[0] == "msmt17"
    assert detect_format(tmp_path / "c")[0] == "cuhk03np"
    assert detect_format(tmp_path / "d")[0] == "custom"


def test_unknown_layout_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    with pytest.raises(UserError) as excinfo:
        load_dataset(tmp_path / "photos")
    message = one_line_error(excinfo)
    assert "unknown dataset layout" in message and "--format" in message
    assert "market1501" in message and "custom" in message
    with pytest.raises(UserError) as excinfo:
        load_dataset(tmp_path / "nope")
    assert "does not exist" in one_line_error(excinfo)
    create_files([tmp_path / "x.txt"])
    with pytest.raises(UserError) as excinfo:
        load_dataset(tmp_path / "x.txt")
    assert "is a file" in one_line_error(excinfo)


def test_unknown_format_name_and_aliases(tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "m")
    with pytest.raises(UserError) as excinfo:
        load_dataset(root, "viper")
    assert "use one of market1501, dukemtmcreid, msmt17, cuhk03np, custom" in one_line_error(
        excinfo
    )
    assert load_dataset(root, "Market-1501").name == "market1501"


def test_wrong_format_for_the_tree(tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "m")
    with pytest.raises(UserError) as excinfo:
        load_dataset(root, "msmt17")
    assert "is not an MSMT17 folder" in one_line_error(excinfo)
    with pytest.raises(UserError) as excinfo:
        load_dataset(root, "custom")
    assert "no manifest" in one_line_error(excinfo)
