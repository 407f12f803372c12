"""Issue #15 views: LVLM-ReID agreement, DET, camera pairs, embedder failures, CMC band,
paired re-ranking tests and the system cards, checked against brute force."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
from scipy.stats import binomtest
from sklearn.metrics import det_curve

from reidbench.metrics.retrieval import evaluate_retrieval
from reidbench.metrics.run import compute_metrics
from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.metrics.run.cameras import camera_cells
from reidbench.metrics.run.disagreement import agreement
from reidbench.metrics.run.headline import system_block
from reidbench.metrics.run.retrieval_band import (
    cmc_band,
    identity_weights,
    rerank_paired,
    with_band,
)
from reidbench.report import render_report
from reidbench.report.cameras import camera_figure, camera_table
from reidbench.report.cmc_band import cmc_band_figure
from reidbench.report.det import det_figure
from reidbench.report.protocol import system_card
from reidbench.rundir import open_run
from reidbench.tables import SCORES_SCHEMA, read_table
from tests.report_runs import make_run

FIXED = "2026-12-01 12:00 UTC"


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """An LVLM, a ReID model, a fused and a cascade system; metrics and report."""
    from reidbench.fusion import fuse_run

    root = tmp_path_factory.mktemp("views")
    run, _ = make_run(root, n=60, missing_images=False, bootstrap=30)
    fuse_run(run, ["handcrafted", "gpt-4o"], cv_folds=3, cs=3)
    fuse_run(run, ["handcrafted", "gpt-4o"], method="cascade", fractions=[0, 0.25, 0.5, 1])
    m = compute_metrics(run)
    html, _ = render_report(run, m, generated=FIXED)
    return {"run": run, "m": m, "html": html}


def _primary(run: Path, system: str) -> dict[int, tuple[float | None, str]]:
    t = read_table(run / "scores.parquet", schema=SCORES_SCHEMA)
    t = t.filter(pc.equal(t.column("system"), system))
    out = {}
    for row in t.to_pylist():
        if row["order"] == "ab" and row["repeat"] == 0:
            out[row["pair_id"]] = (row["score"], row["status"])
    return out


def _decided(run: Path, name: str):
    r = open_run(run)
    boot = Bootstrap(n_boot=0, clusters=r.pairs.clusters())
    _, d, _ = system_block(r.systems[name], r.pairs, r.halves(), np.zeros((0, 3)), boot)
    return r, d


@pytest.mark.slow
def test_agreement_table_is_brute_force(full_run):
    run, m = full_run["run"], full_run["m"]
    (block,) = m["disagreement"]  # one LVLM, one ReID model: fused/cascade not included
    assert (block["lvlm"], block["reid"]) == ("gpt-4o", "handcrafted")
    r, lv = _decided(run, "gpt-4o")
    _, rd = _decided(run, "handcrafted")
    raw_lv, raw_rd = _primary(run, "gpt-4o"), _primary(run, "handcrafted")
    counts = {"both_right": 0, "lvlm_right_only": 0, "reid_right_only": 0, "both_wrong": 0}

    def right(raw, d, i, pid, y):
        score, status = raw[pid]
        if status != "ok" or score is None:
            return False  # an abstention counts as wrong
        return (score >= d.pair_threshold[i]) == (y == 1)

    for i, pid in enumerate(r.pairs.pair_id.tolist()):
        y = int(r.pairs.label[i])
        a, b = right(raw_lv, lv, i, pid, y), right(raw_rd, rd, i, pid, y)
        key = (
            ("both_right" if b else "lvlm_right_only")
            if a
            else ("reid_right_only" if b else "both_wrong")
        )
        counts[key] += 1
    assert block["table"] == counts and block["n"] == 60
    b, c = counts["lvlm_right_only"], counts["reid_right_only"]
    assert block["mcnemar_exact"]["p_value"] == pytest.approx(binomtest(b, b + c, 0.5).pvalue)
    assert block["accuracy_diff"]["diff"] == pytest.approx((b - c) / 60)
    lo, hi = block["accuracy_diff"]["ci"]["low"], block["accuracy_diff"]["ci"]["high"]
    assert lo <= (b - c) / 60 <= hi
    assert block["mcnemar"]["test"].startswith("clustered")  # the dependence-aware test
    ex = block["examples"]
    assert len(ex["lvlm_right"]) == min(8, b) and len(ex["reid_right"]) == min(8, c)
    for e in ex["lvlm_right"]:  # truly a disagreement: ReID decided wrongly
        assert e["reid_same"] != bool(e["label"])
        assert (e["reid_score"] >= e["reid_threshold"]) == e["reid_same"]
    gaps = [abs(e["reid_score"] - e["reid_threshold"]) for e in ex["lvlm_right"]]
    assert gaps == sorted(gaps, reverse=True)  # ReID's most confident errors first


def test_agreement_abstentions_count_as_wrong_on_identical_pairs():
    """Hand-made decisions: 2x2 counts by hand; a refusal is wrong; pairs not evaluated by
    one system are left out for both."""
    from reidbench.metrics.run.thresholds import Decided
    from reidbench.rundir.model import Pairs

    y = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    n = y.size
    pairs = Pairs(
        pair_id=np.arange(n) + 10,
        label=y,
        path_a=np.array([f"a{i}" for i in range(n)], dtype=object),
        path_b=np.array([f"b{i}" for i in range(n)], dtype=object),
        pid_a=np.arange(n),
        pid_b=np.where(y == 1, np.arange(n), np.arange(n) + 100),
        meta={},
    )

    def dec(name, kind, pred, answered, status):
        p = np.array(pred, dtype=bool)
        s = np.where(p, 80.0, 20.0)
        st = np.array(status, dtype=object)
        return Decided(name, kind, 100.0, s, p, st, np.array(answered, dtype=bool), 50.0, p)

    st = ["ok"] * n
    lv = dec("lv", "lvlm", [1, 0, 0, 1, 1, 0, 1, 1], [1, 1, 1, 1, 0, 1, 1, 1], st)
    st_r = ["ok"] * (n - 1) + ["not_evaluated"]
    rd = dec("rd", "reid", [1, 1, 1, 0, 0, 0, 1, 0], [1] * n, st_r)
    out = agreement(lv, rd, pairs, Bootstrap(n_boot=50, clusters=pairs_clusters(pairs)))
    # pair: 0 both right; 1 reid only; 2 reid wrong, lv right; 3 lv wrong, reid right;
    # 4 lv abstained (wrong), reid wrong; 5 both right; 6 both right; 7 left out
    assert out["n"] == 7
    assert out["table"] == {
        "both_right": 3,
        "lvlm_right_only": 1,
        "reid_right_only": 2,
        "both_wrong": 1,
    }


def pairs_clusters(pairs):
    return pairs.clusters()


@pytest.mark.slow
def test_det_points_are_sklearn(full_run):
    run, m = full_run["run"], full_run["m"]
    r = open_run(run)
    raw = _primary(run, "handcrafted")
    s = np.array([raw[p][0] for p in r.pairs.pair_id.tolist()])
    far, fnr, _ = det_curve(r.pairs.label, s)
    got = m["det"]["systems"]["handcrafted"]
    np.testing.assert_allclose(got["far"], far)
    np.testing.assert_allclose(got["fnr"], fnr)
    conf = m["systems"]["handcrafted"]["confusion"]
    op = got["operating_point"]
    assert op["far"] == pytest.approx(conf["fp"] / (conf["fp"] + conf["tn"]))
    assert op["fnr"] == pytest.approx(conf["fn"] / (conf["fn"] + conf["tp"]))
    fig = det_figure(m["det"], {})
    assert fig is not None and fig.axes[0].get_xscale() == "log"


def test_camera_cells_by_hand():
    rng = np.random.default_rng(3)
    cam_a, cam_b = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    values = rng.random(200)
    keep = rng.random(200) < 0.8
    cells = camera_cells(cam_a, cam_b, values, keep)
    for c in cells:
        a, b = c["cams"]
        sel = keep & (((cam_a == a) & (cam_b == b)) | ((cam_a == b) & (cam_b == a)))
        assert a <= b and c["n"] == sel.sum()
        assert c["accuracy"] == pytest.approx(values[sel].mean())
    assert sum(c["n"] for c in cells) == keep.sum()
    blocks = {"cameras": [0, 1, 2, 3], "min_n": 15, "systems": {"x": cells}}
    table = camera_table(blocks, {})
    small = [cell for row in table.rows for cell in row.cells if cell.note]
    assert len(small) == sum(c["n"] < 15 for c in cells)
    assert camera_figure(blocks, {}) is not None


@pytest.mark.slow
def test_camera_cell_is_the_headline_when_one_camera_pair(full_run):
    m = full_run["m"]
    cams = m["camera_pairs"]
    assert cams["cameras"] == [0, 1]
    for name in ("gpt-4o", "handcrafted"):
        (cell,) = cams["systems"][name]
        assert cell["n"] == 60
        assert cell["accuracy"] == pytest.approx(m["systems"][name]["coverage_aware"]["accuracy"])


@pytest.mark.slow
def test_embedder_worst_errors(full_run):
    run, m = full_run["run"], full_run["m"]
    w = m["embedder_failures"]["systems"]
    assert list(w) == ["handcrafted"]  # ReID models only
    h, conf = w["handcrafted"], m["systems"]["handcrafted"]["confusion"]
    assert (h["n_false_accepts"], h["n_false_rejects"]) == (conf["fp"], conf["fn"])
    raw = _primary(run, "handcrafted")
    fa = [e["score"] for e in h["false_accepts"]]
    assert fa == sorted(fa, reverse=True)
    for e in h["false_accepts"]:
        assert (
            e["label"] == 0 and e["score"] >= e["threshold"] and raw[e["pair_id"]][0] == e["score"]
        )
    fr = [e["score"] for e in h["false_rejects"]]
    assert fr == sorted(fr) and all(
        e["label"] == 1 and e["score"] < e["threshold"] for e in h["false_rejects"]
    )


def test_cmc_band_matches_the_evaluator_and_resamples_identities():
    rng = np.random.default_rng(0)
    q_pids = np.repeat(np.arange(12), 3)
    g_pids = np.concatenate([np.arange(12), np.arange(12), rng.integers(100, 200, 40)])
    dist = rng.random((q_pids.size, g_pids.size))
    res = evaluate_retrieval(
        dist, q_pids, g_pids, np.zeros(q_pids.size, int), np.ones(g_pids.size, int), max_rank=10
    )
    pq = {
        "pid": q_pids[res.valid_queries].tolist(),
        "first_match_rank": res.first_match_rank.tolist(),
        "AP": res.all_AP.tolist(),
    }
    band = cmc_band(pq, 10, 200, seed=1)
    np.testing.assert_allclose(band["cmc"], res.cmc)
    assert band["mAP"] == pytest.approx(res.mAP)
    for lo, c, hi in zip(band["low"], band["cmc"], band["high"], strict=True):
        assert lo <= c + 1e-12 and c <= hi + 1e-12
    w = identity_weights(q_pids, 50, 0)
    for p in range(12):  # the three queries of one person are drawn together
        cols = w[:, q_pids == p]
        assert (cols == cols[:, :1]).all()
    assert (w.sum(axis=1) == 36).all()  # 12 identities of 3 queries drawn per resample
    entry = with_band({"rank1": res.rank(1), "cmc": res.cmc.tolist(), "per_query": pq}, 100, 0)
    assert "per_query" not in entry and entry["cmc_band"]["n_identities"] == 12
    assert cmc_band_figure({"x": entry}, {}) is not None
    assert with_band({"cmc": [0.5, 1.0]}, 100, 0) == {"cmc": [0.5, 1.0]}  # no ranks: no band


def test_rerank_paired_tests_by_hand():
    pid = np.arange(50) // 2
    before = np.array([0] * 20 + [1] * 30)
    after = np.array([0] * 18 + [3, 3] + [0] * 5 + [2] * 25)  # 2 lost, 5 gained at rank 1
    ap_b, ap_a = np.linspace(0.2, 0.9, 50), np.linspace(0.25, 0.95, 50)
    out = rerank_paired(pid, before, after, ap_b, ap_a, n_boot=300, seed=0)
    assert out["rank1"]["diff"] == pytest.approx((5 - 2) / 50)
    assert out["mcnemar"]["b"] == 5 and out["mcnemar"]["c"] == 2
    assert out["mcnemar"]["p_value"] == pytest.approx(binomtest(5, 7, 0.5).pvalue)
    assert out["mAP"]["diff"] == pytest.approx(0.05)
    ci = out["mAP"]["ci"]
    assert ci["low"] == pytest.approx(0.05) and ci["high"] == pytest.approx(0.05)


def test_rerank_cli_and_report_print_the_change_alike():
    from reidbench.fusion.rerank_run import rerank_markdown
    from reidbench.report import format as fmt
    from tests.test_report import RERANK

    result = json.loads(json.dumps(RERANK))
    result["paired"] = rerank_paired(
        np.arange(5),
        np.array([0, 1, 1, 0, 2]),
        np.array([0, 0, 0, 0, 2]),
        np.full(5, 0.3),
        np.full(5, 0.4),
        n_boot=100,
    )
    md = rerank_markdown(result)
    assert "%" not in md.split("| change |")[1].splitlines()[0]  # was "+20.00%"
    assert "| change | +0.200 |" in md
    line = fmt.paired_change(result["paired"]["rank1"], result["paired"]["mcnemar"])
    assert f"- rank-1: {line}" in md and "exact McNemar p = 0.5 (2 better, 0 worse)" in line


@pytest.mark.slow
def test_every_card_describes_its_system(full_run):
    m, html = full_run["m"], full_run["html"]
    seen = set()
    for name, b in m["systems"].items():
        kind = b["type"]
        seen.add(kind)
        facts = dict(system_card(name, b, "#000", None).facts)
        text = " ".join(facts.values())
        if kind in ("fusion", "cascade"):
            assert "Weights" not in facts and "bundled" not in text and "Fingerprint" not in facts
            assert "no weights of its own" in facts["Fitted"]
            assert "handcrafted" in text and "gpt-4o" in text
            assert "Provider" not in facts and "Prompt" not in facts
            want = "logistic regression" if kind == "fusion" else "cascade: handcrafted decides"
            assert facts["Method"].startswith(want)
            if kind == "cascade":
                assert "not fitted" in facts["Threshold"]
        elif kind == "reid":
            assert facts["Model"] == "handcrafted" and "model's default" in facts["Weights"]
            assert "Provider" not in facts and "Prompt" not in facts
        else:
            assert kind == "lvlm" and facts["Provider"].startswith("openai")
            assert facts["Prompt"].startswith("similarity-0-100") and "Weights" not in facts
        assert facts["Type"] in html
    assert seen == {"lvlm", "reid", "fusion", "cascade"}
    assert "bundled with the package" not in html


@pytest.mark.slow
def test_views_are_in_the_report(full_run):
    html = full_run["html"]
    for anchor in ("det", "embedder-failures", "disagreement", "cameras"):
        assert f'id="{anchor}"' in html
    for anchor in ("disagreement", "cameras"):
        assert f'<a href="#{anchor}">' in html
    assert "Worst false accepts" in html and "gpt-4o right, handcrafted wrong" in html
    assert "McNemar (exact)" in html and "LVLM right only" in html
    assert "cameras 0–1" in html
