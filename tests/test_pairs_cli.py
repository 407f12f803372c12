"""`reidbench pairs` end to end on a tiny Market-1501 tree (real files, real loader)."""

from __future__ import annotations

import pytest

from reidbench.pairs import read_pairs
from tests.test_pairs_data import write_market_tree


@pytest.fixture
def market(tmp_path):
    return write_market_tree(tmp_path / "Market-1501-v15.09.15", n_ids=6, cams=3)


def test_help(run_cli):
    result = run_cli("pairs", "--help")
    assert result.code == 0
    for option in ("--out", "--positives", "--negatives", "--seed", "--split", "--same-camera"):
        assert option in result.out


def test_writes_pairs_and_prints_summary(run_cli, market, tmp_path):
    out = tmp_path / "out" / "pairs.parquet"
    result = run_cli(
        "pairs", market, "--out", out, "--positives", "8", "--negatives", "10", "--triplets", "2"
    )
    assert result.code == 0, result.err
    ps = read_pairs(out)
    assert ps.meta["counts"]["base_positives"] == 8
    assert ps.meta["dataset"]["name"] == "market1501"
    assert ps.meta["split"] == "query-gallery"
    assert len(ps.triplets) == 2
    assert f"sha256:{ps.content_hash}" in result.out
    assert "camera pair" in result.out and "0-1" in result.out
    assert f"wrote {len(ps)} pairs" in result.out


def test_same_command_same_bytes_and_csv_has_sidecar(run_cli, market, tmp_path):
    args = ["--positives", "5", "--negatives", "5", "--seed", "4", "--split", "test"]
    for name in ("a.parquet", "b.parquet", "c.csv"):
        assert run_cli("pairs", market, "--out", tmp_path / name, *args).code == 0
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert (tmp_path / "c.csv.meta.json").is_file()
    assert (
        read_pairs(tmp_path / "c.csv").content_hash
        == read_pairs(tmp_path / "a.parquet").content_hash
    )


def test_distractors_and_same_camera_flags(run_cli, market, tmp_path):
    out = tmp_path / "p.parquet"
    result = run_cli(
        "pairs", market, "--out", out, "--positives", "3", "--negatives", "60",
        "--distractors", "--same-camera",
    )  # fmt: skip
    assert result.code == 0, result.err
    ps = read_pairs(out)
    assert ps.meta["rules"]["distractor_negatives"] is True
    assert ps.meta["rules"]["same_camera_positives"] is True
    assert "distractor negatives:" in result.out


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--positives", "999", "--negatives", "1"], "positive pairs"),
        (["--positives", "1", "--negatives", "99999"], "negative pairs"),
        (["--positives", "1", "--negatives", "1", "--split", "val"], "unknown split"),
        (["--positives", "0", "--negatives", "0"], "nothing to curate"),
        (["--positives", "-3", "--negatives", "1"], "Invalid value for '--positives'"),
    ],
)
def test_impossible_requests_exit_2_with_one_line_and_no_file(
    run_cli, market, tmp_path, extra, needle
):
    out = tmp_path / "o" / "p.parquet"
    result = run_cli("pairs", market, "--out", out, *extra)
    assert result.code == 2
    assert result.err.startswith("error: ") and needle in result.err
    assert result.err.strip().count("\n") == 0
    assert "Traceback" not in result.err
    assert not out.parent.exists()  # not even the output folder is left behind


def test_bad_out_name_fails_before_loading(run_cli, tmp_path):
    result = run_cli("pairs", tmp_path / "missing-root", "--out", tmp_path / "p.json",
                     "--positives", "1", "--negatives", "1")  # fmt: skip
    assert result.code == 2
    assert ".parquet or .csv" in result.err


def test_out_under_a_file_is_refused(run_cli, market, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    result = run_cli("pairs", market, "--out", blocker / "p.parquet",
                     "--positives", "1", "--negatives", "1")  # fmt: skip
    assert result.code == 2
    assert "cannot create the output folder" in result.err


def test_missing_root_is_user_error(run_cli, tmp_path):
    result = run_cli("pairs", tmp_path / "nope", "--out", tmp_path / "p.parquet",
                     "--positives", "1", "--negatives", "1")  # fmt: skip
    assert result.code == 2
    assert result.err.startswith("error: ")
    assert not (tmp_path / "p.parquet").exists()
