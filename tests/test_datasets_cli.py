"""`reidbench dataset info`: the table, the JSON, the options and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.dataset_trees import create_files, make_cuhk03np, make_market_small, make_msmt17

KEYS = (
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


def assert_one_line_error(result, *needles: str) -> str:
    assert result.code == 2
    assert result.out == ""
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.mark.parametrize("args", [("dataset", "--help"), ("dataset", "info", "--help")])
def test_help(run_cli, args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.code == 0
    assert "Usage" in result.out


def test_json_is_one_object_with_the_contract_keys(run_cli, tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "m", junk=5, distractors=4)
    result = run_cli("dataset", "info", root, "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert {k: data[k] for k in KEYS} == {
        "train_ids": 3,
        "train_images": 9,
        "query_ids": 3,
        "query_images": 3,
        "gallery_ids": 4,
        "gallery_images": 13,
        "junk_dropped": 5,
        "distractor_images": 4,
        "cameras": 6,
    }
    assert data["synthetic"] is False
    assert data["dataset"] == "market1501"


def test_table_marks_synthetic_data(run_cli, tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "s")
    (root / "reidbench-synthetic.json").write_text('{"generator": "test"}')
    result = run_cli("dataset", "info", root)
    assert result.code == 0, result.err
    assert "SYNTHETIC (reidbench synth)" in result.out


def test_msmt17_option(run_cli, tmp_path: Path) -> None:
    make_msmt17(tmp_path)
    full = json.loads(run_cli("dataset", "info", tmp_path, "--json").out)
    only = json.loads(run_cli("dataset", "info", tmp_path, "--json", "--msmt17-train-only").out)
    assert (full["train_images"], only["train_images"]) == (11, 8)
    table = run_cli("dataset", "info", tmp_path).out
    assert table.splitlines()[0] == "=> Loaded MSMT17"
    assert "val in train" in table and "pid offset" in table


def test_cuhk03_option(run_cli, tmp_path: Path) -> None:
    make_cuhk03np(tmp_path)
    result = run_cli("dataset", "info", tmp_path, "--cuhk03-variant", "labeled")
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == "=> Loaded CUHK03-NP (labeled)"
    assert "  train    |     2 |        5 |         2" in result.out.splitlines()


def test_format_override(run_cli, tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "m")
    result = run_cli("dataset", "info", root, "--format", "dukemtmcreid", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["dataset"] == "dukemtmcreid" and data["cameras"] == 8
    assert data["extra"]["detected_by"] == "--format"


def test_errors_are_one_line(run_cli, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("dataset", "info", tmp_path / "missing"), "does not exist")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(
        run_cli("dataset", "info", tmp_path / "empty"), "unknown dataset layout", "--format"
    )
    root = make_market_small(tmp_path / "m")
    assert_one_line_error(
        run_cli("dataset", "info", root, "--format", "nope"), "unknown dataset format 'nope'"
    )
    create_files([root / "query" / "photo.jpg"])
    assert_one_line_error(
        run_cli("dataset", "info", root, "--json"), str(root / "query" / "photo.jpg")
    )
