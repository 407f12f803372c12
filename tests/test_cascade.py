"""Offline cascade: bands from calibration ReID scores, curve on held-out pairs, accounting."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, roc_auc_score

from reidbench.errors import UserError
from reidbench.fusion import band_halfwidth, fuse_run
from reidbench.fusion.cascade import fuse_cascade, unit_scores
from reidbench.metrics.run import compute_metrics
from reidbench.metrics.verification import best_f1_threshold
from reidbench.rundir import open_run
from reidbench.tables import read_table
from tests.fusion_fixtures import LVLM_COST, pair_ids, two_embedders_and_lvlm, write_run

NAME = "cascade(emb-a>judge)"


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory):
    y, systems = two_embedders_and_lvlm(n=400, seed=3)
    root = write_run(tmp_path_factory.mktemp("run"), y, systems)
    record = fuse_run(root, ["emb-a", "judge"], method="cascade", budget_usd_per_1k=1.0)
    calib = open_run(root).calibration()
    s = systems["emb-a"]["score"]
    t, _, _ = best_f1_threshold(y[calib], s[calib])
    return root, y, systems, record, calib, t


@given(
    st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=60, unique=True),
    st.floats(0, 1),
)
@settings(max_examples=60, deadline=None)
def test_band_holds_the_target_share_of_calibration_pairs(d: list[float], f: float) -> None:
    dist = np.asarray(d)
    w = band_halfwidth(dist, f)
    assert int((dist <= w).sum()) == round(f * dist.size)  # distinct distances: exact
    assert band_halfwidth(dist, min(1.0, f + 0.1)) >= w  # bands nest


def test_band_edges() -> None:
    d = np.array([0.3, 0.1, 0.2, 0.1])
    assert band_halfwidth(d, 0.0) == -math.inf and band_halfwidth(d, 1.0) == math.inf
    assert band_halfwidth(d, 0.25) == 0.1  # ties at the edge are all inside
    assert int((d <= band_halfwidth(d, 0.25)).sum()) == 2


def test_unit_scores_put_the_threshold_at_one_half() -> None:
    s = np.array([0.0, 30.0, 60.0, 100.0, np.nan, np.nan])
    dec = np.array(["different", "different", "same", "same", "same", "unknown"], dtype=object)
    ok = np.array([True, True, True, True, True, False])
    u = unit_scores(s, dec, ok, 60.0, 100.0)
    np.testing.assert_allclose(u[:5], [0.0, 0.25, 0.5, 1.0, 1.0])
    assert np.isnan(u[5])
    np.testing.assert_allclose(unit_scores(s[:4], dec[:4], ok[:4], 50.0, 100.0), s[:4] / 100)


@pytest.mark.slow
def test_curve_ends_are_the_reid_model_and_the_lvlm(offline) -> None:
    root, y, systems, record, _calib, t = offline
    body = record["cascade"]
    assert body["reid_side"]["threshold"] == pytest.approx(t)
    held = open_run(root).held_out()
    s = systems["emb-a"]["score"]
    lv = systems["judge"]["score"]
    failed = systems["judge"]["status"] != "ok"
    first, last = body["curve"][0], body["curve"][-1]
    assert first["fraction_target"] == 0.0 and first["n_sent"] == 0 and first["usd"] == 0.0
    assert first["f1"] == pytest.approx(f1_score(y[held], s[held] >= t))
    assert last["fraction_target"] == 1.0 and last["n_sent"] == held.sum()
    assert last["n_lvlm_failed"] == (held & failed).sum()
    same = np.where(failed, s >= t, lv >= 50)
    assert last["f1"] == pytest.approx(f1_score(y[held], same[held]))
    assert last["usd_per_1000_pairs"] == pytest.approx(LVLM_COST * 1000)
    for p in body["curve"]:  # cost = LVLM USD of the pairs sent, per 1,000 evaluated pairs
        assert p["n"] == held.sum()
        assert p["usd"] == pytest.approx(p["n_sent"] * LVLM_COST)
        assert p["usd_per_1000_pairs"] == pytest.approx(p["usd"] / p["n"] * 1000)
        if p["halfwidth"] is not None:
            inside = held & (np.abs(s - t) <= p["halfwidth"])
            assert p["n_sent"] == inside.sum()
    fractions = [p["fraction_sent"] for p in body["curve"]]
    assert fractions == sorted(fractions)


@pytest.mark.slow
def test_operating_point_is_the_best_calibration_f1_within_budget(offline) -> None:
    _, _, _, record, _, _ = offline
    body = record["cascade"]
    op = body["operating_point"]
    fits = [p for p in body["curve_calibration"] if p["usd_per_1000_pairs"] <= 1.0]
    best = max(fits, key=lambda p: (p["f1"], -p["fraction_sent"]))
    assert op["calibration"] == best
    assert op["fraction_target"] == best["fraction_target"]
    assert "at most 1.0 USD" in op["rule"]
    assert op["calibration"]["usd_per_1000_pairs"] <= 1.0


def test_rows_decide_by_band_and_score(offline) -> None:
    root, y, systems, record, calib, t = offline
    rows = read_table(root / record["rows_file"]).to_pydict()
    index = {int(p): i for i, p in enumerate(pair_ids(y.size))}
    w = record["cascade"]["operating_point"]["halfwidth"]
    s = systems["emb-a"]["score"]
    lv = systems["judge"]["score"]
    failed = systems["judge"]["status"] != "ok"
    assert len(rows["pair_id"]) == open_run(root).held_out().sum()
    for pid, score, dec, why, cost in zip(
        rows["pair_id"],
        rows["score"],
        rows["decision"],
        rows["reasons"],
        rows["cost_usd"],
        strict=True,
    ):
        i = index[pid]
        assert not calib[i]
        assert dec == ("same" if score >= 0.5 else "different")
        inside = w is not None and abs(s[i] - t) <= w
        if not inside:
            assert dec == ("same" if s[i] >= t else "different") and cost == 0
            assert why.endswith("(outside the band)")
        elif failed[i]:
            assert why == "decided by emb-a: judge failed (refusal)"
            assert dec == ("same" if s[i] >= t else "different")
        else:
            assert score == pytest.approx(lv[i] / 100) and why == "decided by judge"
            assert cost == pytest.approx(LVLM_COST)


@pytest.mark.slow
def test_cascade_in_metrics(offline) -> None:
    root, y, _, record, _calib, _ = offline
    metrics = compute_metrics(root)
    sysblock = metrics["systems"][NAME]
    assert sysblock["type"] == "cascade" and sysblock["evaluated_on"] == "held-out"
    assert sysblock["threshold"] == 0.5
    rows = read_table(root / record["rows_file"])
    lab = dict(zip(pair_ids(y.size), y, strict=True))
    yy = np.array([lab[p] for p in rows["pair_id"].to_pylist()])
    op = record["cascade"]["operating_point"]
    if 0 < op["n_sent"] < op["n"]:  # the score mixes two scales: no ranking metrics
        assert sysblock["auc"] is None and op["auc"] is None
        assert "scales" in sysblock["null_reasons"]["auc"] and "scales" in op["null_reasons"]["auc"]
    else:
        assert sysblock["auc"] == pytest.approx(roc_auc_score(yy, rows["score"].to_numpy()))
        assert sysblock["auc"] == pytest.approx(op["auc"])
    assert sysblock["f1"] == pytest.approx(op["f1"])
    assert sysblock["costs"]["usd_per_1000_pairs"] == pytest.approx(op["usd_per_1000_pairs"])
    block = metrics["cascade"][NAME]
    assert block["reid"] == "emb-a" and block["lvlm"] == "judge" and block["mode"] == "offline"
    assert (
        len(block["curve"]) == 21
        and block["split"]["n_held_out"] == open_run(root).held_out().sum()
    )


def test_fixed_fraction_and_errors(tmp_path: Path) -> None:
    y, systems = two_embedders_and_lvlm(n=200)
    data = open_run(write_run(tmp_path, y, systems))
    out = fuse_cascade(data, "emb-a", "judge", fractions=[0.0, 1.0], fraction=0.3)
    assert out.record_body["fractions"] == [0.0, 0.3, 1.0]
    assert out.record_body["operating_point"]["fraction_target"] == 0.3
    assert out.record_body["operating_point"]["rule"] == "the configured fraction 0.3"
    none = fuse_cascade(data, "emb-a", "judge", fractions=[0.5], fraction=0.0)
    assert none.record_body["fractions"] == [0.0, 0.5]
    assert none.record_body["operating_point"]["n_sent"] == 0
    with pytest.raises(UserError, match="must be a ReID model"):
        fuse_cascade(data, "judge", "emb-a", fractions=[0.5])
    with pytest.raises(UserError, match="must be an LVLM"):
        fuse_cascade(data, "emb-a", "emb-b", fractions=[0.5])
    with pytest.raises(UserError, match="no cascade point fits"):
        fuse_cascade(data, "emb-a", "judge", fractions=[1.0], budget_usd_per_1k=0.01)


@pytest.mark.slow
def test_cli_cascade(tmp_path: Path, run_cli) -> None:
    y, systems = two_embedders_and_lvlm(n=160)
    root = write_run(tmp_path, y, systems)
    res = run_cli(
        "fuse", root, "--systems", "emb-a,judge", "--method", "cascade", "--fractions", "0,0.5,1"
    )
    assert res.code == 0, res.err
    assert "operating point sends" in res.err
    res = run_cli(
        "fuse", root, "--systems", "emb-a,judge", "--method", "cascade", "--fractions", "0,2"
    )
    assert res.code == 2 and "--fractions" in res.err


def test_held_out_labels_cannot_change_the_band_or_the_operating_point(tmp_path: Path) -> None:
    y, systems = two_embedders_and_lvlm(n=300, seed=8)
    data = open_run(write_run(tmp_path, y, systems))
    calib = data.calibration()
    a = fuse_cascade(
        data, "emb-a", "judge", fractions=[0, 0.2, 0.5, 1], budget_usd_per_1k=1.5, calib=calib
    )
    data.label = data.label.copy()
    data.label[~calib] = 1 - data.label[~calib]  # every held-out label wrong
    b = fuse_cascade(
        data, "emb-a", "judge", fractions=[0, 0.2, 0.5, 1], budget_usd_per_1k=1.5, calib=calib
    )
    assert a.record_body["reid_side"] == b.record_body["reid_side"]
    assert a.record_body["curve_calibration"] == b.record_body["curve_calibration"]
    op_a, op_b = a.record_body["operating_point"], b.record_body["operating_point"]
    assert (op_a["fraction_target"], op_a["halfwidth"]) == (
        op_b["fraction_target"],
        op_b["halfwidth"],
    )
    np.testing.assert_array_equal(a.operating.score, b.operating.score)
