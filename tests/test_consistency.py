"""Consistency (symmetry, repeats, transitivity), catastrophic answers and costs vs brute force."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reidbench.metrics import consistency as cons
from reidbench.metrics import failures as fail
from reidbench.metrics.costs import cost_summary


def test_symmetry_counts_and_gaps():
    same_ab = np.array([True, True, False, False, True])
    same_ba = np.array([True, False, False, True, True])
    s_ab = np.array([80.0, 55.0, 10.0, 45.0, np.nan])
    s_ba = np.array([70.0, 45.0, 10.0, 60.0, 90.0])
    got = cons.symmetry(same_ab, same_ba, s_ab, s_ba)
    assert got["n_pairs"] == 5 and got["disagreements"] == 2
    assert got["disagreement_rate"] == pytest.approx(0.4)
    assert got["n_scored"] == 4
    assert got["mean_abs_score_gap"] == pytest.approx((10 + 10 + 0 + 15) / 4)
    assert got["median_abs_score_gap"] == pytest.approx(10.0)
    assert got["max_abs_score_gap"] == 15.0
    none = cons.symmetry(None, None, s_ab, s_ba)
    assert none["disagreement_rate"] is None and none["null_reasons"]["disagreement_rate"]
    empty = cons.symmetry(np.array([], bool), np.array([], bool), np.array([]), np.array([]))
    assert empty["disagreement_rate"] is None and empty["mean_abs_score_gap"] is None
    json.dumps([got, none, empty], allow_nan=False)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 8), st.booleans(), st.integers(0, 100) | st.just(-1)),
        max_size=40,
    )
)
@pytest.mark.slow
def test_repeat_stability_matches_brute_force(rows):
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    same = np.array([r[1] for r in rows], bool)
    scores = np.array([np.nan if r[2] < 0 else float(r[2]) for r in rows])
    got = cons.repeat_stability(ids, same, scores)
    groups: dict[int, list] = {}
    for pid, d, sc in zip(ids, same, scores, strict=True):
        groups.setdefault(int(pid), []).append((bool(d), sc))
    multi = {k: v for k, v in groups.items() if len(v) >= 2}
    assert got["n_pairs"] == len(multi)
    if multi:
        agree = [len({d for d, _ in v}) == 1 for v in multi.values()]
        assert got["decision_agreement"] == pytest.approx(np.mean(agree))
        assert got["flipped_pairs"] == agree.count(False)
        assert got["max_repeats"] == max(len(v) for v in groups.values())
    else:
        assert got["decision_agreement"] is None
    scored = [np.array([sc for _, sc in v if np.isfinite(sc)]) for v in multi.values()]
    scored = [v for v in scored if v.size >= 2]
    assert got["n_scored_pairs"] == len(scored)
    if scored:
        assert got["mean_score_std"] == pytest.approx(np.mean([v.std() for v in scored]))
        assert got["mean_score_range"] == pytest.approx(np.mean([np.ptp(v) for v in scored]))
        assert got["max_score_range"] == pytest.approx(max(np.ptp(v) for v in scored))
    else:
        assert got["mean_score_std"] is None
    json.dumps(got, allow_nan=False)


@settings(max_examples=80, deadline=None)
@given(
    st.dictionaries(st.integers(0, 14), st.booleans(), max_size=15),
    st.lists(st.tuples(st.integers(0, 14), st.integers(0, 14), st.integers(0, 14)), max_size=10),
)
def test_transitivity_matches_brute_force(decided, triplets):
    ids = np.array(list(decided), dtype=np.int64)
    same = np.array(list(decided.values()), bool)
    trip = np.array(triplets, dtype=np.int64).reshape(-1, 3)
    got = cons.transitivity(trip, ids, same)
    evaluated = [t for t in triplets if all(p in decided for p in t)]
    assert got["n_triplets"] == len(triplets)
    assert got["n_evaluated"] == len(evaluated)
    if not evaluated:
        assert got["violation_rate"] is None and got["null_reasons"]["violation_rate"]
        return
    # brute force: "same" must be an equivalence; among three pairs of a triplet, exactly two
    # "same" is the only impossible pattern
    viol = [t for t in evaluated if [decided[p] for p in t].count(True) == 2]
    strict = [t for t in viol if decided[t[0]] and decided[t[1]] and not decided[t[2]]]
    assert got["violations"] == len(viol)
    assert got["strict_violations"] == len(strict)
    assert got["violation_rate"] == pytest.approx(len(viol) / len(evaluated))
    assert len(got["examples"]) == min(12, len(viol))
    json.dumps(got, allow_nan=False)


def test_transitivity_known_case():
    ids = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9])
    same = np.array([True, True, False, True, True, True, False, False, True])
    trip = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 2, 99]])
    got = cons.transitivity(trip, ids, same)
    assert (got["n_evaluated"], got["violations"], got["strict_violations"]) == (3, 1, 1)
    assert got["examples"][0]["pair_ids"] == {"ab": 1, "bc": 2, "ac": 3}
    assert got["examples"][0]["same"] == {"ab": True, "bc": True, "ac": False}
    # one "same" and two "different" is consistent (a = b, c apart from both)
    assert cons.transitivity(np.array([[7, 8, 9]]), ids, same)["violations"] == 0


def test_confident_wrong_on_own_scale():
    y = np.array([0, 0, 1, 1, 0, 1, 0])
    s = np.array([95.0, 89.0, 5.0, 11.0, np.nan, 10.0, 90.0])
    fa, fr = fail.confident_wrong(y, s, 100.0)
    assert fa.tolist() == [True, False, False, False, False, False, True]
    assert fr.tolist() == [False, False, True, False, False, True, False]
    fa1, fr1 = fail.confident_wrong(y, s / 100.0, 1.0)  # an embedder's 0-1 scale
    assert np.array_equal(fa, fa1) and np.array_equal(fr, fr1)
    fa2, _ = fail.confident_wrong(y, s, 100.0, ok=np.array([False] + [True] * 6))
    assert fa2.tolist() == [False] * 6 + [True]


def test_failure_counts_examples_and_ranking():
    status = np.array(["ok", "refusal", "parse_error", "ok", "safety_block", "budget_exceeded"])
    fa = np.array([False, False, False, True, False, False])
    fr = np.zeros(6, bool)
    counts = fail.failure_counts(status, fa, fr)
    assert counts["refusal"] == counts["parse_error"] == counts["safety_block"] == 1
    assert counts["confident_false_accept"] == 1 and counts["catastrophic"] == 4
    assert counts["n_asked"] == 5 and counts["catastrophic_rate"] == pytest.approx(0.8)
    assert counts["by_status"] == {
        "budget_exceeded": 1,
        "ok": 2,
        "parse_error": 1,
        "refusal": 1,
        "safety_block": 1,
    }
    rows = {
        "pair_id": np.arange(6) + 10,
        "path_a": np.array([f"a{i}.jpg" for i in range(6)], dtype=object),
        "path_b": np.array([f"b{i}.jpg" for i in range(6)], dtype=object),
        "label": np.array([0, 1, 0, 0, 1, 1]),
        "score": np.array([40.0, np.nan, np.nan, 97.0, np.nan, np.nan]),
        "decision": np.array(["different", "unknown", "unknown", "same", "unknown", "unknown"]),
        "status": status,
        "raw": np.array(["x", "I can't help <b>with</b> that" * 40, "{bad", "y", "", None], object),
        "error": np.array([None, None, "no score found", None, "SAFETY", None], object),
        "reasons": np.array([None] * 6, object),
    }
    ex = fail.failure_examples(
        {"refusal": status == "refusal", "confident_false_accept": fa}, rows, k=12, text_limit=50
    )
    r = ex["refusal"][0]
    assert r["pair_id"] == 11 and r["label"] == 1 and r["score"] is None
    assert r["raw"] == ("I can't help <b>with</b> that" * 40)[:50] and r["raw_truncated"]
    assert ex["confident_false_accept"][0]["score"] == 97.0
    json.dumps(ex, allow_nan=False)
    other = fail.failure_counts(np.array(["ok"] * 6), np.zeros(6, bool), np.zeros(6, bool))
    third = fail.failure_counts(np.array(["ok"] * 6), np.zeros(6, bool), np.zeros(6, bool))
    ranking = fail.rank_systems({"judge": counts, "embedder": other, "another": third})
    assert [(e["system"], e["rank"]) for e in ranking] == [
        ("another", 1),
        ("embedder", 1),
        ("judge", 3),
    ]
    assert ranking[2]["budget_limited"] is True
    assert ranking[2]["confident_counted"] is True


def test_confident_wrong_not_counted_when_not_applicable():
    status = np.array(["ok", "refusal", "ok"])
    counts = fail.failure_counts(status, None, None)
    assert counts["confident_counted"] is False
    assert counts["confident_false_accept"] is None and counts["confident_false_reject"] is None
    assert counts["catastrophic"] == 1
    assert "not counted" in counts["null_reasons"]["confident_false_accept"]
    ranking = fail.rank_systems({"emb": counts})
    assert ranking[0]["confident_false_accept"] is None and ranking[0]["confident_counted"] is False
    json.dumps(counts, allow_nan=False)


def test_costs_match_hand_computed_sums():
    got = cost_summary(
        pair_ids=np.array([1, 1, 2, 3, 3]),
        status=np.array(["ok", "ok", "api_error", "ok", "ok"], dtype=object),
        cached=np.array([False, True, False, False, False]),
        attempts=np.array([1.0, 0.0, 3.0, 2.0, 1.0]),
        tokens_in=np.array([100.0, 100.0, np.nan, 120.0, 90.0]),
        tokens_out=np.array([10.0, 10.0, np.nan, 12.0, 9.0]),
        cost_usd=np.array([0.01, 0.01, 0.0, 0.02, 0.015]),
        latency_s=np.array([1.0, 0.001, 5.0, 3.0, 2.0]),
    )
    assert got["rows"] == 5 and got["cached_rows"] == 1 and got["distinct_pairs"] == 3
    assert got["this_run"] == {
        "calls": 7,
        "tokens_in": 310,
        "tokens_out": 31,
        "usd": pytest.approx(0.045),
    }
    assert got["answers"]["usd"] == pytest.approx(0.055)
    assert got["answers"]["tokens_in"] == 410
    # latency over ok rows (cached ones keep the original latency): 1, 0.001, 3, 2
    assert got["latency_n"] == 4
    assert got["latency_p50_s"] == pytest.approx(1.5)
    assert got["latency_p95_s"] == pytest.approx(np.percentile([1.0, 0.001, 3.0, 2.0], 95))
    assert got["usd_per_1000_pairs"] == pytest.approx(0.055 / 3 * 1000)
    json.dumps(got, allow_nan=False)
    none = cost_summary(
        pair_ids=np.array([], np.int64),
        status=np.array([], object),
        cached=np.array([], bool),
        attempts=np.array([]),
        tokens_in=np.array([]),
        tokens_out=np.array([]),
        cost_usd=np.array([]),
        latency_s=np.array([]),
    )
    assert none["latency_p50_s"] is None and none["usd_per_1000_pairs"] is None
    json.dumps(none, allow_nan=False)
